"""The serial link's framing in Python (docs/serial.md): round trips, noise, resync."""

from __future__ import annotations

import struct
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from qora.gateway.framing import (HELLO, LOG, PUBLISH, FrameDecoder, cobs_decode, cobs_encode,
                                  encode_frame, parse_publish, publish_content)


@given(st.binary(max_size=2000))
def test_cobs_round_trips_and_never_emits_zero(data):
    enc = cobs_encode(data)
    assert 0 not in enc
    assert cobs_decode(enc) == data
    assert len(enc) <= len(data) + len(data) // 254 + 1


@given(st.lists(st.tuples(st.sampled_from([HELLO, PUBLISH, LOG]), st.binary(max_size=600)), max_size=8),
       st.integers(1, 97))
def test_frames_survive_any_split_of_the_stream(frames, step):
    stream = b"".join(encode_frame(t, c) for t, c in frames)
    dec = FrameDecoder()
    got = []
    for i in range(0, len(stream), step):
        got += dec.feed(stream[i:i + step])
    assert [(f.type, f.content) for f in got] == frames
    assert dec.crc_errors == dec.cobs_errors == 0


@settings(max_examples=200)
@given(st.binary(max_size=300), st.binary(min_size=1, max_size=300))
def test_garbage_costs_only_itself_and_the_next_frame_gets_through(garbage, content):
    frame = encode_frame(PUBLISH, content)
    dec = FrameDecoder()
    got = dec.feed(garbage + b"\x00" + frame)
    assert got and (got[-1].type, got[-1].content) == (PUBLISH, content)


def test_a_corrupted_frame_is_counted_and_dropped():
    frame = bytearray(encode_frame(LOG, b"hello board"))
    frame[3] ^= 0x40
    dec = FrameDecoder()
    got = dec.feed(bytes(frame) + encode_frame(LOG, b"next"))
    assert [f.content for f in got] == [b"next"]
    assert dec.crc_errors + dec.cobs_errors == 1


def test_a_partial_frame_then_a_new_one():
    frame = encode_frame(LOG, b"x" * 100)
    dec = FrameDecoder()
    got = dec.feed(frame[:40] + b"\x00" + frame)
    assert [f.content for f in got] == [b"x" * 100] and dec.cobs_errors + dec.crc_errors == 1


def test_an_oversize_frame_is_dropped_whole():
    dec = FrameDecoder(max_content=100)
    got = dec.feed(encode_frame(LOG, b"y" * 500) + encode_frame(LOG, b"ok"))
    assert [f.content for f in got] == [b"ok"] and dec.overflows == 1


def test_wire_format_is_type_content_crc_in_cobs():
    body = bytes([PUBLISH]) + publish_content("qora/v1/f/update/n", b"\x01\x00\x02")
    assert encode_frame(PUBLISH, body[1:]) == cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"
    assert parse_publish(body[1:]) == ("qora/v1/f/update/n", b"\x01\x00\x02")


def test_publish_frames_outside_the_limits_are_refused_by_name():
    import pytest

    for content, what in [(b"\x00", "shorter than its topic length"),
                          (publish_content("", b"x"), "topic length must be 1..254"),
                          (publish_content("t" * 255, b"x"), "topic length must be 1..254"),
                          (publish_content("q/t", b""), "payload must be 1..16384"),
                          (publish_content("q/t", b"x" * 16385), "payload must be 1..16384"),
                          (b"\x09\x00q/t", "runs past the frame")]:
        with pytest.raises(ValueError, match=what):
            parse_publish(content)
    assert parse_publish(publish_content("t" * 254, b"x" * 16384))[0] == "t" * 254
