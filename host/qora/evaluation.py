"""`qora eval`: attacks x defences x Byzantine fraction x heterogeneity x seeds.

Runs every combination of :class:`qora.sim.run.RunConfig` in parallel processes with a
progress bar, then writes

* ``results.csv``: one row per run (configuration, final accuracy, banned clients, seconds);
* ``curves.csv``: accuracy after every round of every run;
* ``summary.md``: mean final accuracy per defence and attack, and the worst case over the
  attacks per defence, Byzantine fraction and heterogeneity;
* ``curves_<attack>.png``: accuracy against rounds, one line per defence (the largest
  fraction, first heterogeneity);
* ``worst_case.png``: heatmap of worst-case accuracy per defence and Byzantine fraction.

``Grid.quick()`` is the ``--quick`` preset (digits, softmax regression, 10 clients, 15
rounds, the main attacks, every defence, 0 and 30 % Byzantine, IID and Dirichlet(1.0)).
"""

from __future__ import annotations

import csv
import itertools
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from qora.sim.defences import DEFENCES
from qora.sim.run import RunConfig, RunResult, simulate

MAIN_ATTACKS = ("none", "sign_flip", "scaling", "alie", "ipm_0.1", "ipm_2", "label_flip",
                "gaussian", "mimic")


@dataclass(frozen=True)
class Grid:
    attacks: Sequence[str] = MAIN_ATTACKS
    defences: Sequence[str] = tuple(DEFENCES)
    fractions: Sequence[float] = (0.0, 0.1, 0.2, 0.3)
    heterogeneity: Sequence[str] = ("iid", "dirichlet:1.0", "dirichlet:0.3")
    seeds: Sequence[int] = (0, 1, 2)
    base: RunConfig = field(default_factory=RunConfig)

    @staticmethod
    def quick() -> "Grid":
        return Grid(attacks=("none", "sign_flip", "alie", "ipm_0.1", "scaling", "label_flip"),
                    fractions=(0.0, 0.3), heterogeneity=("iid", "dirichlet:1.0"), seeds=(0,),
                    base=RunConfig(rounds=15))

    def configs(self) -> list[RunConfig]:
        out = []
        for attack, defence, frac, het, seed in itertools.product(
                self.attacks, self.defences, self.fractions, self.heterogeneity, self.seeds):
            if (frac == 0.0) != (attack == "none"):
                continue  # clean runs once per cell, attacks only with attackers
            partition, _, alpha = het.partition(":")
            out.append(replace(self.base, attack=attack, defence=defence, byzantine_fraction=frac,
                               partition=partition, alpha=float(alpha) if alpha else 1.0, seed=seed))
        return out


def _run(cfg: RunConfig) -> RunResult:
    return simulate(cfg)


