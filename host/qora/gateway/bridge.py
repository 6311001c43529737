"""``qora gateway``: boards on serial ports <-> the MQTT broker (docs/serial.md).

One ``BoardLink`` per port: a reader thread turns the line's bytes into frames; a board
that says HELLO gets its own MQTT connection, logged in as that node when its credential
file is known (so the broker's ACL holds the board to its own topics), with the node's
status as will message. Upward, only the node's own ``update`` and ``status`` topics pass;
downward, the fleet's ``round``, ``model/+`` and ``ledger`` (and ``update/+`` in mesh mode)
are framed to the board — retained ones arrive on every (re)subscription, so a board that
resets and says HELLO again gets the current round and model without a cache here. A port
that fails (board unplugged, emulator restarted) is reopened with back-off.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
import serial

from qora.gateway.framing import ASK_HELLO, HELLO, LOG, PUBLISH, FrameDecoder, encode_frame, \
    parse_publish, publish_content
from qora.mqtt_client import make_client
from qora.mqtt_url import BrokerAddress
from qora.protocol import (ProtocolError, Status, parse_topic, round_topic, status_topic, subscription,
                           validate_id)

log = logging.getLogger("qora.gateway")


@dataclass
class LinkStats:
    port: str
    node: str | None = None
    fleet: str | None = None
    up: int = 0              # messages published for the board
    down: int = 0            # messages framed to the board
    refused: int = 0         # frames the board may not send (topic not its own, bad HELLO...)
    hellos: int = 0
    reopened: int = 0
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    logs: deque = field(default_factory=lambda: deque(maxlen=200))   # the board's LOG lines


class BoardLink:
    def __init__(self, port: str, broker: BrokerAddress, credentials: Path | None, mesh: bool,
                 baudrate: int = 115200, mqtt_version: str | None = None) -> None:
        self.port_url = port
        self.broker = broker
        self.credentials = credentials
        self.mesh = mesh
        self.baudrate = baudrate
        self.mqtt_version = mqtt_version
        self.stats = LinkStats(port)
        self._serial = None
        self._write_lock = threading.Lock()
        self._client = None
        self._stop = threading.Event()
        self._last_ask = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"gateway-{port}")

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> "BoardLink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._drop_client(offline=True)
        if self._serial is not None:
            self._serial.close()

    def _open(self):
        s = serial.serial_for_url(self.port_url, baudrate=self.baudrate, timeout=0.05)
        self._serial = s
        self._write(encode_frame(ASK_HELLO, b""))  # a board that booted before us says who it is
        return s

    def _run(self) -> None:
        delay = 0.2
        while not self._stop.is_set():
            try:
                s = self._open()
                delay = 0.2
                while not self._stop.is_set():
                    data = s.read(4096)
                    if data:
                        for frame in self.stats.decoder.feed(data):
                            self._on_frame(frame.type, frame.content)
            except (serial.SerialException, OSError) as e:
                if self._stop.is_set():
                    break
                log.info("%s: %s; reopening", self.port_url, e)
                self.stats.reopened += 1
                if self._serial is not None:
                    try:
                        self._serial.close()
                    except Exception:  # noqa: BLE001 - closing a dead port may fail any way
                        pass
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    # ---- board -> broker -------------------------------------------------------------------
    def _on_frame(self, ftype: int, content: bytes) -> None:
        if ftype == HELLO:
            self._hello(content)
        elif ftype == PUBLISH:
            self._publish_up(content)
        elif ftype == LOG:
            text = content.decode(errors="replace")
            self.stats.logs.append(text)
            log.info("%s [%s] %s", self.port_url, self.stats.node or "?", text)
        else:
            self.stats.refused += 1

    def _hello(self, content: bytes) -> None:
        try:
            hello = cbor2.loads(content)
            if hello.get(0) != 1:
                raise ValueError(f"protocol version {hello.get(0)!r}, this gateway speaks 1")
            fleet, node = validate_id(hello[2], "fleet"), validate_id(hello[3], "node")
        except Exception as e:  # noqa: BLE001 - any malformed HELLO is refused the same way
            self.stats.refused += 1
            log.warning("%s: malformed HELLO (%s)", self.port_url, e)
            return
        self.stats.hellos += 1
        if (fleet, node) != (self.stats.fleet, self.stats.node) or self._client is None:
            self._drop_client(offline=True)
            self.stats.fleet, self.stats.node = fleet, node
            self._client = self._connect(fleet, node)
        else:
            # the board restarted: subscribe again so the broker re-sends the retained state
            subs = self._subscriptions(fleet)
            self._client.unsubscribe([t for t, _ in subs])
            self._client.subscribe(subs)
        log.info("%s: board %s/%s (firmware %s)", self.port_url, fleet, node, hello.get(25, "?"))

    def _subscriptions(self, fleet: str) -> list[tuple[str, int]]:
        subs = [(round_topic(fleet), 1), (subscription(fleet, "model"), 1), (f"qora/v1/{fleet}/ledger", 1)]
        if self.mesh:
            subs.append((subscription(fleet, "update"), 1))
        return subs

    def _connect(self, fleet: str, node: str):
        address = self.broker
        if self.credentials is not None:
            path = self.credentials / f"{node}.json"
            if path.exists():
                from qora.provision import load_node_credentials
                cred = load_node_credentials(path, fleet=fleet, node=node)
                address = dataclasses.replace(address, username=cred.mqtt_username, password=cred.mqtt_password)
        return make_client(address, f"gw-{fleet}-{node}", subscriptions=self._subscriptions(fleet),
                           on_message=self._on_mqtt, protocol=self.mqtt_version,
                           will=(status_topic(fleet, node), Status(fleet=fleet, node=node, online=False).encode()))

    def _drop_client(self, offline: bool = False) -> None:
        """End the node's MQTT session; ``offline``: say so first (a clean disconnect fires no will)."""
        if self._client is not None:
            if offline and self.stats.node:
                self._client.publish(status_topic(self.stats.fleet, self.stats.node),
                                     Status(fleet=self.stats.fleet, node=self.stats.node, online=False).encode(),
                                     qos=1, retain=True)
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _publish_up(self, content: bytes) -> None:
        try:
            topic, payload = parse_publish(content)
            t = parse_topic(topic)
        except (ValueError, ProtocolError):
            self.stats.refused += 1
            return
        if self._client is None:
            # a board that publishes before any HELLO was accepted: ask it who it is (at most 1/s)
            self.stats.refused += 1
            now = time.monotonic()
            if now - self._last_ask >= 1.0:
                self._last_ask = now
                self._write(encode_frame(ASK_HELLO, b""))
            return
        own = t.kind in ("update", "status") and t.node == self.stats.node and t.fleet == self.stats.fleet
        if not own:
            self.stats.refused += 1
            log.warning("%s: board %s may not publish on %s", self.port_url, self.stats.node, topic)
            return
        self._client.publish(topic, payload, qos=1, retain=t.kind == "status")
        self.stats.up += 1

    # ---- broker -> board -------------------------------------------------------------------
    def _on_mqtt(self, msg) -> None:
        if self.mesh and msg.topic.endswith("/update/" + (self.stats.node or "")):
            return  # its own update need not come back
        self._write(encode_frame(PUBLISH, publish_content(msg.topic, bytes(msg.payload))))
        self.stats.down += 1

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            s = self._serial
            if s is None:
                return
            try:
                # a leading 0x00 ends any noise on the line before the frame (docs/serial.md)
                s.write(b"\x00" + frame)
                s.flush()
            except (serial.SerialException, OSError) as e:
                log.info("%s: write failed (%s)", self.port_url, e)


class Gateway:
    """Several boards, one process."""

    def __init__(self, ports: list[str], broker: BrokerAddress, *, credentials: str | Path | None = None,
                 mesh: bool = False, baudrate: int = 115200, mqtt_version: str | None = None) -> None:
        cred = Path(credentials) if credentials else None
        self.links = [BoardLink(p, broker, cred, mesh, baudrate, mqtt_version) for p in ports]

    def start(self) -> "Gateway":
        for link in self.links:
            link.start()
        return self

    def stop(self) -> None:
        for link in self.links:
            link.stop()

    def __enter__(self) -> "Gateway":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
