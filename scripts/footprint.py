#!/usr/bin/env python3
"""Measure the flash, RAM, stack and heap footprint of the Qora Edge C core.

    python scripts/footprint.py            # measure every target, rewrite docs/footprint.md
    python scripts/footprint.py --check    # also exit 1 if the issue's target is missed
    python scripts/footprint.py --keep build/footprint   # keep ELFs, maps, .su, .ci

For each target (Cortex-M0+, Cortex-M4F, RV32IMC) and configuration (Q16.16 only,
Q16.16 only with QORA_BLOCK_COLS=8, full with float32) the script:

  1. compiles every shared_c/src/*.c at -Os -ffunction-sections -fdata-sections
     -ffreestanding -std=c99 with -fstack-usage -fcallgraph-info=su;
  2. writes and compiles a stub whose entry point `_start` references every public
     aggregator entry point of the configuration (and their *_scratch_size functions);
  3. links stub + core + the target's libc (memcpy/memset only get pulled in) + libgcc with
     -nostdlib -Wl,--gc-sections, a minimal linker script of its own and -Wl,-Map;
  4. attributes every linked input section (from the map file) to the core's objects,
     the stub, libgcc or libc; flash = text + rodata + unwind tables + .data image,
     RAM = data + bss;
  5. computes the worst-case stack of every entry point over the call graph: the core's
     frames come from .su, its edges from .ci; library functions (memcpy, __udivmoddi4,
     ...) have no .su, so their frames and callees are read from the linked ELF's
     disassembly. Recursion, indirect calls or dynamic stack give "unbounded";
  6. checks that the linked ELF neither defines nor references an allocator symbol
     (malloc, free, calloc, realloc and their newlib/picolibc variants) and that no core
     object references one.

A build that fails is reported in the document with the exact command and compiler
output. Exit status: 0 all measured, 2 a build failed, 1 (--check only) target missed.

Standard library only (plus `rich` for the console table when it is installed).
`measure(target, config)` is the entry point the tests use.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_SRC = ROOT / "shared_c" / "src"
CORE_INC = ROOT / "shared_c" / "include"
DOC = ROOT / "docs" / "footprint.md"

COMMAND = "python scripts/footprint.py"
ISSUE_TARGET = "≤ 4 KiB flash on Cortex-M4 for the Q16.16 aggregators, zero heap"
FLASH_LIMIT = 4096
VERDICT_TARGET = "cortex-m4"
VERDICT_CONFIG = "q16"

COMMON_CFLAGS = ["-Os", "-ffunction-sections", "-fdata-sections", "-ffreestanding", "-std=c99"]
ANALYSIS_CFLAGS = ["-fstack-usage", "-fcallgraph-info=su"]

PICOLIBC = Path("/usr/lib/picolibc/riscv64-unknown-elf")


@dataclasses.dataclass(frozen=True)
class Target:
    key: str
    label: str
    prefix: str  # binutils / gcc prefix
    arch: tuple[str, ...]
    libc: str  # "newlib-nano" or "picolibc"

    @property
    def cc(self) -> str:
        return self.prefix + "gcc"

    def tool(self, name: str) -> str:
        return self.prefix + name


TARGETS = {
    t.key: t
    for t in (
        Target("cortex-m0plus", "Cortex-M0+", "arm-none-eabi-",
               ("-mcpu=cortex-m0plus", "-mthumb"), "newlib-nano"),
        Target("cortex-m4", "Cortex-M4F", "arm-none-eabi-",
               ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
               "newlib-nano"),
        Target("rv32imc", "RISC-V RV32IMC", "riscv64-unknown-elf-",
               ("-march=rv32imc", "-mabi=ilp32"), "picolibc"),
    )
}

Q16_ENTRIES = (
    "qora_fedavg_q16",
    "qora_trimmed_mean_q16",
    "qora_median_q16",
    "qora_krum_q16",
    "qora_multi_krum_q16",
    "qora_deviation_finish_q16",
    "qora_fedavg_scratch_size",
    "qora_trimmed_mean_scratch_size",
    "qora_median_scratch_size",
    "qora_multi_krum_scratch_size",
)
F32_ENTRIES = (
    "qora_fedavg_f32",
    "qora_trimmed_mean_f32",
    "qora_median_f32",
    "qora_krum_f32",
    "qora_multi_krum_f32",
    "qora_deviation_finish_f32",
)


@dataclasses.dataclass(frozen=True)
class Config:
    key: str
    label: str
    defines: tuple[str, ...]
    entries: tuple[str, ...]


CONFIGS = {
    c.key: c
    for c in (
        Config("q16", "Q16.16 only, -Os", ("-DQORA_NO_F32",), Q16_ENTRIES),
        Config("q16-b8", "Q16.16 only, -Os, QORA_BLOCK_COLS=8",
               ("-DQORA_NO_F32", "-DQORA_BLOCK_COLS=8"), Q16_ENTRIES),
        Config("full", "full (Q16.16 + float32), -Os", (), Q16_ENTRIES + F32_ENTRIES),
    )
}

# Allocator symbols: the C names and the reentrant / internal ones newlib and picolibc use.
HEAP_SYMBOLS = (
    "malloc", "free", "calloc", "realloc",
    "_malloc_r", "_free_r", "_calloc_r", "_realloc_r",
    "aligned_alloc", "memalign", "posix_memalign", "valloc", "pvalloc", "reallocarray",
    "sbrk", "_sbrk", "_sbrk_r",
)

LINKER_SCRIPT = """\
/* Minimal image for footprint measurement (written by scripts/footprint.py). */
ENTRY(_start)
MEMORY
{
    FLASH (rx)  : ORIGIN = 0x00000000, LENGTH = 1M
    RAM   (rwx) : ORIGIN = 0x20000000, LENGTH = 256K
}
SECTIONS
{
    .text       : { KEEP(*(.text._start)) *(.text .text.*) } > FLASH
    .rodata     : { *(.rodata .rodata.* .srodata .srodata.*) } > FLASH
    .ARM.extab  : { *(.ARM.extab*) } > FLASH
    .ARM.exidx  : { *(.ARM.exidx*) } > FLASH
    .eh_frame   : { *(.eh_frame*) } > FLASH
    .data       : { *(.data .data.* .sdata .sdata.*) } > RAM AT > FLASH
    .tdata      : { *(.tdata .tdata.*) } > RAM AT > FLASH
    .bss (NOLOAD) : { *(.bss .bss.* .sbss .sbss.* COMMON) } > RAM
    .tbss (NOLOAD) : { *(.tbss .tbss.*) } > RAM
}
"""

# Output section of the script above -> kind.
SECTION_KIND = {
    ".text": "text",
    ".rodata": "rodata",
    ".ARM.extab": "unwind",
    ".ARM.exidx": "unwind",
    ".eh_frame": "unwind",
    ".data": "data",
    ".tdata": "data",
    ".bss": "bss",
    ".tbss": "bss",
}
NON_ALLOC_PREFIXES = (".debug", ".comment", ".ARM.attributes", ".riscv.attributes",
                      ".note", ".gnu.attributes", ".stab", ".symtab", ".strtab", ".shstrtab")
FLASH_KINDS = ("text", "rodata", "unwind", "data", "other")
RAM_KINDS = ("data", "bss")


class BuildError(RuntimeError):
    """A compile or link step failed; str() holds the command and the tool's output."""


