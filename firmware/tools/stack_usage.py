#!/usr/bin/env python3
"""Worst-case stack of a firmware image from GCC's call graph (-fcallgraph-info=su).

Every object's .ci file (VCG) lists its functions with their frame size ("N bytes (static)")
and their call edges. The worst case is the deepest path from the entry point (main, through
the reset code) plus the deepest interrupt handler on top of it (with the exception frame the
hardware pushes). Indirect calls are the node's HAL callbacks (qn_hal): each one counts as a call
to the deepest of the port's functions named in --indirect. Functions without a .ci (libc's
memcpy/strlen, libgcc's 64-bit helpers) are leaf routines with small frames; they are listed,
not counted. Recursion makes the bound unknown unless --bounded gives the function's maximum
depth (qn_cbor's walk: QN_CBOR_MAX_DEPTH levels + 1); so does a dynamic frame: the script says so.

    python3 tools/stack_usage.py --name qemu-mps2 build/qemu-mps2/obj
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
FRAME = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


def load(obj_dir: Path):
    frames: dict[str, int] = {}
    kinds: dict[str, str] = {}
    edges: dict[str, set[str]] = {}
    for ci in sorted(obj_dir.rglob("*.ci")):
        for line in ci.read_text().splitlines():
            m = NODE.match(line)
            if m:
                f = FRAME.search(m.group(2))
                if f:
                    frames[m.group(1)] = int(f.group(1))
                    kinds[m.group(1)] = f.group(2)
                continue
            m = EDGE.match(line)
            if m:
                edges.setdefault(m.group(1), set()).add(m.group(2))
    return frames, kinds, edges


def short(title: str) -> str:
    return title.rsplit(":", 1)[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("obj_dir", type=Path)
    ap.add_argument("--name", default="")
    ap.add_argument("--entry", default="main")
    ap.add_argument("--isr", default="SysTick_Handler,USART2_IRQHandler",
                    help="interrupt handlers that can nest on top of main's stack")
    ap.add_argument("--exception-frame", type=int, default=104,
                    help="bytes the core pushes on an interrupt (Cortex-M4F with FP context: 104)")
    ap.add_argument("--indirect", default="uart_read,uart_write,millis,load,save",
                    help="the port's HAL callbacks (functions of files under ports/)")
    ap.add_argument("--elf", type=Path, help="the image: report the stack link.ld reserves")
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--bounded", default="walk=5",
                    help="self-recursive functions and their maximum depth: name=depth,...")
    a = ap.parse_args()

    frames, kinds, edges = load(a.obj_dir)
    # a static function is titled "file:name": resolve plain names to titles
    by_name: dict[str, list[str]] = {}
    for t in frames:
        by_name.setdefault(short(t), []).append(t)
    indirect = [t for n in a.indirect.split(",") for t in by_name.get(n, []) if "ports/" in t]
    bounded = {k: int(v) for k, v in (kv.split("=") for kv in a.bounded.split(",") if kv)}
    externals: set[str] = set()
    problems: list[str] = []
    memo: dict[str, tuple[int, list[str]]] = {}

    def resolve(t: str) -> list[str]:
        if t == "__indirect_call":
            return indirect
        if t in frames:
            return [t]
        if by_name.get(t):
            return by_name[t]
        externals.add(t)
        return []

    def deepest(t: str, path: tuple[str, ...]) -> tuple[int, list[str]]:
        if t in path:
            problems.append("recursion: " + " -> ".join(short(p) for p in path + (t,)))
            return 0, []
        if t in memo:
            return memo[t]
        if kinds.get(t, "static") != "static":
            problems.append(f"{short(t)}: {kinds[t]} frame")
        best, best_path = 0, []
        for callee in sorted(edges.get(t, ())):
            for c in resolve(callee):
                if c == t and short(t) in bounded:
                    d, p = frames[t] * (bounded[short(t)] - 1), [f"{t} x{bounded[short(t)] - 1}"]
                else:
                    d, p = deepest(c, path + (t,))
                if d > best:
                    best, best_path = d, p
        memo[t] = (frames[t] + best, [t] + best_path)
        return memo[t]

    entry = resolve(a.entry)
    if not entry:
        print(f"{a.name}: no call graph for {a.entry} in {a.obj_dir} (built with -fcallgraph-info=su?)")
        return 1
    depth, path = deepest(entry[0], ())
    isr_depth, isr_path = -1, []
    for name in a.isr.split(","):
        for t in by_name.get(name, []):
            d, p = deepest(t, ())
            if d > isr_depth:
                isr_depth, isr_path = d, p
    def fmt(t: str) -> str:
        return short(t) if t not in frames else f"{short(t)}({frames[t]})"

    total = depth + (isr_depth + a.exception_frame if isr_path else 0)
    label = f"{a.name}: " if a.name else ""
    print(f"{label}worst-case stack {total} bytes = {a.entry} {depth}"
          + (f" + interrupt {isr_depth} + exception frame {a.exception_frame}" if isr_path else ""))
    print("  deepest path: " + " -> ".join(fmt(t) for t in path))
    if isr_path:
        print("  deepest interrupt: " + " -> ".join(fmt(t) for t in isr_path))
    if a.elf:
        table = subprocess.run([a.nm, str(a.elf)], capture_output=True, text=True, check=True).stdout
        reserved = next((int(line.split()[0], 16) for line in table.splitlines()
                         if line.split()[-1] == "__stack_size"), None)
        if reserved:
            print(f"  reserved by the link script: {reserved} bytes ({reserved / total:.1f}x the worst case)")
    if externals:
        print("  not counted (library leaf routines): " + ", ".join(sorted(externals)))
    for p in sorted(set(problems)):
        print("  UNBOUNDED: " + p)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
