"""firmware/core/src/node.c under ASan + UBSan, driven in-process (tests/firmware/node_driver.c):
the longest ids and values a board can hold or be sent must not overrun a buffer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cbuild import CORE_SOURCES, ROOT, SANITIZE, compile_ok, require

FIRMWARE = ROOT / "firmware"
DRIVER = Path(__file__).resolve().parent / "node_driver.c"


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    require("gcc")
    exe = tmp_path_factory.mktemp("nodedrv") / "node_driver"
    compile_ok(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                f"-I{FIRMWARE / 'core' / 'include'}", f"-I{ROOT / 'shared_c' / 'include'}",
                *sorted(str(p) for p in (FIRMWARE / "core" / "src").glob("*.c")), *CORE_SOURCES,
                str(DRIVER), "-o", str(exe)])
    return exe


def run(driver: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(driver), *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("last_sent", ["0", "4294967295"])
def test_boot_log_with_a_64_character_node_id_and_a_10_digit_round(driver, last_sent):
    # the persisted last_sent_round is whatever ROUND a board was once sent (any u32)
    proc = run(driver, "boot", "n" * 64, last_sent)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