# --------------------------------------------------------------------------- running tools


def run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:  # the tool is not installed
        raise BuildError("$ " + " ".join(cmd) + f"\n{e}") from e
    if proc.returncode != 0:
        raise BuildError(
            "$ " + " ".join(cmd) + f"\n(exit status {proc.returncode})\n"
            + (proc.stdout + proc.stderr).strip()
        )
    return proc.stdout


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
    except OSError as e:
        return f"unavailable ({e})"
    return out.splitlines()[0].strip() if out else "unavailable"


def libc_paths(target: Target) -> tuple[Path, list[str]]:
    """The libc archive to link (memcpy/memset) and any include flags the target needs."""
    if target.libc == "newlib-nano":
        for name in ("libc_nano.a", "libc.a"):
            p = run([target.cc, *target.arch, f"-print-file-name={name}"]).strip()
            if os.path.isabs(p) and os.path.exists(p):
                return Path(p), []
        raise BuildError(f"{target.key}: no newlib libc_nano.a/libc.a for {target.cc} "
                         "(install libnewlib-arm-none-eabi)")
    multidir = run([target.cc, *target.arch, "-print-multi-directory"]).strip()
    lib = PICOLIBC / "lib" / multidir / "libc.a"
    inc = PICOLIBC / "include"
    if not lib.exists() or not (inc / "string.h").exists():
        raise BuildError(f"{target.key}: picolibc not found at {PICOLIBC} "
                         f"(need {lib} and {inc}/string.h; install picolibc-riscv64-unknown-elf)")
    return lib, ["-isystem", str(inc)]


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class Section:
    name: str  # input section name (.text.qora_fedavg_q16)
    kind: str  # text / rodata / unwind / data / bss / other
    size: int
    owner: str  # object file or archive(member) as the map names it
    category: str  # core / stub / libgcc / libc / other / padding
    symbols: list[str]

    def function(self) -> str:
        """A readable name: the function of a -ffunction-sections section, else its symbols."""
        for prefix in (".text.", ".rodata.", ".data.", ".bss.", ".sdata.", ".sbss.", ".srodata.",
                       ".ARM.exidx.text.", ".ARM.extab.text."):
            if self.name.startswith(prefix) and len(self.name) > len(prefix):
                return self.name[len(prefix):]
        if self.symbols:
            return " / ".join(self.symbols)
        return f"{self.name} ({short_owner(self.owner)})"


@dataclasses.dataclass
class Stack:
    bytes: int | None  # None = unbounded
    path: list[str]
    reason: str = ""

    def text(self) -> str:
        return str(self.bytes) if self.bytes is not None else f"unbounded ({self.reason})"


@dataclasses.dataclass
class Measurement:
    target: Target
    config: Config
    sections: list[Section]
    members: list[tuple[str, str]]  # (archive member, "referenced by (symbol)")
    stack: dict[str, Stack]  # entry point -> worst case
    heap_symbols: list[str]  # allocator symbols found (must be empty)
    image_flash: int  # from the linked ELF's section headers, for the cross-check
    image_ram: int
    workdir: Path

    def size(self, categories: tuple[str, ...], kinds: tuple[str, ...]) -> int:
        return sum(s.size for s in self.sections if s.category in categories and s.kind in kinds)

    def flash(self, *categories: str) -> int:
        return self.size(categories, FLASH_KINDS)

    def ram(self, *categories: str) -> int:
        return self.size(categories, RAM_KINDS)

    @property
    def pulled_in_flash(self) -> int:
        """Everything a firmware calling the entry points gets: core + libgcc + libc."""
        return self.flash("core", "libgcc", "libc", "padding", "other")

    @property
    def pulled_in_ram(self) -> int:
        return self.ram("core", "libgcc", "libc", "padding", "other")

    @property
    def worst_stack(self) -> Stack:
        stacks = list(self.stack.values())
        unbounded = [s for s in stacks if s.bytes is None]
        if unbounded:
            return unbounded[0]
        return max(stacks, key=lambda s: s.bytes)

    def runtime_members(self) -> list[tuple[str, str, int, list[str], str]]:
        """(category, member, flash bytes, symbols, first reference) for every libgcc/libc
        archive member that still has code in the image after --gc-sections."""
        sizes: dict[str, int] = {}
        syms: dict[str, list[str]] = {}
        for s in self.sections:
            if s.category in ("libgcc", "libc") and s.kind in FLASH_KINDS:
                sizes[s.owner] = sizes.get(s.owner, 0) + s.size
                names = syms.setdefault(s.owner, [])
                names += [n for n in s.symbols if n not in names]
        why = dict(self.members)
        rows = []
        for owner, n in sizes.items():
            cat = "libgcc" if "libgcc.a(" in owner else "libc"
            rows.append((cat, short_owner(owner), n, syms[owner],
                         re.sub(r"\S+/", "", why.get(owner, "?"))))
        return sorted(rows, key=lambda r: (r[0] != "libgcc", -r[2]))

    def functions(self, categories=("core", "libgcc", "libc")) -> list[tuple[str, str, int]]:
        """(function, origin, flash bytes), largest first."""
        rows: dict[tuple[str, str], int] = {}
        text_of: dict[str, list[str]] = {}
        for s in self.sections:
            if s.kind == "text":
                text_of.setdefault(s.owner, []).append(s.function())
        for s in self.sections:
            if s.category in categories and s.kind in FLASH_KINDS and s.size:
                name = s.function()
                owner_funcs = text_of.get(s.owner, [])
                if s.kind == "unwind" and name.startswith(".") and len(owner_funcs) == 1:
                    name = owner_funcs[0]  # a library member's unwind entry: its function
                key = (name, origin(s))
                rows[key] = rows.get(key, 0) + s.size
        return sorted(((f, o, n) for (f, o), n in rows.items()), key=lambda r: (-r[2], r[0]))


