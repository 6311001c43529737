"""scripts/footprint.py measures the Cortex-M4 Q16.16-only firmware build: no heap, finite stack.

Not a size threshold (docs/footprint.md reports the numbers against the issue's target);
this only proves the measurement runs and finds no allocator and no unbounded stack.
"""
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]



def test_toolchain_is_installed():
    """A missing toolchain fails (scripts/setup.sh installs it); it never skips."""
    assert shutil.which("arm-none-eabi-gcc"), "arm-none-eabi-gcc missing: run scripts/setup.sh"


@pytest.fixture(scope="module")
def footprint():
    spec = importlib.util.spec_from_file_location("footprint", ROOT / "scripts" / "footprint.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["footprint"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def m4_q16(footprint, tmp_path_factory):
    return footprint.measure("cortex-m4", "q16", tmp_path_factory.mktemp("fp-m4-q16"))


def test_no_heap_symbols(footprint, m4_q16):
    assert m4_q16.heap_symbols == []
    assert "malloc" in footprint.HEAP_SYMBOLS and "free" in footprint.HEAP_SYMBOLS


def test_stack_bounded_for_every_entry_point(footprint, m4_q16):
    assert set(m4_q16.stack) == set(footprint.Q16_ENTRIES)
    for entry, stack in m4_q16.stack.items():
        assert stack.bytes is not None, f"{entry}: {stack.text()}"
        assert stack.path and stack.path[0] == entry


def test_measures_core_flash(m4_q16):
    # the attribution reconciles with the ELF (measure() checks it) and finds the core
    assert m4_q16.flash("core") > 0
    names = {f for f, _, _ in m4_q16.functions(("core",))}
    assert {"qora_fedavg_q16", "qora_trimmed_mean_q16", "qora_multi_krum_q16"} <= names
