"""firmware/tools/measure.py, the script behind docs/firmware.md's "Measurements", keeps working.

`--quick` builds and runs one small case of each kind per emulated board (one softmax epoch over
40 rows at batch 8, a trimmed mean of 4 x 650, HMAC-SHA256 of 4 KiB; about 10 s): every run must
check its result against the host reference, and every count must stay within 10 % of the
figure docs/firmware.md gives (a bigger change means the table needs measuring again).
`--wire` must give the documented bytes on the wire exactly.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cbuild import ROOT, require

SCRIPT = ROOT / "firmware" / "tools" / "measure.py"

# docs/firmware.md, "Measurements" (c): instructions of one call, -Os
DOCUMENTED = {
    ("cortex-m4", "train"): 1_438_009, ("rv32", "train"): 1_833_468,
    ("cortex-m4", "agg"): 143_149, ("rv32", "agg"): 194_365,
    ("cortex-m4", "hash"): 289_004, ("rv32", "hash"): 440_077,
}


@pytest.mark.cross_target
def test_quick_measurement_runs_and_matches_the_documented_counts(tmp_path):
    for tool in ("arm-none-eabi-gcc", "riscv64-unknown-elf-gcc", "qemu-system-arm",
                 "qemu-system-riscv32"):
        require(tool)
    out = tmp_path / "quick.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    assert {(r["target"], r["kind"]) for r in results} == set(DOCUMENTED)
    for r in results:
        assert r["ok"], r
        want = DOCUMENTED[(r["target"], r["kind"])]
        assert abs(r["instructions"] - want) <= want // 10, (
            f"{r['target']} {r['case']}: {r['instructions']:,} instructions, documented "
            f"{want:,}: measure again and update docs/firmware.md")
        # the call is part of the run; the run adds startup and the check
        assert 0 < r["instructions"] < r["image_instructions"] < 2 * r["instructions"]
    assert "Estimate, not measured" in proc.stdout


def test_wire_bytes_are_the_documented_ones():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--wire"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=True)
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): line
            for line in proc.stdout.splitlines() if line.startswith("| ")}

    def bytes_of(model, message):
        cells = [c.strip() for c in rows[(model, message)].strip("|").split("|")]
        return cells[3], cells[4]
    assert bytes_of("softmax (650)", "update, 1 chunk(s)") == ("2,686", "2,726")
    assert bytes_of("softmax (650)", "model, 1 chunk(s)") == ("2,665", "2,698")
    assert bytes_of("MLP (2410)", "update, 3 chunk(s)") == ("9,898", "10,018")
    assert bytes_of("MLP (2410)", "model, 3 chunk(s)") == ("9,835", "9,934")
