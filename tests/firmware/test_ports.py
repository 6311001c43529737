"""The node firmware on its ports, end to end over the serial link.

Each target is built with firmware/Makefile (the Debian toolchains CI uses) and booted with a
config blob from qora.nodeconfig (a 40-row digits shard, the (64, 10) softmax model, a key):

- posix: ``qnode-posix --config … --listen PORT --state …`` (a node as a host process);
- qemu-mps2: the Cortex-M4 image on QEMU mps2-an386, blob at 0x00300000;
- qemu-riscv: the rv32imc image on QEMU virt, blob at 0x80400000.

The test is the gateway: it opens the board's UART (a TCP socket, pyserial ``socket://``),
receives HELLO, sends a ROUND and the MODEL chunks as PUBLISH frames (docs/serial.md framing,
qora.gateway.framing), and checks that the update chunks the board publishes are byte for byte
what the host computes: qora.reference.train.train_node_q16 with the round's seed (qn_round_seed), the
saturating delta, qora.protocol.make_update. It also checks that the board ignores garbage and
a CRC-corrupted frame, that its persistent state (a file; semihosting on QEMU) stops it from
training a round twice after a restart, and on QEMU the ports' own exits: no config blob (2) and
a fault (3). The ESP32 port's portable MQTT link is built and run on the host.

A missing compiler or emulator is a failure, as everywhere in tests/ (cbuild.require).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
import numpy as np
import pytest
import serial
from cbuild import ROOT, SANITIZE, compile_ok, require
from qora.gateway.framing import (
    ASK_HELLO,
    HELLO,
    LOG,
    PUBLISH,
    FrameDecoder,
    cobs_encode,
    encode_frame,
    parse_publish,
    publish_content,
)
from qora.native import to_q16
from qora.nodeconfig import NodeConfig, round_seed
from qora.protocol import (
    Encoding,
    RoundAnnouncement,
    Status,
    make_model_chunks,
    make_update,
    model_topic,
    round_topic,
    update_topic,
)
from qora.reference.train import train_node_q16
from qora.sim.data import load_digits
from serial.urlhandler import protocol_socket

FIRMWARE = ROOT / "firmware"
FLEET, NODE = "portfleet", "board-1"
KEY = bytes(range(101, 133))
SIZES = (64, 10)
ROWS, EPOCHS, BATCH, LR_Q, SEED = 40, 1, 8, 32768, 4242
CHUNK_ELEMENTS = 256                     # 650 parameters: 3 chunks each way
N_PARAMS = SIZES[0] * SIZES[1] + SIZES[1]
TARGETS = ["posix", "qemu-mps2", "qemu-riscv"]
QEMU = {
    "qemu-mps2": (["qemu-system-arm", "-M", "mps2-an386"], "0x00300000", "arm-none-eabi-nm"),
    "qemu-riscv": (["qemu-system-riscv32", "-M", "virt", "-bios", "none"], "0x80400000",
                   "riscv64-unknown-elf-nm"),
}
TOOLS = {"posix": ["cc"], "qemu-mps2": ["arm-none-eabi-gcc", "qemu-system-arm"],
         "qemu-riscv": ["riscv64-unknown-elf-gcc", "qemu-system-riscv32"]}
TIMEOUT = 60.0


# ---- building ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """make -C firmware posix qemu-mps2 qemu-riscv, once for the module."""
    for tools in TOOLS.values():
        for tool in tools:
            require(tool)
    build = tmp_path_factory.mktemp("fwbuild")
    proc = subprocess.run(["make", "-C", str(FIRMWARE), "-j4", f"BUILD={build}", *TARGETS],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    return {"posix": build / "posix" / "qnode-posix", "qemu-mps2": build / "qemu-mps2" / "qnode.elf",
            "qemu-riscv": build / "qemu-riscv" / "qnode.elf"}


@pytest.fixture(scope="module")
def shard():
    ds = load_digits(seed=0)
    X_q = to_q16(ds.X_train[:ROWS].astype(np.float32))[0]
    return X_q, ds.y_train[:ROWS].astype(np.int64)


@pytest.fixture
def blob(shard, tmp_path) -> Path:
    X_q, y = shard
    cfg = NodeConfig(fleet=FLEET, node=NODE, key=KEY, X_q=X_q, y=y, sizes=SIZES, epochs=EPOCHS,
                     batch=BATCH, seed=SEED, lr_q=LR_Q)
    path = tmp_path / "node.blob"
    path.write_bytes(cfg.blob())
    return path


# ---- a board and its line ------------------------------------------------------------------------

class BootSafeSocket(protocol_socket.Serial):
    """pyserial's socket:// port without the input flush its open() ends with: a board talks the
    moment it is connected (HELLO, the boot LOG), and those bytes are part of what is tested."""

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def reset_input_buffer(self) -> None:
        if not self._opening:
            super().reset_input_buffer()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Board:
    """One emulated (or host-process) board in its own directory: the directory is its flash."""

    kind: str
    image: Path
    workdir: Path
    blob: Path | None
    proc: subprocess.Popen | None = None
    line: serial.SerialBase | None = None
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    frames: list = field(default_factory=list)
    started: float = 0.0

    def command(self, port: int) -> list[str]:
        if self.kind == "posix":
            return [str(self.image), "--config", str(self.blob), "--listen", str(port),
                    "--state", str(self.workdir / "qnode.state")]
        machine, addr, _ = QEMU[self.kind]
        # wait=on: QEMU starts the CPU only once the test is connected, so the boot HELLO is seen
        cmd = [*machine, "-nographic", "-monitor", "none", "-semihosting-config", "enable=on,target=native",
               "-kernel", str(self.image), "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on"]
        if self.blob is not None:
            cmd += ["-device", f"loader,file={self.blob},addr={addr},force-raw=on"]
        return cmd

    def start(self) -> Board:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):            # a port taken between free_port() and bind: retry
            port = free_port()
            self.started = time.monotonic()
            with open(self.workdir / "board.log", "ab") as log:
                self.proc = subprocess.Popen(self.command(port), cwd=self.workdir, stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            end = time.monotonic() + 20
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    self.line = BootSafeSocket(f"socket://127.0.0.1:{port}", timeout=0.05)
                    self.decoder, self.frames = FrameDecoder(), []
                    return self
                except serial.SerialException:
                    time.sleep(0.02)
            self.stop()
        raise AssertionError(f"{self.kind} did not open its serial port:\n{self.log()}")

    def stop(self) -> None:
        if self.line is not None:
            self.line.close()
            self.line = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def log(self) -> str:
        path = self.workdir / "board.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def send(self, data: bytes) -> None:
        self.line.write(data)

    def publish(self, topic: str, payload: bytes) -> None:
        self.send(encode_frame(PUBLISH, publish_content(topic, payload)))

    def expect(self, pred, timeout: float = TIMEOUT, what: str = "frames") -> list:
        """Read until pred(all frames so far) holds; returns the frames."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.frames += self.decoder.feed(self.line.read(65536))
            if pred(self.frames):
                return self.frames
            if self.proc is not None and self.proc.poll() is not None:
                break
        raise AssertionError(f"{self.kind}: no {what} after {timeout:.0f} s; got {summary(self.frames)}\n{self.log()}")

    def quiet(self, seconds: float) -> list:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.frames += self.decoder.feed(self.line.read(65536))
        return self.frames


