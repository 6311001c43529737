"""The sealed UPDATE: COSE_Mac0 (RFC 9052 section 6.2) with HMAC-SHA256 and the node's 32-byte key.

Envelope, CBOR tag 17 around a 4-element array::

    D1 84                     tag 17, array(4)
       43 A1 01 05            protected: bstr containing {1: 5} (alg: HMAC 256/256)
       A0                     unprotected: {}
       <bstr> payload         the UPDATE map's CBOR bytes
       58 20 <32 bytes>       tag

    tag = HMAC-SHA256(key, MAC_structure)
    MAC_structure = ["MAC0", h'A10105', h'', payload]
                  = 84 64 4D 41 43 30 43 A1 01 05 40 <bstr head of payload> <payload>
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

import cbor2

from qora.errors import InvalidInput, InvalidType
from qora.protocol import cbor
from qora.protocol.errors import ProtocolError
from qora.protocol.wire import KEY_BYTES, TAG_BYTES

COSE_MAC0_TAG = 17
PROTECTED = bytes.fromhex("a10105")


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidType(f"{what}: expected bytes, got {type(value).__name__}")
    return bytes(value)


def _key(key: object) -> bytes:
    key = _bytes(key, "key")
    if len(key) != KEY_BYTES:
        raise InvalidInput(f"key: expected {KEY_BYTES} bytes, got {len(key)}")
    return key


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """Plain HMAC-SHA256 (RFC 2104), any key length; compute_tag adds the protocol's rules."""
    return hmac.new(key, data, hashlib.sha256).digest()


def mac_structure(payload: bytes) -> bytes:
    """The bytes the tag covers: CBOR ``["MAC0", h'A10105', h'', payload]``."""
    return cbor2.dumps(["MAC0", PROTECTED, b"", _bytes(payload, "payload")])


def compute_tag(key: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256(key, mac_structure(payload)), 32 bytes."""
    return hmac_sha256(_key(key), mac_structure(payload))


def verify_tag(key: bytes, payload: bytes, tag: bytes) -> bool:
    """Constant-time comparison of ``tag`` with the tag ``key`` gives ``payload``."""
    return hmac.compare_digest(compute_tag(key, payload), _bytes(tag, "tag"))


def seal(key: bytes, payload: bytes) -> bytes:
    """The COSE_Mac0 envelope around ``payload`` (see the module docstring)."""
    tag = compute_tag(key, payload)
    return cbor2.dumps(cbor2.CBORTag(COSE_MAC0_TAG, [PROTECTED, {}, bytes(payload), tag]))


def open_envelope(message: bytes) -> tuple[bytes, bytes]:
    """(payload, tag) of a sealed message; does not verify the tag (``verify_tag`` does)."""
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise ProtocolError("malformed", f"expected a bytes message, got {type(message).__name__}")
    obj = cbor.loads(bytes(message), tag=COSE_MAC0_TAG)
    if not isinstance(obj, cbor2.CBORTag):
        raise ProtocolError("malformed", "expected a COSE_Mac0 envelope (CBOR tag 17), "
                                         f"got an untagged {type(obj).__name__}")
    body = obj.value
    if not isinstance(body, (list, tuple)) or len(body) != 4:  # cbor2 may give a tuple here
        raise ProtocolError("malformed", f"expected tag 17 around an array of 4, got {body!r:.60}")
    protected, unprotected, payload, tag = body
    if protected != PROTECTED or type(protected) is not bytes:
        raise ProtocolError("malformed", f"expected the protected header h'a10105' (HMAC 256/256), "
                                         f"got {protected!r:.60}")
    if not isinstance(unprotected, Mapping) or len(unprotected) != 0:  # dict or cbor2's frozendict
        raise ProtocolError("malformed", f"expected an empty unprotected map, got {unprotected!r:.60}")
    if type(payload) is not bytes:
        raise ProtocolError("malformed", f"expected the payload as a byte string, got {type(payload).__name__}")
    if type(tag) is not bytes or len(tag) != TAG_BYTES:
        raise ProtocolError("malformed", f"expected a {TAG_BYTES}-byte tag, got {tag!r:.60}")
    return payload, tag


def new_key() -> bytes:
    """A fresh 32-byte node key from the OS's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)
