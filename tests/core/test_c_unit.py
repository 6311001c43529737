"""The C core builds warning-free under gcc and clang, and its unit tests and the
golden-vector runner pass under AddressSanitizer + UBSan."""

from __future__ import annotations

import pytest

from cbuild import CORE, CORE_SOURCES, SANITIZE, STRICT, compile_ok, require, run

COMPILERS = ["gcc", "clang"]


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opts", [["-O2"], ["-O3", "-march=native"], ["-Os", "-DQORA_NO_F32"],
                                  ["-O2", "-DQORA_BLOCK_COLS=8"]], ids=lambda o: " ".join(o))
def test_core_builds_without_warnings(cc, opts, tmp_path):
    require(cc)
    for src in CORE_SOURCES:
        obj = tmp_path / (src.rsplit("/", 1)[-1] + ".o")
        compile_ok([cc, *STRICT, *opts, f"-I{CORE / 'include'}", "-c", src, "-o", str(obj)])


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("block", ["64", "8"])
def test_unit_tests_pass_under_sanitizers(cc, block, tmp_path):
    require(cc)
    exe = tmp_path / "test_core"
    compile_ok([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE, f"-DQORA_BLOCK_COLS={block}",
                f"-I{CORE / 'include'}", *CORE_SOURCES, str(CORE / "tests/unit/test_core.c"),
                "-lm", "-o", str(exe)])
    proc = run([str(exe)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failures" in proc.stdout
