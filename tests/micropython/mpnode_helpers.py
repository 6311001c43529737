"""Shared by the tests of firmware/micropython/: where things are, how a "board" directory is
built (deploy.sh with the stand-in mpremote), and how a script runs on it -- on the real
MicroPython VM (v1.27.0, WebAssembly, under Node.js: device_run.mjs) or under CPython with the
same stand-ins.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cbuild import mpy_cross

ROOT = Path(__file__).resolve().parents[2]
FW = ROOT / "firmware" / "micropython"
HERE = Path(__file__).resolve().parent
STANDINS = HERE / "standins"
DEVICE_RUN = HERE / "device_run.mjs"
SCENARIO = HERE / "scenario_node.py"
MP_PKG = ROOT / "tools" / "micropython" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
MP_VERSION = "1.27.0"
SETUP_HINT = "run scripts/setup.sh (it does `npm ci --prefix tools/micropython`)"
if str(FW) not in sys.path:
    sys.path.append(str(FW))  # make_shard (host side); appended, so it shadows nothing

RUNTIMES = ("micropython", "cpython")



def node_exe() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed; it runs the MicroPython VM: " + SETUP_HINT)
    meta = MP_PKG / "package.json"
    if not meta.exists():
        pytest.fail("the MicroPython npm package is missing (%s): %s" % (MP_PKG, SETUP_HINT))
    version = json.loads(meta.read_text())["version"]
    assert version == MP_VERSION, "MicroPython package is %s, want %s: %s" % (version, MP_VERSION, SETUP_HINT)
    return node


def run_on(runtime: str, device: Path, script: Path | str, *, timeout: int = 300) -> list[str]:
    """Run `script` with `device` as the board's filesystem (and working directory), the
    stand-ins importable; return its stdout lines. A Python exception fails the test."""
    script = Path(script)
    if runtime == "micropython":
        cmd = [node_exe(), str(DEVICE_RUN), str(device), str(script), str(STANDINS)]
        cwd = ROOT
    else:
        boot = ("import os, sys; sys.path[:0] = [os.getcwd(), %r]; __file__ = %r; "
                "exec(compile(open(__file__).read(), __file__, 'exec'))" % (str(STANDINS), str(script)))
        cmd = [sys.executable, "-c", boot]
        cwd = device
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert proc.returncode == 0, "%s run of %s failed (exit %d):\n%s\n%s" % (
        runtime, script.name, proc.returncode, proc.stdout[-3000:], proc.stderr[-5000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout.splitlines()


def deploy(device: Path, config_dir: Path, *, mpy: bool = False, port: str = "/dev/ttyUSB0",
           board_port: str | None = None, log: Path | None = None) -> subprocess.CompletedProcess:
    """firmware/micropython/deploy.sh onto `device` (a directory) through the stand-in mpremote;
    the board answers on `board_port` (default: `port`)."""
    device.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = str(STANDINS / "bin") + os.pathsep + env["PATH"]
    env["QORA_STANDIN_DEVICE"] = str(device)
    env["QORA_STANDIN_PORT"] = board_port or port
    env["MPY_CROSS"] = mpy_cross()[0]
    if log is not None:
        env["QORA_STANDIN_LOG"] = str(log)
    args = ["bash", str(FW / "deploy.sh")] + (["--mpy"] if mpy else []) + [port, str(config_dir)]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)


def events(lines: list[str]) -> list[list]:
    return [json.loads(line[3:]) for line in lines if line.startswith("EV ")]


def end_of(lines: list[str]) -> str:
    ends = [line[4:] for line in lines if line.startswith("END ")]
    assert len(ends) == 1, "\n".join(lines)
    return ends[0]


def published(evs: list[list], kind: str) -> list[bytes]:
    """Payloads the node published on its `kind` topic (update / status), in order."""
    return [bytes.fromhex(e[2]) for e in evs if e[0] == "publish" and "/%s/" % kind in e[1]]
