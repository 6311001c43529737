"""The `qora` command. Each subcommand only parses its options and calls the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qora.errors import QoraError


@click.group()
def main() -> None:
    """Qora Edge: Byzantine-robust federated learning for IoT fleets."""


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


@main.command("eval")
@click.option("--quick", is_flag=True, help="The small preset (finishes in about a minute or two).")
@click.option("--attacks", default=None, help="Comma-separated attack names (see qora.sim.attacks.ATTACKS).")
@click.option("--defences", default=None, help="Comma-separated defence names (see qora.sim.defences.DEFENCES).")
@click.option("--fractions", default=None, help="Byzantine fractions, e.g. 0,0.1,0.2,0.3.")
@click.option("--heterogeneity", default=None, help="e.g. iid,dirichlet:1.0,dirichlet:0.3,shards.")
@click.option("--seeds", default=None, type=int, help="Number of seeds (0..N-1).")
@click.option("--rounds", default=None, type=int, help="Federated rounds per run.")
@click.option("--clients", default=None, type=int, help="Clients per run.")
@click.option("--dataset", default=None, type=click.Choice(["digits", "sensors"]))
@click.option("--model", default=None, type=click.Choice(["softmax", "mlp"]))
@click.option("--workers", default=None, type=int, help="Parallel processes (default: all cores).")
@click.option("--out", default="eval-results", type=click.Path(file_okay=False), show_default=True)
def eval_command(quick, attacks, defences, fractions, heterogeneity, seeds, rounds, clients, dataset,
                 model, workers, out) -> None:
    """Attacks x defences x Byzantine fraction x heterogeneity x seeds on real data."""
    from dataclasses import replace

    from rich.console import Console
    from rich.markdown import Markdown

    from qora.evaluation import Grid, markdown, run_grid, write_outputs

    grid = Grid.quick() if quick else Grid()
    changes = {}
    if attacks:
        changes["attacks"] = _names(attacks)
    if defences:
        changes["defences"] = _names(defences)
    if fractions:
        changes["fractions"] = _floats(fractions)
    if heterogeneity:
        changes["heterogeneity"] = _names(heterogeneity)
    if seeds:
        changes["seeds"] = tuple(range(seeds))
    base = {k: v for k, v in (("rounds", rounds), ("n_clients", clients), ("dataset", dataset),
                              ("model", model)) if v is not None}
    if base:
        changes["base"] = replace(grid.base, **base)
    grid = replace(grid, **changes)
    try:
        results = run_grid(grid, workers=workers)
        paths = write_outputs(results, grid, Path(out))
    except QoraError as e:
        click.echo(f"{type(e).__name__}: {e}", err=True)
        sys.exit(2)
    console = Console()
    console.print(Markdown(markdown(results)))
    console.print("wrote " + ", ".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
