"""The serial link's framing (docs/serial.md): COBS(type | content | CRC-32 LE), then 0x00.

Pure Python, byte-compatible with firmware/core/src/frame.c. The decoder is built for
noisy lines: garbage, CRC errors and partial frames cost only the frame they hit, and it
resynchronises on the next 0x00.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

HELLO, PUBLISH, LOG, ASK_HELLO = 0x01, 0x02, 0x03, 0x04
FRAME_TYPES = {HELLO: "hello", PUBLISH: "publish", LOG: "log", ASK_HELLO: "ask_hello"}
MAX_CONTENT = 16384 + 256


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    full = False
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
                full = True
                continue
        full = False
    if block or not data or not full:  # no empty block after a final 0xFF block (docs/serial.md)
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of cobs_encode; ValueError on malformed input."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise ValueError(f"COBS: zero byte at {i}")
        end = i + code
        block = data[i + 1:end]
        if len(block) != code - 1:
            raise ValueError(f"COBS: block at {i} runs past the end")
        if 0 in block:
            raise ValueError("COBS: zero inside a block")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)


def encode_frame(frame_type: int, content: bytes) -> bytes:
    body = bytes([frame_type]) + content
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def publish_content(topic: str, payload: bytes) -> bytes:
    t = topic.encode()
    return struct.pack("<H", len(t)) + t + payload


MAX_TOPIC, MAX_PAYLOAD = 254, 16384


def parse_publish(content: bytes) -> tuple[str, bytes]:
    """(topic, payload) of a PUBLISH frame; ValueError naming what is wrong."""
    if len(content) < 2:
        raise ValueError("PUBLISH frame shorter than its topic length")
    n = struct.unpack_from("<H", content)[0]
    if not 1 <= n <= MAX_TOPIC:
        raise ValueError(f"PUBLISH topic length must be 1..{MAX_TOPIC}, got {n}")
    if len(content) < 2 + n:
        raise ValueError(f"PUBLISH topic of {n} bytes runs past the frame ({len(content)} bytes)")
    payload = content[2 + n:]
    if not 1 <= len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"PUBLISH payload must be 1..{MAX_PAYLOAD} bytes, got {len(payload)}")
    return content[2:2 + n].decode("utf-8", errors="strict"), payload


@dataclass
class Frame:
    type: int
    content: bytes


@dataclass
class FrameDecoder:
    """Feed bytes, get frames. Counters say what the line did."""

    max_content: int = MAX_CONTENT
    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    overflows: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _overflow: bool = False

    def feed(self, data: bytes) -> list[Frame]:
        frames = []
        # the longest encoded frame (without its 0x00): 16711 bytes for the default content limit
        body = self.max_content + 5                     # type + content + CRC
        limit = body + (body + 253) // 254
        for b in data:
            if b != 0:
                if len(self._buf) < limit:
                    self._buf.append(b)
                else:
                    self._overflow = True
                continue
            raw, overflow = bytes(self._buf), self._overflow
            self._buf.clear()
            self._overflow = False
            if overflow:
                self.overflows += 1
                continue
            if not raw:
                continue  # idle delimiters are allowed
            try:
                body = cobs_decode(raw)
            except ValueError:
                self.cobs_errors += 1
                continue
            if len(body) < 5:
                self.cobs_errors += 1
                continue
            if zlib.crc32(body[:-4]) != struct.unpack("<I", body[-4:])[0]:
                self.crc_errors += 1
                continue
            self.frames_ok += 1
            frames.append(Frame(body[0], body[1:-4]))
        return frames
