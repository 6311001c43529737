# The Qora node state machine on MicroPython (docs/protocol.md section 9), over umqtt.simple.
#
# connect (will: STATUS offline, retained) -> STATUS online -> subscribe round + model/+ ->
# keep the latest ROUND and the MODEL chunks of its version -> when the announced model is
# complete and its SHA-256 matches: train (qref.train.train_node_q16 on the local shard),
# delta = local - global (saturating int32), publish the sealed UPDATE chunks at QoS 1 ->
# remember the round in the state file (a reboot does not retrain it) -> next ROUND.
# Any OSError (Wi-Fi, broker, socket) drops the connection and reconnects after a delay; an
# update half sent is finished after the reconnect (the same bytes: a harmless replay).
#
# Runs unchanged under CPython (the tests run it there too, with the same stand-ins).

import gc
import json
import struct
import sys
import time
from array import array

from . import protocol as P

try:
    from qref import train as T
except ImportError:  # a host checkout: the reference package itself
    from qora.reference import train as T

try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython
    def _ticks_ms():
        return int(time.monotonic() * 1000)

    def _ticks_diff(a, b):
        return a - b

try:
    _sleep_ms = time.sleep_ms
except AttributeError:  # CPython
    def _sleep_ms(ms):
        time.sleep(ms / 1000)

SHARD_MAGIC = b"QSH1"
SHARD_HEADER = "<4sHHIHH"          # magic, format 1, n_features, rows, n_classes, reserved 0
SHARD_HEADER_BYTES = 16
INT32_MIN = -2147483648
INT32_MAX = 2147483647


def log(*args):
    print("qora:", *args)


def round_seed(seed, rnd, epochs):
    """The training seed of round `rnd`: seed + round * epochs mod 2^32, as the C node's
    qn_round_seed (node.h); train.node_order((round_seed + e) mod 2^32, m) is epoch e's visiting
    order, so no two epochs of a node, in any rounds, share an order."""
    return (seed + rnd * (epochs if epochs else 1)) & 0xFFFFFFFF


def saturating_delta(local, global_, out):
    """out[i] = clamp(local[i] - global_[i]) to int32 (docs/protocol.md section 8)."""
    for i in range(len(out)):
        d = local[i] - global_[i]
        out[i] = INT32_MIN if d < INT32_MIN else (INT32_MAX if d > INT32_MAX else d)
    return out


