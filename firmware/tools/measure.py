#!/usr/bin/env python3
"""Instructions the node's work costs on the emulated boards (docs/firmware.md, "Measurements").

    python firmware/tools/measure.py                 # every case, both targets (about 1 min, 2 cores)
    python firmware/tools/measure.py --quick         # one small case of each kind per target
    python firmware/tools/measure.py --only train --targets rv32 --json out.json
    python firmware/tools/measure.py --diff          # also the whole-image difference (below)
    python firmware/tools/measure.py --wire          # bytes on the wire per round (no QEMU)

Cases (all `-Os`, hard-float Cortex-M4 / rv32imc, built through shared_c/tests/targets):
  train   one epoch of qn_train (firmware/core/src/train.c) on the first 40 / 100 digits rows
          (qora.sim.data.load_digits(seed=0)), softmax (64, 10) and MLP (64, 32, 10), batch 8 / 32,
          lr 0.5, seed 2024: tests/firmware/train_target.c with the vectors test_train.py writes
          for its QEMU test; the run must print "train ok" (bit-exact with qora.reference.train).
  agg     one mesh aggregation as node.c calls it (dev_sq NULL, 32 KiB scratch):
          qora_trimmed_mean_q16 with k = 1, n = 4 and 8; qora_multi_krum_q16 with f = 1, m = 1,
          n = 5 (Krum needs n >= 2f + 3); d = 650 and 2410 parameters; rows are N(0, 0.01) deltas
          in Q16.16; the result must equal qora.reference.aggregate's (firmware/tools/measure_target.c).
  hash    qn_sha256 and qn_hmac_sha256 (32-byte key) of one 4 KiB chunk, checked against hashlib.
  wire    (--wire) bytes per round per node from the host's encoders (qora.protocol, the
          gateway's framing): fleet "fleet01", node "node-01" (7-character ids), round 12, model
          version 11, samples 100, 1024 elements per chunk, N(0, 0.01) Q16.16 deltas; MQTT
          payload and serial frames (COBS + CRC-32, with the 0x00 sent before every frame and the
          one that ends it).

Estimates (printed under the counts, never measured): STM32F446RE = Cortex-M4 count x 1.25
cycles per instruction / 180 MHz; ESP32-C3 = RV32 count x 1.2 / 160 MHz; ESP32 (Xtensa LX6,
no emulator here) = RV32 count x 1.0 / 240 MHz, a rough figure only.

How instructions are counted (the method of docs/fixed-point-training.md's training figures):
QEMU runs the image with `-singlestep -d exec,nochain`, so every executed guest instruction is a
translation block of its own and logs one "Trace" line ending in the symbol its pc falls in. The
count is the number of Trace lines from the first one in the measured function (qn_train,
qora_trimmed_mean_q16, ...) up to, not including, the next one back in `main`: every instruction
of that one call and its callees (the call instruction itself is main's and not counted). The
log goes through a pipe (`-D /dev/fd/N`), never to disk. `--diff` also gives, for the training
cases, the older whole-image figure: all Trace lines of the image with EPOCHS 1 minus those of
the same image with EPOCHS 0 (its predict pass then runs on other parameters, so it differs from
the call count, by up to 2 %). Counts depend on the data (the sign branches of the Q16.16
roundings): other initial parameters or learning rates move the MLP epoch by about 5 %.

Needs arm-none-eabi-gcc, riscv64-unknown-elf-gcc + picolibc headers, qemu-system-arm and
qemu-system-riscv32 (scripts/setup.sh) and the host package (host/ is put on sys.path).
Exits 1 if a build, a run or a result check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host"))

TARGETS_DIR = ROOT / "shared_c" / "tests" / "targets"
FW = ROOT / "firmware" / "core"
SHARED = ROOT / "shared_c"
TOOLS = Path(__file__).resolve().parent
TRAIN_TARGET = ROOT / "tests" / "firmware" / "train_target.c"
INCLUDES = [f"-I{FW / 'include'}", f"-I{SHARED / 'include'}"]
STRICT = ["-Wpedantic", "-Wconversion", "-Wshadow"]
TARGETS = {"cortex-m4": "Cortex-M4, QEMU mps2-an386", "rv32": "RV32IMC, QEMU virt"}
TRACE_FLAGS = ["-singlestep", "-d", "exec,nochain"]

I32_MIN = -(2**31)


@dataclass
class Case:
    kind: str                 # train | agg | hash
    name: str                 # e.g. "mlp m=100 b=32"
    func: str                 # the function whose one call is counted
    srcs: list[str]
    header: str               # the generated vectors header
    header_name: str
    ok_line: str              # the line the run must print
    params: dict = field(default_factory=dict)
    header0: str | None = None  # training: the same vectors with EPOCHS 0 (--diff)


# ---- cases --------------------------------------------------------------------------------------


def _i32(v: int) -> str:
    return "(-2147483647 - 1)" if v == I32_MIN else str(int(v))


def _arr(name: str, ctype: str, values, fmt=str) -> str:
    return f"static const {ctype} {name}[] = {{" + ",".join(fmt(v) for v in values) + "};\n"


_DIGITS = None


def _digits():
    global _DIGITS
    if _DIGITS is None:
        from qora.native import to_q16
        from qora.sim.data import load_digits
        d = load_digits(seed=0)
        _DIGITS = (to_q16(d.X_train)[0].astype("int64"), d.y_train.astype("int64"))
    return _DIGITS


def train_case(model: str, m: int, batch: int) -> Case:
    """tests/firmware/test_train.py's QEMU vectors (p0 = init_params(5), lr 0.5, seed 2024)."""
    from qora.reference import train as R
    from qora.sim.fixed import Q16Model
    sizes = (64, 10) if model == "softmax" else (64, 32, 10)
    X, y = (a[:m] for a in _digits())
    p0 = Q16Model(sizes).init_params(5)
    cfg = {"batch_size": batch, "lr_q": 32768, "seed": 2024}

    want = R.train_node_q16(p0.tolist(), sizes, X.tolist(), y.tolist(), epochs=1, **cfg)
    pred = [R.predict_q16(want, sizes, r) for r in X.tolist()]
    header = "".join([
        f"#define N_SIZES {len(sizes)}\n#define SIZES {{{','.join(map(str, sizes))}}}\n",
        f"#define SIZE_IN {sizes[0]}\n#define N_PARAMS {len(want)}\n#define M_ROWS {m}\n",
        f"#define EPOCHS 1\n#define BATCH {batch}\n",
        f"#define LR_Q {cfg['lr_q']}\n#define SEED {cfg['seed']}u\n",
        "#define ORDER_SEED 0u\n#define ORDER_M 300\n",
        _arr("X", "int32_t", X.ravel().tolist(), _i32), _arr("Y", "uint8_t", y.tolist()),
        _arr("P0", "int32_t", p0.tolist(), _i32), _arr("WANT", "int32_t", want, _i32),
        _arr("PRED_WANT", "uint8_t", pred),
        _arr("ORDER_WANT", "uint32_t", R.node_order(0, 300)),
    ])

    srcs = [str(FW / "src" / "train.c"), str(FW / "src" / "fixmath.c"),
            str(SHARED / "src" / "q16.c"), str(TRAIN_TARGET)]
    return Case("train", f"{model} {sizes} m={m} batch={batch}", "qn_train", srcs,
                header, "train_vectors.h", "train ok",
                {"model": model, "sizes": list(sizes), "rows": m, "batch": batch,
                 "n_params": R.n_params(sizes)})


