# Qora wire protocol v1 for a MicroPython node (docs/protocol.md is normative).
#
# Node side only, Q16.16 mode: topics; STATUS and sealed UPDATE chunks (encode, byte for byte
# what qora.protocol.make_update writes); strict decoding of ROUND and MODEL; the model put
# back together from its chunks with the SHA-256 digest checked. Runs unchanged under CPython.

import hashlib
import struct
import sys
from array import array

from . import cbor
from .hmac256 import equal, hmac_sha256

VERSION = 1
T_ROUND = 1
T_MODEL = 2
T_UPDATE = 3
T_STATUS = 4
Q16 = 0                       # encoding 0; mode 0 is q16_16
MAX_MESSAGE_BYTES = 16384
MAX_ELEMENTS = 1 << 24
MAX_CHUNKS = 65535
MAX_SAMPLES = 2147483647
MAX_LAYOUT = 64
MAX_METHOD = 64
U64 = 18446744073709551615
COSE_MAC0 = 17
# D1 tag 17, 84 array(4), 43 A1 01 05 protected {1: 5}, A0 unprotected {}
ENVELOPE_HEAD = b"\xd1\x84\x43\xa1\x01\x05\xa0"
# MAC_structure = ["MAC0", h'A10105', h'', payload] up to the payload's bstr head
MAC_HEAD = b"\x84\x64MAC0\x43\xa1\x01\x05\x40"
TAG_HEAD = b"\x58\x20"

_LE = sys.byteorder == "little"


def _raw_array_init():
    # MicroPython's array() copies the raw bytes of a buffer; CPython refuses bytes here.
    try:
        return len(array("i", b"\x00\x00\x00\x00")) == 1
    except TypeError:
        return False


_RAW = _raw_array_init()


class ProtocolError(ValueError):
    """A message the node rejects: reason is a docs/protocol.md section 10 name."""

    def __init__(self, reason, detail):
        super().__init__(reason + ": " + detail)
        self.reason = reason
        self.detail = detail


# ---- ids and topics ----------------------------------------------------------------------
def valid_id(s):
    if type(s) is not str or not 1 <= len(s) <= 64:
        return False
    for c in s:
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9" or c == "_" or c == "-"):
            return False
    return True


def _id(s, what):
    if not valid_id(s):
        raise ValueError("%s: expected 1 to 64 of A-Z a-z 0-9 _ -, got %r" % (what, s))
    return s


def round_topic(fleet):
    return "qora/v1/" + _id(fleet, "fleet") + "/round"


def model_filter(fleet):
    return "qora/v1/" + _id(fleet, "fleet") + "/model/+"


def update_topic(fleet, node):
    return "qora/v1/" + _id(fleet, "fleet") + "/update/" + _id(node, "node")


def status_topic(fleet, node):
    return "qora/v1/" + _id(fleet, "fleet") + "/status/" + _id(node, "node")


def parse_topic(topic):
    """(fleet, kind, leaf): leaf is the chunk index (int) for model, the node for update and
    status, None for round and ledger. ProtocolError("malformed") for any other shape."""
    if type(topic) is not str:
        topic = str(topic, "utf-8")
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "qora" and parts[1] == "v1" and valid_id(parts[2]):
        kind = parts[3]
        if len(parts) == 4 and (kind == "round" or kind == "ledger"):
            return parts[2], kind, None
        if len(parts) == 5:
            leaf = parts[4]
            if kind == "model" and 1 <= len(leaf) <= 5 and (leaf == "0" or leaf[0] != "0") \
                    and all("0" <= c <= "9" for c in leaf) and int(leaf) < MAX_CHUNKS:
                return parts[2], kind, int(leaf)
            if (kind == "update" or kind == "status") and valid_id(leaf):
                return parts[2], kind, leaf
    raise ProtocolError("malformed", "not a protocol topic: %r" % topic[:120])


# ---- tensors -----------------------------------------------------------------------------
def chunk_count(elements, chunk_elements):
    return (elements + chunk_elements - 1) // chunk_elements


def i32_from_le(data):
    """int32 little-endian bytes -> array('i')."""
    if _RAW and _LE:
        return array("i", data)
    a = array("i")
    a.frombytes(bytes(data))
    if not _LE:
        a.byteswap()
    return a


def i32_to_le(values, start, stop):
    """values[start:stop] (int32s: an array('i') or a list) as little-endian bytes."""
    if _LE and isinstance(values, array):
        return bytes(memoryview(values)[start:stop])
    out = bytearray(4 * (stop - start))
    for i in range(start, stop):
        v = values[i]
        if v < -2147483648 or v > 2147483647:
            raise ValueError("not an int32: %d" % v)
        struct.pack_into("<i", out, 4 * (i - start), v)
    return bytes(out)


# ---- messages the node writes --------------------------------------------------------------
def _map_head(buf, n_keys, msg_type):
    cbor.head(buf, 5, n_keys)
    buf.extend(b"\x00\x01\x01")          # 0: version 1, key 1 ...
    cbor.put_uint(buf, msg_type)         # ... the message type