def short_owner(owner: str) -> str:
    m = re.match(r"(.*/)?([^/]+\.a)\((.+)\)$", owner)
    if m:
        return f"{m.group(2)}({m.group(3)})"
    return Path(owner).name


def origin(s: Section) -> str:
    if s.category == "core":
        return "core " + Path(s.owner).with_suffix(".c").name
    m = re.match(r".*\((.+)\)$", s.owner)
    return f"{s.category} ({m.group(1) if m else short_owner(s.owner)})"


# --------------------------------------------------------------------------- map file


_IN_SECTION = re.compile(
    r"^ (\.\S+|COMMON)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.+?))?\s*$")
_CONTINUATION = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(.+?)\s*$")
_SYMBOL = re.compile(r"^\s+0x[0-9a-fA-F]+\s+([A-Za-z_$.][\w$.@]*)\s*$")
_FILL = re.compile(r"^ \*fill\*\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)")
_OUT_SECTION = re.compile(r"^(\.\S+|/DISCARD/)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+))?")


def parse_map(text: str, categorize) -> tuple[list[Section], list[tuple[str, str]]]:
    """Input sections of the link map with their sizes and owners; archive members and why."""
    lines = text.splitlines()
    members: list[tuple[str, str]] = []
    try:
        start = lines.index("Archive member included to satisfy reference by file (symbol)")
        i = start + 1
        while i < len(lines) and not lines[i].startswith(("Discarded input sections",
                                                          "Memory Configuration",
                                                          "Allocating common symbols")):
            line = lines[i]
            if line and not line[0].isspace():
                parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
                if len(parts) == 2:
                    members.append((parts[0], parts[1]))
                elif i + 1 < len(lines):
                    members.append((parts[0], lines[i + 1].strip()))
                    i += 1
            i += 1
    except ValueError:
        pass

    try:
        i = lines.index("Linker script and memory map") + 1
    except ValueError as e:
        raise BuildError("map file has no 'Linker script and memory map' part") from e

    # Entries of each output section in address order: (address, listed size, Section or
    # None for *fill*). Sizes are taken from address differences, not the listed sizes:
    # merged constant sections (.rodata.cst8, .str1.1) are listed with their size before
    # merging but overlap the next entry once merged. The totals then add up to the
    # output sections exactly.
    sections: list[Section] = []
    out: tuple[str, int, int] | None = None  # kind, start, size
    entries: list[tuple[int, int, Section | None]] = []

    def flush() -> None:
        if out is None:
            return
        kind, start, size = out
        end = start + size
        fill = 0
        for k, (addr, listed, sec) in enumerate(entries):
            nxt = entries[k + 1][0] if k + 1 < len(entries) else end
            eff = max(0, nxt - addr)
            if sec is None:
                fill += eff  # padding before a section exists for its alignment: charge it
            else:
                sec.size = eff + fill
                fill = 0
                sections.append(sec)
        if fill:
            sections.append(Section("*fill*", kind, fill, "", "padding", []))

    current: Section | None = None
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if not line[0].isspace():
            m = _OUT_SECTION.match(line)
            if not m:
                continue
            flush()
            entries, current, out = [], None, None
            name, start, size = m.group(1), m.group(2), m.group(3)
            if start is None and i < len(lines):
                c = re.match(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)", lines[i])
                if c:
                    start, size = c.groups()
                    i += 1
            if start is None:
                continue  # empty output section
            if name in SECTION_KIND:
                kind = SECTION_KIND[name]
            elif name.startswith(NON_ALLOC_PREFIXES) or name == "/DISCARD/":
                continue
            else:
                kind = "other"
            out = (kind, int(start, 16), int(size, 16))
            continue
        if out is None:
            continue
        m = _FILL.match(line)
        if m:
            if int(m.group(2), 16):
                entries.append((int(m.group(1), 16), int(m.group(2), 16), None))
            continue
        m = _IN_SECTION.match(line)
        if m:
            name, addr, size, owner = m.group(1), m.group(2), m.group(3), m.group(4)
            if size is None:
                c = _CONTINUATION.match(lines[i]) if i < len(lines) else None
                if not c:
                    continue  # a section named alone with no size: nothing linked
                addr, size, owner = c.groups()
                i += 1
            current = Section(name, out[0], 0, owner, categorize(owner), [])
            if int(size, 16):  # empty input sections take no room
                entries.append((int(addr, 16), int(size, 16), current))
            continue
        m = _SYMBOL.match(line)
        if m and current is not None:
            current.symbols.append(m.group(1))
    flush()
    return [s for s in sections if s.size], members


# --------------------------------------------------------------------------- stack analysis


@dataclasses.dataclass
class Node:
    frame: int | None  # bytes, None = unknown
    qualifier: str  # static / dynamic / dynamic,bounded / disasm / unknown
    callees: list[str]
    label: str
    note: str = ""


_CI_NODE = re.compile(r'^node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_CI_STACK = re.compile(r"\\n(\d+) bytes \(([^)]*)\)")
_SU_LINE = re.compile(r"^(.*):(\d+):(\d+):(\S+)\t(\d+)\t(\S+)\s*$")


def parse_callgraph(ci_files: list[Path], su_files: list[Path]) -> dict[str, Node]:
    """The core's functions: frames from the .su files, edges from the .ci files.

    .ci titles a static function "<source>:<name>", a global one "<name>"; its label gives
    the definition's "<source>:<line>:<col>", which is how .su names it, and the frame too
    (cross-checked against .su)."""
    su: dict[str, tuple[int, str]] = {}
    for f in su_files:
        for line in f.read_text().splitlines():
            m = _SU_LINE.match(line)
            if m:
                su[":".join(m.group(1, 2, 3, 4))] = (int(m.group(5)), m.group(6))
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    for ci in ci_files:
        for line in ci.read_text().splitlines():
            m = _CI_NODE.match(line)
            if m:
                title, label = m.groups()
                ci_stack = _CI_STACK.search(label)
                if not ci_stack:
                    continue  # declared here, defined elsewhere (or a libcall)
                parts = label.split("\\n")
                where = f"{parts[1]}:{parts[0]}" if len(parts) > 1 else ""
                if where not in su:
                    raise BuildError(f"no .su entry for {title} ({where})")
                frame, qualifier = su[where]
                if frame != int(ci_stack.group(1)):
                    raise BuildError(f".su and .ci disagree on {title}: {frame} vs "
                                     f"{ci_stack.group(1)} bytes")
                nodes[title] = Node(frame, qualifier, [], parts[0])
                continue
            m = _CI_EDGE.match(line)
            if m:
                edges.append((m.group(1), m.group(2)))
    for src, dst in edges:
        if src in nodes and dst not in nodes[src].callees:
            nodes[src].callees.append(dst)
    return nodes


_OBJ_FUNC = re.compile(r"^([0-9a-fA-F]+) <([^>]+)>:\s*$")
_OBJ_INSN = re.compile(r"^\s*[0-9a-fA-F]+:\s+(\S+)\s*(.*)$")
_TARGET_SYM = re.compile(r"<([^>+]+)(\+0x[0-9a-fA-F]+)?>")


def _reglist_bytes(text: str, vector: bool) -> int:
    m = re.search(r"\{([^}]*)\}", text)
    if not m:
        return 0
    total = 0
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            continue
        size = 8 if vector and item.startswith("d") else 4
        r = re.match(r"([a-z]+)(\d+)-[a-z]+(\d+)$", item)
        total += size * (int(r.group(3)) - int(r.group(2)) + 1 if r else 1)
    return total


_ARM_COND = r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?"


def _unbounded(node: Node, why: str) -> None:
    node.frame, node.qualifier, node.note = None, "dynamic", why


def _add_callee(node: Node, cur_name: str, target_sym) -> None:
    if target_sym and target_sym.group(1) != cur_name and target_sym.group(1) not in node.callees:
        node.callees.append(target_sym.group(1))


def _arm_insn(node: Node, cur_name: str, mnem: str, ops: str, target_sym) -> None:
    base = re.sub(r"(\.w|\.n)$", "", mnem)
    if node.frame is not None:
        if re.match(r"^push" + _ARM_COND + "$", base) or \
                (re.match(r"^stm(db|fd)" + _ARM_COND + "$", base) and ops.startswith("sp!")):
            node.frame += _reglist_bytes(ops, vector=False)
        elif re.match(r"^vpush" + _ARM_COND + "$", base) or \
                (re.match(r"^vstmdb" + _ARM_COND + "$", base) and ops.startswith("sp!")):
            node.frame += _reglist_bytes(ops, vector=True)
        elif re.match(r"^subw?s?$", base) and ops.startswith("sp,"):
            imm = re.search(r"#(\d+)$", ops)
            if imm:
                node.frame += int(imm.group(1))
            else:
                _unbounded(node, f"'{mnem} {ops}'")
        elif re.match(r"^(mov|adds?)$", base) and re.match(r"^sp,", ops) and "#" not in ops:
            _unbounded(node, f"'{mnem} {ops}'")
        elif mnem.startswith(("str", "vstr")):
            pre = re.search(r"\[sp, #-(\d+)\]!", ops)
            if pre:
                node.frame += int(pre.group(1))
    if re.match(r"^(c?bn?z|b" + _ARM_COND + "|bl|blx)$", base) and target_sym:
        _add_callee(node, cur_name, target_sym)
    elif re.match(r"^blx" + _ARM_COND + "$", base):
        node.callees.append("<indirect>")  # call through a register
    # bx rN / mov pc, rN / ldr pc, [...]: returns and switch tables, jumps that stay in
    # the function (see the Method section of the report)


def _riscv_insn(node: Node, cur_name: str, mnem: str, ops: str, target_sym) -> None:
    if node.frame is not None and re.match(r"^sp,", ops):
        imm = re.match(r"^sp,\s*sp,\s*(-?\d+)$", ops) or re.match(r"^sp,\s*(-?\d+)$", ops)
        if re.match(r"^(c\.)?addi?(16sp)?$", mnem) and imm:
            if int(imm.group(1)) < 0:
                node.frame += -int(imm.group(1))
        elif re.match(r"^(c\.)?(add|sub)$", mnem):
            _unbounded(node, f"'{mnem} {ops}'")
        # mv sp,s0 restores a frame pointer: not growth
    if mnem in ("jal", "call", "tail", "j", "c.j", "c.jal") or mnem.startswith(("b", "c.b")):
        _add_callee(node, cur_name, target_sym)
    elif mnem in ("jalr", "c.jalr"):
        node.callees.append("<indirect>")  # call through a register
    # jr rN: a return or a switch table, a jump that stays in the function



def disasm_nodes(target: Target, elf: Path) -> dict[str, Node]:
    """Frame size and callees of every function in the ELF, read from its disassembly.

    Used for library code (no .su): every stack decrement in the function is added
    (an upper bound when different paths push differently); a register-valued change of
    sp or an indirect call/jump makes the function unbounded."""
    text = run([target.tool("objdump"), "-d", "--no-show-raw-insn", str(elf)])
    # aliases: every name at an address
    aliases: dict[int, list[str]] = {}
    for line in run([target.tool("nm"), str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].lower() in ("t", "w"):
            aliases.setdefault(int(parts[0], 16), []).append(parts[2])
    nodes: dict[str, Node] = {}
    arm = target.prefix.startswith("arm")
    cur: Node | None = None
    cur_name = ""
    for line in text.splitlines():
        m = _OBJ_FUNC.match(line)
        if m:
            cur_name = m.group(2)
            cur = Node(0, "disasm", [], cur_name)
            for name in aliases.get(int(m.group(1), 16), [cur_name]) + [cur_name]:
                nodes[name] = cur
            continue
        if cur is None:
            continue
        m = _OBJ_INSN.match(line)
        if not m:
            continue
        mnem = m.group(1).lower()
        ops = m.group(2).split("@" if arm else "#", 1)[0].split(";")[0].strip()
        target_sym = _TARGET_SYM.search(ops)
        if arm:
            _arm_insn(cur, cur_name, mnem, ops, target_sym)
        else:
            _riscv_insn(cur, cur_name, mnem, ops, target_sym)
    return nodes


def worst_stack(entry: str, core: dict[str, Node], lib: dict[str, Node]) -> Stack:
    """Max over call paths from `entry` of the sum of frames; None if unbounded."""
    memo: dict[str, Stack] = {}

    def resolve(name: str, caller: str) -> tuple[str, Node | None]:
        if name in core:
            return name, core[name]
        static = caller.rsplit(":", 1)[0] + ":" + name if ":" in caller else None
        if static and static in core:
            return static, core[static]
        if name in lib:
            return name, lib[name]
        return name, None

    def visit(key: str, node: Node, stack: list[str]) -> Stack:
        if key in memo:
            return memo[key]
        label = key.rsplit(":", 1)[-1]
        if key in stack:
            return Stack(None, stack + [key], f"recursion through {label}")
        if node.frame is None or node.qualifier == "dynamic":
            return Stack(None, [label], f"dynamic stack in {label} {node.note}".strip())
        best = Stack(0, [])
        for callee in node.callees:
            if callee in ("<indirect>", "__indirect_call"):
                return Stack(None, [label], f"indirect call in {label}")
            ckey, cnode = resolve(callee, key)
            if cnode is None:
                return Stack(None, [label, callee], f"{callee} has no stack information")
            sub = visit(ckey, cnode, stack + [key])
            if sub.bytes is None:
                return Stack(None, [label] + sub.path, sub.reason)
            if sub.bytes > best.bytes:
                best = sub
        result = Stack(node.frame + best.bytes, [label] + best.path)
        memo[key] = result
        return result

    key, node = resolve(entry, "")
    if node is None:
        return Stack(None, [entry], f"{entry} not found")
    return visit(key, node, [])


# --------------------------------------------------------------------------- one build


STUB_TEMPLATE = """\
/* Footprint stub (written by scripts/footprint.py): references every public entry point
 * of this configuration, so --gc-sections keeps exactly what a firmware calling them
 * would pull in. Never run. */
#include <stdint.h>

#include "qora/qora.h"

typedef void (*footprint_fn)(void);

static footprint_fn const footprint_entries[] = {
%s
};

volatile uintptr_t footprint_sink;

void _start(void)
{
    size_t i;
    for (i = 0; i < sizeof footprint_entries / sizeof footprint_entries[0]; i++) {
        footprint_sink += (uintptr_t)footprint_entries[i];
    }
    for (;;) {
    }
}
"""


def measure(target: str | Target, config: str | Config, workdir: Path | str | None = None,
            jobs: int | None = None) -> Measurement:
    """Build one target x configuration and measure it. Raises BuildError on failure.

    Without `workdir` the artifacts go to a fresh temporary directory, left in place
    (Measurement.workdir) for inspection; the caller may delete it."""
    t = TARGETS[target] if isinstance(target, str) else target
    c = CONFIGS[config] if isinstance(config, str) else config
    wd = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="qora-fp-"))
    wd = wd.resolve()
    wd.mkdir(parents=True, exist_ok=True)
    libc, inc_flags = libc_paths(t)
    cflags = [*t.arch, *COMMON_CFLAGS, *c.defines, *inc_flags, "-I", str(CORE_INC)]

    sources = sorted(CORE_SRC.glob("*.c"))
    if not sources:
        raise BuildError(f"no sources in {CORE_SRC}")
    stub_c = wd / "footprint_stub.c"
    stub_c.write_text(STUB_TEMPLATE % "\n".join(f"    (footprint_fn){e}," for e in c.entries))
    (wd / "footprint.ld").write_text(LINKER_SCRIPT)

    def compile_one(src: Path) -> Path:
        obj = wd / (src.stem + ".o")
        run([t.cc, *cflags, *ANALYSIS_CFLAGS, "-c", str(src), "-o", str(obj)], cwd=wd)
        return obj

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as ex:
        core_objs = list(ex.map(compile_one, sources))
        stub_obj = ex.submit(compile_one, stub_c).result()

    # heap, part 1: allocator references in the core's own objects
    heap = set()
    for obj in core_objs:
        for line in run([t.tool("nm"), "-u", str(obj)]).splitlines():
            name = line.split()[-1] if line.split() else ""
            if name in HEAP_SYMBOLS:
                heap.add(f"{name} (referenced by {obj.name})")

    elf = wd / "footprint.elf"
    mapfile = wd / "footprint.map"
    link = [t.cc, *t.arch, "-nostdlib", "-Wl,--gc-sections", "-T", str(wd / "footprint.ld"),
            f"-Wl,-Map,{mapfile}", "-Wl,--print-memory-usage", "-o", str(elf),
            str(stub_obj), *map(str, core_objs),
            "-Wl,--start-group", str(libc), "-lgcc", "-Wl,--end-group"]
    try:
        run(link, cwd=wd)
    except BuildError:
        if not heap:
            raise
        # an allocator drags in sbrk, which this bare image lacks: link anyway, so the
        # report shows the heap symbols instead of a bare link error
        run(link + ["-Wl,--unresolved-symbols=ignore-all"], cwd=wd)

    core_set = {str(o) for o in core_objs}

    def categorize(owner: str) -> str:
        if owner in core_set:
            return "core"
        if owner == str(stub_obj):
            return "stub"
        if "libgcc.a(" in owner:
            return "libgcc"
        if owner.startswith(str(libc) + "(") or "libc" in Path(owner.split("(")[0]).name:
            return "libc"
        return "other"

    sections, members = parse_map(mapfile.read_text(), categorize)

    # cross-check the attribution against the ELF's own section sizes
    image_flash = image_ram = 0
    for line in run([t.tool("size"), "-A", str(elf)]).splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0] in SECTION_KIND and parts[1].isdigit():
            kind, n = SECTION_KIND[parts[0]], int(parts[1])
            image_flash += n if kind in FLASH_KINDS else 0
            image_ram += n if kind in RAM_KINDS else 0
    attributed_flash = sum(s.size for s in sections if s.kind in FLASH_KINDS)
    attributed_ram = sum(s.size for s in sections if s.kind in RAM_KINDS)
    if (attributed_flash, attributed_ram) != (image_flash, image_ram):
        raise BuildError(f"{t.key}/{c.key}: map attribution (flash {attributed_flash} B, RAM "
                         f"{attributed_ram} B) does not match the ELF's sections (flash "
                         f"{image_flash} B, RAM {image_ram} B); see {mapfile}")

    # heap, part 2: no allocator symbol defined or referenced anywhere in the image
    for line in run([t.tool("nm"), str(elf)]).splitlines():
        name = line.split()[-1] if line.split() else ""
        if name in HEAP_SYMBOLS:
            heap.add(f"{name} (in the linked ELF)")

    core_nodes = parse_callgraph(sorted(wd.glob("*.ci")), sorted(wd.glob("*.su")))
    # the stub's own functions are not entry points of the core
    core_nodes = {k: v for k, v in core_nodes.items() if not k.startswith(str(stub_c))
                  and k != "_start"}
    lib_nodes = disasm_nodes(t, elf)
    stack = {e: worst_stack(e, core_nodes, lib_nodes) for e in c.entries}

    return Measurement(t, c, sections, members, stack, sorted(heap), image_flash, image_ram, wd)


