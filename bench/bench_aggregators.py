#!/usr/bin/env python3
"""Aggregation speed of the Qora Edge native core against its peers, measured in one run.

Times fedavg / trimmed_mean / median / krum on (n, d) = (10, 1e5), (100, 1e5), (100, 1e6) with
f = 0.2n (trimmed mean drops k = f values each side; Krum tolerates f), in float32 and Q16.16, and,
in the same process and on the same data, the peers:

* numpy: np.mean, sort-based trimmed mean and median (np.sort along the client axis), np.median,
  and a blocked float64 brute-force exact Krum (differences, never |a|^2 + |b|^2 - 2ab);
* Flower 1.41: legacy ``flwr.server.strategy.aggregate`` (aggregate, aggregate_trimmed_avg,
  aggregate_median, aggregate_krum) and the new-API kernels in ``flwr.serverapp.strategy``
  (strategy_utils.aggregate_arrayrecords, fedtrimmedavg.trim_mean, multikrum.select_multikrum);
* ByzFL: Average / TrMean / Median / Krum, given a numpy array and given a torch tensor;
* qora-fl (PyPI): ByzantineAggregator, run in a child process because its import name is also
  ``qora`` (see bench/setup_venv.sh).

Each cell: one warm-up run, then the median of R runs (R = 7, or 3 for n*d >= 1e8, or 1 when the
warm-up took more than 2 s) timed with time.perf_counter; a cell whose run exceeds 20 s is skipped.
Also records whether each Krum picks the client that float64 brute force picks, on the benchmark
data and on Flower's new-API Krum failure case, and writes everything to docs/benchmarks.md.

    bash bench/setup_venv.sh                                   # once: /work/bench-venv
    /work/bench-venv/bin/python bench/bench_aggregators.py     # full run, ~5 min
    /work/bench-venv/bin/python bench/bench_aggregators.py --quick --out /tmp/b.md

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
DEFAULT_QORA_FL_PATH = Path("/work/bench-venv/qora-fl")

SHAPES_FULL = [(10, 100_000), (100, 100_000), (100, 1_000_000)]
SHAPES_QUICK = SHAPES_FULL[:2]
METHODS = ("fedavg", "trimmed_mean", "median", "krum")
SEED = 20261122
SKIP_S = 20.0  # a peer cell whose single run exceeds this is skipped
SLOW_S = 2.0  # a cell whose warm-up exceeds this is timed once
KRUM_CASE = {"n": 20, "d": 1_000_000, "f": 4, "noise": 1e-3}  # Flower new-API Krum failure case

QORA_COLS = ("qora f32", "qora f32 1 thread", "qora Q16.16")


# ---- data and references (shared by the main process and the qora-fl worker) -----------------


def f_for(n: int) -> int:
    return round(0.2 * n)


def reps_for(n: int, d: int) -> int:
    return 3 if n * d >= 100_000_000 else 7


def make_data(n: int, d: int) -> np.ndarray:
    """Benchmark updates: i.i.d. N(0, 1) float32, the same for every process of a run."""
    return np.random.default_rng([SEED, n, d]).standard_normal((n, d), dtype=np.float32)


def make_krum_case() -> np.ndarray:
    """20 clients = one shared unit-variance vector + 1e-3 noise each, d = 1e6."""
    rng = np.random.default_rng([SEED, 7])
    n, d = KRUM_CASE["n"], KRUM_CASE["d"]
    base = rng.standard_normal(d, dtype=np.float32)
    noise = rng.standard_normal((n, d), dtype=np.float32) * np.float32(KRUM_CASE["noise"])
    return base[None, :] + noise


def coordinate_refs(x: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """float64 references for the coordinate-wise methods (sorted copy freed on return)."""
    n = x.shape[0]
    s = np.sort(x, axis=0)
    mid = s[(n - 1) // 2].astype(np.float64)
    if n % 2 == 0:
        mid = (mid + s[n // 2]) / 2
    refs = {
        "fedavg": x.mean(axis=0, dtype=np.float64),
        "trimmed_mean": s[k:n - k].mean(axis=0, dtype=np.float64),
        "median": mid,
    }
    del s
    return refs


def sqdist_f64(x: np.ndarray, cols: int = 2048) -> np.ndarray:
    """Exact-as-float64 pair squared distances from differences, in column blocks of n x cols."""
    n, d = x.shape
    dist = np.zeros((n, n))
    for c0 in range(0, d, cols):
        blk = x[:, c0:c0 + cols].astype(np.float64)
        buf = np.empty_like(blk)
        for i in range(n - 1):
            diff = np.subtract(blk[i + 1:], blk[i], out=buf[i + 1:])
            dist[i, i + 1:] += np.einsum("ij,ij->i", diff, diff)
    return dist + dist.T


def krum_scores(dist: np.ndarray, neighbours: int) -> np.ndarray:
    """Sum of each client's `neighbours` smallest squared distances to the others."""
    off = dist.astype(np.float64, copy=True)
    np.fill_diagonal(off, np.inf)
    return np.sort(off, axis=1)[:, :neighbours].sum(axis=1)


