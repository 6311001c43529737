"""The C core builds warning-free under gcc and clang, and its unit tests and the
golden-vector runner pass under AddressSanitizer + UBSan."""

from __future__ import annotations

import pytest

from cbuild import CORE, CORE_SOURCES, SANITIZE, STRICT, compile_ok, require, run

COMPILERS = ["gcc", "clang"]


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("opts", [["-O2"], ["-O3", "-march=native"], ["-Os", "-DQORA_NO_F32"],
                                  ["-O2", "-DQORA_BLOCK_COLS=8"], ["-O2", "-DQORA_SMALL=1"],
                                  ["-O2", "-DQORA_PORTABLE_DIV"]], ids=lambda o: " ".join(o))
def test_core_builds_without_warnings(cc, opts, tmp_path):
    require(cc)
    for src in CORE_SOURCES:
        obj = tmp_path / (src.rsplit("/", 1)[-1] + ".o")
        compile_ok([cc, *STRICT, *opts, f"-I{CORE / 'include'}", "-c", src, "-o", str(obj)])


# Variants: the default host build; a microcontroller block size; the size-first
# code (QORA_SMALL, what -Os firmware gets); the 32-bit targets' own 64-bit division.
VARIANTS = {
    "default": [],
    "block8": ["-DQORA_BLOCK_COLS=8"],
    "small": ["-DQORA_SMALL=1"],
    "portable-div": ["-DQORA_PORTABLE_DIV"],
}


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_unit_tests_pass_under_sanitizers(cc, variant, tmp_path):
    require(cc)
    exe = tmp_path / "test_core"
    compile_ok([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE, *VARIANTS[variant],
                f"-I{CORE / 'include'}", *CORE_SOURCES, str(CORE / "tests/unit/test_core.c"),
                "-lm", "-o", str(exe)])
    proc = run([str(exe)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failures" in proc.stdout


@pytest.mark.parametrize("cc", COMPILERS)
@pytest.mark.parametrize("variant", ["small", "portable-div"])
def test_golden_vectors_pass_under_sanitizers(cc, variant, tmp_path):
    """The size-first and 32-bit-division code paths give the reference's bytes."""
    from qora.reference import golden

    require(cc)
    vectors = CORE / "tests" / "vectors"
    exe = tmp_path / "vectors"
    compile_ok([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE, *VARIANTS[variant],
                f"-I{CORE / 'include'}", f"-I{vectors}", *CORE_SOURCES,
                str(vectors / "run_vectors.c"), str(vectors / "native_main.c"), "-o", str(exe)])
    proc = run([str(exe)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.splitlines() == golden.expected_lines()
