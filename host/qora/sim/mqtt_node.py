"""A federated node on MQTT, as the firmware behaves (docs/protocol.md, node procedure).

It subscribes to its fleet's round announcement and model chunks, waits until it holds
every chunk of the announced model version with the announced digest, computes its
update (``compute(model_values, announcement) -> float32 delta``, the caller's
training), and publishes the signed update chunks with QoS 1 (MQTT 5: expiring at the
round's deadline). It trains once per round, whatever the broker redelivers.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import numpy as np

from qora import native
from qora.mqtt_client import expiry_properties, make_client
from qora.mqtt_url import BrokerAddress
from qora.protocol import (Encoding, ModelChunk, ProtocolError, RoundAnnouncement, Status,
                           assemble_model, make_update, parse_topic, round_topic, status_topic,
                           subscription, update_topic)

log = logging.getLogger("qora.node")

RESEND_DELAY_S = 3.0

Compute = Callable[[np.ndarray, RoundAnnouncement], "np.ndarray | None"]


class MqttNode:
    """One node of one fleet. ``submit(job)`` runs jobs off the network thread (a worker)."""

    def __init__(self, broker: BrokerAddress, fleet: str, node: str, key: bytes, compute: Compute,
                 submit: Callable[[Callable[[], None]], None], *, samples: int,
                 encoding: str = "auto", protocol=None) -> None:
        self.fleet, self.node, self.key = fleet, node, key
        self.compute, self.submit, self.samples = compute, submit, samples
        self.encoding = encoding
        self.rounds_sent: list[int] = []
        self._last_sent = None
        self._connections = 0
        self._lock = threading.Lock()
        self._announcement: RoundAnnouncement | None = None
        self._chunks: dict[int, dict[int, ModelChunk]] = {}   # version -> index -> chunk
        self._started: set[int] = set()
        self.v5 = False
        self._has_client = threading.Event()
        self.client = make_client(
            broker, f"{fleet}-{node}", protocol=protocol,
            subscriptions=[(round_topic(fleet), 1), (subscription(fleet, "model"), 1)],
            on_message=self._on_message,
            will=(status_topic(fleet, node), Status(fleet=fleet, node=node, online=False).encode()),
            on_connected=self._on_connected)
        self.v5 = self.client.protocol == 5
        self._has_client.set()

    def _resend_last(self) -> None:
        """After a reconnect, send the latest update again: if the broker restarted before the
        aggregator re-subscribed, it was lost; if not, the aggregator counts a harmless replay."""
        last = self._last_sent
        if last is None:
            return
        ann, messages = last
        with self._lock:
            current = self._announcement
        if current is not None and current.round == ann.round:
            for m in messages:
                self.publish_raw(m, ann)

    def _on_connected(self, ok: bool) -> None:
        # paho may connect before make_client has returned the client to us
        if ok and self._has_client.wait(10):
            if self._connections:  # give the aggregator time to be back on its subscription too
                t = threading.Timer(RESEND_DELAY_S, lambda: self.submit(self._resend_last))
                t.daemon = True
                t.start()
            self._connections += 1
            self.client.publish(status_topic(self.fleet, self.node),
                                Status(fleet=self.fleet, node=self.node, online=True).encode(), qos=1, retain=True)

    def close(self) -> None:
        self.client.publish(status_topic(self.fleet, self.node),
                            Status(fleet=self.fleet, node=self.node, online=False).encode(), qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()

    # ---- incoming --------------------------------------------------------------------------
    def _on_message(self, msg) -> None:
        try:
            topic = parse_topic(msg.topic)
            if topic.fleet != self.fleet:
                # not ours (amqtt 0.11 sends every new client the retained messages matching
                # anyone's subscription, other fleets' included): ignored, as the protocol says
                return
            if topic.kind == "round":
                ann = RoundAnnouncement.decode(bytes(msg.payload))
                if ann.fleet != self.fleet:
                    raise ProtocolError("wrong_fleet", f"a ROUND of fleet {ann.fleet!r} on {msg.topic}")
                with self._lock:
                    if self._announcement is None or ann.round >= self._announcement.round:
                        self._announcement = ann
            elif topic.kind == "model":
                chunk = ModelChunk.decode(bytes(msg.payload))
                if chunk.fleet != self.fleet:
                    raise ProtocolError("wrong_fleet", f"a MODEL chunk of fleet {chunk.fleet!r} on {msg.topic}")
                with self._lock:
                    self._chunks.setdefault(chunk.version, {})[chunk.index] = chunk
                    for v in [v for v in self._chunks if v < chunk.version - 1]:
                        del self._chunks[v]
            else:
                return
        except ProtocolError as e:
            log.warning("%s/%s: ignoring a bad %s message: %s", self.fleet, self.node, msg.topic, e)
            return
        self._maybe_train()

    def _maybe_train(self) -> None:
        with self._lock:
            ann = self._announcement
            if ann is None or ann.round in self._started:
                return
            chunks = self._chunks.get(ann.version, {})
            if len(chunks) < ann.model_chunks:
                return
            try:
                model = assemble_model(chunks.values(), expected_digest=ann.digest)
            except ProtocolError:
                return  # a newer model is on its way: the digest does not match yet
            self._started.add(ann.round)
        self.submit(lambda: self._train_and_send(model, ann))

    # ---- outgoing --------------------------------------------------------------------------
    def _train_and_send(self, model: np.ndarray, ann: RoundAnnouncement) -> None:
        params = native.from_q16(model) if ann.mode == "q16_16" else model.astype(np.float32)
        update = self.compute(params, ann)
        if update is None:
            return
        self.send(update, ann)

    def send(self, update: np.ndarray, ann: RoundAnnouncement) -> None:
        update = np.asarray(update, dtype=np.float32)
        if ann.mode == "q16_16":
            values, enc = native.to_q16(update)[0], Encoding.Q16
        else:
            values, enc = update, (Encoding.I8 if self.encoding == "int8" else Encoding.F32)
        messages = make_update(self.fleet, self.node, ann.round, values, enc, self.samples,
                               ann.chunk_elements, self.key)
        for message in messages:
            self.publish_raw(message, ann)
        self._last_sent = (ann, messages)
        self.rounds_sent.append(ann.round)

    def publish_raw(self, message: bytes, ann: RoundAnnouncement | None = None,
                    topic: str | None = None) -> None:
        props = None
        if self.v5 and ann is not None:
            props = expiry_properties(max(5, ann.deadline - int(time.time()) + 60))
        self.client.publish(topic or update_topic(self.fleet, self.node), message, qos=1, properties=props)
