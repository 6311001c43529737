"""qora.flower as a package: the extra's import error, the public names, the docs' examples."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import qora.flower

ROOT = Path(__file__).resolve().parents[2]

BLOCK_FLWR = """
import sys
class _NoFlower:
    def find_spec(self, name, path=None, target=None):
        if name == "flwr" or name.startswith("flwr."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _NoFlower())
"""


def test_import_without_flower_says_how_to_install_it():
    code = BLOCK_FLWR + "import qora, qora.native\ntry:\n    import qora.flower\nexcept ImportError as e:\n    print(e)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "qora.flower needs Flower >= 1.41, < 1.42" in proc.stdout
    assert "pip install 'qora-edge[flower]'" in proc.stdout


def test_qora_itself_imports_without_flower():
    proc = subprocess.run([sys.executable, "-c", BLOCK_FLWR + "import qora; print(qora.ByzantineAggregator)"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_public_names_are_sorted_and_exported():
    assert qora.flower.__all__ == sorted(qora.flower.__all__)
    for name in qora.flower.__all__:
        assert hasattr(qora.flower, name), name


def test_reason_codes_are_distinct_and_documented():
    codes = list(qora.flower.REASON_CODES.values())
    assert len(set(codes)) == len(codes) and 0 not in codes
    doc = (ROOT / "docs" / "flower.md").read_text()
    for reason, code in qora.flower.REASON_CODES.items():
        assert re.search(rf"\|\s*{code}\s*\|\s*`{reason}`", doc), reason


def test_every_python_block_of_docs_flower_md_runs_in_order():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "flower.md").read_text(), flags=re.S)
    assert blocks
    proc = subprocess.run([sys.executable, "-c", "\n".join(blocks)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_flwr_cli_runs_through_the_compat_shim():
    """run_local.sh falls back to it when typer < 0.19 breaks flwr 1.41's CLI (amqtt 0.11's pin)."""
    shim = ROOT / "examples" / "flower" / "flwr_cli_compat.py"
    proc = subprocess.run([sys.executable, str(shim), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"Flower version: {qora.flower.FLOWER_VERSION}"
    proc = subprocess.run([sys.executable, str(shim), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--stream" in proc.stdout, proc.stderr