def status(fleet, node, online):
    """STATUS {0: 1, 1: 4, 2: fleet, 3: node, 19: online}."""
    buf = bytearray()
    _map_head(buf, 5, T_STATUS)
    buf.append(2)
    cbor.put_text(buf, _id(fleet, "fleet"))
    buf.append(3)
    cbor.put_text(buf, _id(node, "node"))
    buf.append(19)
    buf.append(0xF5 if online else 0xF4)
    return bytes(buf)


def update_payload(fleet, node, rnd, index, count, elements, data, samples):
    """The UPDATE map (Q16) of one chunk: what the tag covers."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError("samples: expected 1 .. %d, got %d" % (MAX_SAMPLES, samples))
    buf = bytearray()
    _map_head(buf, 11, T_UPDATE)
    for k, v in ((2, _id(fleet, "fleet")), (3, _id(node, "node")), (4, rnd), (5, index),
                 (6, count), (7, Q16), (8, elements), (9, data), (11, samples)):
        cbor.put_uint(buf, k)
        cbor.encode(buf, v)
    return bytes(buf)


def _bstr_head(n):
    h = bytearray()
    cbor.head(h, 2, n)
    return h


def compute_tag(key, payload):
    """HMAC-SHA256(key, MAC_structure(payload))."""
    if len(key) != 32:
        raise ValueError("key: expected 32 bytes, got %d" % len(key))
    return hmac_sha256(key, MAC_HEAD, _bstr_head(len(payload)), payload)


def seal(key, payload):
    """The COSE_Mac0 envelope around the payload (docs/protocol.md section 7)."""
    tag = compute_tag(key, payload)
    out = bytearray(ENVELOPE_HEAD)
    out.extend(_bstr_head(len(payload)))
    out.extend(payload)
    out.extend(TAG_HEAD)
    out.extend(tag)
    return bytes(out)


def update_messages(fleet, node, rnd, values, samples, chunk_elements, key, first=0):
    """Yield (index, sealed message) for chunks first .. count - 1 of a Q16 update (values:
    int32s), one at a time, so only one message is in memory."""
    elements = len(values)
    if not 1 <= elements <= MAX_ELEMENTS or not 1 <= chunk_elements <= MAX_ELEMENTS:
        raise ValueError("bad elements / chunk elements")
    count = chunk_count(elements, chunk_elements)
    if count > MAX_CHUNKS:
        raise ValueError("too many chunks: %d" % count)
    for index in range(first, count):
        start = index * chunk_elements
        stop = min(start + chunk_elements, elements)
        data = i32_to_le(values, start, stop)
        yield index, seal(key, update_payload(fleet, node, rnd, index, count, elements, data, samples))


def unseal(message, key):
    """Open a sealed UPDATE and check its tag; return the payload's map (mesh / tests)."""
    try:
        env = cbor.loads(message, COSE_MAC0)
    except cbor.CBORError as e:
        raise ProtocolError("malformed", str(e))
    body = env.value if isinstance(env, cbor.Tag) else None
    if type(body) is not list or len(body) != 4 or body[0] != b"\xa1\x01\x05" or body[1] != {} \
            or type(body[2]) is not bytes or type(body[3]) is not bytes or len(body[3]) != 32:
        raise ProtocolError("malformed", "not a COSE_Mac0 envelope of protocol v1")
    m = _read_map(body[2], T_UPDATE, (2, 3, 4, 5, 6, 7, 8, 9, 11), len(message))
    if not equal(compute_tag(key, body[2]), body[3]):
        raise ProtocolError("bad_tag", "the tag does not verify under the key")
    return m


# ---- messages the node reads ----------------------------------------------------------------
def _read_map(payload, msg_type, keys, max_bytes):
    """Checks up to the key level (section 3's order): oversize, malformed, bad_version,
    wrong_type, the exact key set."""
    if len(payload) > max_bytes:
        raise ProtocolError("oversize", "%d bytes > %d" % (len(payload), max_bytes))
    try:
        m = cbor.loads(payload)
    except cbor.CBORError as e:
        raise ProtocolError("malformed", str(e))
    if type(m) is not dict:
        raise ProtocolError("malformed", "expected a CBOR map")
    for k in (0, 1):
        if type(m.get(k)) is not int:
            raise ProtocolError("malformed", "key %d: expected an unsigned integer" % k)
    if m[0] != VERSION:
        raise ProtocolError("bad_version", "protocol version %d" % m[0])
    if m[1] != msg_type:
        raise ProtocolError("wrong_type", "message type %d, expected %d" % (m[1], msg_type))
    if len(m) != len(keys) + 2 or any(k not in m for k in keys):
        raise ProtocolError("malformed", "expected exactly keys 0, 1, %s; got %s"
                            % (", ".join(str(k) for k in keys), sorted(m)))
    return m


