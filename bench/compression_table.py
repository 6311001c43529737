#!/usr/bin/env python3
"""Compression of real digits-MLP updates in a federated loop: ratio, error, accuracy, time.

For each compressor, a numpy-only FedAvg loop: scikit-learn's digits (X / 16), a stratified 75/25
train/test split, the training part split IID over 10 clients; the 64-32-10 MLP of
``qora.models`` (2,410 parameters); every round every client trains 1 epoch of minibatch SGD
(lr 0.1, batch 32) from the global model, ``delta = local - global`` is compressed by the
client's own compressor instance (with ``layout=model_layout(model)``: per layer), the server
decompresses each delta and adds their sample-weighted mean to the global model; 30 rounds.
Seeds 0, 1, 2 (split, initial model, client shuffles, compressor randomness); the table reports
the mean over seeds (accuracy also min-max).

Per compressor:

* ratio: float32 bytes of the delta (9,640) / ``Compressed.nbytes`` (payload + 16-byte header
  estimate), mean over all client updates;
* error sent: ``||x - C(x)|| / ||x||`` where x is what the compressor was given (the delta plus
  the error-feedback memory when there is one): the loss of one compression step;
* error vs delta: ``||delta - C(x)|| / ||delta||``: how far what the server got this round is from
  this round's true delta (equal to the above without error feedback);
* final test accuracy after 30 rounds, and its difference from no compression;
* codec time per update (compress + decompress) and wall time of the whole 30-round run.

Also accuracy after 100 rounds (first seed) for no compression and the PowerSGD rows, to
separate "trains slower" from "trains worse".

Then Flare's PowerSGD example, reproduced on our data: rank 4, 1 power iteration, one fresh
compressor on one client's first-round delta: the ratio and the error, per layer and with the
flat vector reshaped to a near-square matrix, next to the best any rank-4 method can do
(truncated SVD) and the rank an SVD would need for < 0.1 % error.

    python bench/compression_table.py                 # ~40 s, writes docs/compression.md
    python bench/compression_table.py --out /tmp/c.md --seeds 0

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata as md
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qora.compression import (
    Compressor,
    PowerSGD,
    compression_ratio,
    get_compressor,
    model_layout,
    relative_error,
)
from qora.models import MLP

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "compression.md"

N_CLIENTS = 10
ROUNDS = 30
LR = 0.1
BATCH = 32
EPOCHS = 1
LAYER_SIZES = (64, 32, 10)

# (label, registry name, constructor keywords)
CONFIGS: list[tuple[str, str, dict]] = [
    ("none", "none", {}),
    ("q16", "q16", {}),
    ("zstd", "zstd", {}),
    ("zstd+q16", "zstd+q16", {}),
    ("int8", "int8", {}),
    ("int8-stochastic", "int8-stochastic", {}),
    ("zstd+int8", "zstd+int8", {}),
    ("powersgd:1 EF", "powersgd:1", {"error_feedback": True}),
    ("powersgd:1 no EF", "powersgd:1", {"error_feedback": False}),
    ("powersgd:2 EF", "powersgd:2", {"error_feedback": True}),
    ("powersgd:2 no EF", "powersgd:2", {"error_feedback": False}),
    ("powersgd:4 EF", "powersgd:4", {"error_feedback": True}),
    ("powersgd:4 no EF", "powersgd:4", {"error_feedback": False}),
]
SEEDED = ("int8-stochastic", "powersgd")
LONG_ROUNDS = 100
LONG_CONFIGS = [c for c in CONFIGS if c[0] == "none" or c[1].startswith("powersgd")]  # compressors that take seed=


# ---- data and loop --------------------------------------------------------------------------------


def load_data(seed: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    order = np.random.default_rng(seed).permutation(len(ytr))
    parts = np.array_split(order, N_CLIENTS)
    clients = [(Xtr[p], ytr[p].astype(np.int64)) for p in parts]
    return clients, (Xte, yte.astype(np.int64))


def make_compressor(name: str, kw: dict, seed: int, client: int, layout) -> Compressor:
    kw = dict(kw)
    inner = name.split("+")[-1]
    if inner.startswith(SEEDED):
        kw["seed"] = 1000 * seed + client
    return get_compressor(name, layout=layout, **kw)


@dataclass
class RunResult:
    ratio: list[float] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)
    err_sent: list[float] = field(default_factory=list)
    err_delta: list[float] = field(default_factory=list)
    codec_s: float = 0.0
    n_updates: int = 0
    accuracy: float = 0.0
    wall_s: float = 0.0


def run(name: str, kw: dict, seed: int, rounds: int) -> RunResult:
    t0 = time.perf_counter()
    model = MLP(LAYER_SIZES)
    layout = model_layout(model)
    clients, (Xte, yte) = load_data(seed)
    weights = np.array([len(y) for _, y in clients], dtype=np.float64)
    weights /= weights.sum()
    comps = [make_compressor(name, kw, seed, i, layout) for i in range(N_CLIENTS)]
    g = model.init_params(seed)
    res = RunResult()
    for rnd in range(rounds):
        agg = np.zeros(model.n_params, dtype=np.float64)
        for i, ((X, y), comp) in enumerate(zip(clients, comps, strict=True)):
            local = model.train(g, X, y, epochs=EPOCHS, lr=LR, batch_size=BATCH,
                                seed=10_000 * seed + 100 * rnd + i)
            delta = local - g
            memory = _memory(comp)
            given = delta if memory is None else delta + memory
            tc = time.perf_counter()
            packed = comp.compress(delta)
            recon = comp.decompress(packed)
            res.codec_s += time.perf_counter() - tc
            res.n_updates += 1
            res.ratio.append(compression_ratio(delta.nbytes, packed))
            res.nbytes.append(packed.nbytes)
            res.err_sent.append(relative_error(given, recon))
            res.err_delta.append(relative_error(delta, recon))
            agg += weights[i] * recon
        g = (g + agg).astype(np.float32)
    res.accuracy = float(np.mean(model.predict(g, Xte) == yte))
    res.wall_s = time.perf_counter() - t0
    return res


def _memory(comp: Compressor) -> np.ndarray | None:
    inner = getattr(comp, "inner", comp)
    return inner.error_memory if isinstance(inner, PowerSGD) else None


# ---- Flare's example --------------------------------------------------------------------------------


def flare_example(seed: int = 0) -> dict:
    """PowerSGD(rank 4, 1 power iteration), one fresh instance, client 0's first-round delta."""
    model = MLP(LAYER_SIZES)
    clients, _ = load_data(seed)
    g = model.init_params(seed)
    X, y = clients[0]
    delta = model.train(g, X, y, epochs=EPOCHS, lr=LR, batch_size=BATCH, seed=10_000 * seed) - g
    out: dict = {"n_params": model.n_params, "delta_norm": float(np.linalg.norm(delta))}
    for label, kw in (("per layer", {"layout": model_layout(model)}), ("flat 50x49", {})):
        errs = []
        for s in range(20):  # the random Q matters at one iteration: spread over 20 seeds
            c = PowerSGD(rank=4, power_iterations=1, seed=s, **kw)
            packed = c.compress(delta)
            errs.append(relative_error(delta, c.decompress(packed)))
        out[label] = {
            "ratio": compression_ratio(delta.nbytes, packed),
            "ratio_no_header": delta.nbytes / len(packed.payload),
            "error_seed0": errs[0],
            "error_min": min(errs),
            "error_max": max(errs),
        }
    # the best any rank-r method can do per layer (Eckart-Young), and the rank for < 0.1 %
    mats = [W for W, _ in model.unflatten(delta)]
    svals = [np.linalg.svd(W.astype(np.float64), compute_uv=False) for W in mats]
    total = float(np.sum(delta.astype(np.float64) ** 2))

    def svd_err(r: int) -> float:
        return math.sqrt(sum(float(np.sum(s[r:] ** 2)) for s in svals) / total)

    out["svd_rank4_error"] = svd_err(4)
    need = next((r for r in range(1, 65) if svd_err(r) < 1e-3), None)
    out["svd_rank_for_0.1pct"] = need
    if need is not None:
        floats = sum(min(min(need, *W.shape) * sum(W.shape), W.size) for W in mats) + sum(
            b.size for _, b in model.unflatten(delta))  # a layer is sent raw when that is smaller
        out["svd_ratio_for_0.1pct"] = delta.nbytes / (4 * floats + 16)
    # why zstd gains on raw float32 deltas: exact zeros (inputs blank on this client, hidden
    # units no input activates), then trailing zero mantissa bits of local - global
    import zstandard

    cctx = zstandard.ZstdCompressor(level=3)

    def zr(a: np.ndarray) -> float:
        return a.nbytes / len(cctx.compress(a.tobytes()))

    W1 = model.unflatten(delta)[0][0]
    out["zero_fraction"] = float(np.mean(delta == 0))
    out["blank_inputs"] = int(np.sum(X.max(axis=0) == 0))
    out["dead_units"] = int(np.sum(np.all(W1 == 0, axis=1)))
    nz = delta[delta != 0]
    bits = nz.view(np.uint32).astype(np.int64) & 0x7FFFFF
    tz = np.where(bits == 0, 23, np.log2(np.maximum(bits & -bits, 1)).astype(np.int64))
    out["median_trailing_zero_bits"] = float(np.median(tz))
    out["zstd_ratio_delta"] = zr(delta)
    out["zstd_ratio_nonzero"] = zr(nz)
    noise = (np.random.default_rng(seed).normal(size=delta.size) * nz.std()).astype(np.float32)
    out["zstd_ratio_noise"] = zr(noise)
    noise[delta == 0] = 0
    out["zstd_ratio_noise_zeros"] = zr(noise)
    out["spectrum_W1_top8"] = [float(v) for v in svals[0][:8]]
    out["energy_top4_W1"] = float(np.sum(svals[0][:4] ** 2) / np.sum(svals[0] ** 2))
    return out


