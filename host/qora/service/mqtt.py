"""The aggregator on MQTT: a paho client feeding a RoundEngine from one worker thread.

paho's network thread only queues incoming messages; the worker decodes, validates and
stores them, then acknowledges (manual QoS 1 acks: a message the aggregator had not
stored when it died is redelivered by the broker from its persistent session).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from qora.mqtt_client import make_client, resolve_protocol
from qora.mqtt_url import BrokerAddress
from qora.protocol import subscription
from qora.service.engine import ClosedRound, RoundEngine
from qora.service.metrics import Metrics

log = logging.getLogger("qora.service")


@dataclass
class Status:
    """What the live status line shows."""

    fleet: str
    round: int
    connected: bool
    complete: int
    expected: int
    chunks: int
    rejects: dict[str, int]
    rounds_closed: int
    deadline_in: float
    last_closed: ClosedRound | None = None
    rejects_total: dict[str, int] = field(default_factory=dict)


class AggregatorService:
    """Run one fleet's rounds over MQTT until ``stop()`` (or ``rounds`` rounds closed)."""

    def __init__(self, engine: RoundEngine, broker: BrokerAddress, *, client_id: str | None = None,
                 metrics: Metrics | None = None, on_status: Callable[[Status], None] | None = None,
                 on_round: Callable[[ClosedRound], None] | None = None, protocol=None) -> None:
        self.engine = engine
        self.broker = broker
        self.client_id = client_id or f"qora-aggregator-{engine.config.fleet}"
        self.metrics = metrics
        self.on_status = on_status
        self.on_round = on_round
        self._inbox: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._client = None
        self._need_state = True
        self._infos: list = []
        self._unconfirmed: set[int] = set()
        self.ignored = 0   # messages outside our subscription (see _ours)
        self.protocol = protocol
        self.last_closed: ClosedRound | None = None

    # ---- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def run(self, rounds: int | None = None, timeout: float | None = None) -> None:
        """Blocking. ``rounds``: return after closing that many rounds; ``timeout``: seconds."""
        cfg = self.engine.config
        self.engine.start()
        self._unconfirmed.update(self.engine.unpublished())
        protocol = resolve_protocol(self.broker, self.protocol)
        self._client = make_client(
            self.broker, self.client_id, subscriptions=[(subscription(cfg.fleet, "update"), 1)],
            on_message=self._inbox.put, protocol=protocol, persistent=True, manual_ack=True,
            max_packet_size=max(4 * cfg.max_message_bytes, 65536), on_connected=self._on_connected)
        log.info("aggregator for fleet %s on %s:%d (MQTT %s)", cfg.fleet, self.broker.host, self.broker.port,
                 "5" if protocol == 5 else "3.1.1")
        started = time.monotonic()
        closed_here = 0
        try:
            while not self._stop.is_set():
                if timeout is not None and time.monotonic() - started > timeout:
                    break
                if self._connected.is_set() and self._need_state:
                    self._publish_state()
                try:
                    msg = self._inbox.get(timeout=0.1)
                except queue.Empty:
                    msg = None
                if msg is not None:
                    batch = [msg]
                    for _ in range(256):  # drain a burst before looking at the clock
                        try:
                            batch.append(self._inbox.get_nowait())
                        except queue.Empty:
                            break
                    self._handle_batch(batch)
                if self.engine.due():
                    closed = self.engine.close()
                    self.last_closed = closed
                    closed_here += 1
                    self._unconfirmed.add(closed.round)
                    if self.metrics:
                        self.metrics.round_closed(closed)
                    self._publish_state()
                    if self.on_round:
                        self.on_round(closed)
                elif self.engine.extend_if_late():
                    self._publish_state()
                self._confirm_published()
                self._report()
                if rounds is not None and closed_here >= rounds:
                    break
        finally:
            self._flush()
            self._client.disconnect()
            self._client.loop_stop()

    def _on_connected(self, ok: bool) -> None:
        if ok:
            # every (re)connect re-sends the retained state: a broker restarted without
            # persistence has lost it, and it is idempotent for one that kept it
            self._need_state = True
            self._connected.set()
        else:
            self._connected.clear()
        if self.metrics:
            self.metrics.connected(ok)

    # ---- work ------------------------------------------------------------------------------
    def _ours(self, topic: str) -> bool:
        # amqtt 0.11 hands a new client the retained messages of *every* subscription on the
        # broker; what is not on our own subscription is not an update to us: ignored, not
        # counted against anyone (mosquitto never delivers such messages)
        prefix = f"qora/v1/{self.engine.config.fleet}/update/"
        return topic.startswith(prefix) and "/" not in topic[len(prefix):]

    def _handle_batch(self, msgs: list) -> None:
        """One SQLite commit for the burst; the acks go out only after it."""
        ours, foreign = [], []
        for m in msgs:
            (ours if self._ours(m.topic) else foreign).append(m)
        self.ignored += len(foreign)
        with self.engine.intake():
            verdicts = [self.engine.handle(m.topic, bytes(m.payload)) for m in ours]
        for msg in foreign:
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)
        for msg, verdict in zip(ours, verdicts):
            if self.metrics:
                self.metrics.message(verdict)
            if msg.qos > 0:
                self._client.ack(msg.mid, msg.qos)

    def _publish_state(self) -> None:
        """Model chunks, ledger head and round announcement, retained (QoS 1)."""
        self._need_state = False
        self._infos = [self._client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain)
                       for p in self.engine.state_publications()]

    def _confirm_published(self) -> None:
        """Closed rounds count as published once the broker acknowledged the state after them."""
        if not self._unconfirmed or not self._infos:
            return
        try:
            if not all(i.is_published() for i in self._infos):
                return
        except (RuntimeError, ValueError):  # sent while disconnected: re-sent on reconnect
            self._need_state = True
            self._infos = []
            return
        for r in sorted(self._unconfirmed):
            self.engine.mark_published(r)
        self._unconfirmed.clear()

    def _flush(self, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while self._unconfirmed and self._infos and time.monotonic() < end and self._connected.is_set():
            self._confirm_published()
            time.sleep(0.02)

    def status(self) -> Status:
        e = self.engine
        return Status(fleet=e.config.fleet, round=e.round, connected=self._connected.is_set(),
                      complete=len(e.complete_nodes()), expected=len(e.active_nodes()),
                      chunks=sum(len(p.chunks) for p in e.pending.values()), rejects=dict(e.rejects),
                      rounds_closed=e.rounds_closed, deadline_in=e.deadline - e.clock(),
                      last_closed=self.last_closed, rejects_total=dict(e.rejects_total))

    def _report(self) -> None:
        if not (self.on_status or self.metrics):
            return
        status = self.status()
        if self.on_status:
            self.on_status(status)
        if self.metrics:
            self.metrics.status(status)


def rejects_line(rejects: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(Counter(rejects).items())) or "none"
