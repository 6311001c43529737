"""Prometheus metrics of the aggregator (served only when asked: ``qora serve --metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    def __init__(self, fleet: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"fleet": fleet}
        self._labels = labels
        self.accepted = Counter("qora_update_chunks_accepted", "Update chunks accepted",
                                ["fleet"], registry=self.registry).labels(**labels)
        self.rejected = Counter("qora_update_messages_rejected", "Update messages rejected, by reason",
                                ["fleet", "reason"], registry=self.registry)
        self.rounds = Counter("qora_rounds_closed", "Rounds closed", ["fleet"],
                              registry=self.registry).labels(**labels)
        self.round = Gauge("qora_round", "The open round", ["fleet"], registry=self.registry).labels(**labels)
        self.complete = Gauge("qora_round_complete_updates", "Complete updates in the open round", ["fleet"],
                              registry=self.registry).labels(**labels)
        self.excluded = Counter("qora_updates_excluded", "Updates excluded from aggregation, by reason",
                                ["fleet", "reason"], registry=self.registry)
        self.up = Gauge("qora_broker_connected", "1 while connected to the broker", ["fleet"],
                        registry=self.registry).labels(**labels)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def message(self, verdict) -> None:
        if verdict.accepted:
            self.accepted.inc()
        else:
            self.rejected.labels(reason=verdict.reason, **self._labels).inc()

    def round_closed(self, closed) -> None:
        self.rounds.inc()
        for reason in closed.excluded.values():
            self.excluded.labels(reason=reason, **self._labels).inc()

    def status(self, status) -> None:
        self.round.set(status.round)
        self.complete.set(status.complete)

    def connected(self, ok: bool) -> None:
        self.up.set(1 if ok else 0)