# ---- report ----------------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (uncommitted changes)" if dirty else " (clean)"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"

    def v(p: str) -> str:
        try:
            return md.version(p)
        except md.PackageNotFoundError:
            return "-"

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return [
        (f"- CPU: {cpu}, {os.cpu_count()} cores; load average {load[0]:.2f}/{load[1]:.2f}/"
        f"{load[2]:.2f} at the end of the run (single process, timings are indicative)"),
        (f"- Python {platform.python_version()}, numpy {v('numpy')}, scikit-learn {v('scikit-learn')}, "
        f"zstandard {v('zstandard')}"),
        f"- Qora Edge {v('qora-edge')}: commit {commit}",
    ]


def summarize(results: dict[str, list[RunResult]]) -> list[dict]:
    base = np.mean([r.accuracy for r in results["none"]])
    rows = []
    for label, runs in results.items():
        accs = [r.accuracy for r in runs]
        rows.append({
            "label": label,
            "ratio": float(np.mean([x for r in runs for x in r.ratio])),
            "bytes": float(np.mean([x for r in runs for x in r.nbytes])),
            "max_bytes": int(max(x for r in runs for x in r.nbytes)),
            "err_sent": float(np.mean([x for r in runs for x in r.err_sent])),
            "err_delta": float(np.mean([x for r in runs for x in r.err_delta])),
            "acc": float(np.mean(accs)),
            "acc_min": float(np.min(accs)),
            "acc_max": float(np.max(accs)),
            "acc_diff": float(np.mean(accs) - base),
            "codec_us": 1e6 * sum(r.codec_s for r in runs) / sum(r.n_updates for r in runs),
            "wall_s": float(np.mean([r.wall_s for r in runs])),
        })
    return rows


