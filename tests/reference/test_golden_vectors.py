"""Golden vectors: the generator is deterministic, the committed header is current, and the
C runner built natively (gcc and clang) prints exactly golden.expected_lines()."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qora.reference import golden

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "shared_c" / "tests" / "vectors"
HEADER = VECTORS / "golden_vectors.h"
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]


def test_generator_is_deterministic():
    assert golden.header_text() == golden.header_text()
    assert golden.expected_lines() == golden.expected_lines()


def test_committed_header_is_current():
    assert HEADER.read_text() == golden.header_text(), (
        "shared_c/tests/vectors/golden_vectors.h is stale: regenerate with "
        "`python -m qora.reference.golden shared_c/tests/vectors/golden_vectors.h`"
    )


def test_header_is_small():
    assert len(golden.header_text().encode()) < 200_000


def test_cli_writes_the_header(tmp_path):
    out = tmp_path / "g.h"
    proc = subprocess.run([sys.executable, "-m", "qora.reference.golden", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == golden.header_text()


def test_expected_lines_shape():
    lines = golden.expected_lines()
    names = [ln.split()[1] for ln in lines[:-1]]
    assert len(names) == len(set(names)), "case names must be unique"
    for ln in lines[:-1]:
        assert re.fullmatch(r"case [a-z0-9_]+ ok crc=[0-9a-f]{8}", ln), ln
    total = len(lines) - 1
    assert lines[-1] == "summary %d/%d" % (total, total)
    text = golden.header_text()
    assert "#define QORA_GV_TOTAL_CASES %du" % total in text


def test_cases_cover_the_bounds_and_saturation():
    results = {c["name"]: golden.run_case(c) for c in golden.all_cases()}
    statuses = {r["status"] for r in results.values()}
    assert {0, -2, -3, -4, -5, -6, -9} <= statuses
    assert any(r["flags"] for r in results.values())
    assert results["krum_tie_lower_index"]["selected"] == [1]
    assert results["fedavg_acc_saturate_then_down"]["flags"] == 1


def test_crc32_is_ieee():
    assert golden.crc32(b"123456789") == 0xCBF43926


def _native_build(cc: str, tmp_path: Path) -> Path:
    path = shutil.which(cc)
    assert path, "%s is not installed: run scripts/setup.sh" % cc
    sources = sorted(str(p) for p in (ROOT / "shared_c" / "src").glob("*.c"))
    assert sources, "no C sources in shared_c/src"
    exe = tmp_path / ("run_vectors_" + cc)
    cmd = [path, *STRICT, "-O2", "-I", str(ROOT / "shared_c" / "include"), "-I", str(VECTORS),
           *sources, str(VECTORS / "run_vectors.c"), str(VECTORS / "native_main.c"),
           "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    return exe


@pytest.mark.cross_target
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_native_runner_prints_expected_lines(cc, tmp_path):
    exe = _native_build(cc, tmp_path)
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    expected = "\n".join(golden.expected_lines()) + "\n"
    assert proc.stdout == expected, "\n".join(
        ln for ln in proc.stdout.splitlines() if " ok " not in ln)
    assert proc.returncode == 0
