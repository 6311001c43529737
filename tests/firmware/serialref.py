"""Reference implementation of the serial link of docs/serial.md, for the firmware tests.

Written from the document, independently of firmware/core/src/{cobs,frame}.c, and kept
plain (no speed tricks) so it reads as an executable form of the spec. ``python
tests/firmware/serialref.py`` prints the hex examples that docs/serial.md shows; a test
checks that the document, this module and the C encoder agree byte for byte.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass, field

HELLO, PUBLISH, LOG, ASK_HELLO = 0x01, 0x02, 0x03, 0x04
MAX_PAYLOAD = 16384
MAX_TOPIC = 254
MAX_CONTENT = MAX_PAYLOAD + 256


def max_encoded(content_len: int) -> int:
    """Worst-case bytes on the line for a frame with ``content_len`` content bytes (with 0x00)."""
    raw = content_len + 5
    return raw + raw // 254 + 2


# The receiver's buffer for the largest frame: encoded bytes without the delimiter.
RX_CAP = max_encoded(MAX_CONTENT) - 1


def cobs_encode(data: bytes) -> bytes:
    """COBS without the delimiter; a final run of 254 non-zero bytes gets no empty block."""
    out = bytearray()
    block = bytearray()
    for i, b in enumerate(data):
        if len(block) == 254:            # full block: code 0xFF, no implied zero
            out += bytes([255]) + block
            block = bytearray()
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """Inverse of cobs_encode (also accepts a trailing empty block); None if malformed."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > len(data):
            return None
        run = data[i:i + code - 1]
        if 0 in run:
            return None
        out += run
        i += code - 1
        if code != 255 and i < len(data):
            out.append(0)
    return bytes(out)


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def frame(frame_type: int, content: bytes = b"") -> bytes:
    """One frame as it goes on the line: COBS(type | content | CRC-32 LE) 0x00."""
    raw = bytes([frame_type]) + content
    raw += crc32(raw).to_bytes(4, "little")
    return cobs_encode(raw) + b"\x00"


def publish_content(topic: str, payload: bytes) -> bytes:
    t = topic.encode("ascii")
    return len(t).to_bytes(2, "little") + t + payload


def parse_publish(content: bytes) -> tuple[str, bytes] | None:
    """(topic, payload) of a PUBLISH content, or None if it breaks the rules."""
    if len(content) < 2:
        return None
    tl = int.from_bytes(content[:2], "little")
    if not 1 <= tl <= MAX_TOPIC or 2 + tl > len(content):
        return None
    payload = content[2 + tl:]
    if not 1 <= len(payload) <= MAX_PAYLOAD:
        return None
    return content[2:2 + tl].decode("latin-1"), payload


@dataclass
class Receiver:
    """The receiving side: bytes in, events out (docs/serial.md, "Receiving").

    ``feed`` returns ``("frame", type, content)`` for a good frame, ``("drop", why)`` for a
    dropped one, None otherwise. ``cap`` counts encoded bytes without the delimiter.
    """

    cap: int = RX_CAP
    buf: bytearray = field(default_factory=bytearray)
    overflow: bool = False
    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    overflows: int = 0

    def feed(self, byte: int):
        if byte != 0:
            if len(self.buf) >= self.cap:
                self.overflow = True
            else:
                self.buf.append(byte)
            return None
        data, self.buf = bytes(self.buf), bytearray()
        if self.overflow:
            self.overflow = False
            self.overflows += 1
            return ("drop", "overflow")
        if not data:
            return None
        raw = cobs_decode(data)
        if raw is None or len(raw) < 5:
            self.cobs_errors += 1
            return ("drop", "cobs")
        if crc32(raw[:-4]) != int.from_bytes(raw[-4:], "little"):
            self.crc_errors += 1
            return ("drop", "crc")
        self.frames_ok += 1
        return ("frame", raw[0], raw[1:-4])

    def feed_all(self, data: bytes) -> list:
        return [e for e in (self.feed(b) for b in data) if e is not None]


# --- the examples of docs/serial.md ----------------------------------------------------------

EXAMPLE_FLEET, EXAMPLE_NODE = "demo", "node-1"


def examples() -> list[tuple[str, str, bytes, bytes]]:
    """(name, what, content, frame bytes) of each example in docs/serial.md."""
    import cbor2
    from qora.protocol import Status
    from qora.protocol.vectors import vectors

    vec = {v["name"]: bytes.fromhex(v["hex"]) for v in vectors()}
    hello = cbor2.dumps({0: 1, 2: EXAMPLE_FLEET, 3: EXAMPLE_NODE, 25: "qnode/1"}, canonical=True)
    status = Status(EXAMPLE_FLEET, EXAMPLE_NODE, True).encode()
    up = publish_content(f"qora/v1/{EXAMPLE_FLEET}/status/{EXAMPLE_NODE}", status)
    upd = publish_content(f"qora/v1/{EXAMPLE_FLEET}/update/{EXAMPLE_NODE}", vec["update-q16-1"])
    down = publish_content(f"qora/v1/{EXAMPLE_FLEET}/model/1", vec["model-q16-1"])
    log = b"round 3: sent 2 chunks"
    items = [
        ("hello", "HELLO from node-1 of fleet demo, firmware qnode/1", HELLO, hello),
        ("publish-status", "PUBLISH up: STATUS online on qora/v1/demo/status/node-1", PUBLISH, up),
        ("publish-update", ("PUBLISH up: the update-q16-1 vector of docs/protocol.md on "
                            "qora/v1/demo/update/node-1"), PUBLISH, upd),
        ("publish-model", "PUBLISH down: the model-q16-1 vector on qora/v1/demo/model/1",
         PUBLISH, down),
        ("log", "LOG: the text 'round 3: sent 2 chunks'", LOG, log),
        ("ask-hello", "ASK_HELLO (no content)", ASK_HELLO, b""),
    ]
    return [(name, what, content, frame(t, content)) for name, what, t, content in items]


def wrap(hex_text: str, width: int = 64) -> str:
    return "\n".join(hex_text[i:i + width] for i in range(0, len(hex_text), width))


def markdown() -> str:
    blocks = []
    for name, what, content, line in examples():
        shown = f":\n\n```hex\n{wrap(content.hex())}\n```" if content else ": none."
        blocks.append(f"#### `{name}`\n\n{what}. Content ({len(content)} bytes){shown}\n\n"
                      f"On the line ({len(line)} bytes, CRC-32 "
                      f"{crc32(bytes([line_type(line)]) + content):08x}):\n\n"
                      f"```hex\n{wrap(line.hex())}\n```\n")
    return "\n".join(blocks)


def line_type(line: bytes) -> int:
    raw = cobs_decode(line[:-1])
    assert raw is not None
    return raw[0]


if __name__ == "__main__":
    sys.stdout.write(markdown())