def _uint(m, k, lo=0, hi=U64):
    v = m[k]
    if type(v) is not int or not lo <= v <= hi:
        raise ProtocolError("malformed", "key %d: expected an integer in %d .. %d, got %r"
                            % (k, lo, hi, v))
    return v


def _blob(m, k, size):
    v = m[k]
    if type(v) is not bytes or len(v) != size:
        raise ProtocolError("malformed", "key %d: expected %d bytes" % (k, size))
    return v


def _fleet(m):
    if not valid_id(m[2]):
        raise ProtocolError("malformed", "key 2: invalid fleet id")
    return m[2]


class Round:
    """A decoded ROUND announcement (fields as in docs/protocol.md section 5)."""

    def __init__(self, m):
        self.fleet = _fleet(m)
        self.round = _uint(m, 4, 1)
        self.version = _uint(m, 12, 0, 0xFFFFFFFF)   # as qora.protocol (docs: "any uint")
        self.digest = _blob(m, 13, 32)
        self.deadline = _uint(m, 14)
        method = m[15]
        if type(method) is not str or not 1 <= len(method) <= MAX_METHOD \
                or any(not "!" <= c <= "~" for c in method):
            raise ProtocolError("malformed", "key 15: expected 1 to 64 printable ASCII characters")
        self.method = method
        self.mode = _uint(m, 16, 0, 1)
        self.chunk_elements = _uint(m, 17, 1, MAX_ELEMENTS)
        self.quorum = _uint(m, 18, 1)
        self.elements = _uint(m, 8, 1, MAX_ELEMENTS)
        layout = m[23]
        if type(layout) is not list or len(layout) > MAX_LAYOUT \
                or any(type(v) is not int or not 1 <= v <= MAX_ELEMENTS for v in layout):
            raise ProtocolError("malformed", "key 23: expected at most 64 layer sizes in 1 .. 2^24")
        self.layout = layout
        count = chunk_count(self.elements, self.chunk_elements)
        if count > MAX_CHUNKS:
            raise ProtocolError("malformed", "%d model chunks > %d" % (count, MAX_CHUNKS))
        self.model_chunks = _uint(m, 24, count, count)


def decode_round(payload, max_bytes=MAX_MESSAGE_BYTES):
    return Round(_read_map(payload, T_ROUND, (2, 4, 8, 12, 13, 14, 15, 16, 17, 18, 23, 24), max_bytes))


class ModelChunk:
    """A decoded MODEL chunk."""

    def __init__(self, m):
        self.fleet = _fleet(m)
        self.version = _uint(m, 12)
        self.digest = _blob(m, 13, 32)
        self.elements = _uint(m, 8, 1, MAX_ELEMENTS)
        self.count = _uint(m, 6, 1, min(MAX_CHUNKS, self.elements))
        self.index = _uint(m, 5, 0, self.count - 1)
        self.encoding = _uint(m, 7, 0, 1)
        data = m[9]
        if type(data) is not bytes or not data or len(data) % 4 or len(data) > 4 * self.elements:
            raise ProtocolError("malformed", "key 9: expected a positive multiple of 4 bytes")
        self.data = data


def decode_model(payload, max_bytes=MAX_MESSAGE_BYTES):
    return ModelChunk(_read_map(payload, T_MODEL, (2, 5, 6, 7, 8, 9, 12, 13), max_bytes))


# ---- the model, put back together -------------------------------------------------------------
class ModelStore:
    """MODEL chunks by (version, index); assemble(round) gives the announced model or None."""

    def __init__(self):
        self.chunks = {}                 # version -> {index: ModelChunk}

    def add(self, chunk, min_version=0):
        if chunk.version < min_version:
            return False
        self.chunks.setdefault(chunk.version, {})[chunk.index] = chunk
        self.drop_below(min_version)
        # keep at most the two newest versions (the current one and the next)
        while len(self.chunks) > 2:
            del self.chunks[min(self.chunks)]
        return True

    def drop_below(self, version):
        for v in [v for v in self.chunks if v < version]:
            del self.chunks[v]

    def assemble(self, ann):
        """The ROUND's model as array('i') when every chunk is here and matches its digest;
        None otherwise (stale or partly updated retained chunks: wait for the rest)."""
        have = self.chunks.get(ann.version)
        if ann.mode != 0 or not have or len(have) < ann.model_chunks:
            return None
        h = hashlib.sha256()
        c = ann.chunk_elements
        for i in range(ann.model_chunks):
            ch = have.get(i)
            if ch is None or ch.count != ann.model_chunks or ch.elements != ann.elements \
                    or ch.encoding != Q16 or ch.digest != ann.digest \
                    or len(ch.data) != 4 * (min((i + 1) * c, ann.elements) - i * c):
                return None
            h.update(ch.data)
        if h.digest() != ann.digest:
            return None
        out = array("i")
        for i in range(ann.model_chunks):
            out.extend(i32_from_le(have[i].data))
        return out