def summary(frames) -> list:
    out = []
    for f in frames:
        if f.type == PUBLISH:
            out.append(("PUBLISH", parse_publish(f.content)[0]))
        elif f.type == LOG:
            out.append(("LOG", f.content.decode(errors="replace")))
        else:
            out.append((f.type, len(f.content)))
    return out


def logs(frames) -> list[str]:
    return [f.content.decode() for f in frames if f.type == LOG]


@pytest.fixture
def boards():
    started: list[Board] = []
    yield started
    for b in started:
        b.stop()


def boot(boards, kind, images, workdir, blob) -> Board:
    b = Board(kind, images[kind], workdir, blob)
    boards.append(b)
    return b.start()


# ---- what the host expects -----------------------------------------------------------------------

def model(version: int) -> np.ndarray:
    rng = np.random.default_rng(version)
    return rng.integers(-20000, 20000, N_PARAMS).astype(np.int32)


def send_round(board: Board, round_: int, version: int, chunk_elements: int = 0) -> None:
    params = model(version)
    chunks = make_model_chunks(FLEET, version, params, "q16_16", chunk_elements or CHUNK_ELEMENTS)
    ann = RoundAnnouncement(fleet=FLEET, round=round_, version=version, digest=chunks[0].digest,
                            deadline=int(time.time()) + 600, method="trimmed_mean", mode="q16_16",
                            chunk_elements=chunk_elements or CHUNK_ELEMENTS, quorum=1, elements=N_PARAMS,
                            layout=SIZES, model_chunks=len(chunks))
    board.publish(round_topic(FLEET), ann.encode())
    for c in chunks:
        board.publish(model_topic(FLEET, c.index), c.encode())


