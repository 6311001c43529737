"""``qora serve``, ``qora verify`` and ``qora demo``: option parsing and rich output only."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from qora.errors import QoraError


def _fail(e: Exception) -> None:
    click.echo(f"{type(e).__name__}: {e}", err=True)
    sys.exit(2)


def _status_text(s) -> str:
    from qora.service.mqtt import rejects_line
    link = "[green]connected[/]" if s.connected else "[red]reconnecting[/]"
    return (f"{s.fleet} · {link} · round {s.round} · {s.complete}/{s.expected} updates complete "
            f"({s.chunks} chunks) · rejects: {rejects_line(s.rejects)} · deadline in {max(0, s.deadline_in):.0f} s "
            f"· {s.rounds_closed} rounds closed")


@click.command("serve")
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True,
              help="mqtt://[user:pass@]host:port (mqtts:// for TLS). Credentials default to keys.json's.")
@click.option("--fleet", required=True, help="Fleet name ([A-Za-z0-9_-]{1,64}).")
@click.option("--keys", "keys_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="keys.json written by `qora provision`.")
@click.option("--db", default=None, type=click.Path(dir_okay=False), help="SQLite store (default: FLEET.db).")
@click.option("--signing-key", default=None, type=click.Path(dir_okay=False),
              help="Ed25519 key file of the ledger (created, 0600, if missing; default: FLEET.ed25519).")
@click.option("--method", default="trimmed_mean", show_default=True)
@click.option("--trim-fraction", default=0.2, show_default=True, type=float)
@click.option("--mode", default="q16_16", show_default=True, type=click.Choice(["q16_16", "float32"]))
@click.option("--ban-threshold", default=0.2, show_default=True, type=float)
@click.option("--norm-bound", default=None, type=float)
@click.option("--quorum", default=3, show_default=True, type=int)
@click.option("--round-seconds", default=30.0, show_default=True, type=float)
@click.option("--chunk-elements", default=1024, show_default=True, type=int)
@click.option("--model", "model_kind", default="mlp", show_default=True, type=click.Choice(["softmax", "mlp"]),
              help="Initial model of a new store (digits-sized: 64 inputs, 10 classes).")
@click.option("--init", "init_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Initial model as a .npy file (float32; int32 Q16.16 accepted in q16_16 mode).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--rounds", default=None, type=int, help="Stop after closing this many rounds.")
@click.option("--metrics-port", default=None, type=int, help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option("--log-json", is_flag=True, help="Structured (JSON) logs on stderr instead of the status line.")
def serve_command(broker, fleet, keys_path, db, signing_key, method, trim_fraction, mode, ban_threshold,
                  norm_bound, quorum, round_seconds, chunk_elements, model_kind, init_path, seed, rounds,
                  metrics_port, log_json) -> None:
    """Run a fleet's aggregator beside an MQTT broker."""
    import dataclasses

    import numpy as np
    from rich.console import Console
    from rich.live import Live

    from qora import native
    from qora.mqtt_url import parse_broker_url
    from qora.provision import load_keys
    from qora.service import AggregatorService, FleetConfig, RoundEngine, Signer, Store
    from qora.service.metrics import Metrics
    from qora.sim.models import make_model

    logging.basicConfig(level=logging.INFO if log_json else logging.WARNING, format="%(message)s")
    try:
        keys = load_keys(keys_path, fleet=fleet)
        address = parse_broker_url(broker)
        if address.username is None:
            address = dataclasses.replace(address, username=keys.aggregator_username,
                                          password=keys.aggregator_password)
        sizes = (64, 32, 10) if model_kind == "mlp" else (64, 10)
        if init_path:
            init = np.load(init_path)
            if init.dtype == np.float32 and mode == "q16_16":
                init = native.to_q16(init.ravel())[0]
            init = init.ravel()
        else:
            init = np.asarray(make_model(model_kind, "float32", 64, 10).init_params(seed), np.float32)
            init = native.to_q16(init)[0] if mode == "q16_16" else init
        config = FleetConfig(fleet=fleet, method=method, trim_fraction=trim_fraction, mode=mode,
                             ban_threshold=ban_threshold, norm_bound=norm_bound, quorum=quorum,
                             round_seconds=round_seconds, chunk_elements=chunk_elements,
                             layout=sizes if not init_path else ())
        store = Store(db or f"{fleet}.db")
        signer = Signer.load_or_create(signing_key or f"{fleet}.ed25519")
        engine = RoundEngine(store, config, keys.nodes, signer, initial_model=init)
        metrics = None
        if metrics_port:
            metrics = Metrics(fleet)
            metrics.serve(metrics_port)
    except QoraError as e:
        _fail(e)
    console = Console(stderr=True)
    console.print(f"qora serve: fleet [bold]{fleet}[/] on {address.url}, store {store.path}, "
                  f"ledger key {signer.public_key.hex()}")
    if log_json:
        svc = AggregatorService(engine, address, metrics=metrics)
        svc.run(rounds=rounds)
        return
    with Live(console=console, refresh_per_second=4, transient=False) as live:
        svc = AggregatorService(engine, address, metrics=metrics,
                                on_status=lambda s: live.update(_status_text(s)))
        try:
            svc.run(rounds=rounds)
        except KeyboardInterrupt:
            pass
    store.close()