def krum_pick(dist: np.ndarray, f: int, neighbours: int | None = None) -> int:
    n = dist.shape[0]
    return int(np.argmin(krum_scores(dist, n - f - 2 if neighbours is None else neighbours)))


def row_index(x: np.ndarray, v: np.ndarray) -> int:
    """Which client a Krum result vector is (-1 if none matches exactly)."""
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    hits = np.flatnonzero((x == v[None, :]).all(axis=1))
    return int(hits[0]) if hits.size else -1


# ---- timing ----------------------------------------------------------------------------


@dataclass
class Cell:
    ms: float | None = None  # median of the timed runs
    reps: int = 0
    note: str = ""  # "skip", "error: ...", "n/a: ..."
    dev: float | None = None  # max |result - float64 reference| (coordinate-wise)
    pick: int | None = None  # Krum: chosen client


@dataclass
class Job:
    run: Callable[[], object]
    vec: Callable[[object], np.ndarray] | None = None  # result -> aggregate vector
    pick: Callable[[object], int] | None = None  # result -> chosen client (Krum)


def measure(job: Job, reps: int, ref: np.ndarray | None) -> Cell:
    try:
        t0 = time.perf_counter()
        out = job.run()
        warm = time.perf_counter() - t0
        if warm > SKIP_S:
            return Cell(note=f"skip: one run took {warm:.1f} s")
        r = 1 if warm > SLOW_S else reps
        times = []
        for _ in range(r):
            out = None  # free the previous result before the next run
            t0 = time.perf_counter()
            out = job.run()
            t = time.perf_counter() - t0
            times.append(t)
            if t > SKIP_S:
                return Cell(note=f"skip: one run took {t:.1f} s")
        cell = Cell(ms=statistics.median(times) * 1e3, reps=r)
        if job.pick is not None:
            cell.pick = job.pick(out)
        elif job.vec is not None and ref is not None:
            v = np.asarray(job.vec(out), dtype=np.float64).reshape(-1)
            cell.dev = float(np.max(np.abs(v - ref)))
        return cell
    except Exception as e:  # a peer failing is a result, not a crash of the bench
        msg = " ".join(str(e).split())[:120]
        return Cell(note=f"error: {type(e).__name__}: {msg}")


# ---- the contenders ----------------------------------------------------------------------


class Peer:
    """A column: builds a Job per method for given data (preparation is not timed)."""

    name = ""
    methods: tuple[str, ...] = METHODS
    note = ""  # install / import outcome
    available = True

    def jobs(self, x: np.ndarray, xq: np.ndarray, f: int) -> dict[str, Job]:
        raise NotImplementedError


class Qora(Peer):
    def __init__(self, name: str, mode: str, threads: int | None):
        try:
            from qora import native
        except ImportError as e:
            raise SystemExit(f"cannot import qora.native ({e}): install this repo "
                             "(pip install -e .) and keep qora-fl out of site-packages "
                             "(see bench/setup_venv.sh)") from e

        self.native, self.name, self.mode, self.threads = native, name, mode, threads

    def jobs(self, x, xq, f):
        nt, data = self.native, (xq if self.mode == "q16_16" else x)
        kw = {"mode": self.mode, "threads": self.threads}
        # The peers return only the aggregate; Qora Edge also returns every client's
        # distance from it unless deviation=False, so time like for like.
        bare = {**kw, "deviation": False}
        vec = lambda r: r.value
        return {
            "fedavg": Job(lambda: nt.fedavg(data, **bare), vec),
            "trimmed_mean": Job(lambda: nt.trimmed_mean(data, f, **bare), vec),
            "median": Job(lambda: nt.median(data, **bare), vec),
            "krum": Job(lambda: nt.krum(data, f, **kw), pick=lambda r: int(r.selected[0])),
        }


