"""Hardware-in-the-loop scenarios on emulated boards (and on real ones when attached).

The rigs: posix node processes (fast), the CI rig of 4 emulated Cortex-M4 (QEMU mps2-an386)
+ 2 emulated RV32 (QEMU virt) boards, each through ``qora gateway`` to the real Mosquitto on
127.0.0.1:1883 and the real aggregator service; real boards when ``QORA_HIL_PORTS`` names
their serial ports (flashed with the blobs in ``QORA_HIL_BLOBS``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hil import scenarios  # noqa: E402
from hil.boards import real_ports  # noqa: E402
from hil.rig import Rig  # noqa: E402

pytestmark = [pytest.mark.mqtt, pytest.mark.hil]

EMULATED = ["qemu-m4"] * 4 + ["qemu-rv32"] * 2
POSIX = ["posix"] * 5
# real boards, when attached: every scenario runs on them too (skipped, with the reason, otherwise)
REAL = pytest.param([f"real:{p}" for p in real_ports()], id="real",
                    marks=pytest.mark.skipif(not real_ports(), reason="no real boards: set QORA_HIL_PORTS="
                                             "/dev/ttyUSB0,... (flashed with the blobs in QORA_HIL_BLOBS)"))


def _rig(tmp_path, kinds, **kw) -> Rig:
    return Rig(tmp_path, list(kinds), **kw)


@pytest.mark.parametrize("kinds", [pytest.param(POSIX, id="posix"), pytest.param(EMULATED, id="qemu-4xm4-2xrv32"),
                                   REAL])
def test_one_round(tmp_path, kinds):
    with _rig(tmp_path, kinds) as rig:
        result = scenarios.one_round(rig)
    assert result["updates"] == len(kinds) and result["replayed"] == 1


@pytest.mark.parametrize("kinds", [pytest.param(POSIX, id="posix"), pytest.param(EMULATED, id="qemu-4xm4-2xrv32"),
                                   REAL])
def test_ten_rounds_with_a_byzantine_board(tmp_path, kinds):
    with _rig(tmp_path, kinds, byzantine={len(kinds) - 1}) as rig:   # real boards: their blobs say who attacks
        result = scenarios.ten_rounds_with_a_byzantine_board(rig)
        attackers = sorted(rig.nodes[i] for i in rig.byzantine)
    assert result["rounds"] >= 10 and sorted(result["banned"]) == attackers


@pytest.mark.parametrize("kinds", [pytest.param(POSIX, id="posix"),
                                   pytest.param(["qemu-m4", "qemu-rv32", "qemu-m4"], id="qemu"), REAL])
def test_board_reset_mid_round(tmp_path, kinds):
    with _rig(tmp_path, kinds) as rig:
        result = scenarios.board_reset_mid_round(rig)
    assert result["rounds"] >= 3


@pytest.mark.parametrize("kinds", [pytest.param(POSIX[:3], id="posix"),
                                   pytest.param(["qemu-m4", "qemu-rv32", "qemu-m4"], id="qemu"), REAL])
def test_garbage_on_the_line(tmp_path, kinds):
    with _rig(tmp_path, kinds) as rig:
        result = scenarios.garbage_on_the_line(rig)
    assert result["rounds"] >= 3


@pytest.mark.parametrize("kinds", [pytest.param(POSIX[:4], id="posix"),
                                   pytest.param(["qemu-m4", "qemu-m4", "qemu-rv32", "qemu-rv32"], id="qemu"), REAL])
def test_mesh_round_among_four_boards_with_one_attacker(tmp_path, kinds):
    with _rig(tmp_path, kinds, mesh=True, byzantine={3}) as rig:
        if not all(c.mesh for c in rig.configs.values()):
            pytest.skip("the real boards' blobs are not mesh-provisioned (python -m hil.make_blobs --mesh)")
        result = scenarios.mesh_round(rig, rounds=2)
    assert result["boards"] == 3
