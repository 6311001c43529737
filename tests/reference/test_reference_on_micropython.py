"""The integer reference (q16.py, aggregate.py) runs on the real MicroPython VM and gives, line
for line, the same results as under CPython.

A plain Python script (no JSON, no imports beyond the reference, sys and struct) is generated here:
it calls the scalar Q16.16 operations on edge values, the conversions on special bit patterns, the
64-bit integer helpers near their limits and every aggregator on edge and pseudo-random matrices,
and prints one canonical ``repr`` per result. It runs once under CPython (importing
qora.reference) and once under MicroPython v1.27.0 (WebAssembly port under Node.js, through
tools/micropython/run.mjs, with the three runtime files copied into a package ``qref``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qora.reference import q16 as Q

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "host" / "qora" / "reference"
RUNTIME = [REF / "__init__.py", REF / "q16.py", REF / "aggregate.py"]
MP_DIR = ROOT / "tools" / "micropython"
RUNNER = MP_DIR / "run.mjs"
MP_PKG = MP_DIR / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
MP_VERSION = "1.27.0"
SETUP_HINT = "run scripts/setup.sh (it does `npm ci --prefix tools/micropython`)"

I32_MIN, I32_MAX = Q.INT32_MIN, Q.INT32_MAX
I64_MIN, U64_MAX = Q.INT64_MIN, Q.UINT64_MAX

# ---- the generated script ----------------------------------------------------------------------
PRELUDE = {
    "cpython": "from qora.reference import q16, aggregate\n",
    "micropython": "from qref import q16, aggregate\n",
}

HELPERS = '''\
import sys
import struct


def canon(v):
    """ints, None, str, and lists of them; dict -> sorted (key, value) list; tuple -> list"""
    if isinstance(v, dict):
        return [[k, canon(v[k])] for k in sorted(v.keys())]
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    if v is None or isinstance(v, (int, str)):
        return v
    raise TypeError("unexpected result type %s" % type(v).__name__)


def show(label, v):
    print(label + " " + repr(canon(v)))


def attempt(label, fn, *args):
    """show fn(*args), or the name of the exception it raised"""
    try:
        v = fn(*args)
    except Exception as e:
        v = "raises " + type(e).__name__
    show(label, v)


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


print("impl " + sys.implementation.name)
'''


def _lit(v) -> str:
    """A Python literal of ints / lists / None (repr is a valid literal for both runtimes)."""
    return repr(v)


def _scalar_section() -> list[str]:
    edge = [I32_MIN, I32_MIN + 1, -(1 << 30), -98304, -65537, -65536, -65535, -32769, -32768, -3,
            -1, 0, 1, 2, 3, 32767, 32768, 32769, 65535, 65536, 65537, 98304, 1 << 24, 46341 << 16,
            0x7FFF8000, I32_MAX - 1, I32_MAX]
    return [
        "V = " + _lit(edge),
        "for a in V:",
        "    show('sqrt %d' % a, q16.sqrt(a))",
        "    show('to_f32_bits %d' % a, q16.to_f32_bits(a))",
        "    show('to_f32 %d' % a, f32_bits(q16.to_f32(a)))",
        "    show('from_i64_sat %d' % (a * 65536), q16.from_i64_sat(a * 65536))",
        "    for b in V:",
        "        show('add %d %d' % (a, b), q16.add(a, b))",
        "        show('sub %d %d' % (a, b), q16.sub(a, b))",
        "        show('mul %d %d' % (a, b), q16.mul(a, b))",
        "        show('div %d %d' % (a, b), q16.div(a, b))",
        # pseudo-random int32 values through the shared xorshift32 stream
        "s = 0x2545F491",
        "for i in range(600):",
        "    s = aggregate.xorshift32(s)",
        "    a = s - 4294967296 if s >= 2147483648 else s",
        "    s = aggregate.xorshift32(s)",
        "    b = (s >> (s & 31)) - (s & 0xFFFF)",
        "    show('rnd %d %d' % (a, b), [q16.add(a, b), q16.sub(a, b), q16.mul(a, b),"
        " q16.div(a, b), q16.sqrt(a), q16.to_f32_bits(a)])",
    ]


def _conversion_section() -> list[str]:
    patterns = [
        0x00000000, 0x80000000,              # +-0
        0x00000001, 0x807FFFFF, 0x007FFFFF,  # subnormals
        0x00800000, 0x37000000, 0xB7000000,  # smallest normal, +-2^-17 (tie 0.5 -> +-1)
        0x36FFFFFF, 0x37000001, 0x36800000,  # just below / above the tie, 2^-18
        0x37C00000, 0xB7C00000,              # +-1.5 * 2^-16 (tie -> +-2)
        0x38200000, 0xB8200000,              # +-2.5 * 2^-16 (tie -> +-3)
        0x3F800000, 0xBF800000, 0x3F800001, 0x3FC00000,
        0x46FFFFFF, 0xC6FFFFFF,              # largest below 32768
        0x47000000, 0xC7000000,              # +-32768: saturates / exactly INT32_MIN
        0x47000001, 0xC7000001,              # beyond: saturates
        0x4B000000, 0x5F000000, 0x7F7FFFFF, 0xFF7FFFFF,  # 2^23, 2^63, +-max finite
        0x7F800000, 0xFF800000,              # +-inf
        0x7FC00000, 0x7F800001, 0xFFC00000, 0xFFFFFFFF, 0x7FFFFFFF,  # NaNs
    ]
    to_bits = [0, 1, -1, 2, 3, (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 25) + 1,
               (1 << 25) + 2, (1 << 25) + 3, (1 << 25) + 6, 0x7FFFFF80, 0x7FFFFFBF, 0x7FFFFFC0,
               I32_MAX, I32_MIN, I32_MIN + 1, -(1 << 24) - 1, -((1 << 25) + 3)]
    # exactly representable doubles only (a runtime's literal parser is not under test here)
    floats = ["0.0", "-0.0", "1.0", "-1.5", "0.5 / 65536", "-0.5 / 65536", "1.5 / 65536",
              "32767.5", "32768.0", "-32768.0", "1e10", "-1e10", "2.0 ** -150", "2.0 ** -149",
              "float('inf')", "float('-inf')", "float('nan')"]
    lines = ["for u in " + _lit(patterns) + ":",
             "    show('from_f32_bits %d' % u, q16.from_f32_bits(u))",
             "for q in " + _lit(to_bits) + ":",
             "    show('to_f32_bits %d' % q, q16.to_f32_bits(q))",
             "    show('to_f32 %d' % q, f32_bits(q16.to_f32(q)))"]
    for f in floats:
        lines.append("show(%r, q16.from_f32(%s))" % ("from_f32 " + f, f))
    lines += [
        "s = 0x9E3779B9",
        "for i in range(1500):",
        "    s = aggregate.xorshift32(s)",
        "    show('from_f32_bits %d' % s, q16.from_f32_bits(s))",
    ]
    return lines


def _integer_section() -> list[str]:
    k = (1 << 32) - 1
    sq = [0, 1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 1 << 62, (1 << 62) - 1, (1 << 63) - 1, 1 << 63,
          (1 << 63) + 1, k * k - 1, k * k, k * k + 1, k * k + k, k * k + k + 1,
          (k - 1) ** 2 + k - 1, (k - 1) ** 2 + k, U64_MAX - 1, U64_MAX, 4294967296 * 4294967295]
    dr = [(I64_MIN, 1), (I64_MIN, 2), (I64_MIN, 3), (I64_MIN, 7), (I64_MIN, 1 << 63),
          (I64_MIN, (1 << 64) - 1), (I64_MIN + 1, 2), (Q.INT64_MAX, 2), (Q.INT64_MAX, 3),
          (Q.INT64_MAX, U64_MAX), (-5, 2), (5, 2), (-7, 2), (7, 2), (-1, 2), (1, 2), (-1, 3),
          (0, 5), (1, 0), (1, -1)]
    sat = [(Q.INT64_MAX, 1), (I64_MIN, -1), (I64_MIN, I64_MIN), (Q.INT64_MAX, Q.INT64_MAX),
           (Q.INT64_MAX, I64_MIN), (3, -5)]
    usat = [(U64_MAX, 0), (U64_MAX, 1), (1 << 63, 1 << 63), ((1 << 63) - 1, 1 << 63), (0, 0)]
    return [
        "for x in " + _lit(sq) + ":",
        "    show('isqrt64 %d' % x, q16.isqrt64(x))",
        "    show('sqrt_round_u64 %d' % x, q16.sqrt_round_u64(x))",
        "attempt('isqrt64 -1', q16.isqrt64, -1)",
        "for a, b in " + _lit(dr) + ":",
        "    attempt('div_round_i64 %d %d' % (a, b), q16.div_round_i64, a, b)",
        "for a, b in " + _lit(sat) + ":",
        "    show('sat_add_i64 %d %d' % (a, b), q16.sat_add_i64(a, b))",
        "for a, b in " + _lit(usat) + ":",
        "    show('sat_add_u64 %d %d' % (a, b), q16.sat_add_u64(a, b))",
        "for x in " + _lit([I64_MIN, I32_MIN - 1, I32_MIN, 0, I32_MAX, I32_MAX + 1,
                            Q.INT64_MAX]) + ":",
        "    show('from_i64_sat %d' % x, q16.from_i64_sat(x))",
    ]


def _aggregate_calls(tag: str, rows: str, d: str, weights: str | None = None) -> list[str]:
    """Every aggregator (with its legal and illegal parameters) on one matrix expression."""
    w = weights if weights is not None else "None"
    return [
        "R = " + rows,
        "n = len(R)",
        "show('%s fedavg', aggregate.fedavg(R, %s, %s))" % (tag, d, w),
        "show('%s fedavg-1', aggregate.fedavg(R, %s))" % (tag, d),
        "show('%s fedavg-0', aggregate.fedavg(R, %s, [0] * n))" % (tag, d),
        "for k in range(n // 2 + 1):",
        "    show('%s trimmed_mean %%d' %% k, aggregate.trimmed_mean(R, %s, k))" % (tag, d),
        "show('%s median', aggregate.median(R, %s))" % (tag, d),
        "show('%s median-even', aggregate.median(R[:n - 1 if n & 1 else n], %s))" % (tag, d),
        "show('%s median-odd', aggregate.median(R[:n if n & 1 else n - 1], %s))" % (tag, d),
        "for f in range((n - 3) // 2 + 2):",
        "    show('%s krum %%d' %% f, aggregate.krum(R, %s, f))" % (tag, d),
        "    for m in range(0, n - 2 * f):",
        "        show('%s multi_krum %%d %%d' %% (f, m), aggregate.multi_krum(R, %s, f, m))"
        % (tag, d),
        "D, fl = aggregate.sqdist(R, %s)" % d,
        "show('%s sqdist', [D, fl])" % tag,
        "show('%s krum_select', aggregate.krum_select(D, n, 1, 2) if n >= 5 else None)" % tag,
        "dv = aggregate.deviation_sq(R, %s, R[0])" % d,
        "show('%s deviation_sq', dv)" % tag,
        "show('%s deviation_finish', aggregate.deviation_finish(dv[0]))" % tag,
    ]


def _aggregate_section() -> list[str]:
    lo, hi = I32_MIN, I32_MAX
    lines = [
        # empty inputs
        "show('empty fedavg', aggregate.fedavg([], 3))",
        "show('empty d0 median', aggregate.median([[]], 0))",
        "show('empty multi_krum', aggregate.multi_krum([], 2, 0, 1))",
        "show('empty krum_select', aggregate.krum_select([], 0, 0, 1))",
        "show('many fedavg', aggregate.fedavg([[0]] * 65536, 1))",
    ]
    # fedavg: uint32 weights summing past 2^32, products that saturate the int64 accumulator
    sat_rows = [[hi, lo, hi, 1, -1], [hi, lo, lo, 65536, 0], [lo, hi, 7, -65536, 3]]
    lines += _aggregate_calls("fedavg-sat", _lit(sat_rows), "5",
                              _lit([Q.UINT32_MAX, Q.UINT32_MAX, 7]))
    lines.append("show('fedavg-sat w2', aggregate.fedavg(%s, 5, %s))"
                 % (_lit(sat_rows), _lit([Q.UINT32_MAX, 1, Q.UINT32_MAX])))
    # median / trimmed mean: extreme columns, ties on .5 in both signs
    med = [[lo, hi, -3, 3, 0, 1], [hi, hi, -4, 4, 1, 2], [lo, lo, -3, 3, -1, -2],
           [hi, lo, -4, 4, 0, 1], [0, 0, -1, 1, 2, -3], [lo + 1, hi - 1, 5, -5, -2, 4]]
    lines += _aggregate_calls("extremes", _lit(med), "6")
    # multi-krum on rows of INT32_MIN / INT32_MAX: distances and scores saturate at 2^64 - 1
    mk = [[lo, lo, lo], [hi, hi, hi], [lo, hi, lo], [hi, lo, hi], [lo, lo, hi], [hi, hi, lo],
          [0, 0, 0]]
    lines += _aggregate_calls("krum-sat", _lit(mk), "3")
    # krum ties: identical rows and symmetric outliers give equal scores, ties go to the index
    ties = [[5, 5], [1, 1], [5, 5], [1, 1], [3, 3], [3, 3], [9, -9]]
    lines += _aggregate_calls("krum-ties", _lit(ties), "2")
    # pseudo-random matrices from the shared generator, built on each runtime
    for seed, n, d, lo_bits, w_bits in [(1, 7, 64, 32, 32), (0xC0FFEE, 7, 64, 20, 16),
                                        (12345, 8, 16, 32, 0), (777, 11, 24, 24, 8),
                                        (0xFFFFFFFF, 5, 48, 31, 1)]:
        tag = "prng-%d-%d-%d-%d-%d" % (seed, n, d, lo_bits, w_bits)
        lines.append("P, PW = aggregate.prng_case(%d, %d, %d, %d, %d)"
                     % (seed, n, d, lo_bits, w_bits))
        lines.append("show('%s case', [P, PW])" % tag)
        lines.append("show('%s values', aggregate.prng_values(%d, 40, %d))" % (tag, seed, lo_bits))
        lines += _aggregate_calls(tag, "P", str(d), "PW")
    lines += ["attempt('prng seed 0', aggregate.prng_values, 0, 3, 8)",
              "attempt('prng lo_bits 33', aggregate.prng_values, 1, 3, 33)",
              "show('prng_matrix', aggregate.prng_matrix(99, 3, 4, 12))",
              "show('prng_weights', aggregate.prng_weights(99, 5, 32))"]
    return lines


def script_body() -> str:
    sections = _scalar_section() + _conversion_section() + _integer_section() + _aggregate_section()
    return HELPERS + "\n".join(sections) + "\nprint('done')\n"


# ---- the two runs -------------------------------------------------------------------------------
def _micropython_ready():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; it runs the MicroPython VM: " + SETUP_HINT)
    meta = MP_PKG / "package.json"
    if not meta.exists():
        pytest.fail("the MicroPython npm package is missing (%s): %s" % (MP_PKG, SETUP_HINT))
    version = json.loads(meta.read_text())["version"]
    assert version == MP_VERSION, "MicroPython package is %s, want %s: %s" % (
        version, MP_VERSION, SETUP_HINT)
    return node


def _run(cmd, what):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, "%s failed (exit %d):\n%s" % (what, proc.returncode, proc.stderr)
    return proc.stdout.splitlines()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    node = _micropython_ready()
    body = script_body()
    tmp = tmp_path_factory.mktemp("mpref")
    cp_script = tmp / "check_cpython.py"
    mp_script = tmp / "check_micropython.py"
    cp_script.write_text(PRELUDE["cpython"] + body)
    mp_script.write_text(PRELUDE["micropython"] + body)
    cp = _run([sys.executable, str(cp_script)], "the script under CPython")
    mp = _run([node, str(RUNNER), str(mp_script), "--package", "qref", *map(str, RUNTIME)],
              "the script under MicroPython (tools/micropython/run.mjs)")
    return cp, mp


def test_the_vm_is_micropython(outputs):
    cp, mp = outputs
    assert cp[0] == "impl cpython"
    assert mp[0] == "impl micropython"


def test_micropython_matches_cpython_line_for_line(outputs):
    cp, mp = outputs
    assert cp[-1] == "done", "the CPython run did not finish"
    assert mp[-1] == "done", "the MicroPython run did not finish"
    assert len(cp) > 5000
    assert len(mp) == len(cp), "MicroPython printed %d lines, CPython %d" % (len(mp), len(cp))
    for i, (a, b) in enumerate(zip(cp[1:], mp[1:]), start=2):
        assert b == a, "line %d differs:\n  cpython:     %s\n  micropython: %s" % (i, a, b)


def test_runner_reports_a_python_exception(tmp_path):
    node = _micropython_ready()
    bad = tmp_path / "bad.py"
    bad.write_text("from qref import q16\nprint(q16.isqrt64(16))\nq16.div_round_i64(1, 0)\n")
    proc = subprocess.run([node, str(RUNNER), str(bad), *map(str, RUNTIME)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0
    assert proc.stdout == "4\n"
    assert "ValueError" in proc.stderr and "Traceback" in proc.stderr
