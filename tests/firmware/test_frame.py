"""CRC-32, COBS and the serial frames of firmware/core (crc32.c, cobs.c, frame.c) against zlib
and the Python reference of docs/serial.md (serialref.py), under ASan + UBSan."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import pytest
import serialref as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from qnharness import hx

DOC = Path(__file__).resolve().parents[2] / "docs" / "serial.md"
FAST = settings(max_examples=200, deadline=None)


# ---- CRC-32 -----------------------------------------------------------------------------

def test_crc32_check_value():
    # The CRC-32 catalogue's check value: CRC of the ASCII digits 1..9.
    assert zlib.crc32(b"123456789") == 0xCBF43926


def test_crc32_of_digits_is_the_catalogue_check_value(harness):
    assert harness.ok("crc32", 0, hx(b"123456789")) == ["cbf43926"]
    assert harness.ok("crc32", 0, "-") == ["00000000"]


@FAST
@given(data=st.binary(max_size=500), cut=st.integers(0, 500), seed=st.integers(0, 2**32 - 1))
def test_crc32_matches_zlib_and_chains(harness, data, cut, seed):
    cut = min(cut, len(data))
    assert harness.ok("crc32", 0, hx(data)) == [f"{zlib.crc32(data):08x}"]
    first = int(harness.ok("crc32", 0, hx(data[:cut]))[0], 16)
    assert harness.ok("crc32", first, hx(data[cut:])) == [f"{zlib.crc32(data):08x}"]
    assert harness.ok("crc32", seed, hx(data)) == [f"{zlib.crc32(data, seed):08x}"]


# ---- COBS -------------------------------------------------------------------------------

KNOWN_COBS = [  # the usual COBS examples (those Wikipedia's COBS article lists)
    ("00", "0101"),
    ("0000", "010101"),
    ("11220033", "0311220233"),
    ("11223344", "0511223344"),
    ("11000000", "0211010101"),
    (bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    (bytes(range(255)).hex(), "01ff" + bytes(range(1, 255)).hex()),
    (bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    (bytes(range(2, 256)).hex() + "00", "ff" + bytes(range(2, 256)).hex() + "0101"),
    (bytes(range(3, 256)).hex() + "0001", "fe" + bytes(range(3, 256)).hex() + "0201"),
]


@pytest.mark.parametrize(("raw", "enc"), KNOWN_COBS)
def test_cobs_known_encodings(harness, raw, enc):
    raw_b, enc_b = bytes.fromhex(raw), bytes.fromhex(enc)
    assert ref.cobs_encode(raw_b) == enc_b
    assert harness.ok("cobsenc", raw, len(enc_b), 0) == [enc]
    assert harness.ok("cobsdec", enc, len(raw_b), ) == [raw]
    assert harness.ok("cobsdec", enc, "inplace") == [raw]


def test_cobs_decoder_accepts_a_trailing_empty_block(harness):
    # The other COBS variant ends 254 non-zero bytes with an empty block: same data.
    body = bytes(range(1, 255))
    assert harness.ok("cobsdec", hx(b"\xff" + body + b"\x01"), 300) == [body.hex()]
    assert ref.cobs_decode(b"\xff" + body + b"\x01") == body


@FAST
@given(data=st.binary(max_size=800) | st.lists(st.sampled_from([0, 1, 0xFF]), max_size=800).map(bytes)
       | st.integers(0, 1200).map(lambda n: b"\x07" * n), piece=st.integers(0, 300))
def test_cobs_round_trip_matches_reference(harness, data, piece):
    enc = ref.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + len(data) // 254 + 1
    assert harness.ok("cobsenc", hx(data), len(enc), piece) == [enc.hex()]
    assert harness.call("cobsenc", hx(data), len(enc) - 1, piece) == ["err", "0"]
    assert harness.ok("cobsdec", enc.hex(), len(data)) == [hx(data)]
    assert harness.ok("cobsdec", enc.hex(), "inplace") == [hx(data)]
    if data:
        assert harness.call("cobsdec", enc.hex(), len(data) - 1) == ["err"]


@FAST
@given(data=st.binary(max_size=300) | st.lists(st.sampled_from([0, 1, 2, 3, 0xFE, 0xFF]),
                                                max_size=300).map(bytes))
def test_cobs_decoder_rejects_exactly_what_the_reference_rejects(harness, data):
    expected = ref.cobs_decode(data)
    got = harness.call("cobsdec", hx(data), len(data) + 1)
    if expected is None:
        assert got == ["err"]
    else:
        assert got == ["ok", hx(expected)]
    assert harness.call("cobsdec", hx(data), "inplace") == got


# ---- frames -----------------------------------------------------------------------------

@FAST
@given(ftype=st.integers(0, 255), content=st.binary(max_size=700), piece=st.integers(0, 100))
def test_frame_encode_matches_reference(harness, ftype, content, piece):
    line = ref.frame(ftype, content)
    assert line[-1] == 0 and 0 not in line[:-1]
    assert len(line) <= ref.max_encoded(len(content))
    assert harness.ok("frameenc", ftype, hx(content), len(line), piece) == [line.hex()]
    assert harness.call("frameenc", ftype, hx(content), len(line) - 1, piece) == ["err", "0"]


def test_largest_frame_fits_the_receive_buffer_and_one_more_byte_does_not(harness):
    # All non-zero content is COBS's worst case; 0x5A keeps the CRC bytes non-zero here.
    content = b"\x5a" * ref.MAX_CONTENT
    line = ref.frame(ref.PUBLISH, content)
    assert len(line) == ref.max_encoded(ref.MAX_CONTENT)
    out = harness.ok("rx", ref.RX_CAP, line.hex())
    assert out[0] == f"F2:{content.hex()}" and out[-6:] == ["1", "0", "0", "0", "0", "0"]
    bigger = ref.frame(ref.PUBLISH, content + b"\x5a")
    assert len(bigger) - 1 > ref.RX_CAP
    out = harness.ok("rx", ref.RX_CAP, bigger.hex() + line.hex())
    assert out == ["D", f"F2:{content.hex()}", "|", "1", "0", "0", "1", "0", "0"]


def _events(harness, cap: int, stream: bytes) -> tuple[list[str], list[str]]:
    out = harness.ok("rx", cap, hx(stream))
    bar = out.index("|")
    return out[:bar], out[bar + 1:]


def _ref_events(cap: int, stream: bytes) -> tuple[list[str], list[str]]:
    rx = ref.Receiver(cap=cap)
    events = ["D" if e[0] == "drop" else f"F{e[1]}:{hx(e[2])}" for e in rx.feed_all(stream)]
    counters = [rx.frames_ok, rx.crc_errors, rx.cobs_errors, rx.overflows, len(rx.buf),
                int(rx.overflow)]
    return events, [str(c) for c in counters]


def _flip(line: bytes, where: int, bit: int) -> bytes:
    b = bytearray(line)
    i = where % (len(b) - 1)            # never the delimiter
    b[i] ^= 1 << bit
    return bytes(b)


# A line is a mix of segments a serial port really sees.
segment = st.one_of(
    st.tuples(st.just("frame"), st.integers(1, 4), st.binary(max_size=120)),
    st.tuples(st.just("garbage"), st.binary(max_size=40)),
    st.tuples(st.just("corrupt"), st.integers(1, 4), st.binary(max_size=60), st.integers(0, 999),
              st.integers(0, 7)),
    st.tuples(st.just("partial"), st.integers(1, 4), st.binary(max_size=60), st.integers(0, 999)),
    st.tuples(st.just("zeros"), st.integers(1, 3)),
)


def _render(segments) -> bytes:
    out = bytearray()
    for s in segments:
        if s[0] == "frame":
            out += ref.frame(s[1], s[2])
        elif s[0] == "garbage":
            out += s[1]
        elif s[0] == "corrupt":
            out += _flip(ref.frame(s[1], s[2]), s[3], s[4])
        elif s[0] == "partial":
            line = ref.frame(s[1], s[2])
            out += line[:s[3] % len(line)]   # cut before its delimiter: a reset mid-frame
        else:
            out += b"\x00" * s[1]
    return bytes(out)


@FAST
@given(segments=st.lists(segment, max_size=12), cap=st.integers(1, 200))
def test_receiver_matches_reference_on_noisy_lines(harness, segments, cap):
    stream = _render(segments)
    assert _events(harness, cap, stream) == _ref_events(cap, stream)


@FAST
@given(noise=st.binary(max_size=200), ftype=st.integers(1, 4), content=st.binary(max_size=200),
       tail=st.binary(max_size=30))
def test_a_valid_frame_after_a_delimiter_is_never_lost(harness, noise, ftype, content, tail):
    # Whatever came before (garbage, half a frame, an oversize frame), the sender's 0x00
    # puts the receiver back in step and the frame that follows arrives intact.
    stream = noise + b"\x00" + ref.frame(ftype, content) + tail
    events, _ = _events(harness, 300, stream)
    before, _ = _ref_events(300, noise + b"\x00")
    assert events[len(before)] == f"F{ftype}:{hx(content)}"


def test_receiver_counts_each_kind_of_error(harness):
    good = ref.frame(ref.LOG, b"hello")
    bad_crc = _flip(good, 3, 0)
    stream = (b"\x00\x00" + good + bad_crc + b"\x05\x01\x00" + b"\x03\x01\x02\x00"
              + ref.frame(ref.LOG, b"x" * 50) + good)
    events, counters = _events(harness, 20, stream)
    assert events == ["F3:" + b"hello".hex(), "D", "D", "D", "D", "F3:" + b"hello".hex()]
    # frames_ok, crc_errors, cobs_errors (bad block, too short), overflows, len, overflow
    assert counters == ["2", "1", "2", "1", "0", "0"]


def test_receiver_keeps_a_partial_frame_until_its_delimiter(harness):
    line = ref.frame(ref.PUBLISH, b"\x01\x00a\x01")
    events, counters = _events(harness, 64, line[:-1])
    assert events == [] and counters[4] == str(len(line) - 1)


# ---- PUBLISH content --------------------------------------------------------------------

topic_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/_-", min_size=1, max_size=254)


@FAST
@given(topic=topic_text, payload=st.binary(min_size=1, max_size=400))
def test_publish_frame_matches_reference_and_parses_back(harness, topic, payload):
    content = ref.publish_content(topic, payload)
    line = ref.frame(ref.PUBLISH, content)
    assert harness.ok("publish", hx(topic), hx(payload), len(line)) == [line.hex()]
    assert harness.call("publish", hx(topic), hx(payload), len(line) - 1) == ["err", "0"]
    assert harness.ok("pubparse", content.hex()) == [hx(topic), hx(payload)]


@FAST
@given(content=st.binary(max_size=300))
def test_publish_parse_rejects_what_the_reference_rejects(harness, content):
    expected = ref.parse_publish(content)
    got = harness.call("pubparse", hx(content))
    if expected is None:
        assert got == ["err"]
    else:
        assert got == ["ok", hx(expected[0].encode("latin-1")), hx(expected[1])]


def test_publish_limits(harness):
    big = b"\x01" * ref.MAX_PAYLOAD
    assert harness.call("publish", hx("t" * 255), hx(b"x"), 99999) == ["err", "0"]
    assert harness.call("publish", "-", hx(b"x"), 99999) == ["err", "0"]
    assert harness.call("publish", hx("t"), "-", 99999) == ["err", "0"]
    assert harness.call("publish", hx("t"), hx(big + b"\x01"), 99999) == ["err", "0"]
    assert harness.ok("publish", hx("t" * 254), hx(big), 99999)[0] == \
        ref.frame(ref.PUBLISH, ref.publish_content("t" * 254, big)).hex()
    assert harness.call("pubparse", hx(ref.publish_content("t", b""))) == ["err"]


# ---- docs/serial.md ---------------------------------------------------------------------

def _doc_examples() -> dict[str, tuple[bytes, bytes]]:
    text = DOC.read_text()
    found = {}
    pattern = re.compile(r"#### `([a-z-]+)`\n\n[^\n]*Content \((\d+) bytes\)(?::\n\n```hex\n([0-9a-f\n]*)```"
                         r"|: none\.)\n\nOn the line \((\d+) bytes[^\n]*\n\n```hex\n([0-9a-f\n]+)```")
    for m in pattern.finditer(text):
        content = bytes.fromhex((m.group(3) or "").replace("\n", ""))
        line = bytes.fromhex(m.group(5).replace("\n", ""))
        assert len(content) == int(m.group(2)) and len(line) == int(m.group(4))
        found[m.group(1)] = (content, line)
    return found


def test_serial_md_examples_are_what_the_reference_generates():
    assert ref.markdown() in DOC.read_text()
    doc = _doc_examples()
    assert set(doc) == {name for name, *_ in ref.examples()}


@pytest.mark.parametrize("name", [e[0] for e in ref.examples()])
def test_c_encoder_writes_each_serial_md_example(harness, name):
    content, line = _doc_examples()[name]
    ftype = ref.line_type(line)
    assert harness.ok("frameenc", ftype, hx(content), len(line), 0) == [line.hex()]
    assert _events(harness, ref.RX_CAP, line) == ([f"F{ftype}:{hx(content)}"],
                                                   ["1", "0", "0", "0", "0", "0"])
    if ftype == ref.PUBLISH:
        topic, payload = ref.parse_publish(content)
        assert harness.ok("publish", hx(topic), hx(payload), len(line)) == [line.hex()]


def test_c_hello_encoder_writes_the_serial_md_hello(harness):
    content, _ = _doc_examples()["hello"]
    assert harness.ok("hello", hx("demo"), hx("node-1"), hx("qnode/1"), 200) == [content.hex()]