def train_case_with_zero(case: Case) -> Case:
    """--diff: the same vectors with EPOCHS 0 (qn_train then changes nothing; the run reports
    "train FAIL", which is expected: only its instruction total is used)."""
    case.header0 = case.header.replace("#define EPOCHS 1\n", "#define EPOCHS 0\n")
    return case


def _agg_rows(n: int, d: int, seed: int):
    import numpy as np
    rng = np.random.default_rng(seed)
    return np.rint(rng.normal(0.0, 0.01, size=(n, d)) * 65536).astype("int64")


def agg_case(method: str, n: int, d: int) -> Case:
    from qora.reference import aggregate as A
    rows = _agg_rows(n, d, seed=1000 * n + d)
    k = 1
    if method == "trimmed_mean":
        res = A.trimmed_mean(rows.tolist(), d, k)
        op, func, what = "OP_TRIMMED_MEAN", "qora_trimmed_mean_q16", "trimmed_mean"
    else:
        res = A.krum(rows.tolist(), d, k)
        op, func, what = "OP_KRUM", "qora_multi_krum_q16", "krum"
    assert res["status"] == 0, res["status"]
    header = "".join([
        f"#define {op} 1\n#define N_ROWS {n}u\n#define D_COLS {d}u\n#define K_OR_F {k}u\n",
        _arr("X", "int32_t", rows.ravel().tolist(), _i32),
        _arr("WANT", "int32_t", res["out"], _i32),
    ])
    srcs = [str(TOOLS / "measure_target.c")] + sorted(str(p) for p in (SHARED / "src").glob("*.c"))
    label = f"trimmed mean k=1 n={n} d={d}" if method == "trimmed_mean" else \
        f"Krum f=1 n={n} d={d}"
    return Case("agg", label, func, srcs, header, "measure_vectors.h", f"{what} ok",
                {"method": method, "n": n, "d": d, "k_or_f": k})


