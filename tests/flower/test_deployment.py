"""The example federation for real: a SuperLink, 6 SuperNodes (2 Byzantine) and ``flwr run``.

Runs ``examples/flower/run_local.sh`` (insecure, loopback, free ports, a temporary FLWR_HOME)
for 2 rounds with Multi-Krum (f = 1, m = 2): with the default trimmed mean the attackers are
only penalised in 2 rounds (the ban comes in round 5), while Krum leaves them out from the
first round. The attackers flip and scale their update by 10 (the example's default, set here
explicitly because the assertions depend on it): measured from Krum's result, two attackers
among six inflate the median absolute deviation, and a factor 4 sat just under the penalty
line (z = 5.6 < 6) in a measured round, while 10 gives z = 14, so the test can require a
penalty in every round. ClientApp-side evaluation is off (``fraction-evaluate=0``): each
phase costs a SuperNode poll (3 s) and a ClientApp process start. The script runs in its own
process group; whatever happens, the group is sent SIGTERM, then SIGKILL, so nothing outlives
the test.

Deselect it locally with ``-m "not flower_deployment"``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flower_deployment, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flower"
ROW = re.compile(r"partition (\d+)\s+node\s+(\d+)\s+(honest|byzantine)\s+(.+?)\s+reputation (\d\.\d\d)")
TIMEOUT = 420


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _stop_group(pgid: int) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + wait
        while time.monotonic() < end and _live_members(pgid):
            time.sleep(0.2)


@pytest.mark.skipif(shutil.which("flower-superlink") is None or shutil.which("flower-supernode") is None,
                    reason="the Flower extra's commands are not installed")
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to watch the processes")
def test_byzantine_supernodes_are_excluded_in_a_real_deployment(tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), QORA_FLOWER_LOGS=str(tmp_path / "logs"), NODES="6",
               PYTHON=sys.executable, FLWR_TELEMETRY_ENABLED="0")
    overrides = ("num-server-rounds=2 aggregation-method='multi_krum:1' attack-scale=10.0 "
                 "fraction-evaluate=0.0")
    start = time.monotonic()
    proc = subprocess.Popen(["bash", str(EXAMPLE / "run_local.sh"), "-c", overrides], cwd=EXAMPLE, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _stop_group(proc.pid)
        out, _ = proc.communicate()
        pytest.fail(f"the federation did not finish in {TIMEOUT} s:\n{out[-6000:]}")
    finally:
        _stop_group(proc.pid)
    elapsed = time.monotonic() - start
    print(f"deployment: 2 rounds in {elapsed:.1f} s")
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted((tmp_path / "logs").glob("*.log")))
    assert proc.returncode == 0, f"{out[-6000:]}\n{logs}"

    # the table the ServerApp logs after each round: 6 rows, partitions 4 and 5 attack
    rows = ROW.findall(out)
    assert len(rows) == 12, out[-6000:]
    for r, table in enumerate((rows[:6], rows[6:]), start=1):
        assert sorted(int(p) for p, *_ in table) == list(range(6))
        for pid, node, role, what, score in table:
            assert (role == "byzantine") == (int(pid) in (4, 5))
            if role == "byzantine":
                assert what == "excluded: not_selected, penalised", (r, pid, what)
                assert float(score) == pytest.approx(0.5 - 0.08 * r)  # penalised every round
            else:  # picked or not, close to Krum's choice: rewarded
                assert what in ("aggregated, rewarded", "excluded: not_selected, rewarded"), (r, pid, what)
                assert float(score) == pytest.approx(0.5 + 0.02 * r)
    assert "qora: round 2: 6 replies, 2 aggregated, 4 excluded" in out
    accuracy = float(re.search(r"final accuracy on the 450 held-out digits: ([\d.]+)", out).group(1))
    assert accuracy > 0.6
    # the script stopped everything it started
    assert _live_members(proc.pid) == [], "processes outlived run_local.sh"
    assert "stopped the SuperLink and 6 SuperNodes" in out
    assert not list(tmp_path.glob("qora-flower.*/flwr-home"))
