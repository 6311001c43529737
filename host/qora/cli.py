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


@main.command("provision")
@click.option("--fleet", required=True, help="Fleet id ([A-Za-z0-9_-], at most 64 characters).")
@click.option("--nodes", default=None, help="Comma-separated node ids, e.g. node-1,node-2.")
@click.option("--count", default=None, type=click.IntRange(1, 100000),
              help="Number of nodes: <prefix>1 .. <prefix>N.")
@click.option("--prefix", default="node-", show_default=True,
              help="Node id prefix used with --count.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory to write into.")
@click.option("--port", default=1883, type=click.IntRange(1, 65535), show_default=True,
              help="Listener port in the generated mosquitto.conf.")
@click.option("--force", is_flag=True,
              help="Replace every existing key (old nodes must be re-flashed).")
def provision_command(fleet, nodes, count, prefix, out, port, force) -> None:
    """Per-node keys and MQTT logins for a fleet, with Mosquitto password, ACL and config files.

    Run again on the same --out to add nodes: existing nodes keep their credentials.
    """
    from rich.console import Console
    from rich.table import Table

    from qora.provision import provision

    if (nodes is None) == (count is None):
        raise click.UsageError("give exactly one of --nodes and --count")
    ids = _names(nodes) if nodes is not None else tuple(f"{prefix}{i}" for i in range(1, count + 1))
    try:
        result = provision(fleet, ids, Path(out), force=force, port=port)
    except (QoraError, OSError) as e:
        click.echo(f"{type(e).__name__}: {e}", err=True)
        sys.exit(2)
    table = Table(title=f"fleet {result.fleet}: {len(result.added)} new, {len(result.kept)} kept")
    for column in ("file", "mode", "content"):
        table.add_column(column)
    node_rows = [(result.node_paths[n], f"node {n} ({'new' if n in result.added else 'kept'})")
                 for n in sorted(result.node_paths)]
    if len(node_rows) > 12:  # a big fleet: one summary row instead of a screenful
        first = min(result.node_paths)
        node_rows = [(result.node_paths[first], f"node {first} and {len(node_rows) - 1} more "
                                                f"beside it ({len(result.added)} new)")]
    n_keys = len(result.node_paths)
    rows = [(result.keys_path, f"aggregator secrets: {n_keys} node keys, MQTT login"),
            *node_rows,
            (result.passwd_path, "Mosquitto password file (PBKDF2-SHA512)"),
            (result.acl_path, "Mosquitto ACL"),
            (result.conf_path, "Mosquitto config snippet")]
    for path, what in rows:
        table.add_row(str(path), f"{path.stat().st_mode & 0o777:04o}", what)
    console = Console()
    console.print(table)
    console.print(f"start the broker:  {result.mosquitto_command}", soft_wrap=True)
    console.print("(started as root, Mosquitto reads the password and ACL files as user mosquitto: "
                  "see the comment in mosquitto.conf)", style="dim")


def _register_service_commands() -> None:
    from qora.cli_service import demo_command, gateway_command, serve_command, verify_command

    for command in (serve_command, verify_command, demo_command, gateway_command):
        main.add_command(command)


_register_service_commands()

if __name__ == "__main__":
    main()
