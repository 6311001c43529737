"""SHA-256 and HMAC-SHA256 of firmware/core (sha256.c, hmac.c) against the published vectors
(FIPS 180-4 examples / NIST, RFC 4231) and against Python's hashlib / hmac."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qnharness import hx

# NIST's SHA-256 examples (FIPS 180-4 example values; the CAVP short/long messages).
NIST_SHA256 = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
]
MILLION_A = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

# RFC 4231 section 4, test cases 1-7 (HMAC-SHA-256). Case 5 is truncated to 128 bits.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, (b"This is a test using a larger than block-size key and a larger than "
                      b"block-size data. The key needs to be hashed before being used by the HMAC "
                      b"algorithm."),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize(("msg", "digest"), NIST_SHA256, ids=["empty", "abc", "448-bit"])
def test_sha256_matches_nist_examples(harness, msg, digest):
    assert harness.ok("sha256", hx(msg)) == [digest]
    for piece in (1, 3, 63, 64, 65):
        assert harness.ok("sha256x", hx(msg) if msg else "-", piece, 1) == [digest]


@pytest.mark.parametrize("piece", [1000, 64, 7])
def test_sha256_of_a_million_a_matches_nist(harness, piece):
    assert harness.ok("sha256x", hx(b"a" * 1000), piece, 1000) == [MILLION_A]


@pytest.mark.parametrize("n", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129])
def test_sha256_padding_boundaries_match_hashlib(harness, n):
    msg = bytes((7 * i + 1) & 0xFF for i in range(n))
    assert harness.ok("sha256", hx(msg)) == [hashlib.sha256(msg).hexdigest()]


@settings(max_examples=200, deadline=None)
@given(msg=st.binary(max_size=600), piece=st.integers(1, 200))
def test_sha256_streaming_in_any_pieces_matches_hashlib(harness, msg, piece):
    expected = hashlib.sha256(msg).hexdigest()
    assert harness.ok("sha256", hx(msg)) == [expected]
    assert harness.ok("sha256x", hx(msg), piece, 1) == [expected]


@pytest.mark.parametrize(("key", "msg", "tag"), RFC4231, ids=[f"case{i}" for i in range(1, 8)])
def test_hmac_sha256_matches_rfc4231(harness, key, msg, tag):
    for piece in (0, 1, 64):
        out = harness.ok("hmac", hx(key), hx(msg), piece)[0]
        assert out[:len(tag)] == tag


@settings(max_examples=200, deadline=None)
@given(key=st.binary(max_size=200), msg=st.binary(max_size=300), piece=st.integers(0, 100))
def test_hmac_sha256_matches_python_hmac_for_any_key_length(harness, key, msg, piece):
    expected = hmac.new(key, msg, hashlib.sha256).hexdigest()
    assert harness.ok("hmac", hx(key), hx(msg), piece) == [expected]


@given(a=st.binary(min_size=32, max_size=32), flip=st.integers(0, 255))
@settings(max_examples=100, deadline=None)
def test_equal32_is_true_only_for_identical_tags(harness, a, flip):
    assert harness.ok("equal32", hx(a), hx(a)) == ["1"]
    b = bytearray(a)
    b[flip // 8] ^= 1 << (flip % 8)
    assert harness.ok("equal32", hx(a), hx(bytes(b))) == ["0"]
