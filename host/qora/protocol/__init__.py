"""Qora wire protocol v1: topics, CBOR messages, the HMAC-sealed update, tensor chunks.

The normative text is docs/protocol.md; ``python -m qora.protocol.vectors`` prints its test
vectors. Pure Python (numpy, cbor2, hashlib / hmac): no MQTT client and no service in here.

Aggregator side::

    chunk = decode_update(message, fleet=f, topic_node=parse_topic(topic).node, keys=keys)
    values = check_update(chunk, announcement)          # ProtocolError(.reason) otherwise

Node side::

    ann = RoundAnnouncement.decode(payload); model = assemble_model(chunks, ann.digest)
    for message in make_update(f, node, ann.round, delta, Encoding.F32, samples,
    ann.chunk_elements, key): publish(update_topic(f, node), message)
"""

from __future__ import annotations

from qora.protocol.auth import (
    PROTECTED,
    compute_tag,
    mac_structure,
    new_key,
    open_envelope,
    seal,
    verify_tag,
)
from qora.protocol.errors import PENALIZED_REASONS, REJECT_REASONS, ProtocolError
from qora.protocol.messages import LedgerHead, ModelChunk, RoundAnnouncement, Status, UpdateChunk
from qora.protocol.model import assemble_model, make_model_chunks
from qora.protocol.tensors import (
    MODES,
    Encoding,
    chunk_ranges,
    decode_values,
    element_size,
    encode_values,
    model_digest,
)
from qora.protocol.topics import (
    Topic,
    ledger_topic,
    model_topic,
    parse_topic,
    round_topic,
    status_topic,
    subscription,
    update_topic,
    validate_id,
)
from qora.protocol.updates import check_update, decode_update, make_update
from qora.protocol.wire import (
    DEFAULT_CHUNK_ELEMENTS,
    KEY_BYTES,
    MAX_CHUNKS,
    MAX_ELEMENTS,
    MAX_MESSAGE_BYTES,
    MAX_SAMPLES,
    PROTOCOL_VERSION,
    Q16_LIMIT,
    MsgType,
)

__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "KEY_BYTES",
    "MAX_CHUNKS",
    "MAX_ELEMENTS",
    "MAX_MESSAGE_BYTES",
    "MAX_SAMPLES",
    "MODES",
    "PENALIZED_REASONS",
    "PROTECTED",
    "PROTOCOL_VERSION",
    "Q16_LIMIT",
    "REJECT_REASONS",
    "Encoding",
    "LedgerHead",
    "ModelChunk",
    "MsgType",
    "ProtocolError",
    "RoundAnnouncement",
    "Status",
    "Topic",
    "UpdateChunk",
    "assemble_model",
    "check_update",
    "chunk_ranges",
    "compute_tag",
    "decode_update",
    "decode_values",
    "element_size",
    "encode_values",
    "ledger_topic",
    "mac_structure",
    "make_model_chunks",
    "make_update",
    "model_digest",
    "model_topic",
    "new_key",
    "open_envelope",
    "parse_topic",
    "round_topic",
    "seal",
    "status_topic",
    "subscription",
    "update_topic",
    "validate_id",
    "verify_tag",
]