def run_grid(grid: Grid, workers: int | None = None, progress: bool = True) -> list[RunResult]:
    """Every configuration of the grid, in parallel processes, in a stable order."""
    configs = grid.configs()
    workers = workers or max(1, min(os.cpu_count() or 1, len(configs)))
    results: dict[int, RunResult] = {}
    bar = None
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn(), TimeRemainingColumn())
    task = None
    if bar is not None:
        bar.start()
        task = bar.add_task(f"qora eval: {len(configs)} runs on {workers} workers", total=len(configs))
    try:
        if workers == 1:
            for i, cfg in enumerate(configs):
                results[i] = simulate(cfg)
                if bar is not None:
                    bar.advance(task)
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_run, cfg): i for i, cfg in enumerate(configs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    if bar is not None:
                        bar.advance(task)
    finally:
        if bar is not None:
            bar.stop()
    return [results[i] for i in range(len(configs))]


# ---- reporting -------------------------------------------------------------------------


def _key(r: RunResult) -> tuple:
    c = r.config
    return c.defence, c.attack, c.byzantine_fraction, c.heterogeneity


def summarise(results: Iterable[RunResult]) -> dict[tuple, float]:
    """Mean final accuracy over seeds per (defence, attack, fraction, heterogeneity)."""
    groups: dict[tuple, list[float]] = {}
    for r in results:
        groups.setdefault(_key(r), []).append(r.final_accuracy)
    return {k: float(np.mean(v)) for k, v in groups.items()}


def worst_case(summary: dict[tuple, float]) -> dict[tuple, tuple[float, str]]:
    """Per (defence, fraction, heterogeneity): the lowest accuracy over the attacks, and which."""
    out: dict[tuple, tuple[float, str]] = {}
    for (defence, attack, frac, het), acc in summary.items():
        k = (defence, frac, het)
        if k not in out or acc < out[k][0]:
            out[k] = (acc, attack)
    return out


def markdown(results: Sequence[RunResult]) -> str:
    summary = summarise(results)
    worst = worst_case(summary)
    lines = []
    hets = list(dict.fromkeys(r.config.heterogeneity for r in results))
    fracs = sorted({r.config.byzantine_fraction for r in results})
    defences = list(dict.fromkeys(r.config.defence for r in results))
    lines += ["### Worst case over the attacks (final test accuracy, mean over seeds)", ""]
    header = ["defence"] + [f"{het}, {int(round(fr * 100))} %" for het in hets for fr in fracs]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d in defences:
        cells = []
        for het in hets:
            for fr in fracs:
                v = worst.get((d, fr, het))
                cells.append("—" if v is None else (f"{v[0]:.3f}" if fr == 0 else f"{v[0]:.3f} ({v[1]})"))
        lines.append("| " + " | ".join([d] + cells) + " |")
    for het in hets:
        for fr in [f for f in fracs if f > 0]:
            attacks = list(dict.fromkeys(r.config.attack for r in results if r.config.byzantine_fraction == fr))
            lines += ["", f"### {het}, {int(round(fr * 100))} % Byzantine: final accuracy per attack", ""]
            lines += ["| defence | " + " | ".join(attacks) + " |", "|---|" + "---|" * len(attacks)]
            for d in defences:
                cells = [summary.get((d, a, fr, het)) for a in attacks]
                lines.append("| " + d + " | " + " | ".join("—" if c is None else f"{c:.3f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(results: Sequence[RunResult], grid: Grid, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with open(out / "results.csv", "w", newline="") as fh:
        rows = [r.row() for r in results]
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    written.append(out / "results.csv")
    with open(out / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["defence", "attack", "byzantine_fraction", "heterogeneity", "seed", "round", "accuracy"])
        for r in results:
            c = r.config
            for i, a in enumerate(r.accuracy):
                w.writerow([c.defence, c.attack, c.byzantine_fraction, c.heterogeneity, c.seed, i + 1, round(a, 4)])
    written.append(out / "curves.csv")
    (out / "summary.md").write_text(markdown(results))
    written.append(out / "summary.md")
    written += plot(results, out)
    return written


def plot(results: Sequence[RunResult], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    hets = list(dict.fromkeys(r.config.heterogeneity for r in results))
    het = hets[0]
    top = max(r.config.byzantine_fraction for r in results)
    defences = list(dict.fromkeys(r.config.defence for r in results))
    clean = {}
    for r in results:
        if r.config.attack == "none" and r.config.heterogeneity == het:
            clean.setdefault(r.config.defence, []).append(r.accuracy)
    attacks = list(dict.fromkeys(r.config.attack for r in results if r.config.attack != "none"))
    for attack in attacks:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for d in defences:
            curves = [r.accuracy for r in results if r.config.defence == d and r.config.attack == attack
                      and r.config.byzantine_fraction == top and r.config.heterogeneity == het]
            if curves:
                ax.plot(np.arange(1, len(curves[0]) + 1), np.mean(curves, axis=0), label=d)
        if "fedavg" in clean:
            ax.plot(np.arange(1, len(clean["fedavg"][0]) + 1), np.mean(clean["fedavg"], axis=0), "k--",
                    label="fedavg, no attack")
        ax.set(title=f"{attack}: {int(round(top * 100))} % Byzantine, {het}", xlabel="round",
               ylabel="test accuracy", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="lower right")
        fig.tight_layout()
        p = out / f"curves_{attack}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    summary = summarise(results)
    worst = worst_case(summary)
    fracs = sorted({r.config.byzantine_fraction for r in results})
    grid = np.array([[worst.get((d, fr, het), (np.nan, ""))[0] for fr in fracs] for d in defences])
    fig, ax = plt.subplots(figsize=(3.2 + 1.1 * len(fracs), 1.2 + 0.42 * len(defences)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(fracs)), [f"{int(round(f * 100))} %" for f in fracs])
    ax.set_yticks(range(len(defences)), defences)
    for i in range(len(defences)):
        for j in range(len(fracs)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center",
                        color="white" if grid[i, j] < 0.6 else "black", fontsize=8)
    ax.set(title=f"worst-case accuracy over attacks\n{het}", xlabel="Byzantine clients")
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    p = out / "worst_case.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths
