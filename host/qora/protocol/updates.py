"""A node's update on the wire: make it (node side), authenticate and check it (aggregator side).

The aggregator runs ``decode_update`` then ``check_update`` on every message; each raises
``ProtocolError`` with the first failing reason, in the order of ``REJECT_REASONS``. What
stays for the service is per node and round: replay, conflict, inconsistent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from qora.errors import InvalidInput, InvalidType
from qora.protocol.auth import open_envelope, verify_tag
from qora.protocol.errors import ProtocolError
from qora.protocol.messages import RoundAnnouncement, UpdateChunk
from qora.protocol.tensors import Encoding, chunk_ranges, decode_values, element_size, encode_values
from qora.protocol.topics import validate_id
from qora.protocol.wire import MAX_MESSAGE_BYTES, MAX_SAMPLES, Q16_LIMIT

# The encodings each numeric mode accepts in updates.
ALLOWED_ENCODINGS = {"q16_16": (Encoding.Q16,), "float32": (Encoding.F32, Encoding.I8)}


def decode_update(message: bytes, *, fleet: str, topic_node: str, keys: Mapping[str, bytes],
                  max_bytes: int = MAX_MESSAGE_BYTES) -> UpdateChunk:
    """Open and authenticate one message from ``qora/v1/{fleet}/update/{topic_node}``.

    Reasons, in order: oversize, malformed, bad_version, wrong_type, wrong_fleet,
    forged_sender (payload node != topic node), unknown_node (no key), bad_tag.
    """
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise ProtocolError("malformed", f"expected a bytes message, got {type(message).__name__}")
    if len(message) > max_bytes:
        raise ProtocolError("oversize", f"expected at most {max_bytes} bytes, got {len(message)}")
    payload, tag = open_envelope(message)
    chunk = UpdateChunk.decode(payload, max_bytes=max_bytes)
    if chunk.fleet != fleet:
        raise ProtocolError("wrong_fleet", f"expected fleet {fleet!r}, got {chunk.fleet!r}")
    if chunk.node != topic_node:
        raise ProtocolError("forged_sender", f"expected node {topic_node!r} (the topic's), "
                                             f"got {chunk.node!r} in the payload")
    key = keys.get(chunk.node)
    if key is None:
        raise ProtocolError("unknown_node", f"expected a provisioned node of fleet {fleet!r}, "
                                            f"got {chunk.node!r} (no key)")
    if not verify_tag(key, payload, tag):
        raise ProtocolError("bad_tag", f"expected the HMAC-SHA256 tag under the key of {chunk.node!r}, "
                                       f"got {tag[:4].hex()}..., which does not match")
    # the chunk was validated by decode(); replace() would validate every field again
    object.__setattr__(chunk, "tag", bytes(tag))
    return chunk


def check_update(chunk: UpdateChunk, ann: RoundAnnouncement) -> np.ndarray:
    """Check an authenticated chunk against the round; return its values.

    Reasons, in order: wrong_round, bad_chunk, bad_shape, bad_encoding, non_finite,
    out_of_range. Values: int32 Q16.16 in q16_16 mode, float32 in float32 mode.
    """
    if chunk.round != ann.round:
        raise ProtocolError("wrong_round", f"expected round {ann.round}, got {chunk.round}")
    # bad_chunk: the numbering contradicts the chunk's own elements; bad_shape: the wrong tensor
    expected = -(-chunk.elements // ann.chunk_elements)
    if chunk.count != expected:
        raise ProtocolError("bad_chunk", f"expected {expected} chunks (ceil({chunk.elements} elements / "
                                         f"{ann.chunk_elements})), got count {chunk.count}")
    if chunk.index >= chunk.count:
        raise ProtocolError("bad_chunk", f"expected a chunk index below {chunk.count}, got {chunk.index}")
    if chunk.elements != ann.elements:
        raise ProtocolError("bad_shape", f"expected {ann.elements} elements (the model's), "
                                         f"got {chunk.elements}")
    start, stop = chunk_ranges(ann.elements, ann.chunk_elements)[chunk.index]
    known = chunk.encoding in set(Encoding)
    if known and len(chunk.data) != (stop - start) * element_size(chunk.encoding):
        raise ProtocolError("bad_shape", f"expected {(stop - start) * element_size(chunk.encoding)} "
                                         f"data bytes ({stop - start} {Encoding(chunk.encoding).name} "
                                         f"elements) in chunk {chunk.index}, got {len(chunk.data)}")
    allowed = ALLOWED_ENCODINGS[ann.mode]
    if chunk.encoding not in allowed:
        names = " or ".join(f"{int(e)} ({e.name})" for e in allowed)
        got = f"{int(chunk.encoding)} ({Encoding(chunk.encoding).name})" if known else str(chunk.encoding)
        raise ProtocolError("bad_encoding", f"expected encoding {names} in {ann.mode} mode, got {got}")
    if (chunk.encoding == Encoding.I8) != (chunk.scale is not None):
        raise ProtocolError("bad_encoding", "expected a scale (key 10) with I8 and only with I8, got "
                                            + ("none" if chunk.scale is None else "one with "
                                               + Encoding(chunk.encoding).name))
    values = _checked_values(chunk)
    if not 1 <= chunk.samples <= MAX_SAMPLES:
        raise ProtocolError("out_of_range", f"expected samples in 1 .. {MAX_SAMPLES}, got {chunk.samples}")
    return values


def _checked_values(chunk: UpdateChunk) -> np.ndarray:
    """Decode and check non_finite / out_of_range (float encodings)."""
    if chunk.encoding == Encoding.Q16:
        return decode_values(chunk.data, Encoding.Q16)  # every int32 is a Q16.16 value
    if chunk.encoding == Encoding.I8:
        if not math.isfinite(chunk.scale):
            raise ProtocolError("non_finite", f"expected a finite scale, got {chunk.scale}")
        if chunk.scale <= 0:
            raise ProtocolError("out_of_range", f"expected a scale > 0, got {chunk.scale}")
    values = decode_values(chunk.data, chunk.encoding, chunk.scale)
    finite = np.isfinite(values)
    if not finite.all():
        i = int(np.argmin(finite))
        raise ProtocolError("non_finite", f"expected finite values, got {values[i]} at element {i} "
                                          f"of chunk {chunk.index}")
    big = np.abs(values.astype(np.float64)) > Q16_LIMIT
    if big.any():
        i = int(np.argmax(big))
        raise ProtocolError("out_of_range", f"expected |value| <= {Q16_LIMIT} (Q16.16), got "
                                            f"{values[i]} at element {i} of chunk {chunk.index}")
    return values


def make_update(fleet: str, node: str, round: int, values: np.ndarray, encoding: int, samples: int,
                chunk_elements: int, key: bytes) -> list[bytes]:
    """Every sealed chunk message of one node's update (a flat delta) for ``round``.

    Q16 takes int32 Q16.16 values, F32 and I8 floats. An encoder, not a judge: values the
    aggregator rejects (NaN or out of range in F32, bad samples in 1 .. 2^31-1 aside) are sent as
    they are, so simulated attackers can use it too. I8 needs finite values, and refuses the one
    in-range input it cannot carry (max|x| = 32767.998046875 dequantizes to 32768).
    """
    validate_id(fleet, "fleet")
    validate_id(node, "node")
    encoding = Encoding(encoding) if encoding in set(Encoding) else encoding
    if not isinstance(values, np.ndarray):
        raise InvalidType(f"values: expected a numpy array, got {type(values).__name__}")
    flat = values.ravel()
    if type(samples) is not int or not 1 <= samples <= MAX_SAMPLES:
        raise InvalidInput(f"samples: expected an integer in 1 .. {MAX_SAMPLES}, got {samples!r}")
    ranges = chunk_ranges(int(flat.size), chunk_elements)
    messages = []
    for index, (start, stop) in enumerate(ranges):
        data, scale = encode_values(flat[start:stop], encoding)
        if scale is not None:
            _check_i8_range(flat[start:stop], data, scale, index)
        chunk = UpdateChunk(fleet=fleet, node=node, round=round, index=index, count=len(ranges),
                            encoding=encoding, elements=int(flat.size), data=data, samples=samples,
                            scale=scale)
        messages.append(chunk.encode(key))
    return messages


def _check_i8_range(part: np.ndarray, data: bytes, scale: float, index: int) -> None:
    biggest = float(np.abs(part.astype(np.float64)).max())
    back = float(np.abs(decode_values(data, Encoding.I8, scale).astype(np.float64)).max())
    if biggest <= Q16_LIMIT < back:
        raise InvalidInput(f"values: I8 cannot carry chunk {index}: max|x| {biggest} is in range but "
                           f"dequantizes to {back} > {Q16_LIMIT}; send it as F32")