class Numpy(Peer):
    name = "numpy"

    def jobs(self, x, xq, f):
        n = x.shape[0]

        def trimmed():
            return np.sort(x, axis=0)[f:n - f].mean(axis=0)

        def median():
            s = np.sort(x, axis=0)
            return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / np.float32(2)

        return {
            "fedavg": Job(lambda: np.mean(x, axis=0), lambda v: v),
            "trimmed_mean": Job(trimmed, lambda v: v),
            "median": Job(median, lambda v: v),
            "krum": Job(lambda: krum_pick(sqdist_f64(x), f), pick=lambda i: i),
        }


class NumpyMedian(Peer):
    name = "np.median"
    methods = ("median",)

    def jobs(self, x, xq, f):
        return {"median": Job(lambda: np.median(x, axis=0), lambda v: v)}


class FlowerLegacy(Peer):
    name = "Flower legacy"

    def __init__(self):
        from flwr.server.strategy import aggregate as agg

        self.agg = agg

    def jobs(self, x, xq, f):
        a, n = self.agg, x.shape[0]
        results = [([x[i]], 1) for i in range(n)]  # one layer per client, num_examples = 1
        cut = f / n

        def krum():
            out = a.aggregate_krum(results, num_malicious=f, to_keep=0)
            return next(i for i, (w, _) in enumerate(results) if w is out)

        return {
            "fedavg": Job(lambda: a.aggregate(results), lambda r: r[0]),
            "trimmed_mean": Job(lambda: a.aggregate_trimmed_avg(results, cut), lambda r: r[0]),
            "median": Job(lambda: a.aggregate_median(results), lambda r: r[0]),
            "krum": Job(krum, pick=lambda i: i),
        }


class FlowerNew(Peer):
    name = "Flower new API"
    methods = ("fedavg", "trimmed_mean", "krum")  # FedMedian has no plain kernel (np.median inline)

    def __init__(self):
        from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
        from flwr.serverapp.strategy.fedtrimmedavg import trim_mean
        from flwr.serverapp.strategy.multikrum import compute_distances, select_multikrum
        from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

        self.Array, self.ArrayRecord, self.MetricRecord, self.RecordDict = (
            Array, ArrayRecord, MetricRecord, RecordDict)
        self.trim_mean, self.select_multikrum = trim_mean, select_multikrum
        self.compute_distances = compute_distances
        self.aggregate_arrayrecords = aggregate_arrayrecords

    def contents(self, x: np.ndarray) -> list:
        """Replies' contents as a ServerApp sees them: ArrayRecord + MetricRecord num-examples."""
        return [
            self.RecordDict({
                "arrays": self.ArrayRecord({"w": self.Array(np.ascontiguousarray(x[i]))}),
                "metrics": self.MetricRecord({"num-examples": 1}),
            })
            for i in range(x.shape[0])
        ]

    def jobs(self, x, xq, f):
        n = x.shape[0]
        contents = self.contents(x)

        def krum():
            sel = self.select_multikrum(contents, num_malicious_nodes=f, num_nodes_to_select=1)
            return next(i for i, c in enumerate(contents) if c is sel[0])

        return {
            "fedavg": Job(lambda: self.aggregate_arrayrecords(contents, "num-examples"),
                          lambda r: r["w"].numpy()),
            "trimmed_mean": Job(lambda: self.trim_mean(x, f / n), lambda v: v),
            "krum": Job(krum, pick=lambda i: i),
        }


def import_byzfl() -> tuple[types.ModuleType, str]:
    """byzfl.aggregators; if `import byzfl` fails (its package __init__ imports its benchmark,
    which imports torchvision), load the aggregators under a bare parent package instead."""
    spec = importlib.util.find_spec("byzfl")
    if spec is None:
        raise ImportError("byzfl is not installed")
    try:
        import byzfl  # noqa: F401

        return importlib.import_module("byzfl.aggregators"), "import byzfl"
    except Exception as e:
        why = f"{type(e).__name__}: {' '.join(str(e).split())[:100]}"
        for name in [m for m in sys.modules if m == "byzfl" or m.startswith("byzfl.")]:
            del sys.modules[name]
        pkg = types.ModuleType("byzfl")
        pkg.__path__ = list(spec.submodule_search_locations or [])
        pkg.__spec__ = spec
        sys.modules["byzfl"] = pkg
        return importlib.import_module("byzfl.aggregators"), (
            f"`import byzfl` fails ({why}); byzfl.aggregators loaded without byzfl/__init__.py")