# --------------------------------------------------------------------------- report


def kib(n: int) -> str:
    return f"{n} B ({n / 1024:.2f} KiB)"


def toolchain_versions() -> list[tuple[str, str]]:
    rows = []
    seen = set()
    for t in TARGETS.values():
        if t.prefix in seen:
            continue
        seen.add(t.prefix)
        rows.append((f"{t.cc} --version", first_line([t.cc, "--version"])))
        rows.append((f"{t.tool('ld')} --version", first_line([t.tool("ld"), "--version"])))
    pkgs = []
    if shutil.which("dpkg-query"):
        for p in ("libnewlib-arm-none-eabi", "picolibc-riscv64-unknown-elf"):
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p],
                               capture_output=True, text=True).stdout.strip()
            if v:
                pkgs.append(f"{p} {v}")
    if pkgs:
        rows.append(("libc (Debian packages)", ", ".join(pkgs)))
    rows.append(("python3 --version", "Python " + sys.version.split()[0]))
    return rows


def source_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "shared_c/src",
                                "shared_c/include"], cwd=ROOT, capture_output=True,
                               text=True).stdout
    except OSError:
        return "unknown (git unavailable)"
    if not head:
        return "unknown (not a git checkout)"
    if dirty.strip():
        files = ", ".join(line[3:] for line in dirty.splitlines() if line.strip())
        return f"git {head} plus uncommitted changes in {files}"
    return f"git {head} (shared_c/ clean)"


