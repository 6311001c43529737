"""One simulated federated run: clients train, some attack, a defence aggregates.

The loop the evaluation harness runs (and that the MQTT fleet simulation and the
Flower bridge reuse): per round every client trains from the global parameters,
the Byzantine ones replace their update by the attack's (omniscient: they see the
honest updates), the server aggregates with the defence and moves the global model
by the aggregate; test accuracy is recorded every round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from qora.errors import InvalidInput
from qora.filtering import MutualInformationFilter
from qora.sim import attacks as attack_lib
from qora.sim import data as data_lib
from qora.sim.client import Client
from qora.sim.defences import byzantine_count, get_defence
from qora.models import MLP, SoftmaxRegression

PROBE_ROWS = 100  # unlabelled rows the server holds for the MI filter (not used for testing)


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "digits"          # "digits" | "sensors"
    model: str = "softmax"           # "softmax" | "mlp"
    n_clients: int = 10
    byzantine_fraction: float = 0.2
    attack: str = "sign_flip"
    defence: str = "trimmed_mean"
    partition: str = "iid"           # "iid" | "dirichlet" | "shards"
    alpha: float = 1.0               # Dirichlet concentration
    rounds: int = 20
    local_epochs: int = 1
    lr: float = 0.1
    batch_size: int = 32
    server_lr: float = 1.0
    seed: int = 0

    @property
    def heterogeneity(self) -> str:
        return f"dirichlet:{self.alpha:g}" if self.partition == "dirichlet" else self.partition


@dataclass
class RunResult:
    config: RunConfig
    accuracy: list[float]                 # test accuracy after each round
    banned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped_rounds: int = 0               # rounds the defence refused (everyone excluded)

    @property
    def final_accuracy(self) -> float:
        return self.accuracy[-1] if self.accuracy else float("nan")

    def row(self) -> dict:
        row = asdict(self.config)
        row.update(final_accuracy=round(self.final_accuracy, 4), banned=len(self.banned),
                   skipped_rounds=self.skipped_rounds, seconds=round(self.seconds, 2))
        return row


def _dataset(name: str, seed: int) -> data_lib.Dataset:
    if name == "digits":
        return data_lib.load_digits(seed=seed)
    if name == "sensors":
        return data_lib.load_sensors(seed=seed)
    raise InvalidInput(f"unknown dataset {name!r}; expected digits or sensors")


def _model(kind: str, ds: data_lib.Dataset):
    if kind == "softmax":
        return SoftmaxRegression(ds.n_features, ds.n_classes)
    if kind == "mlp":
        return MLP((ds.n_features, 32, ds.n_classes))
    raise InvalidInput(f"unknown model {kind!r}; expected softmax or mlp")


def simulate(cfg: RunConfig, on_round: Callable[[int, float], None] | None = None) -> RunResult:
    """Run one configuration; deterministic for its seed."""
    import time

    t0 = time.perf_counter()
    ds = _dataset(cfg.dataset, cfg.seed)
    model = _model(cfg.model, ds)
    defence = get_defence(cfg.defence)
    attack = attack_lib.get_attack(cfg.attack)
    n = cfg.n_clients
    f = byzantine_count(n, cfg.byzantine_fraction) if cfg.attack != "none" else 0
    shards = data_lib.partition(ds.y_train, n, cfg.partition, alpha=cfg.alpha, seed=cfg.seed)
    clients = [Client(f"node{i}", ds.X_train[s], ds.y_train[s], model, epochs=cfg.local_epochs,
                      lr=cfg.lr, batch_size=cfg.batch_size, momentum=defence.momentum)
               for i, s in enumerate(shards)]
    honest, byzantine = clients[: n - f], clients[n - f:]
    probe, X_test, y_test = ds.X_test[:PROBE_ROWS], ds.X_test[PROBE_ROWS:], ds.y_test[PROBE_ROWS:]
    # the filter may drop at most the f clients the defence is told to expect
    mi = MutualInformationFilter(model, probe, min_clients=max(2, n - f)) if defence.uses_probe else None
    agg = defence.build(n, f, mi)
    rng = np.random.default_rng([cfg.seed, 7919])
    poisoned = {c.client_id: attack.poison_labels(c.y, ds.n_classes, rng) for c in byzantine} \
        if attack.data_level else {}
    g = np.asarray(model.init_params(cfg.seed), dtype=np.float64)
    accuracy: list[float] = []
    skipped = 0
    for r in range(cfg.rounds):
        seed_r = cfg.seed * 1_000_003 + r * 1009
        honest_up = np.stack([c.with_momentum(c.local_delta(g, seed_r + k)) for k, c in enumerate(honest)])
        updates = list(honest_up)
        ids = [c.client_id for c in honest]
        if byzantine:
            own = np.stack([c.local_delta(g, seed_r + 500 + k, poisoned.get(c.client_id))
                            for k, c in enumerate(byzantine)])
            ctx = attack_lib.AttackContext(honest=honest_up, own=own, round_index=r, rng=rng,
                                           n_total=n, global_params=g.astype(np.float32))
            bad = np.asarray(attack.updates(ctx), dtype=np.float32)
            bad = np.stack([c.with_momentum(b) if attack.data_level else b for c, b in zip(byzantine, bad)])
            updates += list(bad)
            if cfg.attack == "sybil":  # a fresh identity every round (whitewashing)
                ids += [f"sybil{r}_{k}" for k in range(f)]
            else:
                ids += [c.client_id for c in byzantine]
        kwargs = {}
        if defence.uses_ids:
            kwargs["client_ids"] = ids
        if defence.uses_probe:
            kwargs["global_params"] = g.astype(np.float32)
        try:
            step = agg.aggregate(updates, **kwargs)
        except InvalidInput:
            # fail closed: the aggregator refused the round (everyone excluded); the model
            # stays where it was, and the run counts it
            step = np.zeros_like(g, dtype=np.float32)
            skipped += 1
        g = g + cfg.server_lr * np.asarray(step, dtype=np.float64)
        acc = float(np.mean(model.predict(g.astype(np.float32), X_test) == y_test))
        accuracy.append(acc)
        if on_round is not None:
            on_round(r, acc)
    banned = [cid for cid in agg.reputation.all_scores() if agg.reputation.is_banned(cid)]
    return RunResult(cfg, accuracy, banned, time.perf_counter() - t0, skipped)