def hash_case(kind: str, length: int) -> Case:
    msg = bytes((i * 131 + 7) & 0xFF for i in range(length))
    key = bytes(range(0x40, 0x60))
    if kind == "hmac":
        want = hmac.new(key, msg, hashlib.sha256).digest()
        op, func, what = "OP_HMAC", "qn_hmac_sha256", "hmac"
    else:
        want = hashlib.sha256(msg).digest()
        op, func, what = "OP_SHA256", "qn_sha256", "sha256"
    header = "".join([
        f"#define {op} 1\n#define MSG_LEN {length}u\n",
        _arr("MSG", "uint8_t", msg), _arr("KEY", "uint8_t", key), _arr("WANT", "uint8_t", want),
    ])
    srcs = [str(TOOLS / "measure_target.c"), str(FW / "src" / "sha256.c"),
            str(FW / "src" / "hmac.c")]
    label = f"HMAC-SHA256 {length} B (32 B key)" if kind == "hmac" else f"SHA-256 {length} B"
    return Case("hash", label, func, srcs, header, "measure_vectors.h", f"{what} ok",
                {"kind": kind, "bytes": length})


def all_cases(quick: bool, only: set[str]) -> list[Case]:
    cases: list[Case] = []
    if "train" in only:
        grid = [("softmax", 40, 8)] if quick else \
            [(mo, m, b) for mo in ("softmax", "mlp") for m in (40, 100) for b in (8, 32)]
        cases += [train_case(*g) for g in grid]
    if "agg" in only:
        grid = [("trimmed_mean", 4, 650)] if quick else \
            [("trimmed_mean", n, d) for d in (650, 2410) for n in (4, 8)] + \
            [("krum", 5, d) for d in (650, 2410)]
        cases += [agg_case(*g) for g in grid]
    if "hash" in only:
        grid = [("hmac", 4096)] if quick else [("sha256", 4096), ("hmac", 4096)]
        cases += [hash_case(*g) for g in grid]
    return cases


# ---- build and count ----------------------------------------------------------------------------


def make_cmd(target: str, case: Case, vec_dir: Path, elf: Path) -> list[str]:
    flags = " ".join([*INCLUDES, f"-I{vec_dir}", *STRICT])
    return ["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}", "WERROR=1", "OPT=-Os",
            f"SRCS={' '.join(case.srcs)}", f"CFLAGS_EXTRA={flags}", f"OUT={elf}"]


def build(target: str, case: Case, header: str, work: Path, tag: str) -> tuple[Path, list[str]]:
    vec_dir = work / f"{target}-{tag}"
    vec_dir.mkdir(parents=True, exist_ok=True)
    (vec_dir / case.header_name).write_text(header)
    elf = vec_dir / "measure.elf"
    cmd = make_cmd(target, case, vec_dir, elf)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"build failed ({target}, {case.name}):\n{proc.stdout}\n{proc.stderr}")
    return elf, cmd


def qemu_cmd(target: str, elf: Path) -> list[str]:
    proc = subprocess.run(["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}",
                           f"OUT={elf}", "qemu-cmd"], capture_output=True, text=True, check=True)
    return shlex.split(proc.stdout.strip())