def verdict(results: dict[tuple[str, str], Measurement | BuildError]) -> tuple[bool, str]:
    m = results.get((VERDICT_TARGET, VERDICT_CONFIG))
    if not isinstance(m, Measurement):
        return False, "**MISSED (not measured)**: the Cortex-M4 Q16.16-only build failed (below)."
    total, core = m.pulled_in_flash, m.flash("core")
    libgcc, libc = m.flash("libgcc"), m.flash("libc")
    heap_ok = not m.heap_symbols
    stack_ok = m.worst_stack.bytes is not None
    # Judged on what the aggregators bring: the core's objects plus the compiler
    # support routines (libgcc) they pull in. memcpy/memset come from the C library
    # every firmware already links (ESP-IDF, newlib, picolibc), so they are shown
    # separately and not charged to the aggregators.
    own = core + libgcc
    ok = own <= FLASH_LIMIT and heap_ok
    parts = [
        f"core + libgcc = {kib(own)} (core objects {core} B + libgcc {libgcc} B) "
        f"{'≤' if own <= FLASH_LIMIT else '>'} 4096 B; with the C library's memcpy/memset "
        f"({libc} B, shared with the rest of any firmware) the image grows by {kib(total)}",
        "heap: 0 (no allocator symbol)" if heap_ok else
        "heap: allocator symbols found: " + ", ".join(m.heap_symbols),
        f"worst-case stack {m.worst_stack.bytes} B (bounded)" if stack_ok else
        "stack: " + m.worst_stack.text(),
    ]
    line = ("**MET**" if ok else "**MISSED**") + " on Cortex-M4F, Q16.16 only, -Os: " + \
        "; ".join(parts) + "."
    return ok, line


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" * len(header)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render(results: dict[tuple[str, str], Measurement | BuildError], when: str,
           sources: str) -> str:
    ok, line = verdict(results)
    out: list[str] = []
    w = out.append
    w("# Footprint of the Qora Edge aggregation core")
    w("")
    w(f"Generated by `{COMMAND}` on {when}. Do not edit by hand: rerun the command.")
    w("")
    w("## Target")
    w("")
    w(f"From the issue: **\"{ISSUE_TARGET}\"**.")
    w("")
    w(line)
    w("")
    w("The flash figure judged is everything a firmware that calls the Q16.16 aggregators "
      "gets linked in: the core's objects plus the libgcc and libc members they pull in "
      "(the measurement stub is excluded). memcpy/memset are counted although most firmware "
      "already links them; the core-only figure is given next to it.")
    w("")

    w("## Summary")
    w("")
    rows = []
    for (tk, ck), m in results.items():
        t, c = TARGETS[tk], CONFIGS[ck]
        if isinstance(m, BuildError):
            rows.append([t.label, c.label, "build failed", "", "", "", "", "", ""])
            continue
        ws = m.worst_stack
        rows.append([
            t.label, c.label, str(m.flash("core")), str(m.flash("libgcc")), str(m.flash("libc")),
            f"**{m.pulled_in_flash}**", str(m.pulled_in_ram),
            str(ws.bytes) if ws.bytes is not None else "unbounded",
            "0" if not m.heap_symbols else "**" + ", ".join(m.heap_symbols) + "**",
        ])
    w(md_table(["target", "configuration", "core flash", "libgcc", "libc", "flash total",
                "RAM (data+bss)", "max stack", "heap"], rows, "llrrrrrrr"))
    w("")
    w("Bytes. flash = text + rodata + unwind tables + .data initialisers; RAM = data + bss "
      "(static; the core has none, all working memory is the caller's scratch). "
      "\"max stack\" is the largest worst case over the entry points (next section). "
      "Full builds also reference the float32 entry points.")
    w("")

    w("## Worst-case stack per entry point")
    w("")
    w("Bytes, the maximum over call paths of the sum of frames, starting at the entry "
      "point (the caller's frame and interrupt frames not included).")
    w("")
    for tk, t in TARGETS.items():
        ms = [(ck, results[(tk, ck)]) for ck in CONFIGS if (tk, ck) in results]
        if not ms:
            continue
        w(f"### {t.label}")
        w("")
        entries: list[str] = []
        for _, m in ms:
            if isinstance(m, Measurement):
                entries += [e for e in m.stack if e not in entries]
        rows = []
        for e in entries:
            row = [f"`{e}`"]
            for _, m in ms:
                if isinstance(m, Measurement) and e in m.stack:
                    row.append(m.stack[e].text())
                else:
                    row.append("—" if isinstance(m, Measurement) else "build failed")
            rows.append(row)
        w(md_table(["entry point"] + [CONFIGS[ck].label for ck, _ in ms], rows,
                   "l" + "r" * len(ms)))
        w("")
        deep = [(ck, m) for ck, m in ms if isinstance(m, Measurement)]
        for ck, m in deep:
            ws = m.worst_stack
            w(f"- {CONFIGS[ck].label}: deepest path "
              + " → ".join(f"`{p}`" for p in ws.path) + f" ({ws.text()} B)")
        w("")

    w("## Runtime library code pulled in")
    w("")
    w("libgcc and libc archive members left in the image after `--gc-sections`, with the "
      "reference that first pulled each in (libc: newlib-nano on Arm, picolibc on RISC-V).")
    w("")
    w(f"### {CONFIGS['q16'].label}")
    w("")
    rows = []
    for tk, t in TARGETS.items():
        m = results.get((tk, "q16"))
        if not isinstance(m, Measurement):
            continue
        for cat, member, n, syms, why in m.runtime_members():
            rows.append([t.label, cat, f"`{member}`", ", ".join(f"`{x}`" for x in syms) or "—",
                         str(n), why])
    w(md_table(["target", "library", "member", "symbols", "flash", "pulled in by"], rows,
               "llllrl"))
    w("")
    w("### Other configurations")
    w("")
    for (tk, ck), m in results.items():
        if ck == "q16" or not isinstance(m, Measurement):
            continue
        members = m.runtime_members()
        listed = ", ".join(f"{member} {n}" for _, member, n, _, _ in members)
        w(f"- {TARGETS[tk].label}, {CONFIGS[ck].label}: libgcc {m.flash('libgcc')} B + libc "
          f"{m.flash('libc')} B: {listed}.")
    w("")

    m4 = results.get((VERDICT_TARGET, VERDICT_CONFIG))
    w("## Per-function flash, Cortex-M4F, Q16.16 only, -Os (top 15)")
    w("")
    if isinstance(m4, Measurement):
        funcs = m4.functions()
        total = m4.pulled_in_flash
        rows = [[str(i + 1), f"`{f}`", o, str(n), f"{100 * n / total:.1f} %"]
                for i, (f, o, n) in enumerate(funcs[:15])]
        w(md_table(["#", "function", "from", "bytes", "share"], rows, "rllrr"))
        w("")
        rest = sum(n for _, _, n in funcs[15:])
        w(f"The other {len(funcs) - 15 if len(funcs) > 15 else 0} functions: {rest} B. "
          f"Total pulled in: {total} B. Sizes include any alignment padding before the "
          "function.")
    else:
        w("Not available: the build failed (below).")
    w("")

    w("## Heap")
    w("")
    w("Every linked ELF was searched for the allocator symbols "
      + ", ".join(f"`{s}`" for s in HEAP_SYMBOLS)
      + ", and every core object's undefined references too.")
    w("")
    for (tk, ck), m in results.items():
        if isinstance(m, Measurement):
            found = ", ".join(m.heap_symbols) if m.heap_symbols else "none found: heap = 0"
            w(f"- {TARGETS[tk].label}, {CONFIGS[ck].label}: {found}")
    w("")

    failures = [(k, m) for k, m in results.items() if isinstance(m, BuildError)]
    if failures:
        w("## Build failures")
        w("")
        for (tk, ck), e in failures:
            w(f"### {TARGETS[tk].label}, {CONFIGS[ck].label}")
            w("")
            w("```")
            w(str(e))
            w("```")
            w("")

    w("## Method")
    w("")
    w(f"- Command: `{COMMAND}` (from the repository root; standard library Python). "
      "`--keep DIR` keeps the ELFs, map files, .su and .ci files; `--check` exits 1 if "
      "the target is missed.")
    w(f"- Sources: `shared_c/src/*.c` at {sources} (state when the build started).")
    w("- Compile: `" + " ".join(COMMON_CFLAGS) + " " + " ".join(ANALYSIS_CFLAGS)
      + "` plus the target flags (" + "; ".join(
          f"{t.label}: `{' '.join(t.arch)}`" for t in TARGETS.values())
      + ") and the configuration's `-D` flags. `-fstack-usage`/`-fcallgraph-info` do not "
      "change the code.")
    w("- Link: a generated stub (`_start` reads a table of the configuration's entry points: "
      + ", ".join(f"`{e}`" for e in Q16_ENTRIES)
      + "; the full build adds " + ", ".join(f"`{e}`" for e in F32_ENTRIES)
      + "), all core objects, the target's libc archive and libgcc, with "
      "`-nostdlib -Wl,--gc-sections -Wl,-Map` and a minimal linker script (FLASH + RAM).")
    w("- Attribution: every input section in the map is charged to its object: the core's "
      "objects, the stub, libgcc or libc (alignment padding goes to the section after it). "
      "The per-category totals are checked against `size -A` of the ELF.")
    w("- Stack: core frames from `.su` (cross-checked with the `.ci` labels), edges from "
      "`.ci` (these include libcalls such as `__aeabi_uldivmod`; an indirect call would show "
      "as `__indirect_call`). Library functions have no `.su`: their frame is the sum of "
      "every stack decrement in their disassembly (push, vpush, `sub sp`, "
      "`str ..., [sp, #-N]!`, `addi sp,sp,-N`), an upper bound when paths differ; their "
      "callees are the direct branches to other functions (tail calls counted as calls, "
      "an over-estimate). Register-indirect jumps (`bx rN`, `mov pc, rN`, `jr rN`) are "
      "taken to be returns or switch tables inside the function (the soft-float routines "
      "use them so); a register-indirect call (`blx rN`, `jalr rN`), recursion, or an sp "
      "change by a register amount makes the entry point \"unbounded\".")
    w("- Heap: the linked ELF's symbol table and each core object's undefined symbols "
      "(`nm`, `nm -u`) are searched for the allocator names listed above.")
    w("")
    w("Toolchains:")
    w("")
    for k, v in toolchain_versions():
        w(f"- `{k}`: {v}")
    w("")
    return "\n".join(out)


