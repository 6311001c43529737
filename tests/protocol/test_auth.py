"""qora.protocol.auth: HMAC-SHA256, the MAC_structure, the COSE_Mac0 envelope."""

from __future__ import annotations

import hashlib
import hmac

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qora.errors import InvalidInput, InvalidType
from qora.protocol import (
    PROTECTED,
    ProtocolError,
    compute_tag,
    mac_structure,
    new_key,
    open_envelope,
    seal,
    verify_tag,
)
from qora.protocol.auth import hmac_sha256

KEY = bytes(range(32))

# RFC 4231 section 4, test cases 1-4 (HMAC-SHA-256 column).
RFC4231 = [
    (bytes([0x0B] * 20), b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (bytes([0xAA] * 20), bytes([0xDD] * 50),
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), bytes([0xCD] * 50),
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
]


@pytest.mark.parametrize("key, data, expected", RFC4231)
def test_hmac_sha256_matches_rfc4231(key, data, expected):
    assert hmac_sha256(key, data).hex() == expected


def _bstr_head(n: int) -> bytes:  # written out by hand, independent of cbor2
    if n < 24:
        return bytes([0x40 + n])
    if n < 256:
        return bytes([0x58, n])
    return bytes([0x59]) + n.to_bytes(2, "big")


@pytest.mark.parametrize("n", [0, 5, 23, 24, 255, 256, 4200])
def test_mac_structure_is_the_cose_mac0_structure(n):
    payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
    expected = bytes.fromhex("84 64 4D414330 43 A10105 40") + _bstr_head(n) + payload
    assert mac_structure(payload) == expected


def test_tag_is_hmac_of_the_mac_structure():
    payload = b"\xa1\x00\x01"
    expected = hmac.new(KEY, mac_structure(payload), hashlib.sha256).digest()
    assert compute_tag(KEY, payload) == expected and len(expected) == 32


def test_seal_writes_the_spec_envelope_byte_for_byte():
    payload = bytes(range(40))
    message = seal(KEY, payload)
    assert message == (bytes.fromhex("D1 84 43 A10105 A0 58 28") + payload
                       + bytes.fromhex("58 20") + compute_tag(KEY, payload))
    assert open_envelope(message) == (payload, compute_tag(KEY, payload))


@settings(max_examples=50)
@given(payload=st.binary(max_size=600))
def test_open_envelope_inverts_seal(payload):
    assert open_envelope(seal(KEY, payload)) == (payload, compute_tag(KEY, payload))


def test_verify_tag_accepts_only_the_right_key_payload_and_tag():
    payload = b"\xa1\x00\x01"
    tag = compute_tag(KEY, payload)
    assert verify_tag(KEY, payload, tag)
    assert not verify_tag(bytes(32), payload, tag)
    assert not verify_tag(KEY, payload + b"\0", tag)
    assert not verify_tag(KEY, payload, tag[:-1] + bytes([tag[-1] ^ 1]))
    assert not verify_tag(KEY, payload, tag[:16])


@pytest.mark.parametrize("key", [bytes(31), bytes(33), b""])
def test_keys_must_be_32_bytes(key):
    with pytest.raises(InvalidInput, match=f"key: expected 32 bytes, got {len(key)}"):
        compute_tag(key, b"")
    with pytest.raises(InvalidInput):
        seal(key, b"")


def test_key_must_be_bytes():
    with pytest.raises(InvalidType, match="key: expected bytes, got str"):
        compute_tag("k" * 32, b"")


def test_new_key_is_32_fresh_bytes():
    a, b = new_key(), new_key()
    assert len(a) == 32 and len(b) == 32 and a != b


def _envelope(*items, tag=17) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, list(items)))


TAG = bytes(32)
BAD_ENVELOPES = {
    "trailing byte": seal(KEY, b"abc") + b"\0",
    "truncated": seal(KEY, b"abc")[:-1],
    "untagged": cbor2.dumps([PROTECTED, {}, b"abc", TAG]),
    "tag 18 (COSE_Sign1)": _envelope(PROTECTED, {}, b"abc", TAG, tag=18),
    "tag 16 (COSE_Encrypt0)": _envelope(PROTECTED, {}, b"abc", TAG, tag=16),
    "3 items": _envelope(PROTECTED, {}, b"abc"),
    "5 items": _envelope(PROTECTED, {}, b"abc", TAG, b""),
    "other algorithm": _envelope(bytes.fromhex("a10104"), {}, b"abc", TAG),
    "empty protected": _envelope(b"", {}, b"abc", TAG),
    "unprotected not empty": _envelope(PROTECTED, {1: 5}, b"abc", TAG),
    "unprotected an array": _envelope(PROTECTED, [], b"abc", TAG),
    "payload text": _envelope(PROTECTED, {}, "abc", TAG),
    "payload nil": bytes.fromhex("d18443a10105a0f65820") + TAG,
    "short tag": _envelope(PROTECTED, {}, b"abc", bytes(31)),
    "long tag": _envelope(PROTECTED, {}, b"abc", bytes(33)),
    "indefinite array": bytes.fromhex("d19f43a10105a043616263") + b"\x58\x20" + TAG + b"\xff",
    "indefinite payload": bytes.fromhex("d18443a10105a05f4161426263ff5820") + TAG,
    "long length": bytes.fromhex("d18443a10105a0580361626358") + b"\x20" + TAG,
    "empty": b"",
    "not CBOR": b"\xff\xff",
}


@pytest.mark.parametrize("name", sorted(BAD_ENVELOPES))
def test_open_envelope_rejects_anything_but_the_exact_envelope(name):
    with pytest.raises(ProtocolError) as e:
        open_envelope(BAD_ENVELOPES[name])
    assert e.value.reason == "malformed"


def test_open_envelope_rejects_a_non_bytes_message():
    with pytest.raises(ProtocolError, match="expected a bytes message, got str"):
        open_envelope("d184")
