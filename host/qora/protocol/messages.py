"""The five messages of protocol v1 as frozen dataclasses.

``encode()`` writes the deterministic CBOR map (``UpdateChunk.encode(key)`` the sealed
envelope); ``decode(payload)`` accepts exactly that and raises ``ProtocolError`` for anything
else: ``oversize``, ``malformed`` (CBOR, keys, field types and bounds), ``bad_version``,
``wrong_type``. Constructing a message checks the same bounds (``InvalidInput`` /
``InvalidType``), so what encodes also decodes.

``UpdateChunk`` checks only types: values an authenticated node may get wrong (round, chunk
index, shape, encoding, range) are ``check_update``'s, so they can be told apart and penalized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from qora.errors import InvalidInput, QoraError
from qora.protocol import cbor, fields
from qora.protocol.auth import seal
from qora.protocol.errors import ProtocolError
from qora.protocol.tensors import MODES, Encoding, chunk_ranges
from qora.protocol.wire import (
    DEFAULT_CHUNK_ELEMENTS,
    DIGEST_BYTES,
    MAX_CHUNKS,
    MAX_ELEMENTS,
    MAX_LAYOUT,
    MAX_MESSAGE_BYTES,
    MAX_METHOD_CHARS,
    MAX_SAMPLES,
    PROTOCOL_VERSION,
    PUBLIC_KEY_BYTES,
    Q16_LIMIT,
    SIGNATURE_BYTES,
    TAG_BYTES,
    Key,
    MsgType,
    label,
)

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS", "MAX_CHUNKS", "MAX_ELEMENTS", "MAX_MESSAGE_BYTES", "MAX_SAMPLES",
    "PROTOCOL_VERSION", "Q16_LIMIT", "LedgerHead", "ModelChunk", "RoundAnnouncement", "Status",
    "UpdateChunk",
]
_MODE_NAMES = {v: k for k, v in MODES.items()}


def _read_map(payload: object, msg_type: MsgType, required: frozenset[int],
              optional: frozenset[int], max_bytes: int) -> dict:
    """Checks up to the field level: oversize, malformed (CBOR), bad_version, wrong_type, keys."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ProtocolError("malformed", f"expected a bytes payload, got {type(payload).__name__}")
    payload = bytes(payload)
    if len(payload) > max_bytes:
        raise ProtocolError("oversize", f"expected at most {max_bytes} bytes, got {len(payload)}")
    if payload[:1] == b"\xd1":
        raise ProtocolError("malformed", "expected a CBOR map, got tag 17 (a sealed UPDATE: "
                                         "open_envelope or decode_update first)")
    obj = cbor.loads(payload)
    if not isinstance(obj, dict):
        raise ProtocolError("malformed", f"expected a CBOR map, got {type(obj).__name__}")
    for key in (Key.VERSION, Key.TYPE):
        if type(obj.get(key)) is not int:
            raise ProtocolError("malformed", f"key {label(key)}: expected an unsigned integer, "
                                             f"got {'nothing' if key not in obj else repr(obj[key])[:40]}")
    if obj[Key.VERSION] != PROTOCOL_VERSION:
        raise ProtocolError("bad_version", f"expected protocol version {PROTOCOL_VERSION}, "
                                           f"got {obj[Key.VERSION]}")
    if obj[Key.TYPE] != msg_type:
        got = MsgType(obj[Key.TYPE]).name if obj[Key.TYPE] in set(MsgType) else "unknown"
        raise ProtocolError("wrong_type", f"expected message type {int(msg_type)} ({msg_type.name}), "
                                          f"got {obj[Key.TYPE]} ({got})")
    keys = set(obj)
    missing = sorted(required - keys)
    extra = sorted(keys - required - optional - {Key.VERSION, Key.TYPE})
    if missing or extra:
        parts = ([f"missing keys {', '.join(map(label, missing))}"] if missing else []) + \
                ([f"unexpected keys {', '.join(map(label, extra))}"] if extra else [])
        raise ProtocolError("malformed", f"{msg_type.name}: {'; '.join(parts)}")
    return obj