def console(results, ok_line: str) -> None:
    rows = []
    for (tk, ck), m in results.items():
        if isinstance(m, BuildError):
            rows.append([TARGETS[tk].label, ck, "FAILED", "", "", "", "", "", ""])
            continue
        rows.append([TARGETS[tk].label, ck, str(m.flash("core")),
                     str(m.flash("libgcc")), str(m.flash("libc")), str(m.pulled_in_flash),
                     str(m.pulled_in_ram), m.worst_stack.text() if m.worst_stack.bytes is None
                     else str(m.worst_stack.bytes),
                     "0" if not m.heap_symbols else ",".join(m.heap_symbols)])
    header = ["target", "config", "core", "libgcc", "libc", "flash", "RAM", "stack", "heap"]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Qora Edge core footprint (bytes)")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i < 2 else "right")
        for r in rows:
            table.add_row(*r)
        Console().print(table)
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    for (tk, ck), m in results.items():
        if isinstance(m, Measurement):
            heap = "heap symbols: none" if not m.heap_symbols else \
                "HEAP SYMBOLS: " + ", ".join(m.heap_symbols)
            print(f"{tk}/{ck}: {heap}")
        else:
            print(f"{tk}/{ck}: build failed:\n{m}", file=sys.stderr)
    print(re.sub(r"\*\*", "", ok_line))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=DOC, help="markdown file to write "
                    f"(default {DOC.relative_to(ROOT)})")
    ap.add_argument("--keep", type=Path, help="keep build artifacts under this directory")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if the issue's target is missed")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args(argv)

    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="qora-fp-"))
    builds = [(tk, ck) for tk in TARGETS for ck in CONFIGS]
    sources = source_state()
    results: dict[tuple[str, str], Measurement | BuildError] = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            futs = {b: ex.submit(measure, b[0], b[1], base / f"{b[0]}-{b[1]}", 1)
                    for b in builds}
            for b in builds:
                try:
                    results[b] = futs[b].result()
                except BuildError as e:
                    results[b] = e
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        ok, line = verdict(results)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(render(results, when, sources) + "\n")
        console(results, line)
        print(f"wrote {args.output}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    failed = any(isinstance(m, BuildError) for m in results.values())
    if failed:
        return 2
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