class ByzFL(Peer):
    def __init__(self, agg: types.ModuleType, torch_input: bool):
        self.agg, self.torch_input = agg, torch_input
        self.name = "ByzFL torch" if torch_input else "ByzFL numpy"

    def jobs(self, x, xq, f):
        a = self.agg
        if self.torch_input:
            import torch

            data = torch.from_numpy(x)  # zero copy; what ByzFL's own framework passes
            vec = lambda t: t.numpy()
        else:
            data, vec = x, (lambda v: v)
        avg, tr, med, kr = a.Average(), a.TrMean(f=f), a.Median(), a.Krum(f=f)
        return {
            "fedavg": Job(lambda: avg(data), vec),
            "trimmed_mean": Job(lambda: tr(data), vec),
            "median": Job(lambda: med(data), vec),
            "krum": Job(lambda: kr(data), pick=lambda v: row_index(x, vec(v))),
        }


class QoraFL(Peer):
    """ByzantineAggregator from PyPI qora-fl (import name `qora`): only inside the worker."""

    name = "qora-fl"

    def __init__(self, path: Path):
        sys.path.insert(0, str(path))
        for m in [m for m in sys.modules if m == "qora" or m.startswith("qora.")]:
            del sys.modules[m]
        import qora

        if not hasattr(qora, "ByzantineAggregator"):
            raise ImportError(f"`qora` at {qora.__file__} is not qora-fl")
        self.B = qora.ByzantineAggregator
        self.version = md.version("qora-fl")

    def jobs(self, x, xq, f):
        n = x.shape[0]
        updates = [x[i:i + 1] for i in range(n)]  # 2-D float32, one (1, d) array per client
        beta = f / n
        aggs = {m: self.B(m if m != "krum" else f"krum:{f}", beta) for m in METHODS}
        vec = lambda r: r[0]
        return {
            "fedavg": Job(lambda: aggs["fedavg"].aggregate(updates), vec),
            "trimmed_mean": Job(lambda: aggs["trimmed_mean"].aggregate(updates), vec),
            "median": Job(lambda: aggs["median"].aggregate(updates), vec),
            "krum": Job(lambda: aggs["krum"].aggregate(updates), pick=lambda r: row_index(x, r[0])),
        }


# ---- the qora-fl worker (a child process: its `qora` would shadow ours) ------------------------


def worker_main(spec: dict) -> None:
    peer = QoraFL(Path(spec["path"]))
    out: dict = {"version": peer.version}
    if spec["kind"] == "bench":
        n, d = spec["n"], spec["d"]
        x, f = make_data(n, d), f_for(n)
        refs = coordinate_refs(x, f)
        out["cells"] = {m: asdict(measure(j, reps_for(n, d), refs.get(m)))
                        for m, j in peer.jobs(x, None, f).items()}
    else:
        x = make_krum_case()
        out["pick"] = asdict(measure(peer.jobs(x, None, KRUM_CASE["f"])["krum"], 1, None))
    print("@@RESULT@@" + json.dumps(out))


def run_worker(path: Path, spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()),
           "--worker", json.dumps({**spec, "path": str(path)})]
    p = subprocess.run(cmd, check=False, capture_output=True, text=True)
    for line in p.stdout.splitlines():
        if line.startswith("@@RESULT@@"):
            return json.loads(line[len("@@RESULT@@"):])
    tail = " ".join((p.stderr or p.stdout).strip().splitlines()[-1:])[:160]
    raise RuntimeError(f"qora-fl worker failed (exit {p.returncode}): {tail}")


# ---- environment facts -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def qora_build() -> str:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *a], check=False, capture_output=True,
                                  text=True, timeout=20).stdout.strip()
        except Exception:
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "shared_c", "host")
    import qora._native as nat

    so = Path(nat.__file__)
    mtime = _dt.datetime.fromtimestamp(so.stat().st_mtime, _dt.timezone.utc)
    built = f"{mtime:%Y-%m-%d %H:%M} UTC"
    state = "with uncommitted changes in shared_c/ or host/" if dirty else "clean"
    return f"commit {head} ({state}); native module {so.name} built {built}"


def threadpools() -> str:
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(f"{i.get('internal_api')} {i.get('num_threads')} threads"
                         for i in threadpool_info()) or "none"
    except Exception:
        return "threadpoolctl not installed"