def expected_update(shard, round_: int, version: int) -> list[bytes]:
    X_q, y = shard
    params = model(version)
    local = train_node_q16([int(v) for v in params], list(SIZES), [[int(v) for v in row] for row in X_q],
                           [int(v) for v in y], EPOCHS, BATCH, LR_Q, round_seed(SEED, round_, EPOCHS))
    delta = np.clip(np.asarray(local, np.int64) - params.astype(np.int64), -2**31, 2**31 - 1).astype(np.int32)
    return make_update(FLEET, NODE, round_, delta, Encoding.Q16, ROWS, CHUNK_ELEMENTS, KEY)


def update_frames(frames) -> list[bytes]:
    """The update messages among the board's PUBLISH frames (it also publishes its STATUS)."""
    return [p for t, p in (parse_publish(f.content) for f in frames if f.type == PUBLISH) if "/update/" in t]


# ---- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", TARGETS)
def test_boots_and_says_hello(kind, images, blob, boards, tmp_path):
    b = boot(boards, kind, images, tmp_path / "board", blob)
    frames = b.expect(lambda fs: any(f.type == HELLO for f in fs) and logs(fs), what="HELLO and boot LOG")
    hello = next(f for f in frames if f.type == HELLO)
    assert cbor2.loads(hello.content) == {0: 1, 2: FLEET, 3: NODE, 25: "qnode/1"}
    assert logs(frames)[0] == f"boot {NODE} last sent round 0"
    # and says it is online (retained through the gateway), byte-identical to the host's STATUS
    status = [parse_publish(f.content) for f in frames if f.type == PUBLISH]
    assert status == [(f"qora/v1/{FLEET}/status/{NODE}", Status(fleet=FLEET, node=NODE, online=True).encode())]
    # a gateway that restarts asks again
    b.send(encode_frame(ASK_HELLO, b""))
    b.expect(lambda fs: sum(f.type == HELLO for f in fs) == 2, what="a second HELLO")


@pytest.mark.parametrize("kind", TARGETS)
def test_update_is_byte_identical_to_the_host_replay(kind, images, blob, shard, boards, tmp_path):
    b = boot(boards, kind, images, tmp_path / "board", blob)
    b.expect(lambda fs: any(f.type == HELLO for f in fs), what="HELLO")
    t0 = time.monotonic()
    send_round(b, round_=5, version=3)
    want = expected_update(shard, 5, 3)
    frames = b.expect(lambda fs: len(update_frames(fs)) >= len(want), what="the update chunks")
    t1 = time.monotonic()
    assert update_frames(frames) == want
    b.expect(lambda fs: "sent round 5" in logs(fs), what="the 'sent round' LOG")
    print(f"\n{kind}: boot to update {t1 - b.started:.2f} s, ROUND to update {t1 - t0:.2f} s")


def test_a_round_the_board_cannot_serve_is_refused_not_half_done(images, blob, shard, boards, tmp_path):
    b = boot(boards, "posix", images, tmp_path / "board", blob)
    b.expect(lambda fs: any(f.type == HELLO for f in fs), what="HELLO")
    send_round(b, round_=2, version=1, chunk_elements=4096)          # chunks beyond its buffers
    send_round(b, round_=5_000_000, version=1)                       # a round that would end all later ones
    frames = b.expect(lambda fs: sum("round refused" in line for line in logs(fs)) >= 2, what="two refusals")
    assert not update_frames(frames) and not any(line.startswith("sent round") for line in logs(frames))
    send_round(b, round_=3, version=2)                               # a sane round still works
    want = expected_update(shard, 3, 2)
    frames = b.expect(lambda fs: len(update_frames(fs)) >= len(want), what="the update chunks")
    assert update_frames(frames) == want