def count_call(cmd: list[str], func: str, caller: str = "main",
               timeout: float = 600) -> tuple[int, int, str, int]:
    """Runs cmd (a QEMU command line) with the exec trace on a pipe. Returns (instructions of
    the first call of func, until back in caller; all instructions of the run; the program's
    stdout; QEMU's exit status). The call count is -1 if func never ran."""
    r, w = os.pipe()
    full = [*cmd[:-2], *TRACE_FLAGS, "-D", f"/dev/fd/{w}", *cmd[-2:]]
    out_f = tempfile.TemporaryFile()  # noqa: SIM115  (closed below, after QEMU exits)
    proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out_f,
                            stderr=subprocess.PIPE, pass_fds=(w,))
    os.close(w)
    start = b"] " + func.encode() + b"\n"
    back = b"] " + caller.encode() + b"\n"
    phase, n_call, n_all, rest = 0, 0, 0, b""
    t_end = time.monotonic() + timeout
    with os.fdopen(r, "rb", buffering=0) as log:
        while True:
            chunk = log.read(1 << 22)
            if not chunk:
                break
            if time.monotonic() > t_end:
                proc.kill()
                raise RuntimeError(f"timeout after {timeout} s: {shlex.join(full)}")
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            buf, rest = buf[:cut], buf[cut:]
            n_all += buf.count(b"Trace ")
            if phase == 0:
                i = buf.find(start)
                if i < 0:
                    continue
                buf = buf[buf.rfind(b"\n", 0, i) + 1:]
                phase = 1
            if phase == 1:
                j = buf.find(back)
                if j < 0:
                    n_call += buf.count(b"Trace ")
                else:
                    n_call += buf.count(b"Trace ", 0, buf.rfind(b"\n", 0, j) + 1)
                    phase = 2
    rc = proc.wait(timeout=60)
    err = proc.stderr.read().decode(errors="replace")
    out_f.seek(0)
    out = out_f.read().decode(errors="replace")
    out_f.close()
    if err.strip():
        out += "\n[stderr] " + err
    return (n_call if phase == 2 else -1), n_all, out, rc


def measure(target: str, case: Case, work: Path, diff: bool) -> dict:
    tag = case.name.replace(" ", "_").replace("(", "").replace(")", "").replace(",", "-")
    elf, build_cmd = build(target, case, case.header, work, tag)
    qcmd = qemu_cmd(target, elf)
    t0 = time.monotonic()
    n_call, n_all, out, rc = count_call(qcmd, case.func)
    secs = time.monotonic() - t0
    ok = rc == 0 and case.ok_line in out.splitlines() and n_call > 0
    res = {"target": target, "kind": case.kind, "case": case.name, "func": case.func,
           "instructions": n_call, "image_instructions": n_all, "ok": ok,
           "seconds": round(secs, 1), "params": case.params,
           "output": out.strip().splitlines()[:4], "build": shlex.join(build_cmd),
           "run": shlex.join([*qcmd[:-2], *TRACE_FLAGS, "-D", "<pipe>", *qcmd[-2:]])}
    if diff and case.header0 is not None:
        elf0, _ = build(target, case, case.header0, work, tag + "-epochs0")
        _, n_all0, _, _ = count_call(qemu_cmd(target, elf0), case.func)
        res["image_diff_epochs1_minus_0"] = n_all - n_all0
    return res


# ---- report -------------------------------------------------------------------------------------


