"""A whole MQTT fleet as one Flower client: hierarchical federated learning.

Flower runs across sites; inside a site, a fleet of devices trains over MQTT through the
Qora aggregator service. On each Flower train message the site's ClientApp
(:func:`fleet_client_app`) puts Flower's global model into the fleet's store as a new model
version, opens one fleet round on it, lets the devices train on their own data and send
signed updates, and closes the round with the fleet's robust aggregation, reputation and
ledger. Its reply is the fleet's new model and the number of samples behind it, so the
Flower strategy weighs sites by their data like any client.

The store (SQLite), the ledger and the devices' reputation live on the site and persist
between Flower rounds (a SuperNode starts a new ClientApp process per message; all state is
in the store, which also lets ``qora verify`` audit every fleet round).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from qora import native
from qora.errors import QoraError
from qora.mqtt_url import parse_broker_url
from qora.provision import load_keys
from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store


@dataclass(frozen=True)
class FleetSite:
    """Where the site's fleet is and how its rounds run."""

    broker: str
    fleet: str
    keys: str                       # keys.json written by `qora provision`
    db: str                         # the fleet's store
    signing_key: str                # the ledger's Ed25519 key file
    method: str = "trimmed_mean"
    trim_fraction: float = 0.2
    mode: str = "q16_16"
    ban_threshold: float = 0.2
    quorum: int = 2
    round_seconds: float = 30.0
    chunk_elements: int = 1024
    timeout: float = 300.0          # longest a Flower round waits for the fleet
    mqtt_version: str = "auto"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "fleet-") -> "FleetSite":
        """From a Flower node config / run config: ``fleet-broker``, ``fleet-name``, ``fleet-keys``…"""
        names = {"name": "fleet", "trim-fraction": "trim_fraction", "ban-threshold": "ban_threshold",
                 "round-seconds": "round_seconds", "chunk-elements": "chunk_elements",
                 "signing-key": "signing_key", "mqtt-version": "mqtt_version"}
        kwargs = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for key, value in config.items():
            if not key.startswith(prefix):
                continue
            name = names.get(key[len(prefix):], key[len(prefix):].replace("-", "_"))
            if name not in types:
                raise QoraError(f"unknown fleet setting {key!r}; known: "
                                f"{sorted(prefix + n.replace('_', '-') for n in types)}")
            kwargs[name] = value
        missing = [n for n in ("broker", "fleet", "keys", "db", "signing_key") if n not in kwargs]
        if missing:
            raise QoraError(f"the fleet site needs {', '.join(prefix + m.replace('_', '-') for m in missing)}")
        for n in ("trim_fraction", "ban_threshold", "round_seconds", "timeout"):
            if n in kwargs:
                kwargs[n] = float(kwargs[n])
        for n in ("quorum", "chunk_elements"):
            if n in kwargs:
                kwargs[n] = int(kwargs[n])
        return cls(**kwargs)


@dataclass
class FleetRoundResult:
    arrays: list[np.ndarray]
    num_examples: int
    metrics: dict[str, float]
    record: dict


class FleetBridge:
    """One site's fleet behind a Flower client. :meth:`train` is one Flower round."""

    def __init__(self, site: FleetSite) -> None:
        self.site = site

    def train(self, arrays: Sequence[np.ndarray]) -> FleetRoundResult:
        site = self.site
        shapes = [np.asarray(a).shape for a in arrays]
        flat = np.concatenate([np.asarray(a, dtype=np.float32).ravel() for a in arrays])
        model = native.to_q16(flat)[0] if site.mode == "q16_16" else flat
        keys = load_keys(site.keys, fleet=site.fleet)
        address = parse_broker_url(site.broker)
        if address.username is None:
            address = dataclasses.replace(address, username=keys.aggregator_username,
                                          password=keys.aggregator_password)
        config = FleetConfig(fleet=site.fleet, method=site.method, trim_fraction=site.trim_fraction,
                             mode=site.mode, ban_threshold=site.ban_threshold, quorum=site.quorum,
                             round_seconds=site.round_seconds, chunk_elements=site.chunk_elements)
        store = Store(site.db)
        try:
            engine = RoundEngine(store, config, keys.nodes, Signer.load_or_create(site.signing_key),
                                 initial_model=model, auto_open=False)
            engine.start()
            if not engine.is_open:  # (open: a previous ClientApp died mid-round; finish that round)
                engine.open_round(model)
            svc = AggregatorService(engine, address, protocol=site.mqtt_version)
            svc.run(rounds=1, timeout=site.timeout)
            closed = svc.last_closed
            if closed is None:
                raise QoraError(f"fleet {site.fleet}: no round closed within {site.timeout:.0f} s "
                                f"({len(engine.complete_nodes())} complete updates, quorum {site.quorum})")
            out = native.from_q16(engine.model) if site.mode == "q16_16" else engine.model.astype(np.float32)
        finally:
            store.close()
        record = closed.record
        n = int(sum(i["samples"] for i in record["inputs"] if i["node"] not in record["excluded"]))
        parts, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape)) if shape else 1
            parts.append(out[start:start + size].reshape(shape))
            start += size
        metrics = {"fleet.round": float(record["round"]), "fleet.inputs": float(len(record["inputs"])),
                   "fleet.excluded": float(len(record["excluded"])),
                   "fleet.rejects": float(sum(record["rejects"].values())),
                   "fleet.refused": float(record["refused"] is not None)}
        return FleetRoundResult(parts, max(n, 1), metrics, record)


def fleet_client_app(prefix: str = "fleet-"):
    """A Flower ClientApp whose train handler runs one fleet round (settings from the node
    config, else the run config, keys starting with ``prefix``)."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        settings = {**dict(context.run_config), **dict(context.node_config)}
        result = FleetBridge(FleetSite.from_config(settings, prefix)).train(
            msg.content["arrays"].to_numpy_ndarrays())
        content = RecordDict({
            "arrays": ArrayRecord(result.arrays),
            "metrics": MetricRecord({"num-examples": result.num_examples, **result.metrics}),
        })
        return Message(content, reply_to=msg)

    return app


def site_paths(base: str | Path, fleet: str) -> dict[str, str]:
    """The conventional layout of a site directory: keys from `qora provision --out base`."""
    base = Path(base)
    return {"keys": str(base / "keys.json"), "db": str(base / f"{fleet}.db"),
            "signing_key": str(base / f"{fleet}.ed25519")}