class Shard:
    """The local training data (shard.bin, written by make_shard.py)::

        0   4s  magic b"QSH1"        8   u32  rows m
        4   u16 format 1            12   u16  n_classes
        6   u16 n_features          14   u16  reserved (0)
        16  m * n_features int32 LE  Q16.16 features, row-major
            m uint8                  labels

    Features stay in one array('i'); rows are memoryview slices of it (no copies)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            head = f.read(SHARD_HEADER_BYTES)
            if len(head) != SHARD_HEADER_BYTES:
                raise ValueError("%s: too short" % path)
            magic, fmt, nf, m, ncls, _ = struct.unpack(SHARD_HEADER, head)
            if magic != SHARD_MAGIC or fmt != 1 or nf < 1 or m < 1 or not 2 <= ncls <= 256:
                raise ValueError("%s: not a format-1 shard" % path)
            feats = array("i", range(m * nf))           # one allocation, overwritten below
            if f.readinto(memoryview(feats)) != 4 * m * nf:
                raise ValueError("%s: truncated features" % path)
            if sys.byteorder != "little":
                feats.byteswap()
            labels = f.read(m)
            if len(labels) != m or f.read(1):
                raise ValueError("%s: wrong length" % path)
        for v in labels:
            if v >= ncls:
                raise ValueError("%s: label %d >= %d classes" % (path, v, ncls))
        mv = memoryview(feats)
        self.features = feats
        self.n_features = nf
        self.n_classes = ncls
        self.rows = m
        self.X = [mv[r * nf:(r + 1) * nf] for r in range(m)]
        self.y = labels


class Node:
    """One node of one fleet. `mqtt_client` is umqtt.simple.MQTTClient (or a stand-in)."""

    def __init__(self, cfg, mqtt_client, shard=None):
        self.fleet = cfg["fleet"]
        self.node = cfg["node"]
        if not P.valid_id(self.fleet) or not P.valid_id(self.node):
            raise ValueError("config: invalid fleet or node id")
        key = cfg["key"]
        if len(key) != 64:
            raise ValueError("config: key must be 64 hex digits (32 bytes)")
        self.key = bytes(int(key[i:i + 2], 16) for i in range(0, 64, 2))
        mq = cfg["mqtt"]
        self.host = mq["host"]
        self.port = mq.get("port", 1883)
        self.user = mq.get("user", self.node)
        self.password = mq.get("password")
        self.keepalive = mq.get("keepalive", 120)
        tr = cfg.get("training", {})
        self.layout = tr.get("layout", [])
        self.epochs = tr.get("epochs", 1)
        self.batch_size = tr.get("batch_size", 32)
        self.lr_q = tr.get("lr_q", 32768)
        self.seed = tr.get("seed", 0)
        self.retry_s = cfg.get("retry_delay_s", 5)
        self.max_bytes = cfg.get("max_message_bytes", P.MAX_MESSAGE_BYTES)
        self.state_path = cfg.get("state", "qora_state.json")
        self.shard = shard if shard is not None else Shard(cfg.get("data", "shard.bin"))
        self.MQTTClient = mqtt_client
        self.client = None
        self.ann = None                  # the latest ROUND
        self.store = P.ModelStore()
        self.pending = None              # (round, version, C, delta, next index) to send
        self.skipped = -1                # last round we refused (printed once)
        self.sent_round = 0
        self.sent_version = -1
        self.last_io = 0
        self._load_state()

    # ---- persistent state ----------------------------------------------------------------
    def _load_state(self):
        try:
            with open(self.state_path) as f:
                st = json.load(f)
            if st.get("fleet") == self.fleet and st.get("node") == self.node:
                self.sent_round = int(st["round"])
                self.sent_version = int(st["version"])
                log("state: round %d (model v%d) already sent" % (self.sent_round, self.sent_version))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no state yet (or a torn write): a retrained round sends the same bytes

    def _save_state(self, rnd, version):
        self.sent_round = rnd
        self.sent_version = version
        with open(self.state_path, "w") as f:
            json.dump({"fleet": self.fleet, "node": self.node, "round": rnd, "version": version}, f)

    # ---- MQTT ----------------------------------------------------------------------------
    def connect(self):
        self.close()
        st = P.status_topic(self.fleet, self.node)
        c = self.MQTTClient(self.fleet + "-" + self.node, self.host, port=self.port,
                            user=self.user, password=self.password, keepalive=self.keepalive)
        c.set_callback(self._on_message)
        c.set_last_will(st, P.status(self.fleet, self.node, False), retain=True, qos=1)
        c.connect()
        self.client = c
        c.publish(st, P.status(self.fleet, self.node, True), retain=True, qos=1)
        c.subscribe(P.round_topic(self.fleet), qos=1)
        c.subscribe(P.model_filter(self.fleet), qos=1)
        self.last_io = _ticks_ms()
        log("connected to %s:%d as %s" % (self.host, self.port, self.user))

    def close(self):
        c = self.client
        self.client = None
        if c is not None:
            try:
                c.sock.close()
            except Exception:
                pass

    def shutdown(self):
        """Clean disconnect: STATUS offline, then DISCONNECT (the will is not sent)."""
        if self.client is not None:
            self.client.publish(P.status_topic(self.fleet, self.node),
                                P.status(self.fleet, self.node, False), retain=True, qos=1)
            self.client.disconnect()
            self.client = None

    # ---- incoming (also called from inside publish / subscribe: store only) ----------------
    def _on_message(self, topic, msg):
        try:
            fleet, kind, leaf = P.parse_topic(topic)
            if fleet != self.fleet:
                return
            if kind == "round":
                self._on_round(P.decode_round(msg, self.max_bytes))
            elif kind == "model":
                ch = P.decode_model(msg, self.max_bytes)
                if ch.index != leaf:
                    raise P.ProtocolError("malformed", "chunk %d on topic model/%d" % (ch.index, leaf))
                if ch.fleet == self.fleet:
                    self.store.add(ch, self.ann.version if self.ann else 0)
        except (P.ProtocolError, UnicodeError) as e:
            log("ignored a bad message on %s: %s" % (topic, e))

    def _on_round(self, ann):
        if ann.fleet != self.fleet:
            return
        cur = self.ann
        if cur is not None and ann.round < cur.round:
            return
        if cur is None or ann.round != cur.round:
            log("round %d: model v%d, %d elements, %s, deadline %d"
                % (ann.round, ann.version, ann.elements, ann.method, ann.deadline))
            self.store.drop_below(ann.version)
        self.ann = ann                    # the same round again only moves the deadline

    # ---- the round ----------------------------------------------------------------------
    def _layout(self, ann):
        layout = ann.layout if ann.layout else self.layout
        why = None
        if ann.mode != 0:
            why = "mode float32 (this node trains in q16_16 only)"
        elif len(layout) < 2 or T.n_params(layout) != ann.elements:
            why = "layout %r does not give %d parameters" % (layout, ann.elements)
        elif layout[0] != self.shard.n_features or layout[-1] < self.shard.n_classes:
            why = "layout %r does not fit the shard (%d features, %d classes)" % (
                layout, self.shard.n_features, self.shard.n_classes)
        return layout, why

    def ready(self):
        """(ann, model, layout) when a round is due and its model is complete, else None."""
        ann = self.ann
        if ann is None or self.pending is not None:
            return None
        if ann.round <= self.sent_round:
            if ann.round < self.sent_round and self.skipped != ann.round:
                log("round %d comes before round %d, already sent (%s): waiting for a later round"
                    % (ann.round, self.sent_round, self.state_path))
                self.skipped = ann.round
            return None
        layout, why = self._layout(ann)
        if why:
            if self.skipped != ann.round:
                log("skipping round %d: %s" % (ann.round, why))
                self.skipped = ann.round
            return None
        model = self.store.assemble(ann)
        if model is None:
            return None
        return ann, model, layout

    def train(self, ann, model, layout):
        """The local model after this round's training, minus the global one (Q16.16)."""
        seed = round_seed(self.seed, ann.round, self.epochs)
        log("model v%d complete (digest %s...); training round %d: %d samples, %d epochs, "
            "batch %d, lr_q %d, seed %d" % (ann.version, _hex(ann.digest[:4]), ann.round,
                                            self.shard.rows, self.epochs, self.batch_size,
                                            self.lr_q, seed))
        gc.collect()                      # one big free area for the training's lists
        t0 = _ticks_ms()
        local = model
        for e in range(self.epochs):
            # epoch e of train_node_q16(..., epochs, ..., seed) is train_node_q16 with one epoch
            # and seed + e: the same bits, with a keepalive ping between the epochs
            local = T.train_node_q16(local, layout, self.shard.X, self.shard.y, 1,
                                     self.batch_size, self.lr_q, (seed + e) & 0xFFFFFFFF)
            self._keepalive()
        log("trained in %d ms" % _ticks_diff(_ticks_ms(), t0))
        return saturating_delta(local, model, model)   # in place: model is not needed after

    def send_pending(self):
        rnd, version, chunk_elements, delta, start = self.pending
        topic = P.update_topic(self.fleet, self.node)
        sent = 0
        for index, msg in P.update_messages(self.fleet, self.node, rnd, delta, self.shard.rows,
                                            chunk_elements, self.key, start):
            self.client.publish(topic, msg, qos=1)    # returns after the PUBACK
            self.last_io = _ticks_ms()
            sent += len(msg)
            self.pending = (rnd, version, chunk_elements, delta, index + 1)
        self.pending = None
        self._save_state(rnd, version)
        log("sent update for round %d: %d chunk(s), %d bytes%s"
            % (rnd, P.chunk_count(len(delta), chunk_elements) - start, sent,
               " (from chunk %d on, after a reconnect)" % start if start else ""))
        gc.collect()
        if hasattr(gc, "mem_free"):       # MicroPython: what is left for the next round
            log("free heap: %d bytes" % gc.mem_free())

    def _keepalive(self):
        """PINGREQ when half the keepalive has passed without traffic; a dead connection is
        closed here and reopened by run_forever."""
        if self.client is None or not self.keepalive:
            return
        if _ticks_diff(_ticks_ms(), self.last_io) > self.keepalive * 500:
            try:
                self.client.ping()
                self.last_io = _ticks_ms()
            except OSError as e:
                log("ping failed (%r)" % (e,))
                self.close()

    def poll(self):
        """One step: handle a message if one is waiting, train and send when due, ping."""
        if self.client is None:
            raise OSError("not connected")
        self.client.check_msg()
        if self.pending is None:
            job = self.ready()
            if job is not None:
                ann, model, layout = job
                self.pending = (ann.round, ann.version, ann.chunk_elements,
                                self.train(ann, model, layout), 0)
        if self.pending is not None:
            if self.client is None:
                raise OSError("connection lost while training")
            self.send_pending()
        self._keepalive()

    def run_forever(self, idle_ms=50):
        while True:
            try:
                if self.client is None:
                    self.connect()
                self.poll()
            except OSError as e:
                log("connection lost (%r); reconnecting in %d s" % (e, self.retry_s))
                self.close()
                _sleep_ms(int(self.retry_s * 1000))
                continue
            _sleep_ms(idle_ms)


def _hex(b):
    return "".join("%02x" % x for x in b)