@click.command("verify")
@click.argument("db", type=click.Path(dir_okay=False, exists=True))
@click.option("--public-key", default=None, help="Pin the aggregator's Ed25519 public key (hex or a file).")
@click.option("--keys", "keys_path", default=None, type=click.Path(dir_okay=False, exists=True),
              help="keys.json: also re-check every stored update's HMAC tag.")
def verify_command(db, public_key, keys_path) -> None:
    """Re-check a fleet store's ledger and replay its rounds bit for bit."""
    from rich.console import Console
    from rich.table import Table

    from qora.provision import load_keys
    from qora.service import verify_store
    from qora.service.ledger import parse_public_key

    console = Console()
    try:
        pinned = parse_public_key(public_key) if public_key else None
        keys = load_keys(keys_path).nodes if keys_path else None
        report = verify_store(db, public_key=pinned, keys=keys)
    except QoraError as e:
        _fail(e)
    if report.ok:
        console.print(f"[green]ledger OK[/]: {report.rounds} rounds, chain head {report.head.hex()[:16]}…, "
                      f"{report.replayed_q16} Q16.16 rounds replayed bit for bit, "
                      f"{report.replayed_float} float32 rounds recomputed; public key {report.public_key.hex()}")
        return
    if report.rounds == 0 and not report.findings:
        console.print("[yellow]the ledger is empty: no round has closed yet[/]")
        sys.exit(1)
    table = Table("round", "field", "problem", title=f"{len(report.findings)} problems in {db}")
    for f in report.findings:
        table.add_row(str(f.round), f.field, f.problem)
    console.print(table)
    sys.exit(1)


@click.command("demo")
@click.option("--broker", default=None, help="Use this broker (e.g. mqtt://127.0.0.1:1883) instead of an "
              "embedded one.")
