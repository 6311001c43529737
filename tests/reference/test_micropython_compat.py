"""The reference package is valid MicroPython: every file compiles with mpy-cross, and the
runtime modules use integers only and no CPython-only syntax."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from cbuild import mpy_cross

REF = Path(__file__).resolve().parents[2] / "host" / "qora" / "reference"
FILES = sorted(REF.glob("*.py"))
RUNTIME = [p for p in FILES if p.name in ("__init__.py", "q16.py", "aggregate.py")]



def test_reference_files_exist():
    assert {p.name for p in FILES} >= {"__init__.py", "q16.py", "aggregate.py", "golden.py"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_mpy_cross_compiles(path, tmp_path):
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run([*mpy_cross(), "-o", str(out), str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


@pytest.mark.parametrize("path", RUNTIME, ids=lambda p: p.name)
def test_runtime_modules_are_integer_only_and_plain(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        where = "%s:%s" % (path.name, getattr(node, "lineno", "?"))
        assert not isinstance(node, ast.JoinedStr), "f-string at " + where
        assert not isinstance(node, ast.AnnAssign), "annotation at " + where
        assert not isinstance(node, ast.NamedExpr), "walrus at " + where
        if isinstance(node, ast.arguments):
            for a in node.args + node.kwonlyargs + node.posonlyargs:
                assert a.annotation is None, "annotation at " + where
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.returns is None, "annotation at " + where
        if isinstance(node, ast.Constant):
            assert not isinstance(node.value, float), "float literal at " + where
        if isinstance(node, (ast.BinOp, ast.AugAssign)):
            assert not isinstance(node.op, ast.Div), "true division at " + where
        if isinstance(node, ast.Import):
            assert [a.name for a in node.names] == ["struct"], "import at " + where
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, "absolute import at " + where
        if isinstance(node, ast.Attribute):
            assert node.attr != "bit_length", "int.bit_length (not in MicroPython) at " + where