@pytest.mark.parametrize("kind", TARGETS)
def test_garbage_a_crc_corrupted_frame_and_a_foreign_topic_are_ignored(kind, images, blob, shard, boards, tmp_path):
    b = boot(boards, kind, images, tmp_path / "board", blob)
    b.expect(lambda fs: any(f.type == HELLO for f in fs), what="HELLO")
    b.send(b"\x13\x37 line noise \xff\xfe\x00")            # garbage, ended by a delimiter
    b.send(bytes(range(1, 256)) * 3 + b"\x00")             # 765 bytes of no frame
    # a ROUND for round 9 whose CRC is wrong: dropped, so no update for round 9 may follow
    params = model(8)
    chunks = make_model_chunks(FLEET, 8, params, "q16_16", CHUNK_ELEMENTS)
    bad = RoundAnnouncement(fleet=FLEET, round=9, version=8, digest=chunks[0].digest, deadline=0,
                            method="fedavg", mode="q16_16", chunk_elements=CHUNK_ELEMENTS, quorum=1,
                            elements=N_PARAMS, layout=SIZES, model_chunks=len(chunks))
    body = bytes([PUBLISH]) + publish_content(round_topic(FLEET), bad.encode())
    b.send(cobs_encode(body + struct.pack("<I", zlib.crc32(body) ^ 0x00010000)) + b"\x00")
    # ... and the same ROUND, framed correctly, on a topic that is not the fleet's ("{fleet}X")
    b.publish(f"qora/v1/{FLEET}Xround", bad.encode())
    for c in chunks:
        b.publish(model_topic(FLEET, c.index), c.encode())
    # model 8 is complete: had either ROUND been taken, round 9 would be trained now
    assert update_frames(b.quiet(1.5)) == [], "a corrupted or foreign ROUND was acted on"
    b.send(b"\x00\x00partial frame cut by a reset")        # no delimiter: the next frame pays
    b.send(b"\x00")
    send_round(b, round_=5, version=3)
    want = expected_update(shard, 5, 3)
    frames = b.expect(lambda fs: len(update_frames(fs)) >= len(want), what="the update chunks")
    assert update_frames(frames) == want
    assert update_frames(b.quiet(0.5)) == want


@pytest.mark.parametrize("kind", TARGETS)
def test_a_restarted_board_does_not_train_a_round_twice(kind, images, blob, shard, boards, tmp_path):
    workdir = tmp_path / "board"
    b = boot(boards, kind, images, workdir, blob)
    b.expect(lambda fs: any(f.type == HELLO for f in fs), what="HELLO")
    send_round(b, round_=5, version=3)
    want5 = expected_update(shard, 5, 3)
    b.expect(lambda fs: len(update_frames(fs)) >= len(want5) and "sent round 5" in logs(fs),
             what="round 5's update")
    assert (workdir / "qnode.state").is_file(), "no state file in the board's directory (its flash)"
    b.stop()

    b.start()                                          # power-cycled: same directory, same flash
    b.expect(lambda fs: logs(fs), what="the boot LOG")
    assert logs(b.frames)[0] == f"boot {NODE} last sent round 5"
    send_round(b, round_=5, version=3)                 # the retained state, delivered again
    assert update_frames(b.quiet(2.0)) == [], "round 5 was trained twice"
    send_round(b, round_=6, version=4)
    want6 = expected_update(shard, 6, 4)
    frames = b.expect(lambda fs: len(update_frames(fs)) >= len(want6), what="round 6's update")
    assert update_frames(frames) == want6


