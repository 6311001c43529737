"""Numbers on the wire: limits, message types and the map keys of protocol v1."""

from __future__ import annotations

from enum import IntEnum

PROTOCOL_VERSION = 1
DEFAULT_CHUNK_ELEMENTS = 1024       # 4 KiB of Q16 / F32 data per message
MAX_MESSAGE_BYTES = 16384           # default; larger messages are "oversize"
MAX_ELEMENTS = 1 << 24              # elements of one flat tensor
MAX_CHUNKS = 65535                  # chunks of one tensor
MAX_SAMPLES = (1 << 31) - 1
MAX_LAYOUT = 64                     # entries of ROUND's layout
MAX_METHOD_CHARS = 64
UINT64_MAX = (1 << 64) - 1
Q16_LIMIT = 0x7FFFFFFF / 65536      # largest Q16.16 value, 32767.9999847...
KEY_BYTES = 32                      # per-node HMAC-SHA256 key
TAG_BYTES = 32
DIGEST_BYTES = 32                   # SHA-256
SIGNATURE_BYTES = 64                # Ed25519
PUBLIC_KEY_BYTES = 32


class MsgType(IntEnum):
    ROUND = 1
    MODEL = 2
    UPDATE = 3
    STATUS = 4
    LEDGER = 5


class Key(IntEnum):
    """Map keys (unsigned integers; a payload lists them in ascending order)."""

    VERSION = 0
    TYPE = 1
    FLEET = 2
    NODE = 3
    ROUND = 4
    INDEX = 5
    COUNT = 6
    ENCODING = 7
    ELEMENTS = 8
    DATA = 9
    SCALE = 10
    SAMPLES = 11
    MODEL_VERSION = 12
    DIGEST = 13
    DEADLINE = 14
    METHOD = 15
    MODE = 16
    CHUNK_ELEMENTS = 17
    QUORUM = 18
    ONLINE = 19
    LEDGER_HASH = 20
    SIGNATURE = 21
    PUBLIC_KEY = 22
    LAYOUT = 23
    MODEL_CHUNKS = 24


def label(key: int) -> str:
    """``"4 (round)"`` for error messages."""
    try:
        return f"{int(key)} ({Key(key).name.lower()})"
    except ValueError:
        return str(key)