@click.option("--nodes", default=12, show_default=True, type=int)
@click.option("--byzantine", default=3, show_default=True, type=int)
@click.option("--attack", default="sign_flip", show_default=True, help="See qora.sim.attacks.ATTACKS.")
@click.option("--method", default="trimmed_mean", show_default=True, help="The defence's aggregation method.")
@click.option("--trim-fraction", default=0.25, show_default=True, type=float)
@click.option("--mode", default="q16_16", show_default=True, type=click.Choice(["q16_16", "float32"]))
@click.option("--model", default="mlp", show_default=True, type=click.Choice(["softmax", "mlp"]))
@click.option("--rounds", default=10, show_default=True, type=int)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--processes", default=2, show_default=True, type=int, help="Processes for honest nodes.")
@click.option("--out", default="demo-results", show_default=True, type=click.Path(file_okay=False))
def demo_command(broker, nodes, byzantine, attack, method, trim_fraction, mode, model, rounds, seed,
                 processes, out) -> None:
    """Federated rounds with attackers over real MQTT: the defence vs plain FedAvg."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from qora.demo import DemoConfig, run_demo

    console = Console()
    try:
        cfg = DemoConfig(broker=broker, nodes=nodes, byzantine=byzantine, attack=attack, method=method,
                         trim_fraction=trim_fraction, mode=mode, model=model, rounds=rounds, seed=seed,
                         processes=processes, out=Path(out))
    except QoraError as e:
        _fail(e)
    console.print(f"qora demo: {nodes} nodes ({byzantine} Byzantine, {attack}) on "
                  f"{broker or 'an embedded broker'}; {method} vs fedavg; {mode}; {rounds} rounds")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), console=console) as progress:
        tasks = {f: progress.add_task(f"{f:12s}", total=rounds, info="") for f in ("demo-robust", "demo-fedavg")}

        def on_round(fleet, r, acc):
            progress.update(tasks[fleet], advance=1, info=f"round {r}: accuracy {acc:.3f}")

        try:
            result = run_demo(cfg, on_round=on_round)
        except QoraError as e:
            _fail(e)
    _print_demo(console, result)


def _print_demo(console, result) -> None:
    from rich.table import Table

    robust, plain = result.runs
    t = Table(title="Test accuracy after each round (digits)")
    t.add_column("round", justify="right")
    t.add_column(f"{robust.method} + reputation", justify="right")
    t.add_column("fedavg", justify="right")
    t.add_column(f"excluded by {robust.method}")
    for i in range(max(len(robust.accuracy), len(plain.accuracy))):
        a = f"{robust.accuracy[i]:.3f}" if i < len(robust.accuracy) else ""
        b = f"{plain.accuracy[i]:.3f}" if i < len(plain.accuracy) else ""
        ex = robust.excluded[i] if i < len(robust.excluded) else {}
        t.add_row(str(i + 1), a, b, ", ".join(f"{n} ({r})" for n, r in sorted(ex.items())) or "-")
    console.print(t)
    rj = Table(title="Rejected messages (by reason)")
    rj.add_column("fleet")
    rj.add_column("rejects")
    for run in result.runs:
        rj.add_row(run.label, ", ".join(f"{k} {v}" for k, v in sorted(run.rejects.items())) or "none")
    console.print(rj)
    rep = Table(title=f"Reputation after the last round ({robust.label})")
    rep.add_column("node")
    rep.add_column("role")
    rep.add_column("score", justify="right")
    rep.add_column("status")
    for node in result.nodes:
        score = robust.scores.get(node)
        role = "[red]Byzantine[/]" if node in result.byzantine else "honest"
        status = "" if score is None else ("[red]banned[/]" if score < result.config.ban_threshold else "active")
        rep.add_row(node, role, "-" if score is None else f"{score:.2f}", status)
    console.print(rep)
    for run in result.runs:
        console.print(f"{run.label}: ledger {run.verified} ({run.seconds:.1f} s), store {result.config.out}/work/{run.fleet}.db")
    if result.plot:
        console.print(f"wrote {result.plot}")


@click.command("gateway")
@click.option("--port", "ports", multiple=True, required=True,
              help="A board's serial port: /dev/ttyUSB0, socket://127.0.0.1:5000 (QEMU, posix node), "
                   "rfc2217://… — repeat for several boards.")
@click.option("--broker", default="mqtt://127.0.0.1:1883", show_default=True)
@click.option("--credentials", default=None, type=click.Path(file_okay=False, exists=True),
              help="The nodes/ directory written by `qora provision`: each board logs in as its node.")
@click.option("--mesh", is_flag=True, help="Also forward the fleet's updates to the boards (mesh mode).")
@click.option("--baudrate", default=115200, show_default=True, type=int)
def gateway_command(ports, broker, credentials, mesh, baudrate) -> None:
    """Bridge boards on serial ports to the MQTT broker (docs/serial.md)."""
    import time

    from rich.console import Console
    from rich.live import Live

    from qora.gateway import Gateway
    from qora.mqtt_url import parse_broker_url

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        address = parse_broker_url(broker)
    except QoraError as e:
        _fail(e)
    console = Console(stderr=True)
    gw = Gateway(list(ports), address, credentials=credentials, mesh=mesh, baudrate=baudrate).start()

    def line() -> str:
        parts = []
        for link in gw.links:
            s, d = link.stats, link.stats.decoder
            who = f"{s.fleet}/{s.node}" if s.node else "no HELLO yet"
            parts.append(f"{s.port} [{who}] up {s.up} down {s.down} frames {d.frames_ok} "
                         f"crc errors {d.crc_errors} bad {d.cobs_errors + d.overflows} refused {s.refused}")
        return "\n".join(parts)

    try:
        with Live(line(), console=console, refresh_per_second=2) as live:
            while True:
                time.sleep(0.5)
                live.update(line())
    except KeyboardInterrupt:
        pass
    finally:
        gw.stop()