def fmt_m(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1_000_000 else f"{n:,}"


def table(results: list[dict]) -> str:
    by = {}
    for r in results:
        by.setdefault((r["kind"], r["case"]), {})[r["target"]] = r
    tgts = [t for t in TARGETS if any(r["target"] == t for r in results)]
    lines = ["| kind | case | function | " + " | ".join(tgts) + " |",
             "|---|---|---|" + "---:|" * len(tgts)]
    for (kind, case), per in by.items():
        cells = []
        for t in tgts:
            r = per.get(t)
            if r is None:
                cells.append("")
                continue
            cell = f"{r['instructions']:,}" if r["ok"] else f"FAILED ({r['instructions']})"
            if "image_diff_epochs1_minus_0" in r:
                cell += f" (image diff {r['image_diff_epochs1_minus_0']:,})"
            cells.append(cell)
        func = next(iter(per.values()))["func"]
        lines.append(f"| {kind} | {case} | `{func}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


ESTIMATES = [  # (board, source target, cycles per instruction, MHz, note)
    ("STM32F446RE", "cortex-m4", 1.25, 180,
     "CPI 1.25: 5 flash wait states behind the ART accelerator"),
    ("ESP32-C3", "rv32", 1.2, 160, "CPI 1.2: code from the flash cache"),
    ("ESP32 (LX6)", "rv32", 1.0, 240,
     "rough: the RV32 count at 1 instruction per cycle; Xtensa is not emulated here"),
]


def estimate_table(results: list[dict]) -> str:
    by = {}
    for r in results:
        by.setdefault((r["kind"], r["case"]), {})[r["target"]] = r
    boards = [e for e in ESTIMATES if any(r["target"] == e[1] for r in results)]
    lines = ["Estimate, not measured (ms): " + "; ".join(f"{b}: {note}" for b, _, _, _, note in boards),
             "", "| kind | case | " + " | ".join(f"{b} {mhz} MHz" for b, _, _, mhz, _ in boards)
             + " |", "|---|---|" + "---:|" * len(boards)]
    for (kind, case), per in by.items():
        cells = []
        for _, tgt, cpi, mhz, _ in boards:
            r = per.get(tgt)
            cells.append(f"{r['instructions'] * cpi / (mhz * 1e3):.2f}" if r and r["ok"] else "")
        lines.append(f"| {kind} | {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wire_table() -> str:
    """Bytes per round per node, from the host's encoders (see the module docstring)."""
    import numpy as np
    from qora.gateway.framing import encode_frame, publish_content
    from qora.protocol import (
        RoundAnnouncement,
        cbor,
        make_model_chunks,
        make_update,
        model_topic,
        round_topic,
        update_topic,
    )

    fleet, node, rnd, version = "fleet01", "node-01", 12, 11

    def serial(frame_type: int, content: bytes) -> int:
        return 1 + len(encode_frame(frame_type, content))   # the 0x00 before, the frame, its 0x00

    rng = np.random.default_rng(0)
    lines = ["| model | message | direction | MQTT payload B | serial B |",
             "|---|---|---|---:|---:|"]
    for name, layout in (("softmax", (64, 10)), ("MLP", (64, 32, 10))):
        n = sum(a * b + b for a, b in itertools.pairwise(layout))
        delta = np.rint(rng.normal(0, 0.01, n) * 65536).astype(np.int32)
        ups = make_update(fleet, node, rnd, delta, 0, 100, 1024, bytes(32))
        models = [c.encode() for c in make_model_chunks(fleet, version, delta, "q16_16", 1024)]
        ann = RoundAnnouncement(fleet=fleet, round=rnd, version=version, digest=bytes(32),
                                deadline=1_760_000_000, method="trimmed_mean", mode="q16_16",
                                chunk_elements=1024, quorum=4, elements=n, layout=layout,
                                model_chunks=len(models)).encode()
        rows = [
            (f"update, {len(ups)} chunk(s)", "up", sum(map(len, ups)),
             sum(serial(2, publish_content(update_topic(fleet, node), m)) for m in ups)),
            (f"model, {len(models)} chunk(s)", "down", sum(map(len, models)),
             sum(serial(2, publish_content(model_topic(fleet, i), m)) for i, m in enumerate(models))),
            ("round announcement", "down", len(ann), serial(2, publish_content(round_topic(fleet), ann))),
        ]
        for msg, way, mq, se in rows:
            lines.append(f"| {name} ({n}) | {msg} | {way} | {mq:,} | {se:,} |")
    hello = cbor.dumps({0: 1, 2: fleet, 3: node, 25: "qnode/1"})   # qn_hello_encode's map
    logs = [("HELLO (boot, ASK_HELLO)", 1, hello),
            ("LOG `sent round 12`", 3, b"sent round 12"),
            ("LOG `boot node-01 last sent round 11`", 3, b"boot node-01 last sent round 11"),
            ("LOG `mesh round 12 digest <64 hex>`", 3, b"mesh round 12 digest " + b"ab" * 32)]
    for msg, t, content in logs:
        lines.append(f"| any | {msg} | up | (serial only) | {serial(t, content):,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one small case of each kind")
    ap.add_argument("--targets", default=",".join(TARGETS), help="cortex-m4,rv32")
    ap.add_argument("--only", default="train,agg,hash", help="train,agg,hash")
    ap.add_argument("--diff", action="store_true",
                    help="training: also the image with EPOCHS 1 minus the image with EPOCHS 0")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, help="write every result (with commands) here")
    ap.add_argument("--work", type=Path, help="keep the builds here (default: a temp dir)")
    ap.add_argument("--wire", action="store_true", help="print bytes on the wire per round, exit")
    args = ap.parse_args(argv)
    if args.wire:
        print(wire_table())
        return 0
    targets = [t for t in args.targets.split(",") if t]
    bad = set(targets) - set(TARGETS)
    if bad:
        ap.error(f"unknown target(s) {sorted(bad)}")
    only = set(args.only.split(","))
    cases = all_cases(args.quick, only)
    if args.diff:
        cases = [train_case_with_zero(c) if c.kind == "train" else c for c in cases]
    with tempfile.TemporaryDirectory(prefix="qora-measure-") as tmp:
        work = args.work or Path(tmp)
        jobs = [(t, c) for c in cases for t in targets]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
            results = list(ex.map(lambda tc: measure(tc[0], tc[1], work, args.diff), jobs))
    print(table(results))
    print()
    for t in targets:
        print(f"{t}: {TARGETS[t]}")
    print()
    print(estimate_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"FAILED {r['target']} {r['case']}: {r['output']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