@pytest.mark.parametrize("kind", ["qemu-mps2", "qemu-riscv"])
def test_no_config_blob_exits_with_status_2(kind, images, tmp_path):
    machine, addr, _ = QEMU[kind]
    proc = subprocess.run([*machine, "-nographic", "-monitor", "none", "-semihosting-config",
                           "enable=on,target=native", "-kernel", str(images[kind]), "-serial", "null"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"no valid config blob at {addr}" in proc.stdout + proc.stderr


def patched(elf: Path, out: Path, nm: str, symbol: str, code: bytes) -> Path:
    """A copy of elf with `code` written over the start of `symbol` (in the file, via the
    program headers), so the image faults there the way a real bug would."""
    table = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    addr = next(int(line.split()[0], 16) for line in table.splitlines() if line.split()[-1] == symbol)
    data = bytearray(elf.read_bytes())
    phoff = struct.unpack_from("<I", data, 28)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 42)
    for i in range(phnum):
        p_type, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIIII", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= addr < p_vaddr + p_filesz:
            at = p_offset + addr - p_vaddr
            data[at:at + len(code)] = code
            out.write_bytes(bytes(data))
            return out
    raise AssertionError(f"{symbol} at {addr:#x} is in no loaded segment of {elf}")


@pytest.mark.parametrize("kind", ["qemu-mps2", "qemu-riscv"])
def test_a_fault_is_reported_and_exits_with_status_3(kind, images, blob, tmp_path):
    machine, addr, nm = QEMU[kind]
    require(nm)
    # an undefined instruction at main: udf #0 on Thumb, an all-zero (illegal) word on RISC-V
    code = b"\x00\xde" if kind == "qemu-mps2" else b"\x00\x00\x00\x00"
    elf = patched(images[kind], tmp_path / "faulty.elf", nm, "main", code)
    proc = subprocess.run([*machine, "-nographic", "-monitor", "none", "-semihosting-config",
                           "enable=on,target=native", "-kernel", str(elf), "-serial", "null",
                           "-device", f"loader,file={blob},addr={addr},force-raw=on"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert ("HARDFAULT" if kind == "qemu-mps2" else "TRAP") in proc.stdout + proc.stderr


# ---- the ESP32 port's MQTT link, on the host -----------------------------------------------------

LINK_DRIVER = r"""
/* Drives firmware/ports/esp32/main/mqtt_link.c. stdin, one command a line:
 *   msg TOPIC HEX PIECE   a message as esp-mqtt hands it over in PIECE-byte MQTT_EVENT_DATAs;
 *                         prints "frame HEX" once it is whole (or "dropped")
 *   up HEX PIECE          bytes the core writes, in PIECE-byte writes; prints what goes out
 * Every answer ends with a line ".". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mqtt_link.h"

static uint8_t msgbuf[QN_FRAME_MAX_PAYLOAD];
static uint8_t frame[QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)];
static uint8_t upbuf[QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)];
static uint8_t bytes[2 * QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)];
static char line[4 * QN_FRAME_MAX_ENCODED(QN_FRAME_MAX_CONTENT)];

static size_t unhex(const char *s, uint8_t *out) {
    size_t n = 0;
    if (strcmp(s, "-") == 0) return 0;
    for (; s[0] && s[1]; s += 2) { unsigned v; sscanf(s, "%2x", &v); out[n++] = (uint8_t)v; }
    return n;
}
static void hex(const uint8_t *p, size_t n) { for (size_t i = 0; i < n; i++) printf("%02x", p[i]); }
static void pub(void *ctx, const char *topic, const uint8_t *p, size_t n) {
    (void)ctx; printf("pub %s ", topic); hex(p, n); printf("\n");
}
static void lg(void *ctx, const char *t, size_t n) { (void)ctx; printf("log %.*s\n", (int)n, t); }

int main(void) {
    qm_reasm r;
    qm_uplink u;
    qm_uplink_cb cb = {NULL, pub, lg};
    qm_reasm_init(&r, msgbuf, sizeof msgbuf);
    qm_uplink_init(&u, upbuf, sizeof upbuf - 1, "portfleet", "board-1", cb);
    while (fgets(line, sizeof line, stdin)) {
        static char topic[300], data[sizeof line];
        size_t piece;
        if (sscanf(line, "msg %299s %s %zu", topic, data, &piece) == 3) {
            size_t n = unhex(data, bytes);
            int st = 0;
            for (size_t off = 0; off < n || (n == 0 && off == 0); off += piece) {
                size_t k = n - off < piece ? n - off : piece;
                st = qm_reasm_feed(&r, off ? NULL : topic, off ? 0 : strlen(topic), bytes + off, k, off, n);
                if (n == 0) break;
            }
            if (st == 1) {
                size_t k = qm_reasm_frame(&r, frame, sizeof frame);
                printf("frame "); hex(frame, k); printf("\n");
            } else {
                printf("dropped %d\n", st);
            }
        } else if (sscanf(line, "up %s %zu", data, &piece) == 2) {
            size_t n = unhex(data, bytes);
            for (size_t off = 0; off < n; off += piece) qm_uplink_write(&u, bytes + off, n - off < piece ? n - off : piece);
            printf("refused %u hellos %u\n", (unsigned)u.refused, (unsigned)u.hellos);
        } else {
            printf("?\n");
        }
        printf(".\n");
        fflush(stdout);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def link_driver(tmp_path_factory):
    require("gcc")
    d = tmp_path_factory.mktemp("esp32link")
    (d / "driver.c").write_text(LINK_DRIVER)
    exe = d / "driver"
    sources = [str(p) for p in sorted((FIRMWARE / "core" / "src").glob("*.c"))]
    compile_ok(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", *SANITIZE,
                f"-I{FIRMWARE / 'core' / 'include'}", f"-I{ROOT / 'shared_c' / 'include'}",
                f"-I{FIRMWARE / 'ports' / 'esp32' / 'main'}",
                str(FIRMWARE / "ports" / "esp32" / "main" / "mqtt_link.c"), str(d / "driver.c"), *sources,
                *[str(p) for p in sorted((ROOT / "shared_c" / "src").glob("*.c"))], "-o", str(exe)])
    proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def call(line: str) -> list[str]:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        answer = []
        while (text := proc.stdout.readline()) and text.strip() != ".":
            answer.append(text.strip())
        assert text, f"the link driver died on: {line[:200]}"
        return answer

    yield call
    proc.stdin.close()
    proc.wait(timeout=10)


@pytest.mark.parametrize("piece", [1, 7, 1000, 4096, 20000])
def test_esp32_link_turns_mqtt_pieces_into_the_gateway_frame(link_driver, piece):
    chunks = make_model_chunks(FLEET, 2, model(2), "q16_16", 1024)
    payload = chunks[0].encode()                         # 2.6 KiB: several pieces for small buffers
    topic = model_topic(FLEET, 0)
    answer = link_driver(f"msg {topic} {payload.hex()} {piece}")
    assert answer == ["frame " + encode_frame(PUBLISH, publish_content(topic, payload)).hex()]


def test_esp32_link_drops_a_message_longer_than_the_protocol_allows(link_driver):
    assert link_driver(f"msg {round_topic(FLEET)} {'00' * 16385} 4096") == ["dropped -1"]
    # and the next message is whole again
    assert link_driver(f"msg {round_topic(FLEET)} a1 4096")[0].startswith("frame ")


def test_esp32_link_publishes_only_the_nodes_own_topics(link_driver):
    mine = publish_content(update_topic(FLEET, NODE), b"\xd1\x84\x01")
    other = publish_content(update_topic(FLEET, "board-2"), b"\xd1\x84\x02")
    model_up = publish_content(model_topic(FLEET, 0), b"\xa0")
    stream = (encode_frame(HELLO, cbor2.dumps({0: 1})) + encode_frame(PUBLISH, other) + b"noise\x00"
              + encode_frame(PUBLISH, model_up) + encode_frame(LOG, b"sent round 5") + encode_frame(PUBLISH, mine))
    assert link_driver(f"up {stream.hex()} 5") == [
        "log sent round 5", f"pub {update_topic(FLEET, NODE)} d18401", "refused 2 hellos 1"]


# ESP-IDF 5.x declarations qnode_main.c uses, as the IDF headers declare them (names, argument and
# return types), so its own code is type-checked here; the headers themselves are ESP-IDF's.
IDF_STANDIN = r"""
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
typedef int esp_err_t;
#define ESP_OK 0
#define ESP_ERR_NVS_NO_FREE_PAGES 0x110d
#define ESP_ERR_NVS_NEW_VERSION_FOUND 0x1110
void esp_error_check_failed(esp_err_t rc, const char *expr);
#define ESP_ERROR_CHECK(x) do { esp_err_t rc_ = (x); if (rc_ != ESP_OK) esp_error_check_failed(rc_, #x); } while (0)
void esp_log_standin(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ESP_LOGI(tag, fmt, ...) esp_log_standin(tag, fmt, ##__VA_ARGS__)
#define ESP_LOGW(tag, fmt, ...) esp_log_standin(tag, fmt, ##__VA_ARGS__)
#define ESP_LOGE(tag, fmt, ...) esp_log_standin(tag, fmt, ##__VA_ARGS__)
size_t strlcpy(char *dst, const char *src, size_t size);
/* esp_event */
typedef const char *esp_event_base_t;
typedef void *esp_event_handler_instance_t;
typedef void (*esp_event_handler_t)(void *arg, esp_event_base_t base, int32_t id, void *data);
#define ESP_EVENT_ANY_ID (-1)
esp_err_t esp_event_loop_create_default(void);
esp_err_t esp_event_handler_instance_register(esp_event_base_t base, int32_t id, esp_event_handler_t h,
                                              void *arg, esp_event_handler_instance_t *instance);
/* esp_netif, esp_wifi */
typedef struct esp_netif_obj esp_netif_t;
esp_err_t esp_netif_init(void);
esp_netif_t *esp_netif_create_default_wifi_sta(void);
extern esp_event_base_t const WIFI_EVENT;
extern esp_event_base_t const IP_EVENT;
typedef enum { WIFI_EVENT_WIFI_READY = 0, WIFI_EVENT_SCAN_DONE, WIFI_EVENT_STA_START, WIFI_EVENT_STA_STOP,
               WIFI_EVENT_STA_CONNECTED, WIFI_EVENT_STA_DISCONNECTED } wifi_event_t;
typedef enum { IP_EVENT_STA_GOT_IP = 0, IP_EVENT_STA_LOST_IP } ip_event_t;
typedef struct { int magic; } wifi_init_config_t;
#define WIFI_INIT_CONFIG_DEFAULT() { .magic = 0x1F2F3F4F }
typedef enum { WIFI_MODE_NULL = 0, WIFI_MODE_STA, WIFI_MODE_AP, WIFI_MODE_APSTA } wifi_mode_t;
typedef enum { WIFI_IF_STA = 0, WIFI_IF_AP } wifi_interface_t;
typedef struct { uint8_t ssid[32]; uint8_t password[64]; } wifi_sta_config_t;
typedef struct { uint8_t ssid[32]; uint8_t password[64]; } wifi_ap_config_t;
typedef union { wifi_ap_config_t ap; wifi_sta_config_t sta; } wifi_config_t;
esp_err_t esp_wifi_init(const wifi_init_config_t *config);
esp_err_t esp_wifi_set_mode(wifi_mode_t mode);
esp_err_t esp_wifi_set_config(wifi_interface_t interface, wifi_config_t *conf);
esp_err_t esp_wifi_start(void);
esp_err_t esp_wifi_connect(void);
/* esp_partition, esp_timer, esp_system */
typedef enum { ESP_PARTITION_TYPE_APP = 0x00, ESP_PARTITION_TYPE_DATA = 0x01,
               ESP_PARTITION_TYPE_ANY = 0xff } esp_partition_type_t;
typedef enum { ESP_PARTITION_SUBTYPE_ANY = 0xff } esp_partition_subtype_t;
typedef struct { esp_partition_type_t type; esp_partition_subtype_t subtype; uint32_t address;
                 uint32_t size; char label[17]; } esp_partition_t;
typedef enum { ESP_PARTITION_MMAP_DATA, ESP_PARTITION_MMAP_INST } esp_partition_mmap_memory_t;
typedef uint32_t esp_partition_mmap_handle_t;
const esp_partition_t *esp_partition_find_first(esp_partition_type_t type, esp_partition_subtype_t subtype,
                                                const char *label);
esp_err_t esp_partition_mmap(const esp_partition_t *partition, size_t offset, size_t size,
                             esp_partition_mmap_memory_t memory, const void **out_ptr,
                             esp_partition_mmap_handle_t *out_handle);
int64_t esp_timer_get_time(void);
/* FreeRTOS */
typedef uint32_t TickType_t;
typedef long BaseType_t;
typedef struct StreamBufferDef_t *StreamBufferHandle_t;
#define pdMS_TO_TICKS(ms) ((TickType_t)(((TickType_t)(ms) * (TickType_t)100) / (TickType_t)1000U))
void vTaskDelay(const TickType_t ticks);
StreamBufferHandle_t xStreamBufferCreate(size_t size, size_t trigger_level);
size_t xStreamBufferSend(StreamBufferHandle_t h, const void *data, size_t n, TickType_t wait);
size_t xStreamBufferReceive(StreamBufferHandle_t h, void *data, size_t n, TickType_t wait);
BaseType_t xStreamBufferIsEmpty(StreamBufferHandle_t h);
/* nvs */
typedef uint32_t nvs_handle_t;
typedef enum { NVS_READONLY, NVS_READWRITE } nvs_open_mode_t;
esp_err_t nvs_flash_init(void);
esp_err_t nvs_flash_erase(void);
esp_err_t nvs_open(const char *name, nvs_open_mode_t mode, nvs_handle_t *out);
esp_err_t nvs_get_blob(nvs_handle_t h, const char *key, void *out, size_t *length);
esp_err_t nvs_set_blob(nvs_handle_t h, const char *key, const void *value, size_t length);
esp_err_t nvs_commit(nvs_handle_t h);
void nvs_close(nvs_handle_t h);
/* esp-mqtt */
typedef struct esp_mqtt_client *esp_mqtt_client_handle_t;
typedef enum { MQTT_EVENT_ANY = -1, MQTT_EVENT_ERROR = 0, MQTT_EVENT_CONNECTED, MQTT_EVENT_DISCONNECTED,
               MQTT_EVENT_SUBSCRIBED, MQTT_EVENT_UNSUBSCRIBED, MQTT_EVENT_PUBLISHED, MQTT_EVENT_DATA,
               MQTT_EVENT_BEFORE_CONNECT, MQTT_EVENT_DELETED } esp_mqtt_event_id_t;
typedef struct esp_mqtt_event_t {
    esp_mqtt_event_id_t event_id; esp_mqtt_client_handle_t client; char *data; int data_len;
    int total_data_len; int current_data_offset; char *topic; int topic_len; int msg_id;
    int session_present; void *error_handle; bool retain; int qos; bool dup;
} esp_mqtt_event_t;
typedef esp_mqtt_event_t *esp_mqtt_event_handle_t;
typedef struct {
    struct { struct { const char *uri; const char *hostname; uint32_t port; } address; } broker;
    struct { const char *username; const char *client_id; bool set_null_client_id;
             struct { const char *password; } authentication; } credentials;
    struct { struct { const char *topic; const char *msg; int msg_len; int qos; int retain; } last_will;
             bool disable_clean_session; int keepalive; } session;
    struct { int size; int out_size; } buffer;
} esp_mqtt_client_config_t;
esp_mqtt_client_handle_t esp_mqtt_client_init(const esp_mqtt_client_config_t *config);
esp_err_t esp_mqtt_client_register_event(esp_mqtt_client_handle_t client, esp_mqtt_event_id_t event,
                                         esp_event_handler_t handler, void *arg);
esp_err_t esp_mqtt_client_start(esp_mqtt_client_handle_t client);
int esp_mqtt_client_subscribe(esp_mqtt_client_handle_t client, const char *topic, int qos);
int esp_mqtt_client_publish(esp_mqtt_client_handle_t client, const char *topic, const char *data, int len,
                            int qos, int retain);
"""
IDF_HEADERS = ["esp_event.h", "esp_log.h", "esp_netif.h", "esp_partition.h", "esp_system.h", "esp_timer.h",
               "esp_wifi.h", "freertos/FreeRTOS.h", "freertos/stream_buffer.h", "freertos/task.h",
               "mqtt_client.h", "nvs.h", "nvs_flash.h"]


def test_esp32_main_type_checks_against_the_idf_declarations(tmp_path):
    require("gcc")
    (tmp_path / "idf_standin.h").write_text(IDF_STANDIN)
    for name in IDF_HEADERS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('#include "idf_standin.h"\n')
    main = FIRMWARE / "ports" / "esp32" / "main" / "qnode_main.c"
    # ESP-IDF builds C as gnu17 with -Wall -Werror=all; the core defines come from main/CMakeLists.txt
    compile_ok(["gcc", "-std=gnu17", "-Wall", "-Wextra", "-Werror", "-c", "-o", str(tmp_path / "main.o"),
                f"-I{tmp_path}", f"-I{main.parent}", f"-I{FIRMWARE / 'core' / 'include'}", "-DQN_MESH_MAX=4",
                '-DCONFIG_QNODE_WIFI_SSID="qora"', '-DCONFIG_QNODE_WIFI_PASSWORD=""',
                '-DCONFIG_QNODE_MQTT_URI="mqtt://127.0.0.1:1883"', '-DCONFIG_QNODE_MQTT_PASSWORD=""', str(main)])
    kconfig = (main.parent / "Kconfig.projbuild").read_text()
    for name in ("QNODE_WIFI_SSID", "QNODE_WIFI_PASSWORD", "QNODE_MQTT_URI", "QNODE_MQTT_PASSWORD"):
        assert f"config {name}\n" in kconfig and f"CONFIG_{name}" in main.read_text()
