"""platformio.ini stays true to the tree: PlatformIO cannot fetch its platforms on CI, so nothing
builds it there; instead every path, source filter, include directory, library, partition table,
linker script and -D define it names is checked to exist (or to be used by the sources), the
ESP-IDF component's source list is checked the same way, and the Unity tests of the `native` env
are compiled and run with a small stand-in for Unity's header (the real Unity is PlatformIO's).
"""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest
from cbuild import ROOT, SANITIZE, compile_ok, require

INI = ROOT / "platformio.ini"
ENVS = {"esp32dev", "nucleo_f446re", "native"}


def load() -> configparser.ConfigParser:
    # PlatformIO's own reading: ';' / '#' start a comment only after whitespace, no interpolation
    # by configparser (PlatformIO expands ${section.option} itself).
    cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), interpolation=None)
    cp.read(INI)
    return cp


def option(cp: configparser.ConfigParser, env: str, name: str) -> str:
    """An env's option as PlatformIO resolves it: its own, else [env]'s, ${x.y} expanded."""
    section = f"env:{env}"
    if cp.has_option(section, name):
        value = cp.get(section, name)
    elif cp.has_option("env", name):
        value = cp.get("env", name)
    else:
        return ""
    return re.sub(r"\$\{(\w+)\.(\w+)\}", lambda m: cp.get(m.group(1), m.group(2), fallback=""), value)


def words(value: str) -> list[str]:
    return value.split()


def src_dir(cp) -> Path:
    return ROOT / cp.get("platformio", "src_dir")


def all_c_sources() -> str:
    files = [*ROOT.glob("firmware/**/*.c"), *ROOT.glob("firmware/**/*.h"), *ROOT.glob("shared_c/src/*.c"),
             *ROOT.glob("shared_c/include/**/*.h"), *ROOT.glob("test/**/*.c")]
    return "\n".join(p.read_text(errors="replace") for p in files)


def test_the_ini_names_the_three_envs_and_a_default():
    cp = load()
    assert {s.split(":", 1)[1] for s in cp.sections() if s.startswith("env:")} == ENVS
    assert cp.get("platformio", "default_envs") in ENVS


def test_project_directories_exist():
    cp = load()
    assert src_dir(cp).is_dir()
    test_dir = ROOT / cp.get("platformio", "test_dir")
    assert (test_dir / "test_native" / "test_core.c").is_file()
    for env in ENVS:
        for name in words(option(cp, env, "test_ignore")):
            assert (test_dir / name).is_dir(), f"{env}: test_ignore names no test folder {name}"


@pytest.mark.parametrize("env", sorted(ENVS))
def test_include_dirs_exist(env):
    cp = load()
    for flag in words(option(cp, env, "build_flags")):
        if flag.startswith("-I"):
            assert (ROOT / flag[2:]).is_dir(), f"{env}: include dir {flag[2:]} does not exist"


@pytest.mark.parametrize("env", sorted(ENVS))
def test_defines_are_used_by_the_sources(env):
    cp = load()
    sources = all_c_sources()
    for flag in words(option(cp, env, "build_flags")):
        if flag.startswith("-D"):
            name = flag[2:].split("=", 1)[0]
            assert re.search(rf"\b{name}\b", sources), f"{env}: -D{name} is used by no source"


@pytest.mark.parametrize("env", sorted(ENVS))
def test_library_dependencies_are_libraries_in_the_tree(env):
    cp = load()
    for dep in [d.strip() for d in option(cp, env, "lib_deps").splitlines() if d.strip()]:
        _, _, url = dep.partition("=")
        assert url.startswith("symlink://"), f"{env}: {dep} is not a local library"
        lib = ROOT / url[len("symlink://"):]
        assert (lib / "include").is_dir() and list((lib / "src").glob("*.c")), \
            f"{env}: {lib} is not a PlatformIO library (include/ and src/*.c)"


def test_the_stm32_env_builds_the_stm32_port():
    cp = load()
    filt = option(cp, "nucleo_f446re", "build_src_filter")
    included = []
    for action, pattern in re.findall(r"([+-])<([^>]+)>", filt):
        matches = sorted((src_dir(cp)).glob(pattern))
        if action == "+":
            assert matches, f"build_src_filter +<{pattern}> matches nothing under {src_dir(cp)}"
            included += [m.resolve() for m in matches]
    port = ROOT / "firmware" / "ports" / "stm32"
    assert set(included) == {p.resolve() for p in port.glob("*.c")}
    ld = ROOT / option(cp, "nucleo_f446re", "board_build.ldscript")
    assert ld.is_file() and ld.parent == port


def test_the_esp32_env_files_exist():
    cp = load()
    assert (ROOT / option(cp, "esp32dev", "board_build.partitions")).is_file()
    args = option(cp, "esp32dev", "board_build.cmake_extra_args")
    m = re.search(r"-DSDKCONFIG_DEFAULTS=(\S+)", args)
    assert m
    for path in m.group(1).split(";"):
        assert (ROOT / path).is_file(), path
    # the partition table named for PlatformIO builds (relative to the repository root)
    overlay = (ROOT / m.group(1).split(";")[-1]).read_text()
    name = re.search(r'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="([^"]+)"', overlay).group(1)
    assert (ROOT / name).resolve() == (ROOT / option(cp, "esp32dev", "board_build.partitions")).resolve()
    # ... and the one named for idf.py builds (relative to firmware/ports/esp32)
    defaults = (ROOT / m.group(1).split(";")[0]).read_text()
    name = re.search(r'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="([^"]+)"', defaults).group(1)
    assert (ROOT / "firmware" / "ports" / "esp32" / name).is_file()
    assert option(cp, "esp32dev", "lib_deps").strip() == "", "the component builds the core itself"


