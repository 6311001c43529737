"""Build and drive the C harness (tests/firmware/harness/harness.c) for the firmware tests.

The harness is compiled once per session with ASan + UBSan and kept running; each call is
one line out, one line back. If the harness dies (a sanitizer report, a crash), the call
raises with its stderr, and the next call starts a fresh process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from cbuild import ROOT, SANITIZE, compile_ok, require

CORE = ROOT / "firmware" / "core"
INCLUDE = CORE / "include"
# The sources these tests cover (firmware/core/src also holds other engineers' files).
SOURCES = [CORE / "src" / f"{name}.c" for name in ("sha256", "hmac", "crc32", "cobs", "frame",
                                                   "cbor", "wire")]
HARNESS_C = Path(__file__).resolve().parent / "harness" / "harness.c"

QN_OK, QN_E_MALFORMED, QN_E_VERSION, QN_E_TYPE, QN_E_RANGE, QN_E_SPACE, QN_E_TAG, QN_E_ROUND = (
    0, -1, -2, -3, -4, -5, -6, -7)


def build(out_dir: Path) -> Path:
    require("gcc")
    exe = out_dir / "qnode_harness"
    compile_ok(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE, f"-I{INCLUDE}",
                *map(str, SOURCES), str(HARNESS_C), "-o", str(exe)])
    return exe


def hx(data: bytes | str) -> str:
    """A binary (or text) argument as the harness reads it: hex, "-" when empty."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return data.hex() if data else "-"


def unhx(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


class Harness:
    def __init__(self, exe: Path) -> None:
        self.exe = exe
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1",
                   UBSAN_OPTIONS="print_stacktrace=1")
        return subprocess.Popen([str(self.exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, bufsize=1, env=env)

    def call(self, *args: object) -> list[str]:
        """Run one command; the answer's words (the first is "ok" or "err")."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        line = " ".join(str(a) for a in args)
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:
            proc, self.proc = self.proc, None
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"the harness died on: {line[:300]}\n{err[-6000:]}")
        return answer.split()

    def ok(self, *args: object) -> list[str]:
        """Run a command that must succeed; the words after "ok"."""
        words = self.call(*args)
        assert words[0] == "ok", f"{' '.join(map(str, args))[:200]} -> {words}"
        return words[1:]

    def close(self) -> str:
        """Stop the harness; its stderr (sanitizer reports, leak checks at exit)."""
        if self.proc is None:
            return ""
        proc, self.proc = self.proc, None
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"harness exit status {proc.returncode}:\n{err[-6000:]}"
        return err
