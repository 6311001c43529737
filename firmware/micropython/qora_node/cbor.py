# Deterministic CBOR for Qora wire protocol v1 (docs/protocol.md section 3), small enough
# for MicroPython (which has no cbor2). Runs unchanged under CPython.
#
# Encoder: shortest heads, definite lengths, map keys (unsigned ints) in ascending order,
# floats always float32 (FA), tags only as Tag objects.
# Decoder (strict): accepts only the protocol's subset -- unsigned / negative ints, byte and
# text strings (valid UTF-8), arrays, maps with unsigned-int keys strictly ascending, false,
# true, float32, at most MAX_DEPTH nested levels, no tag except the one the caller allows
# around the whole item, nothing after the item. Anything else raises CBORError naming the
# byte offset.

import struct

MAX_DEPTH = 4
_U64 = 18446744073709551615


class CBORError(ValueError):
    pass


class Tag:
    """A CBOR tag around a value (only tag 17, COSE_Mac0, occurs in the protocol)."""

    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


# ---- encoder -----------------------------------------------------------------------------
def head(buf, major, n):
    """Append the initial byte and argument of major type `major` with argument n (shortest)."""
    if n < 0 or n > _U64:
        raise CBORError("argument out of range: %d" % n)
    mt = major << 5
    if n < 24:
        buf.append(mt | n)
    elif n < 0x100:
        buf.append(mt | 24)
        buf.append(n)
    elif n < 0x10000:
        buf.append(mt | 25)
        buf.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        buf.append(mt | 26)
        buf.extend(struct.pack(">I", n))
    else:
        buf.append(mt | 27)
        buf.extend(struct.pack(">II", n >> 32, n & 0xFFFFFFFF))


def put_uint(buf, n):
    head(buf, 0, n)


def put_bytes(buf, b):
    head(buf, 2, len(b))
    buf.extend(b)


def put_text(buf, s):
    b = s.encode("utf-8")
    head(buf, 3, len(b))
    buf.extend(b)


def put_float32(buf, x):
    buf.append(0xFA)
    buf.extend(struct.pack(">f", x))


def encode(buf, obj):
    """Append the deterministic encoding of obj (bool, int, bytes, str, float, list, tuple,
    dict with unsigned-int keys, Tag)."""
    t = type(obj)
    if t is bool:
        buf.append(0xF5 if obj else 0xF4)
    elif t is int:
        if obj >= 0:
            head(buf, 0, obj)
        else:
            head(buf, 1, -1 - obj)
    elif t is bytes or t is bytearray or t is memoryview:
        put_bytes(buf, obj)
    elif t is str:
        put_text(buf, obj)
    elif t is float:
        put_float32(buf, obj)
    elif t is list or t is tuple:
        head(buf, 4, len(obj))
        for v in obj:
            encode(buf, v)
    elif t is dict:
        keys = sorted(obj)
        for k in keys:
            if type(k) is not int or k < 0:
                raise CBORError("map keys must be unsigned integers, got %r" % (k,))
        head(buf, 5, len(keys))
        for k in keys:
            head(buf, 0, k)
            encode(buf, obj[k])
    elif t is Tag:
        head(buf, 6, obj.tag)
        encode(buf, obj.value)
    else:
        raise CBORError("cannot encode %s" % t.__name__)


def dumps(obj):
    buf = bytearray()
    encode(buf, obj)
    return bytes(buf)


# ---- decoder -----------------------------------------------------------------------------
def _bad(pos, what):
    return CBORError("byte %d: %s" % (pos, what))


def _head(data, pos):
    """(major, additional info, argument, position after the head)."""
    if pos >= len(data):
        raise _bad(pos, "expected a CBOR item, got the end of the message")
    ib = data[pos]
    major = ib >> 5
    ai = ib & 31
    if ai < 24:
        return major, ai, ai, pos + 1
    if ai > 27:
        raise _bad(pos, "indefinite length, break or reserved initial byte 0x%02x" % ib)
    width = 1 << (ai - 24)
    end = pos + 1 + width
    if end > len(data):
        raise _bad(pos, "expected %d argument bytes, got the end of the message" % width)
    arg = 0
    for i in range(pos + 1, end):
        arg = (arg << 8) | data[i]
    if major != 7 and arg < (24 if width == 1 else 1 << (4 * width)):
        raise _bad(pos, "expected the shortest encoding of %d" % arg)
    return major, ai, arg, end


def utf8_valid(b, p, end):
    """True when b[p:end] is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates)."""
    while p < end:
        c = b[p]
        if c < 0x80:
            p += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif 0xE0 <= c <= 0xEF:
            n = 2
            if c == 0xE0:
                lo = 0xA0
            elif c == 0xED:
                hi = 0x9F
        elif 0xF0 <= c <= 0xF4:
            n = 3
            if c == 0xF0:
                lo = 0x90
            elif c == 0xF4:
                hi = 0x8F
        else:
            return False
        if p + n >= end:
            return False
        c1 = b[p + 1]
        if c1 < lo or c1 > hi:
            return False
        for i in range(p + 2, p + n + 1):
            if b[i] < 0x80 or b[i] > 0xBF:
                return False
        p += n + 1
    return True


def _item(data, pos, depth, tag):
    """(value, position after the item)."""
    major, ai, arg, p = _head(data, pos)
    if major == 0:
        return arg, p
    if major == 1:
        return -1 - arg, p
    if major == 2 or major == 3:
        if arg > len(data) - p:
            raise _bad(pos, "expected %d string bytes, got %d" % (arg, len(data) - p))
        end = p + arg
        if major == 2:
            return bytes(data[p:end]), end
        if not utf8_valid(data, p, end):
            raise _bad(pos, "expected a text string in valid UTF-8")
        return str(bytes(data[p:end]), "utf-8"), end
    if major == 6:
        if depth != 0 or tag is None or arg != tag:
            raise _bad(pos, "expected no CBOR tag here, got tag %d" % arg)
        v, p = _item(data, p, depth + 1, None)
        return Tag(arg, v), p
    if major == 7:
        if ai == 20:
            return False, p
        if ai == 21:
            return True, p
        if ai == 26:
            return struct.unpack(">f", bytes(data[p - 4:p]))[0], p
        raise _bad(pos, "expected false, true or a float32, got simple/float byte 0x%02x" % data[pos])
    if depth + 1 > MAX_DEPTH:
        raise _bad(pos, "expected at most %d nested levels, got more" % MAX_DEPTH)
    if arg > len(data) - p:  # every item takes at least one byte
        raise _bad(pos, "expected %d entries, got only %d bytes left" % (arg, len(data) - p))
    if major == 4:
        out = []
        for _ in range(arg):
            v, p = _item(data, p, depth + 1, None)
            out.append(v)
        return out, p
    out = {}
    last = -1
    for _ in range(arg):
        kmaj, _, key, q = _head(data, p)
        if kmaj != 0:
            raise _bad(p, "expected an unsigned integer map key")
        if key <= last:
            raise _bad(p, "expected map keys in ascending order without repeats, got %d after %d"
                       % (key, last))
        last = key
        v, p = _item(data, q, depth + 1, None)
        out[key] = v
    return out, p


def loads(data, tag=None):
    """Decode exactly one item of the subset; `tag` is the one tag allowed around it."""
    v, end = _item(data, 0, 0, tag)
    if end != len(data):
        raise _bad(end, "expected the end of the message, got %d trailing bytes" % (len(data) - end))
    return v
