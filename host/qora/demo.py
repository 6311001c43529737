"""``qora demo``: the product's main job, end to end on one machine.

An MQTT broker (in-process, or the one ``broker`` names), a simulated fleet of node
processes (honest and Byzantine, on real data) and two aggregator services: one fleet
runs the chosen defence, a twin fleet with the same nodes runs plain FedAvg. Rounds
run over real MQTT with signed updates; the result is a table (accuracy per round for
both, rejects, each node's reputation), a PNG plot, and both ledgers verified.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qora import native
from qora.broker import EmbeddedBroker
from qora.errors import InvalidInput, QoraError
from qora.mqtt_client import forget_fleet
from qora.mqtt_url import parse_broker_url
from qora.provision import load_keys, provision
from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store, verify_store
from qora.sim import data as data_lib
from qora.sim.fleet import FleetSpec, spawn
from qora.sim.models import make_model


@dataclass
class DemoConfig:
    broker: str | None = None          # None: an embedded broker on a free loopback port
    nodes: int = 12
    byzantine: int = 3
    attack: str = "sign_flip"
    method: str = "trimmed_mean"
    trim_fraction: float = 0.25
    ban_threshold: float = 0.2
    mode: str = "q16_16"
    model: str = "mlp"
    rounds: int = 10
    seed: int = 0
    processes: int = 2
    round_seconds: float = 20.0
    out: Path = Path("demo-results")
    mischief: bool = True
    metrics_port: int | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.nodes <= 1000:
            raise InvalidInput(f"nodes must be in 2..1000, got {self.nodes}")
        if not 0 <= self.byzantine < self.nodes:
            raise InvalidInput(f"byzantine must be in 0..nodes-1, got {self.byzantine}")
        if self.rounds < 1:
            raise InvalidInput(f"rounds must be >= 1, got {self.rounds}")


@dataclass
class FleetRun:
    fleet: str
    method: str
    accuracy: list[float] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    label: str = ""                   # demo-robust / demo-fedavg (the fleet name has a run tag)
    verified: str = ""
    seconds: float = 0.0
    error: BaseException | None = None


@dataclass
class DemoResult:
    config: DemoConfig
    broker: str
    nodes: list[str]
    byzantine: list[str]
    runs: list[FleetRun]
    plot: Path | None = None


def _initial_model(cfg: DemoConfig, ds) -> np.ndarray:
    params = np.asarray(make_model(cfg.model, "float32", ds.n_features, ds.n_classes).init_params(cfg.seed),
                        dtype=np.float32)
    return native.to_q16(params)[0] if cfg.mode == "q16_16" else params


def run_demo(cfg: DemoConfig, on_round=None, on_status=None) -> DemoResult:
    """Run the demo; ``on_round(fleet, round, accuracy)`` and ``on_status(status)`` report progress."""
    out = Path(cfg.out)
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    nodes = [f"node-{i:02d}" for i in range(cfg.nodes)]
    byzantine = nodes[cfg.nodes - cfg.byzantine:]
    # a fresh pair of fleet names per run: a shared broker (Mosquitto) keeps retained state and
    # the aggregators' sessions, which a later run must not inherit; cleared at the end
    tag = secrets.token_hex(3)
    fleets = {f"demo-robust-{tag}": cfg.method, f"demo-fedavg-{tag}": "fedavg"}
    for fleet in fleets:
        provision(fleet, nodes, work / fleet)
    ds = data_lib.load_digits(seed=cfg.seed)
    model = make_model(cfg.model, "float32", ds.n_features, ds.n_classes)
    init = _initial_model(cfg, ds)
    layout = (ds.n_features, 32, ds.n_classes) if cfg.model == "mlp" else (ds.n_features, ds.n_classes)

    broker = None
    if cfg.broker is None:
        broker = EmbeddedBroker().start()
        url = broker.url
    else:
        url = cfg.broker
    address = parse_broker_url(url)
    spec = FleetSpec(broker=url, fleets=tuple(fleets), credentials=str(work), nodes=tuple(nodes),
                     byzantine=tuple(byzantine), attack=cfg.attack,
                     mischief=byzantine[0] if (cfg.mischief and byzantine) else None,
                     model=cfg.model, seed=cfg.seed, mqtt_version="3.1.1" if broker else "auto")
    procs, stop = spawn(spec, processes=cfg.processes)
    runs: list[FleetRun] = []
    threads = []
    services = []
    try:
        for fleet, method in fleets.items():
            config = FleetConfig(fleet=fleet, method=method, trim_fraction=cfg.trim_fraction, mode=cfg.mode,
                                 ban_threshold=cfg.ban_threshold if method != "fedavg" else 0.0,
                                 quorum=max(1, cfg.nodes // 2), round_seconds=cfg.round_seconds,
                                 layout=layout)
            keys = load_keys(work / fleet / "keys.json")
            store = Store(work / f"{fleet}.db")
            engine = RoundEngine(store, config, keys.nodes, Signer.load_or_create(work / "aggregator.key"),
                                 initial_model=init)
            run = FleetRun(fleet, method, label=fleet.rsplit("-", 1)[0])
            runs.append(run)
            agg_address = type(address)(address.host, address.port, keys.aggregator_username,
                                        keys.aggregator_password, address.tls)

            def round_done(closed, run=run, engine=engine):
                params = native.from_q16(engine.model) if cfg.mode == "q16_16" else engine.model
                acc = float(np.mean(model.predict(params.astype(np.float32), ds.X_test) == ds.y_test))
                run.accuracy.append(acc)
                run.excluded.append(dict(closed.excluded))
                run.scores = closed.scores
                if on_round:
                    on_round(run.label, closed.round, acc)

            svc = AggregatorService(engine, agg_address, on_round=round_done,
                                    on_status=on_status if method != "fedavg" else None,
                                    protocol="3.1.1" if broker else "auto")
            services.append((svc, store, run))
            t = threading.Thread(target=_timed, args=(svc, cfg.rounds, run), daemon=True, name=f"agg-{fleet}")
            threads.append(t)
        for t in threads:
            t.start()
        # watch the node processes: if they all die, no round can close
        limit = time.monotonic() + cfg.rounds * cfg.round_seconds * 3 + 60
        while any(t.is_alive() for t in threads):
            if not any(p.is_alive() for p in procs) or time.monotonic() > limit:
                for svc, _store, _run in services:
                    svc.stop()
                for t in threads:
                    t.join(timeout=15)
                why = "the node processes exited" if not any(p.is_alive() for p in procs) else "time ran out"
                raise QoraError(f"qora demo stopped early: {why} "
                                f"(exit codes {[p.exitcode for p in procs]})")
            time.sleep(0.2)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
        for svc, store, run in services:
            run.rejects = dict(svc.engine.rejects_total)
            store.close()
        if broker is not None:
            broker.stop()
        else:
            for fleet in fleets:
                try:
                    forget_fleet(address, fleet)
                except QoraError:
                    pass  # the broker went away: nothing left to clear there
    for run in runs:
        if run.error is not None:
            raise run.error
    for run in runs:
        report = verify_store(work / f"{run.fleet}.db")
        run.verified = ("ok: " if report.ok else "FAILED: ") + \
            f"{report.rounds} records, {report.replayed_q16 + report.replayed_float} replayed" + \
            ("" if report.ok else "; " + "; ".join(map(str, report.findings[:3])))
    result = DemoResult(cfg, url, nodes, byzantine, runs)
    result.plot = _plot(result, out / "demo_accuracy.png")
    return result


def _timed(svc: AggregatorService, rounds: int, run: FleetRun) -> None:
    t0 = time.perf_counter()
    try:
        svc.run(rounds=rounds)
    except BaseException as e:  # reported by run_demo after the other fleet ends
        run.error = e
    run.seconds = time.perf_counter() - t0


def _plot(result: DemoResult, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in result.runs:
        name = "fedavg (no defence)" if run.method == "fedavg" else f"{run.method} + reputation"
        ax.plot(range(1, len(run.accuracy) + 1), run.accuracy, marker="o", label=name)
    c = result.config
    ax.set_title(f"{c.nodes} nodes over MQTT, {c.byzantine} Byzantine ({c.attack}), {c.mode}")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy (digits)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
