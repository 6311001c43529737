"""The same golden vectors give byte-identical output on every target.

The vectors and the lines a passing run must print come from the pure-Python,
integers-only reference (qora.reference.golden). The C runner is built for
each target and run: natively on x86-64, under QEMU for Cortex-M4 (mps2-an386),
RISC-V rv32imc (virt) and Xtensa lx106 (sim). Each target's stdout must equal
the reference's lines exactly (every case ok, same CRC of every output byte).
A missing toolchain or emulator fails the test; it never skips.
"""

from __future__ import annotations

import pytest

from cbuild import CORE, CORE_SOURCES, STRICT, compile_ok, require, run
from qora.reference import golden

VECTORS = CORE / "tests" / "vectors"
TARGETS_DIR = CORE / "tests" / "targets"
RUNNER = [str(VECTORS / "run_vectors.c")]

# target -> (compiler, emulator, extra defines). Xtensa's toolchain has no
# soft-float library, so it builds the Q16.16-only core, as firmware would.
EMULATED = {
    "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm", []),
    "rv32": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32", []),
    "xtensa": ("xtensa-lx106-elf-gcc", "qemu-system-xtensa", ["-DQORA_NO_F32"]),
}


@pytest.fixture(scope="module")
def expected() -> list[str]:
    return golden.expected_lines()


def check_output(stdout: str, expected: list[str], target: str) -> None:
    lines = stdout.splitlines()
    failed = [line for line in lines if line.startswith(("detail", "case")) and " ok " not in line]
    assert not failed, f"{target}: failing cases:\n" + "\n".join(failed[:20])
    assert lines == expected, f"{target}: output differs from the reference's expected lines"


def run_x86_64(tmp_path) -> "subprocess.CompletedProcess":
    require("gcc")
    exe = tmp_path / "vectors"
    compile_ok(["gcc", *STRICT, "-O2", f"-I{CORE / 'include'}", f"-I{VECTORS}", *CORE_SOURCES,
                *RUNNER, str(VECTORS / "native_main.c"), "-o", str(exe)])
    return run([str(exe)])


def run_emulated(target: str, tmp_path) -> "subprocess.CompletedProcess":
    cc, qemu, defines = EMULATED[target]
    require(cc)
    require(qemu)
    require("make")
    elf = tmp_path / f"vectors-{target}.elf"
    srcs = " ".join([*CORE_SOURCES, *RUNNER, str(VECTORS / "target_main.c")])
    flags = " ".join([f"-I{CORE / 'include'}", f"-I{VECTORS}", "-Wpedantic", "-Wconversion",
                      "-Wshadow", *defines])
    build = run(["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}", "WERROR=1",
                 f"SRCS={srcs}", f"CFLAGS_EXTRA={flags}", f"OUT={elf}"])
    assert build.returncode == 0, f"build for {target} failed:\n{build.stdout}\n{build.stderr}"
    return run(["make", "-s", "-C", str(TARGETS_DIR), f"TARGET={target}", f"OUT={elf}",
                "QEMU_TIMEOUT=120", "run"], timeout=180)


@pytest.mark.cross_target
@pytest.mark.parametrize("target", ["x86_64", *EMULATED])
def test_golden_vectors(target, tmp_path, expected):
    proc = run_x86_64(tmp_path) if target == "x86_64" else run_emulated(target, tmp_path)
    assert proc.returncode == 0, (
        f"{target} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    check_output(proc.stdout, expected, target)