# ---- formatting ----------------------------------------------------------------------------------


def fmt_ms(ms: float) -> str:
    if ms < 1:
        return f"{ms:.3f}"
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:,.0f}"


def fmt_time(c: Cell | None, notes: list[str]) -> str:
    if c is None:
        return "—"
    if c.ms is not None:
        return fmt_ms(c.ms) + ("\\*" if c.reps == 1 else "")
    return footnote(c.note, notes)


def footnote(text: str, notes: list[str]) -> str:
    if text not in notes:
        notes.append(text)
    return f"[{notes.index(text) + 1}]"


def fmt_check(c: Cell | None, method: str, ref_pick: int | None, notes: list[str]) -> str:
    if c is None:
        return "—"
    if c.ms is None:
        return footnote(c.note, notes)
    if method == "krum":
        if c.pick is None:
            return "?"
        ok = "✓" if c.pick == ref_pick else "✗"
        return f"#{c.pick} {ok}"
    return "?" if c.dev is None else f"{c.dev:.1e}"


def best_peer(row: dict[str, Cell | None], peers: list[str]) -> tuple[str, float] | None:
    timed = [(row[p].ms, p) for p in peers if row.get(p) is not None and row[p].ms is not None]
    if not timed:
        return None
    ms, p = min(timed)
    return p, ms


def speedup(ours: Cell | None, best: tuple[str, float] | None) -> str:
    if ours is None or ours.ms is None or best is None:
        return "—"
    r = best[1] / ours.ms
    return f"{r:.2f}× ({best[0]})" if r < 1 else f"{r:.1f}× ({best[0]})"


# ---- the run ------------------------------------------------------------------------------------