def fmt_err(e: float) -> str:
    return "0 (exact)" if e == 0 else (f"{100 * e:.3g} %")


def markdown(rows: list[dict], flare: dict, args, total_s: float,
             long_runs: dict[str, float]) -> str:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    seeds = ", ".join(map(str, args.seeds))
    lines = [
        "# Compressing model updates",
        "",
        (f"Generated by `bench/compression_table.py` on {when} in {total_s:.0f} s. Re-run it to "
        "refresh this file:"),
        "",
        "```",
        "python bench/compression_table.py",
        "```",
        "",
        ("`qora.compression` (API in the module docstring) turns a client's update "
        "ΔW = local − global into bytes and back: PowerSGD, int8 with a per-tensor scale "
        "(round to nearest or stochastic), Q16.16 packing, and zstd over any of them."),
        "",
        "## Use",
        "",
        "```python",
        "from qora.compression import get_compressor, model_layout, relative_error",
        "from qora.models import MLP",
        "",
        "model = MLP((64, 32, 10))",
        "client = get_compressor(\"powersgd:2\", layout=model_layout(model), seed=7)  # one per client",
        "server = get_compressor(\"powersgd:2\")           # decoding needs no state",
        "packed = client.compress(delta)                    # delta: flat float32 (2410,)",
        "packed.nbytes, len(packed.payload)                 # payload + 16-byte header estimate",
        "update = server.decompress(packed)                 # float32 (2410,)",
        "relative_error(delta, update)",
        "```",
        "",
        ("Names: `none`, `q16`, `int8`, `int8-stochastic`, `powersgd` / `powersgd:R`, `zstd` and "
        "`zstd+X` (e.g. `zstd+int8`); classes `NoCompression`, `Q16Packer`, `Int8Quantizer`, "
        "`PowerSGD(rank, power_iterations, error_feedback, warm_start, seed)`, `Zstd(inner, "
        "level)`. A list of layer arrays works too (list in, list out). PowerSGD and the "
        "stochastic quantizer keep state: one instance per client, kept across rounds."),
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Setup",
        "",
        (f"- Data: scikit-learn digits (1,797 8×8 images, X / 16), stratified 75/25 split; the "
        f"1,347 training images split IID over {N_CLIENTS} clients (~135 each)."),
        ("- Model: `qora.models.MLP((64, 32, 10))`, 2,410 parameters (9,640 bytes in float32): "
        "W1 32×64, b1, W2 10×32, b2."),
        (f"- Loop (numpy only): {args.rounds} rounds; each round every client trains {EPOCHS} "
        f"epoch of minibatch SGD (lr {LR}, batch {BATCH}) from the global model, compresses "
        "ΔW with its own compressor instance (`layout=model_layout(model)`: per layer), the "
        "server decompresses and adds the sample-weighted mean (FedAvg)."),
        (f"- Seeds {seeds}: split, initial model, client shuffles and compressor randomness; "
        "numbers are means over seeds and over all client updates "
        f"({N_CLIENTS} × {args.rounds} × {len(args.seeds)} = "
        f"{N_CLIENTS * args.rounds * len(args.seeds)} per compressor)."),
        "",
        "## Results",
        "",
        ("| compressor | ratio | bytes / update | error sent | error vs delta | "
        f"accuracy after {args.rounds} rounds (min–max) | vs none | codec µs / update | "
        "run wall s |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['label']} | {r['ratio']:.2f}× | {r['bytes']:.0f} | {fmt_err(r['err_sent'])} | "
            f"{fmt_err(r['err_delta'])} | {100 * r['acc']:.1f} % ({100 * r['acc_min']:.1f}–"
            f"{100 * r['acc_max']:.1f}) | {100 * r['acc_diff']:+.1f} pt | {r['codec_us']:.0f} | "
            f"{r['wall_s']:.2f} |"
        )
    f_l, f_f = flare["per layer"], flare["flat 50x49"]
    lines += [
        "",
        ("- **ratio**: 9,640 float32 bytes / `Compressed.nbytes`, which is the payload plus a "
        "16-byte header estimate (method, rank, length, CRC), so `none` is 0.998×. Layer shapes "
        "and the configured rank are known to both ends and not sent; int8 scales, PowerSGD "
        "factors and the uncompressed biases are in the payload."),
        ("- **error sent**: relative L2 error of one compression step, ‖x − C(x)‖ / ‖x‖, where x "
        "is what the compressor was given (ΔW plus the error-feedback memory, if any)."),
        ("- **error vs delta**: ‖ΔW − C(x)‖ / ‖ΔW‖, how far this round's decompressed update is "
        "from this round's true ΔW. Without error feedback the two are equal; with it the round's "
        "update is further from ΔW (it also pays back earlier residuals), but the running sum of "
        "what was sent stays within one bounded residual of the running sum of the true deltas."),
        ("- **accuracy**: test accuracy of the global model after the last round (450 held-out "
        "images), mean over seeds; `vs none` in percentage points."),
        ("- **codec µs**: compress + decompress of one update in Python/numpy on this machine; "
        "**run wall s**: the whole 30-round run including local training (which dominates)."),
        *_long_section(long_runs, args),
        "",
        "## Flare's PowerSGD claim, reproduced",
        "",
        ("Flare's README claims 11.77× at < 0.1 % error for `PowerSGDCompressor(rank=4, "
        "power_iterations=1)`; on its own example the ratio is 11.7× but the relative L2 error of "
        "ΔW is about 83 %. The same setting on our data, one "
        "fresh compressor (no warm start, no error feedback yet) on client 0's first-round delta "
        f"(seed 0, ‖ΔW‖ = {flare['delta_norm']:.3f}), errors over 20 random initial Q:"),
        "",
        ("| PowerSGD rank 4, 1 power iteration | ratio (with header) | ratio (payload only) | "
        "error (Q seed 0) | error range (20 Q seeds) |"),
        "|---|---:|---:|---:|---:|",
        (f"| per layer (W1, W2 as P, Q; biases raw) | {f_l['ratio']:.2f}× | "
        f"{f_l['ratio_no_header']:.2f}× | {fmt_err(f_l['error_seed0'])} | "
        f"{fmt_err(f_l['error_min'])} – {fmt_err(f_l['error_max'])} |"),
        (f"| flat vector as a 50×49 matrix | {f_f['ratio']:.2f}× | "
        f"{f_f['ratio_no_header']:.2f}× | {fmt_err(f_f['error_seed0'])} | "
        f"{fmt_err(f_f['error_min'])} – {fmt_err(f_f['error_max'])} |"),
        "",
        (f"- The best any rank-4 method can do on this delta (truncated SVD of W1 and W2, biases "
        f"exact) is {fmt_err(flare['svd_rank4_error'])} error; the top 4 singular values of W1 "
        f"hold {100 * flare['energy_top4_W1']:.1f} % of its energy (W1's top 8: "
        f"{', '.join(f'{v:.3f}' for v in flare['spectrum_W1_top8'])})."),
    ]
    need = flare["svd_rank_for_0.1pct"]
    if need is None:
        lines.append("- No rank below full reaches < 0.1 % error on this delta.")
    else:
        lines.append(
            f"- < 0.1 % error needs rank {need} even with an exact SVD, i.e. "
            f"{flare['svd_ratio_for_0.1pct']:.2f}× at best (factors where they are smaller than "
            "the matrix): at < 0.1 % error low rank gains nothing on this model."
        )
    lines += [
        ("- So the claim does not hold here either: rank 4 with one power iteration gives a "
        "ratio of a few × at an error of tens of percent per round. The ratio depends only on "
        "the shapes: rows·cols / (r·(rows + cols)) per matrix, so 11.7× at rank 4 takes square "
        "matrices of about 94×94 or larger (ours: W1 32×64 gives 5.3×, W2 10×32 1.9×); the "
        "error is what does not carry over. What makes PowerSGD usable is error feedback, not per-round accuracy: see the "
        "EF rows above, where the per-round error is large but the model still learns."),
        "",
        "## What to use for MQTT chunks of a few KiB",
        "",
        _chunk_table(rows),
        "",
        *_advice(rows, flare, long_runs, args.rounds, args.long_rounds),
        "",
    ]
    return "\n".join(lines)


def _long_section(long_runs: dict[str, float], args) -> list[str]:
    if not long_runs:
        return []
    base = long_runs["none"]
    out = [
        "",
        f"### Longer: {args.long_rounds} rounds (seed {args.seeds[0]})",
        "",
        (f"At {args.rounds} rounds the model is still learning, so the table above mostly shows "
        f"how much compression slows training. The same loop run for {args.long_rounds} rounds:"),
        "",
        f"| compressor | accuracy after {args.long_rounds} rounds | vs none |",
        "|---|---:|---:|",
    ]
    for label, acc in long_runs.items():
        out.append(f"| {label} | {100 * acc:.1f} % | {100 * (acc - base):+.1f} pt |")
    ef = [acc - base for label, acc in long_runs.items() if label.endswith(" EF")
          and "no EF" not in label]
    no_ef = [acc - base for label, acc in long_runs.items() if label.endswith("no EF")]
    ef_text = (f"{100 * ef[0]:+.1f} pt" if min(ef) == max(ef)
               else f"between {100 * min(ef):+.1f} and {100 * max(ef):+.1f} pt")
    out += ["", (f"With error feedback the PowerSGD rows end {ef_text} from no compression "
                 f"(one test image is {100 / 450:.2f} pt); without it between "
                 f"{100 * min(no_ef):+.1f} and {100 * max(no_ef):+.1f} pt (the residual is "
                 "dropped every round instead of being sent later).")]
    return out


def _chunk_table(rows: list[dict]) -> str:
    out = [("| compressor | mean bytes / update | max bytes | 1 KiB chunks | 2 KiB chunks | "
           "4 KiB chunks |"), "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        b = r["max_bytes"]
        out.append(f"| {r['label']} | {r['bytes']:.0f} | {b} | " + " | ".join(
            str(math.ceil(b / k)) for k in (1024, 2048, 4096)) + " |")
    out.append("")
    out.append("Chunk counts use the largest update seen (zstd output varies from update to "
               "update; the other codecs have a size fixed by the shapes).")
    return "\n".join(out)


def _advice(rows: list[dict], flare: dict, long_runs: dict[str, float], rounds: int,
            long_rounds: int) -> list[str]:
    by = {r["label"]: r for r in rows}

    def acc(label: str) -> str:
        return f"{100 * by[label]['acc']:.1f} %"

    def ratio(label: str) -> str:
        return f"{by[label]['ratio']:.1f}×"

    def kib(label: str) -> str:
        return f"{by[label]['max_bytes']:,} B"

    def err(label: str) -> str:
        return fmt_err(by[label]["err_sent"])

    gain = by["zstd+int8"]["ratio"] / by["int8"]["ratio"] - 1
    caught_up = ""
    if long_runs:
        gaps = [long_runs[k] - long_runs["none"] for k in long_runs if k.endswith(" EF")
                and "no EF" not in k]
        caught_up = (f" (after {long_rounds} rounds the EF rows are within "
                     f"{100 * max(abs(g) for g in gaps):.1f} pt of no compression)")
    return [
        (f"- **zstd+int8 (or int8)** is the default for this model size: {ratio('zstd+int8')} "
        f"({ratio('int8')} without zstd) at {err('int8')} error per update, accuracy "
        f"{acc('zstd+int8')} vs {acc('none')} uncompressed, no state between rounds. The largest "
        f"update is {kib('zstd+int8')} ({kib('int8')} without zstd): one 2 KiB chunk (int8 alone: "
        "one 4 KiB chunk). `int8-stochastic` is unbiased (its rounding error averages out over "
        f"clients and rounds) but has a larger error per update ({err('int8-stochastic')}); on "
        "this task both give the same accuracy."),
        (f"- **PowerSGD** only when an update must fit in about 1 KiB: rank 1 with error feedback "
        f"is {kib('powersgd:1 EF')} ({ratio('powersgd:1 EF')}) at {acc('powersgd:1 EF')}, rank 2 "
        f"{kib('powersgd:2 EF')} ({ratio('powersgd:2 EF')}) at {acc('powersgd:2 EF')}, rank 4 "
        f"{kib('powersgd:4 EF')} ({ratio('powersgd:4 EF')}, about int8's size) at "
        f"{acc('powersgd:4 EF')} after {rounds} rounds: it trains slower{caught_up}. Never "
        f"without error feedback: rank 1 / 2 / 4 then end at {acc('powersgd:1 no EF')} / "
        f"{acc('powersgd:2 no EF')} / {acc('powersgd:4 no EF')}. "
        "It needs one instance per client kept across rounds (EF memory, warm-start Q; a node that "
        "reboots loses its residual), and `layout=model_layout(model)` so each weight matrix is "
        "factored on its own. On a 2.4 k-parameter model the biases, the header and the thin W2 "
        "(10×32) cap the ratio; low rank pays off on large square-ish matrices."),
        (f"- **q16** sends exactly the Q16.16 values the fixed-point firmware computes "
        f"({ratio('q16')}: no saving, {err('q16')} error against float32, i.e. the Q16.16 grid of "
        f"1.5e-5 relative to small deltas); `zstd+q16` ({ratio('zstd+q16')}, "
        f"{kib('zstd+q16')} max) removes the redundant high bytes of small values. Use it when the "
        "server aggregates in Q16.16 and must see the node's exact integers."),
        (f"- **zstd** alone is lossless and gives {ratio('zstd')} on float32 deltas, mostly from "
        f"exact zeros: in the first-round delta above {100 * flare['zero_fraction']:.0f} % of the "
        f"entries are exactly 0, mostly in W1: the columns of the {flare['blank_inputs']} pixels "
        f"blank in all of client 0's images, the rows of the {flare['dead_units']} hidden units "
        "none of its images activates (ReLU), and pixel-unit pairs never active together. "
        f"zstd gives {flare['zstd_ratio_delta']:.2f}× on that delta, "
        f"{flare['zstd_ratio_noise_zeros']:.2f}× on Gaussian noise with the same zeros, "
        f"{flare['zstd_ratio_nonzero']:.2f}× on its non-zero entries alone (a difference of two "
        f"larger float32 numbers: median {flare['median_trailing_zero_bits']:.0f} trailing zero "
        f"mantissa bits) and {flare['zstd_ratio_noise']:.2f}× on Gaussian noise. Over int8 it "
        f"adds {100 * gain:.0f} %. It costs a few hundred µs per update on the host; on a "
        "microcontroller, check zstd's memory needs (window size) before using it there."),
        ("- Byte counts include the 16-byte header estimate; MQTT adds its own fixed header and "
        "topic per chunk, which favours fewer, fuller chunks."),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown output file")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=ROUNDS)
    ap.add_argument("--long-rounds", type=int, default=LONG_ROUNDS,
                    help="also run the PowerSGD rows this long on the first seed (0: skip)")
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console()
    t0 = time.perf_counter()
    load_data(args.seeds[0])  # warm-up: imports and the dataset load stay out of the timings
    results: dict[str, list[RunResult]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as prog:
        task = prog.add_task("runs", total=len(CONFIGS) * len(args.seeds))
        for label, name, kw in CONFIGS:
            for seed in args.seeds:
                prog.update(task, description=f"{label} seed {seed}")
                results.setdefault(label, []).append(run(name, kw, seed, args.rounds))
                prog.advance(task)
        long_runs: dict[str, float] = {}
        if args.long_rounds:
            task2 = prog.add_task("long", total=len(LONG_CONFIGS))
            for label, name, kw in LONG_CONFIGS:
                prog.update(task2, description=f"{label}, {args.long_rounds} rounds")
                long_runs[label] = run(name, kw, args.seeds[0], args.long_rounds).accuracy
                prog.advance(task2)
    flare = flare_example(0)
    total = time.perf_counter() - t0

    rows = summarize(results)
    table = Table(title=f"digits MLP, {N_CLIENTS} clients, {args.rounds} rounds, seeds {args.seeds}")
    for col in ("compressor", "ratio", "bytes", "error sent", "error vs delta", "accuracy",
                "vs none", "codec µs", "wall s"):
        table.add_column(col, justify="left" if col == "compressor" else "right")
    for r in rows:
        table.add_row(r["label"], f"{r['ratio']:.2f}×", f"{r['bytes']:.0f}",
                      fmt_err(r["err_sent"]), fmt_err(r["err_delta"]),
                      f"{100 * r['acc']:.1f} %", f"{100 * r['acc_diff']:+.1f}",
                      f"{r['codec_us']:.0f}", f"{r['wall_s']:.2f}")
    console.print(table)
    ft = Table(title="Flare's example: PowerSGD rank 4, 1 power iteration, one first-round delta")
    for col in ("layout", "ratio", "error (seed 0)", "error range (20 seeds)"):
        ft.add_column(col)
    for key in ("per layer", "flat 50x49"):
        f = flare[key]
        ft.add_row(key, f"{f['ratio']:.2f}×", fmt_err(f["error_seed0"]),
                   f"{fmt_err(f['error_min'])} – {fmt_err(f['error_max'])}")
    console.print(ft)
    console.print(f"best rank-4 error (SVD): {fmt_err(flare['svd_rank4_error'])}; rank for "
                  f"< 0.1 % error: {flare['svd_rank_for_0.1pct']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(rows, flare, args, total, long_runs))
    console.print(f"wrote {args.out} ({total:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
