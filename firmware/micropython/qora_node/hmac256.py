# HMAC-SHA256 (RFC 2104) over hashlib.sha256, for MicroPython (which has no hmac module).
# Runs unchanged under CPython. The message may be given in several parts, so a caller can
# MAC a header and a large payload without joining them first.

import hashlib

BLOCK = 64


def _pad(key, byte):
    out = bytearray(BLOCK)
    for i in range(BLOCK):
        out[i] = (key[i] if i < len(key) else 0) ^ byte
    return out


def hmac_sha256(key, *parts):
    """HMAC-SHA256(key, parts[0] + parts[1] + ...) as 32 bytes; any key length."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    inner = hashlib.sha256(_pad(key, 0x36))
    for p in parts:
        inner.update(p)
    outer = hashlib.sha256(_pad(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Constant-time comparison of two byte strings (length is not secret)."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0