def build_peers(qora_fl_path: Path) -> tuple[list[Peer], list[str], dict]:
    """Instantiate every column that imports; return (columns, install notes, versions)."""
    cols: list[Peer] = [Qora(QORA_COLS[0], "float32", None), Qora(QORA_COLS[1], "float32", 1),
                        Qora(QORA_COLS[2], "q16_16", None), Numpy(), NumpyMedian()]
    notes = []
    vers = {"numpy": np.__version__}
    try:
        cols.append(FlowerLegacy())
        cols.append(FlowerNew())
        vers["flwr"] = version("flwr")
        notes.append(f"Flower {vers['flwr']}: imported (legacy flwr.server.strategy.aggregate and "
                     "flwr.serverapp.strategy kernels).")
    except Exception as e:
        notes.append(f"Flower: not available ({type(e).__name__}: {e}).")
    try:
        agg, how = import_byzfl()
        vers["byzfl"] = version("byzfl")
        cols.append(ByzFL(agg, torch_input=False))
        try:
            import torch

            vers["torch"] = torch.__version__
            cols.append(ByzFL(agg, torch_input=True))
        except Exception as e:  # pragma: no cover
            notes.append(f"ByzFL torch input: torch not importable ({e}).")
        notes.append(f"ByzFL {vers['byzfl']}: {how}.")
    except Exception as e:
        notes.append(f"ByzFL: not available ({type(e).__name__}: {e}).")
    qfl = Peer()
    qfl.name, qfl.available = "qora-fl", False
    if (qora_fl_path / "qora" / "__init__.py").exists():
        qfl.available = True
        qfl.path = qora_fl_path  # type: ignore[attr-defined]
        notes.append(f"qora-fl: from {qora_fl_path} (pip --target), timed in a child process of "
                     "the same run, because its import name `qora` is also Qora Edge's.")
    else:
        notes.append(f"qora-fl: not found at {qora_fl_path} (run bench/setup_venv.sh); "
                     "column left out.")
    if qfl.available:
        cols.append(qfl)
    return cols, notes, vers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="only (10, 1e5) and (100, 1e5)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help=f"markdown output (default {DEFAULT_OUT})")
    ap.add_argument("--qora-fl-path", type=Path, default=DEFAULT_QORA_FL_PATH,
                    help="folder holding qora-fl installed with pip --target")
    ap.add_argument("--no-krum-case", action="store_true", help="skip the Flower Krum failure case")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return 0

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.table import Table

    console = Console(stderr=True)
    started = _dt.datetime.now(_dt.timezone.utc)
    load_before = os.getloadavg()
    cols, install_notes, vers = build_peers(args.qora_fl_path)
    names = [c.name for c in cols]
    peer_names = [c.name for c in cols if c.name not in QORA_COLS]
    shapes = SHAPES_QUICK if args.quick else SHAPES_FULL
    total = len(shapes) * sum(len(c.methods) for c in cols)
    results: dict[tuple[int, int], dict[str, dict[str, Cell]]] = {}
    ref_picks: dict[tuple[int, int], dict[str, int]] = {}
    loads: dict[tuple[int, int], float] = {}

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), console=console)
    with progress:
        task = progress.add_task("bench", total=total + (0 if args.no_krum_case else len(cols)))
        for n, d in shapes:
            f = f_for(n)
            loads[(n, d)] = os.getloadavg()[0]
            x = make_data(n, d)
            xq = (x * 65536).astype(np.int32)  # raw Q16.16, converted outside the timing
            refs = coordinate_refs(x, f)
            dist = sqdist_f64(x)
            ref_picks[(n, d)] = {"classic": krum_pick(dist, f),
                                 "n-f-1": krum_pick(dist, f, n - f - 1)}
            del dist
            table: dict[str, dict[str, Cell]] = {m: {} for m in METHODS}
            for col in cols:
                if col.name == "qora-fl":
                    progress.update(task, description=f"({n}, {d:.0e}) qora-fl (child process)")
                    try:
                        spec = {"kind": "bench", "n": n, "d": d}
                        res = run_worker(col.path, spec)  # type: ignore[attr-defined]
                        vers["qora-fl"] = res["version"]
                        for m, c in res["cells"].items():
                            table[m][col.name] = Cell(**c)
                    except Exception as e:
                        for m in col.methods:
                            table[m][col.name] = Cell(note=f"error: {e}")
                    progress.advance(task, len(col.methods))
                    continue
                jobs = col.jobs(x, xq, f)
                for m in col.methods:
                    progress.update(task, description=f"({n}, {d:.0e}) {col.name}: {m}")
                    table[m][col.name] = measure(jobs[m], reps_for(n, d), refs.get(m))
                    progress.advance(task)
                del jobs
            results[(n, d)] = table
            del x, xq, refs

        krum_case = None if args.no_krum_case else run_krum_case(cols, progress, task, vers)
    load_after = os.getloadavg()

    # console tables
    for (n, d), table in results.items():
        t = Table(title=f"(n, d) = ({n}, {d:,}), f = k = {f_for(n)}, ms")
        for h in ["method", *names, "f32 vs best peer", "Q16.16 vs best peer"]:
            t.add_column(h, justify="left" if h == "method" else "right")
        for m in METHODS:
            row = table[m]
            best = best_peer(row, peer_names)
            t.add_row(m, *[fmt_time(row.get(c), []) for c in names],
                      speedup(row.get(QORA_COLS[0]), best), speedup(row.get(QORA_COLS[2]), best))
        Console(width=max(200, Console().width)).print(t)

    text = render_markdown(args, started, load_before, load_after, names, peer_names, results,
                           ref_picks, loads, krum_case, install_notes, vers)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    console.print(f"wrote {args.out}")
    return 0


def run_krum_case(cols: list[Peer], progress, task, vers: dict) -> dict:
    """Flower new-API Krum failure case: each contender's pick vs float64 brute force's."""
    n, f = KRUM_CASE["n"], KRUM_CASE["f"]
    x = make_krum_case()
    xq = (x * 65536).astype(np.int32)
    exact = sqdist_f64(x)
    scores = np.sort(krum_scores(exact, n - f - 2))
    case = {
        "classic": krum_pick(exact, f),
        "n-f-1": krum_pick(exact, f, n - f - 1),
        "gap": float((scores[1] - scores[0]) / scores[0]),
        "picks": {},
        "dist_err": {},
    }
    off = ~np.eye(n, dtype=bool)
    for col in cols:
        progress.update(task, description=f"Krum failure case: {col.name}")
        if "krum" not in col.methods:
            progress.advance(task)
            continue
        if col.name == "qora-fl":
            try:
                res = run_worker(col.path, {"kind": "krum_case"})  # type: ignore[attr-defined]
                case["picks"][col.name] = Cell(**res["pick"])
                vers["qora-fl"] = res["version"]
            except Exception as e:
                case["picks"][col.name] = Cell(note=f"error: {e}")
        else:
            case["picks"][col.name] = measure(col.jobs(x, xq, f)["krum"], 1, None)
        progress.advance(task)
    # How far each peer's pair distances are from float64, where its distance kernel is callable.
    for col in cols:
        try:
            if isinstance(col, FlowerNew):
                dd = col.compute_distances([c["arrays"] for c in col.contents(x)])
            elif isinstance(col, FlowerLegacy):
                dd = col.agg._compute_distances([[x[i]] for i in range(n)])
            else:
                continue
            case["dist_err"][col.name] = float(np.max(np.abs(dd[off] - exact[off]) / exact[off]))
        except Exception as e:
            case["dist_err"][col.name] = f"error: {e}"
    return case