def _build(cls, **kwargs):
    """Construct from decoded fields; a field check that fails is ``malformed``."""
    try:
        return cls(**kwargs)
    except ProtocolError:
        raise
    except QoraError as e:
        raise ProtocolError("malformed", str(e)) from None


def _encode(msg_type: MsgType, body: dict) -> bytes:
    return cbor.dumps({Key.VERSION: PROTOCOL_VERSION, Key.TYPE: int(msg_type), **body})


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class RoundAnnouncement:
    """ROUND: round ``round`` trains on model ``version`` (digest) until ``deadline``."""

    fleet: str
    round: int
    version: int
    digest: bytes
    deadline: int
    method: str
    mode: str
    chunk_elements: int
    quorum: int
    elements: int
    layout: tuple[int, ...]
    model_chunks: int

    REQUIRED: ClassVar = frozenset({2, 4, 8, 12, 13, 14, 15, 16, 17, 18, 23, 24})

    def __post_init__(self) -> None:
        fields.ident("fleet (key 2)", self.fleet)
        _set(self, "round", fields.uint("round (key 4)", self.round, 1))
        _set(self, "version", fields.uint("version (key 12)", self.version, 0, 0xFFFFFFFF))
        _set(self, "digest", fields.blob("digest (key 13)", self.digest, DIGEST_BYTES))
        _set(self, "deadline", fields.uint("deadline (key 14)", self.deadline))
        fields.text("method (key 15)", self.method, MAX_METHOD_CHARS)
        if self.mode not in MODES:
            raise InvalidInput(f"mode (key 16): expected one of {', '.join(MODES)}, got {self.mode!r}")
        _set(self, "chunk_elements", fields.uint("chunk_elements (key 17)", self.chunk_elements, 1,
                                                 MAX_ELEMENTS))
        _set(self, "quorum", fields.uint("quorum (key 18)", self.quorum, 1))
        _set(self, "elements", fields.uint("elements (key 8)", self.elements, 1, MAX_ELEMENTS))
        if not isinstance(self.layout, (tuple, list)) or len(self.layout) > MAX_LAYOUT:
            raise InvalidInput(f"layout (key 23): expected an array of at most {MAX_LAYOUT} "
                                      f"layer sizes, got {fields.describe(self.layout)}")
        _set(self, "layout", tuple(fields.uint("layout (key 23) entry", v, 1, MAX_ELEMENTS)
                                   for v in self.layout))
        count = len(chunk_ranges(self.elements, self.chunk_elements))
        _set(self, "model_chunks", fields.uint("model_chunks (key 24)", self.model_chunks, count, count))

    def encode(self) -> bytes:
        return _encode(MsgType.ROUND, {
            Key.FLEET: self.fleet, Key.ROUND: self.round, Key.ELEMENTS: self.elements,
            Key.MODEL_VERSION: self.version, Key.DIGEST: self.digest, Key.DEADLINE: self.deadline,
            Key.METHOD: self.method, Key.MODE: MODES[self.mode],
            Key.CHUNK_ELEMENTS: self.chunk_elements, Key.QUORUM: self.quorum,
            Key.LAYOUT: list(self.layout), Key.MODEL_CHUNKS: self.model_chunks})

    @classmethod
    def decode(cls, payload: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> RoundAnnouncement:
        m = _read_map(payload, MsgType.ROUND, cls.REQUIRED, frozenset(), max_bytes)
        mode = m[Key.MODE]
        if type(mode) is not int or mode not in _MODE_NAMES:
            raise ProtocolError("malformed", f"mode (key 16): expected 0 (q16_16) or 1 (float32), "
                                             f"got {mode!r}")
        layout = m[Key.LAYOUT]
        if not isinstance(layout, (list, tuple)):
            raise ProtocolError("malformed", f"layout (key 23): expected an array, got {layout!r:.60}")
        return _build(cls, fleet=m[Key.FLEET], round=m[Key.ROUND], version=m[Key.MODEL_VERSION],
                      digest=m[Key.DIGEST], deadline=m[Key.DEADLINE], method=m[Key.METHOD],
                      mode=_MODE_NAMES[mode], chunk_elements=m[Key.CHUNK_ELEMENTS],
                      quorum=m[Key.QUORUM], elements=m[Key.ELEMENTS], layout=tuple(layout),
                      model_chunks=m[Key.MODEL_CHUNKS])


@dataclass(frozen=True)
class ModelChunk:
    """MODEL: chunk ``index`` of ``count`` of model ``version`` (int32 Q16.16 or float32 data)."""

    fleet: str
    version: int
    digest: bytes
    index: int
    count: int
    encoding: Encoding
    elements: int
    data: bytes

    REQUIRED: ClassVar = frozenset({2, 5, 6, 7, 8, 9, 12, 13})

    def __post_init__(self) -> None:
        fields.ident("fleet (key 2)", self.fleet)
        _set(self, "version", fields.uint("version (key 12)", self.version))
        _set(self, "digest", fields.blob("digest (key 13)", self.digest, DIGEST_BYTES))
        _set(self, "elements", fields.uint("elements (key 8)", self.elements, 1, MAX_ELEMENTS))
        _set(self, "count", fields.uint("count (key 6)", self.count, 1, min(MAX_CHUNKS, self.elements)))
        _set(self, "index", fields.uint("index (key 5)", self.index, 0, self.count - 1))
        _set(self, "encoding", Encoding(fields.uint("encoding (key 7)", self.encoding, 0, 1)))
        data = fields.blob("data (key 9)", self.data, max_size=4 * self.elements)
        if not data or len(data) % 4:
            raise InvalidInput(f"data (key 9): expected a positive multiple of 4 bytes, "
                                      f"got {len(data)}")
        _set(self, "data", data)

    def encode(self) -> bytes:
        return _encode(MsgType.MODEL, {
            Key.FLEET: self.fleet, Key.INDEX: self.index, Key.COUNT: self.count,
            Key.ENCODING: int(self.encoding), Key.ELEMENTS: self.elements, Key.DATA: self.data,
            Key.MODEL_VERSION: self.version, Key.DIGEST: self.digest})

    @classmethod
    def decode(cls, payload: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> ModelChunk:
        m = _read_map(payload, MsgType.MODEL, cls.REQUIRED, frozenset(), max_bytes)
        return _build(cls, fleet=m[Key.FLEET], version=m[Key.MODEL_VERSION], digest=m[Key.DIGEST],
                      index=m[Key.INDEX], count=m[Key.COUNT], encoding=m[Key.ENCODING],
                      elements=m[Key.ELEMENTS], data=m[Key.DATA])


@dataclass(frozen=True)
class UpdateChunk:
    """UPDATE: chunk ``index`` of ``count`` of a node's update (a delta) for ``round``.

    ``raw`` is the payload the tag covers and ``tag`` the 32-byte tag; ``decode`` fills
    ``raw``, ``decode_update`` both. Neither takes part in ``==``.
    """

    fleet: str
    node: str
    round: int
    index: int
    count: int
    encoding: int
    elements: int
    data: bytes
    samples: int
    scale: float | None = None
    raw: bytes = field(default=b"", compare=False, repr=False)
    tag: bytes = field(default=b"", compare=False, repr=False)

    REQUIRED: ClassVar = frozenset({2, 3, 4, 5, 6, 7, 8, 9, 11})
    OPTIONAL: ClassVar = frozenset({10})

    def __post_init__(self) -> None:
        fields.ident("fleet (key 2)", self.fleet)
        fields.ident("node (key 3)", self.node)
        for name, key in (("round", 4), ("index", 5), ("count", 6), ("encoding", 7),
                          ("elements", 8), ("samples", 11)):
            _set(self, name, fields.uint(f"{name} (key {key})", getattr(self, name)))
        if self.encoding in set(Encoding):
            _set(self, "encoding", Encoding(self.encoding))
        _set(self, "data", fields.blob("data (key 9)", self.data))
        if self.scale is not None:
            _set(self, "scale", fields.float32("scale (key 10)", self.scale))
        _set(self, "raw", fields.blob("raw", self.raw))
        tag = fields.blob("tag", self.tag)
        if len(tag) not in (0, TAG_BYTES):
            raise InvalidInput(f"tag: expected {TAG_BYTES} bytes (or none), got {len(tag)}")
        _set(self, "tag", tag)

    def payload(self) -> bytes:
        """The UPDATE map's CBOR bytes: what the tag covers."""
        body = {Key.FLEET: self.fleet, Key.NODE: self.node, Key.ROUND: self.round,
                Key.INDEX: self.index, Key.COUNT: self.count, Key.ENCODING: int(self.encoding),
                Key.ELEMENTS: self.elements, Key.DATA: self.data, Key.SAMPLES: self.samples}
        if self.scale is not None:
            body[Key.SCALE] = cbor.Float32(self.scale)
        return _encode(MsgType.UPDATE, body)

    def encode(self, key: bytes) -> bytes:
        """The sealed message (COSE_Mac0 with ``key``'s HMAC-SHA256 tag)."""
        return seal(key, self.payload())

    @classmethod
    def decode(cls, payload: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> UpdateChunk:
        """The UPDATE map inside an envelope (from ``open_envelope``); the tag is not checked."""
        m = _read_map(payload, MsgType.UPDATE, cls.REQUIRED, cls.OPTIONAL, max_bytes)
        if Key.SCALE in m and type(m[Key.SCALE]) is not float:
            raise ProtocolError("malformed", f"scale (key 10): expected a float32, got {m[Key.SCALE]!r:.40}")
        return _build(cls, fleet=m[Key.FLEET], node=m[Key.NODE], round=m[Key.ROUND],
                      index=m[Key.INDEX], count=m[Key.COUNT], encoding=m[Key.ENCODING],
                      elements=m[Key.ELEMENTS], data=m[Key.DATA], samples=m[Key.SAMPLES],
                      scale=m.get(Key.SCALE), raw=bytes(payload))


@dataclass(frozen=True)
class Status:
    """STATUS: a node is online (published on connect) or offline (its will message)."""

    fleet: str
    node: str
    online: bool

    REQUIRED: ClassVar = frozenset({2, 3, 19})

    def __post_init__(self) -> None:
        fields.ident("fleet (key 2)", self.fleet)
        fields.ident("node (key 3)", self.node)
        fields.boolean("online (key 19)", self.online)

    def encode(self) -> bytes:
        return _encode(MsgType.STATUS, {Key.FLEET: self.fleet, Key.NODE: self.node,
                                        Key.ONLINE: self.online})

    @classmethod
    def decode(cls, payload: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Status:
        m = _read_map(payload, MsgType.STATUS, cls.REQUIRED, frozenset(), max_bytes)
        return _build(cls, fleet=m[Key.FLEET], node=m[Key.NODE], online=m[Key.ONLINE])


@dataclass(frozen=True)
class LedgerHead:
    """LEDGER: the hash of the latest ledger entry (after ``round``), signed by the aggregator."""

    fleet: str
    round: int
    hash: bytes
    signature: bytes
    public_key: bytes

    REQUIRED: ClassVar = frozenset({2, 4, 20, 21, 22})

    def __post_init__(self) -> None:
        fields.ident("fleet (key 2)", self.fleet)
        _set(self, "round", fields.uint("round (key 4)", self.round, 1))
        _set(self, "hash", fields.blob("hash (key 20)", self.hash, DIGEST_BYTES))
        _set(self, "signature", fields.blob("signature (key 21)", self.signature, SIGNATURE_BYTES))
        _set(self, "public_key", fields.blob("public_key (key 22)", self.public_key, PUBLIC_KEY_BYTES))

    def encode(self) -> bytes:
        return _encode(MsgType.LEDGER, {Key.FLEET: self.fleet, Key.ROUND: self.round,
                                        Key.LEDGER_HASH: self.hash, Key.SIGNATURE: self.signature,
                                        Key.PUBLIC_KEY: self.public_key})

    @classmethod
    def decode(cls, payload: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> LedgerHead:
        m = _read_map(payload, MsgType.LEDGER, cls.REQUIRED, frozenset(), max_bytes)
        return _build(cls, fleet=m[Key.FLEET], round=m[Key.ROUND], hash=m[Key.LEDGER_HASH],
                      signature=m[Key.SIGNATURE], public_key=m[Key.PUBLIC_KEY])

