"""The global model on the wire: split into MODEL chunks, and put back together on a node."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from qora.errors import InvalidInput
from qora.protocol.errors import ProtocolError
from qora.protocol.messages import ModelChunk
from qora.protocol.tensors import MODES, Encoding, chunk_ranges, decode_values, encode_values
from qora.protocol.topics import validate_id


def make_model_chunks(fleet: str, version: int, values: np.ndarray, mode: str,
                      chunk_elements: int) -> list[ModelChunk]:
    """Model ``version`` as MODEL chunks: int32 Q16.16 (q16_16) or float32 (float32) values."""
    validate_id(fleet, "fleet")
    if mode not in MODES:
        raise InvalidInput(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    encoding = Encoding(MODES[mode])
    data, _ = encode_values(values, encoding)
    digest = hashlib.sha256(data).digest()
    ranges = chunk_ranges(len(data) // 4, chunk_elements)
    return [ModelChunk(fleet=fleet, version=version, digest=digest, index=i, count=len(ranges),
                       encoding=encoding, elements=len(data) // 4, data=data[4 * a:4 * b])
            for i, (a, b) in enumerate(ranges)]


def assemble_model(chunks: Iterable[ModelChunk], expected_digest: bytes | None = None) -> np.ndarray:
    """All chunks of one model version -> its values (int32 or float32), digest checked.

    Reasons: inconsistent (chunks of different models, or a digest that does not match),
    conflict (one index with two contents), bad_chunk (missing chunks), bad_shape (chunk
    sizes that no chunking gives), non_finite (NaN / Inf in a float32 model).
    """
    by_index: dict[int, ModelChunk] = {}
    first = None
    for c in chunks:
        if not isinstance(c, ModelChunk):
            raise InvalidInput(f"chunks: expected ModelChunk items, got {type(c).__name__}")
        first = first or c
        same = (c.fleet, c.version, c.digest, c.count, c.encoding, c.elements)
        want = (first.fleet, first.version, first.digest, first.count, first.encoding, first.elements)
        if same != want:
            raise ProtocolError("inconsistent", f"expected chunks of one model (fleet, version, digest, "
                                                f"count, encoding, elements = {want}), got {same}")
        if c.index in by_index and by_index[c.index].data != c.data:
            raise ProtocolError("conflict", f"expected one content for chunk {c.index}, got two")
        by_index[c.index] = c
    if first is None:
        raise ProtocolError("bad_chunk", "expected the chunks of a model, got none")
    missing = sorted(set(range(first.count)) - set(by_index))
    if missing:
        raise ProtocolError("bad_chunk", f"expected {first.count} chunks, got {len(by_index)} "
                                         f"(missing {', '.join(map(str, missing[:10]))}"
                                         f"{' ...' if len(missing) > 10 else ''})")
    parts = [by_index[i].data for i in range(first.count)]
    size = len(parts[0]) // 4
    try:
        ranges = chunk_ranges(first.elements, size) if first.count > 1 else [(0, first.elements)]
    except InvalidInput as e:
        raise ProtocolError("bad_shape", str(e)) from None
    sizes = [len(p) // 4 for p in parts]
    if len(ranges) != first.count or sizes != [b - a for a, b in ranges]:
        raise ProtocolError("bad_shape", f"expected {first.elements} elements in chunks of "
                                         f"{size} elements, got chunk sizes {sizes[:10]}")
    data = b"".join(parts)
    digest = hashlib.sha256(data).digest()
    if digest != first.digest or (expected_digest is not None and digest != expected_digest):
        wanted = first.digest if digest != first.digest else expected_digest
        raise ProtocolError("inconsistent", f"expected model digest {wanted.hex()[:16]}..., "
                                            f"got {digest.hex()[:16]}... from the chunks' data")
    values = decode_values(data, first.encoding)
    if first.encoding == Encoding.F32 and not np.isfinite(values).all():
        raise ProtocolError("non_finite", "expected a finite float32 model, got NaN or Inf")
    return values