METHOD_MD = """\
## Method

- Data: i.i.d. N(0, 1) float32 updates, one row per client (seeded, identical in every process).
  Q16.16 input is `(x * 65536).astype(np.int32)`, converted before timing.
- f = 0.2·n; the trimmed mean drops k = f values on each side; Krum tolerates f (score = sum of
  the n−f−2 smallest squared distances).
- Each cell: one warm-up run, then the median of R runs timed with `time.perf_counter` (R = 7;
  3 when n·d ≥ 1e8; 1 when the warm-up took over {slow:.0f} s, marked \\*). A cell whose run
  exceeds {skip:.0f} s is skipped.
- Times are milliseconds for the whole call as a user makes it: Qora Edge's include its input
  checks (finite values) and, with threads, its thread pool; for fedavg, trimmed mean and median
  they use `deviation=False` (the peers return the aggregate only; each client's distance from
  it, which Qora Edge returns by default for reputation, adds one pass over the block while it is
  in cache); Krum always returns them; Flower new-API fedavg and Krum include
  turning each reply's `Array` back into numpy, as the strategy does; qora-fl's include its copies
  of the list of (1, d) arrays.
- Columns: `qora f32` = `qora.native` float32 with default threads (several only when
  n·d ≥ 2^20), `1 thread` = `threads=1`, `Q16.16` = `mode="q16_16"` on int32 input.
  numpy = np.mean / np.sort then mean of the middle / np.sort then middle / float64 brute-force
  Krum from differences in column blocks of n × 2048; np.median is numpy's own.
  Flower legacy = `flwr.server.strategy.aggregate`: aggregate (num_examples = 1),
  aggregate_trimmed_avg(β = f/n), aggregate_median, aggregate_krum(to_keep = 0).
  Flower new API = `flwr.serverapp.strategy` kernels: strategy_utils.aggregate_arrayrecords,
  fedtrimmedavg.trim_mean, multikrum.select_multikrum (FedMedian has no kernel of its own: it
  calls np.median inline, see the np.median column). ByzFL = Average / TrMean(f) / Median /
  Krum(f) on the numpy array, or on `torch.from_numpy` of it. qora-fl =
  `ByzantineAggregator(method, f/n)`, methods fedavg, trimmed_mean, median, krum:f.
- Speed-up = the fastest peer's time in that row ÷ Qora Edge's time (float32 with default
  threads, and Q16.16); below 1 means a peer is faster.
"""

