"""Every Python block of README.md runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index):
    proc = subprocess.run([sys.executable, "-c", BLOCKS[index]], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"README block {index} failed:\n{BLOCKS[index]}\n{proc.stderr}"


def test_quick_start_prints_what_it_promises():
    proc = subprocess.run([sys.executable, "-c", BLOCKS[0]], capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert lines[0] == "{8: 'banned', 9: 'banned'}"
    assert lines[1].endswith("True")
    assert lines[2] == "0.52"


API = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_api_example_runs_in_order():
    """docs/api.md's examples build on each other within the page: run them in order, in one
    namespace, as a reader pasting them into one session would."""
    blocks = re.findall(r"```python\n(.*?)```", API.read_text(), flags=re.S)
    source = "\n".join(blocks)
    proc = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
