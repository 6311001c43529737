"""Robust aggregation under attack, with the native core in both numeric modes.

Twenty clients send a model update; four of them are Byzantine (two flip the sign and
scale by 10, two send large random noise). Each aggregator's distance to the honest
mean shows what it buys. Run:  python examples/native_aggregation.py
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from qora import native

N_CLIENTS, N_BYZANTINE, DIM = 20, 4, 2_380  # 2,380 parameters: the 64-32-10 MLP nodes train


def make_updates(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true_step = rng.normal(0.0, 0.05, DIM).astype(np.float32)
    honest = true_step + rng.normal(0.0, 0.02, (N_CLIENTS - N_BYZANTINE, DIM)).astype(np.float32)
    sign_flip = np.repeat(-10.0 * honest.mean(axis=0, keepdims=True), 2, axis=0)
    noise = rng.normal(0.0, 5.0, (2, DIM)).astype(np.float32)
    return np.vstack([honest, sign_flip, noise]).astype(np.float32), honest.mean(axis=0)


def main() -> None:
    updates, honest_mean = make_updates()
    f = N_BYZANTINE
    k = N_BYZANTINE
    runs = {
        "fedavg": lambda mode: native.fedavg(updates, mode=mode),
        "trimmed_mean": lambda mode: native.trimmed_mean(updates, k, mode=mode),
        "median": lambda mode: native.median(updates, mode=mode),
        "krum": lambda mode: native.krum(updates, f, mode=mode),
        "multi_krum (m=5)": lambda mode: native.multi_krum(updates, f, 5, mode=mode),
    }
    table = Table(title=f"{N_CLIENTS} clients, {N_BYZANTINE} Byzantine, d = {DIM}")
    table.add_column("method")
    for mode in ("float32", "q16_16"):
        table.add_column(f"error vs honest mean ({mode})", justify="right")
    table.add_column("clients kept by Krum", justify="left")
    for name, run in runs.items():
        errs, kept = [], ""
        for mode in ("float32", "q16_16"):
            result = run(mode)
            errs.append(f"{np.linalg.norm(result.value - honest_mean):.4f}")
            if result.selected is not None:
                kept = ", ".join(str(int(i)) for i in result.selected)
        table.add_row(name, *errs, kept)
    Console().print(table)
    print("Byzantine clients are 16-19; a robust method keeps its error near the honest spread.")


if __name__ == "__main__":
    main()