PEERS_MD = """\
- Setup (`bench/setup_venv.sh`): a separate virtualenv `/work/bench-venv` with
  `--system-site-packages` (so this repo's editable `qora` is visible); torch 2.13.0 (the CPU wheel
  on this machine's disk) first, so that byzfl does not pull a multi-GB CUDA torch; then
  `flwr>=1.41,<1.42` and byzfl, which brings torchvision 0.28.0 from PyPI: that fails to import
  beside the CPU torch ("operator torchvision::nms does not exist"), hence byzfl.aggregators is
  loaded alone; qora-fl with `pip install --no-deps --target /work/bench-venv/qora-fl`, because its
  top-level module `qora` would shadow ours.
- Definitions differ: ByzFL's Krum scores the n−f−1 nearest neighbours (mean), not n−f−2; ByzFL's
  torch Median is `torch.quantile(q=0.5)`; Flower's new-API Krum uses ‖a‖² + ‖b‖² − 2a·b in
  float32; Flower legacy Krum takes float32 norms of float32 differences; qora-fl's trim count is
  ⌈f32(n)·f32(β)⌉ and its Krum quantises updates to a 16-bit block floating point format.
"""


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_markdown(args, started, load_before, load_after, names, peer_names, results, ref_picks,
                    loads, krum_case, install_notes, vers) -> str:
    script = Path(__file__).resolve()
    try:
        script_rel = str(script.relative_to(REPO))
    except ValueError:
        script_rel = str(script)
    command = shlex.join([sys.executable, script_rel, *sys.argv[1:]])
    la = lambda t: "/".join(f"{v:.2f}" for v in t)
    v = lambda k: vers.get(k, "—")
    L: list[str] = [
        "# Aggregation benchmarks", "",
        f"Generated by `{script_rel}` on {started:%Y-%m-%d %H:%M} UTC. Re-run it to refresh this",
        "file.", "",
        "```", f"cd {REPO} && {command}", "```", "",
        "## Machine", "",
        f"- CPU: {cpu_model()}, {os.cpu_count()} cores; memory {mem_total()}",
        f"- Load average (1/5/15 min): {la(load_before)} before, {la(load_after)} after. The",
        "  machine has 2 cores and other work may run beside the bench (the load shows it): the",
        "  numbers are noisy; treat differences under ~20 % as noise, re-run on a quiet machine.",
        (f"- Python {platform.python_version()}, numpy {v('numpy')}, torch {v('torch')}, "
         f"scipy {version('scipy')}, flwr {v('flwr')},"),
        f"  byzfl {v('byzfl')}, qora-fl {v('qora-fl')}",
        f"- Qora Edge {version('qora-edge')}: {qora_build()}",
        f"- Thread pools: {threadpools()};",
        f"  OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}", "",
        METHOD_MD.format(slow=SLOW_S, skip=SKIP_S),
    ]
    head = ["method", *names]
    for (n, d), table in results.items():
        notes: list[str] = []
        rp = ref_picks[(n, d)]
        L += [f"## (n, d) = ({n}, {d:,}), f = k = {f_for(n)}, R = {reps_for(n, d)}", "",
              f"Time in ms (median); 1-minute load average at the start: {loads[(n, d)]:.2f}.", "",
              md_row(head + ["f32 speed-up vs best peer", "Q16.16 speed-up vs best peer"]),
              "|---|" + "---:|" * (len(names) + 2)]
        for m in METHODS:
            row = table[m]
            best = best_peer(row, peer_names)
            L.append(md_row([m, *(fmt_time(row.get(c), notes) for c in names),
                             speedup(row.get(QORA_COLS[0]), best),
                             speedup(row.get(QORA_COLS[2]), best)]))
        L += ["",
              "Agreement: max |result − float64 reference| for the coordinate-wise methods; for",
              ("Krum the client picked, ✓ if float64 brute force picks it too "
              f"(#{rp['classic']}; with ByzFL's n−f−1 neighbours: #{rp['n-f-1']})."), "",
              md_row(head), "|---|" + "---:|" * len(names)]
        for m in METHODS:
            L.append(md_row([m, *(fmt_check(table[m].get(c), m, rp["classic"], notes)
                                  for c in names)]))
        if notes:
            L += [""] + [f"[{i + 1}] {t}" for i, t in enumerate(notes)]
        L.append("")

    if krum_case:
        kc, notes = krum_case, []
        L += ["## Krum failure case (Flower new API)", "",
              (f"{KRUM_CASE['n']} clients = one shared N(0, 1) vector + "
              f"{KRUM_CASE['noise']:g}·N(0, 1) noise each,"),
              (f"d = {KRUM_CASE['d']:,}, f = {KRUM_CASE['f']}. float64 brute force picks "
              f"#{kc['classic']} (with ByzFL's n−f−1 neighbours: #{kc['n-f-1']});"),
              f"its best and second-best scores differ by {kc['gap']:.2%}.", "",
              md_row(["contender", "picks", "same as float64 brute force",
                      "max relative error of its pair distances"]),
              "|---|---:|:---:|---:|"]
        for name, c in kc["picks"].items():
            err = kc["dist_err"].get(name)
            err_s = "—" if err is None else (err if isinstance(err, str) else f"{err:.1%}")
            if c.ms is None or c.pick is None:
                L.append(md_row([name, footnote(c.note, notes), "—", err_s]))
            else:
                same = "yes" if c.pick == kc["classic"] else "**no**"
                L.append(md_row([name, f"#{c.pick}", same, err_s]))
        if notes:
            L += [""] + [f"[{i + 1}] {t}" for i, t in enumerate(notes)]
        L.append("")

    L += ["## Peers: how they were installed and loaded", ""]
    L += [f"- {t}" for t in install_notes]
    L += [PEERS_MD]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
