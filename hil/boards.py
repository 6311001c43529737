"""Boards the HIL rig can drive: a node process, a QEMU-emulated board, a real board.

Every board exposes ``url`` (what the gateway opens: socket://… or a serial device),
``reset()`` (power-cycle: the process / emulator restarts with its flash — the state file —
kept) and ``stop()``. QEMU boards get their config blob through QEMU's generic loader, as a
real board gets it flashed into its config partition; their flash is a file in their own
directory (semihosting), so a reset keeps it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"

# where each port expects its config blob (firmware/ports/*/README or linker script)
QEMU_TARGETS = {
    "qemu-m4": {"binary": "qemu-system-arm", "machine": ["-M", "mps2-an386"], "elf": "qemu-mps2/qnode.elf",
                "blob_addr": "0x00300000", "extra": []},
    "qemu-rv32": {"binary": "qemu-system-riscv32", "machine": ["-M", "virt", "-bios", "none"],
                  "elf": "qemu-riscv/qnode.elf", "blob_addr": "0x80400000", "extra": []},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def build_firmware(target: str, build_dir: Path) -> Path:
    """``make -C firmware <target>`` into build_dir; returns the image / binary."""
    proc = subprocess.run(["make", "-C", str(FIRMWARE), target, f"BUILD={build_dir}"], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"firmware build {target} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return build_dir / ("posix/qnode-posix" if target == "posix" else QEMU_TARGETS[
        {"qemu-mps2": "qemu-m4", "qemu-riscv": "qemu-rv32"}[target]]["elf"])


class Board:
    kind = "board"

    def __init__(self, node: str, workdir: Path) -> None:
        self.node = node
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "Board":
        log = open(self.workdir / "board.log", "ab")
        self.proc = subprocess.Popen(self._command(), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def reset(self) -> None:
        """Power-cycle: the board restarts from its flash (state file kept)."""
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.workdir / "board.log"
        return path.read_text(errors="replace") if path.exists() else ""


class PosixBoard(Board):
    kind = "posix"

    def __init__(self, node: str, workdir: Path, binary: Path, blob: Path) -> None:
        super().__init__(node, workdir)
        self.binary, self.blob = binary, blob

    def _command(self) -> list[str]:
        return [str(self.binary), "--config", str(self.blob), "--listen", str(self.port),
                "--state", str(self.workdir / "qnode.state")]


class QemuBoard(Board):
    def __init__(self, node: str, workdir: Path, kind: str, elf: Path, blob: Path) -> None:
        super().__init__(node, workdir)
        self.kind = kind
        self.elf, self.blob = elf, blob
        target = QEMU_TARGETS[kind]
        if shutil.which(target["binary"]) is None:
            raise RuntimeError(f"{target['binary']} is not installed: run scripts/setup.sh")

    def _command(self) -> list[str]:
        t = QEMU_TARGETS[self.kind]
        return [t["binary"], *t["machine"], "-nographic", "-monitor", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(self.elf),
                "-device", f"loader,file={self.blob},addr={t['blob_addr']},force-raw=on",
                "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=off", *t["extra"]]


class RealBoard(Board):
    """A flashed board on a serial port (QORA_HIL_PORTS). Reset pulses DTR/RTS (the ESP32
    dev-board auto-reset wiring; an ST-Link VCP has none: the reset scenario is skipped there)."""

    kind = "real"

    def __init__(self, node: str, workdir: Path, device: str) -> None:
        super().__init__(node, workdir)
        self.device = device

    @property
    def url(self) -> str:
        return self.device

    def start(self) -> "Board":
        return self

    def stop(self) -> None:
        pass

    def reset(self) -> None:
        import serial

        with serial.serial_for_url(self.device) as s:
            s.dtr = False
            s.rts = True
            time.sleep(0.1)
            s.rts = False


def real_blobs() -> list[str]:
    """The config blobs the real boards were flashed with, in QORA_HIL_PORTS order."""
    value = os.environ.get("QORA_HIL_BLOBS", "").strip()
    return [p.strip() for p in value.split(",") if p.strip()]


def real_ports() -> list[str]:
    value = os.environ.get("QORA_HIL_PORTS", "").strip()
    return [p.strip() for p in value.split(",") if p.strip()]