def test_the_esp_idf_component_lists_existing_sources():
    cp = load()
    cmake = (src_dir(cp) / "CMakeLists.txt").read_text()
    assert "idf_component_register" in cmake
    here = src_dir(cp)
    variables = {m.group(1): m.group(2).replace("${CMAKE_CURRENT_LIST_DIR}", str(here))
                 for m in re.finditer(r'set\((\w+) "([^"]+)"\)', cmake)}
    for var, pattern in re.findall(r'file\(GLOB (\w+) "([^"]+)"\)', cmake):
        path = re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], pattern)
        assert list(Path(path).parent.glob(Path(path).name)), f"{var}: {path} matches nothing"
    for name in re.findall(r'"([\w.]+\.c)"', cmake):
        assert (here / name).is_file(), name
    for inc in re.findall(r'"(\$\{qnode_\w+\}/include)"', cmake):
        assert Path(re.sub(r"\$\{(\w+)\}", lambda m: variables[m.group(1)], inc)).is_dir()
    # the partition the firmware maps is the one partitions.csv declares
    csv = (ROOT / option(cp, "esp32dev", "board_build.partitions")).read_text()
    row = next(r for r in csv.splitlines() if r.startswith("qnode"))
    label, ptype, _, offset, _ = [c.strip() for c in row.split(",")]
    main_c = (here / "qnode_main.c").read_text()
    assert f'(esp_partition_type_t){ptype}, ESP_PARTITION_SUBTYPE_ANY, "{label}"' in main_c
    assert f"write_flash {offset} node.blob" in main_c


# ---- the native env's Unity tests, on a stand-in for unity.h -----------------------------------

UNITY_STANDIN = r"""
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
extern int u_failures, u_tests; extern jmp_buf u_jump; extern const char *u_name;
#define U_FAIL(what) do { printf("%s:%d:%s:FAIL: %s\n", __FILE__, __LINE__, u_name, what); \
    longjmp(u_jump, 1); } while (0)
#define TEST_ASSERT_TRUE(c) do { if (!(c)) U_FAIL(#c); } while (0)
#define TEST_ASSERT_EQUAL_INT(a, b) do { if ((long long)(a) != (long long)(b)) U_FAIL(#a " == " #b); } while (0)
#define TEST_ASSERT_EQUAL_INT32 TEST_ASSERT_EQUAL_INT
#define TEST_ASSERT_EQUAL_UINT8 TEST_ASSERT_EQUAL_INT
#define TEST_ASSERT_EQUAL_UINT32 TEST_ASSERT_EQUAL_INT
#define TEST_ASSERT_EQUAL_size_t TEST_ASSERT_EQUAL_INT
#define TEST_ASSERT_NOT_EQUAL(a, b) do { if ((long long)(a) == (long long)(b)) U_FAIL(#a " != " #b); } while (0)
#define TEST_ASSERT_EQUAL_MEMORY(a, b, n) do { if (memcmp((a), (b), (n))) U_FAIL("bytes of " #b); } while (0)
#define TEST_ASSERT_EQUAL_UINT8_ARRAY(a, b, n) TEST_ASSERT_EQUAL_MEMORY(a, b, n)
#define TEST_ASSERT_EQUAL_STRING(a, b) do { if (strcmp((a), (b))) U_FAIL(#b " == " #a); } while (0)
void setUp(void);
void tearDown(void);
#define UNITY_BEGIN() (u_failures = 0, u_tests = 0)
#define RUN_TEST(f) do { u_name = #f; u_tests++; setUp(); \
    if (setjmp(u_jump) == 0) { f(); printf("%s:PASS\n", #f); } else { u_failures++; } tearDown(); } while (0)
#define UNITY_END() (printf("%d Tests %d Failures 0 Ignored\n", u_tests, u_failures), u_failures)
"""
UNITY_STANDIN_C = '#include "unity.h"\nint u_failures, u_tests; jmp_buf u_jump; const char *u_name;\n'


def test_the_native_unity_tests_pass(tmp_path):
    require("gcc")
    cp = load()
    (tmp_path / "unity.h").write_text(UNITY_STANDIN)
    (tmp_path / "unity.c").write_text(UNITY_STANDIN_C)
    flags = [f for f in words(option(cp, "native", "build_flags")) if not f.startswith("-I")]
    includes = [f"-I{ROOT / f[2:]}" for f in words(option(cp, "native", "build_flags")) if f.startswith("-I")]
    sources = [str(p) for p in sorted((ROOT / "firmware" / "core" / "src").glob("*.c"))]
    sources += [str(p) for p in sorted((ROOT / "shared_c" / "src").glob("*.c"))]
    exe = tmp_path / "test_core"
    compile_ok(["gcc", *flags, "-Werror", *SANITIZE, f"-I{tmp_path}", *includes,
                str(ROOT / cp.get("platformio", "test_dir") / "test_native" / "test_core.c"),
                str(tmp_path / "unity.c"), *sources, "-o", str(exe)])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^(\d+) Tests 0 Failures", proc.stdout, re.MULTILINE), proc.stdout
    assert int(re.search(r"^(\d+) Tests", proc.stdout, re.MULTILINE).group(1)) >= 8
