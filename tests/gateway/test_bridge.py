"""``qora gateway`` against the real Mosquitto, with a scripted board on a TCP "serial line"
(the same socket:// transport QEMU boards and posix nodes use)."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import cbor2
import paho.mqtt.client as mqtt
import pytest

from qora.gateway import Gateway
from qora.gateway.framing import ASK_HELLO, HELLO, LOG, PUBLISH, FrameDecoder, encode_frame, \
    parse_publish, publish_content
from qora.mqtt_url import parse_broker_url

pytestmark = pytest.mark.mqtt
BROKER = parse_broker_url("mqtt://127.0.0.1:1883")


class ScriptedBoard:
    """A board's serial line as a TCP server: the gateway connects, the test speaks frames."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.conn = None
        self.decoder = FrameDecoder()
        self.frames = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def accept(self, timeout: float = 10) -> None:
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(0.05)

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                data = self.conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                return
            with self._lock:
                self.frames += self.decoder.feed(data)

    def publishes(self) -> list[tuple[str, bytes]]:
        return [parse_publish(f.content) for f in self.frames if f.type == PUBLISH]

    def close(self) -> None:
        if self.conn:
            self.conn.close()
        self.server.close()


def eventually(cond, board=None, timeout: float = 8.0) -> bool:
    """Poll (pumping the board's line) until cond() holds: MQTT hops take what they take on a
    loaded CI machine, and a fixed sleep would make the test flaky rather than stricter."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        if board is not None:
            board.pump(0.1)
        else:
            time.sleep(0.1)
    return cond()


def hello(fleet, node):
    return encode_frame(HELLO, cbor2.dumps({0: 1, 2: fleet, 3: node, 25: "test"}))


@pytest.fixture()
def fleet():
    return f"gw-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def observer(fleet):
    got = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda cl, u, m: got.append((m.topic, bytes(m.payload)))
    c.connect("127.0.0.1", 1883)
    c.subscribe(f"qora/v1/{fleet}/#", qos=1)
    c.loop_start()
    time.sleep(0.3)
    yield c, got
    c.loop_stop()
    c.disconnect()


def test_a_board_is_bridged_both_ways_and_kept_to_its_own_topics(fleet, observer):
    client, got = observer
    board = ScriptedBoard()
    gw = Gateway([board.url], BROKER).start()
    try:
        board.accept()
        assert eventually(lambda: any(f.type == ASK_HELLO for f in board.frames), board)  # "who is there?"
        # retained state published before the board says HELLO reaches it after
        client.publish(f"qora/v1/{fleet}/round", b"\xa1\x00\x01", qos=1, retain=True).wait_for_publish(5)
        board.send(hello(fleet, "n1"))
        assert eventually(lambda: (f"qora/v1/{fleet}/round", b"\xa1\x00\x01") in board.publishes(), board)
        # up: its own update passes; another node's and the aggregator's topics do not
        board.send(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n1", b"mine")))
        board.send(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n2", b"forged")))
        board.send(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/round", b"takeover")))
        board.send(encode_frame(LOG, b"hello from the board"))
        assert eventually(lambda: (f"qora/v1/{fleet}/update/n1", b"mine") in got, board)
        board.pump(0.5)
        topics = [t for t, p in got]
        assert (f"qora/v1/{fleet}/update/n1", b"mine") in got
        assert f"qora/v1/{fleet}/update/n2" not in topics and b"takeover" not in [p for _t, p in got]
        link = gw.links[0]
        assert link.stats.refused == 2 and link.stats.up == 1
        assert "hello from the board" in link.stats.logs
        # down: a model chunk on the broker reaches the board
        client.publish(f"qora/v1/{fleet}/model/0", b"chunk", qos=1, retain=True).wait_for_publish(5)
        assert eventually(lambda: (f"qora/v1/{fleet}/model/0", b"chunk") in board.publishes(), board)
    finally:
        gw.stop()
        board.close()
        client.publish(f"qora/v1/{fleet}/round", b"", retain=True)
        client.publish(f"qora/v1/{fleet}/model/0", b"", retain=True)


def test_a_hello_of_another_protocol_version_or_malformed_binds_nothing(fleet, observer):
    client, got = observer
    board = ScriptedBoard()
    gw = Gateway([board.url], BROKER).start()
    try:
        board.accept()
        assert eventually(lambda: any(f.type == ASK_HELLO for f in board.frames), board)
        board.send(encode_frame(HELLO, cbor2.dumps({0: 2, 2: fleet, 3: "n1", 25: "test"})))   # version 2
        board.send(encode_frame(HELLO, cbor2.dumps({0: 1, 2: fleet, 3: "bad id!", 25: "test"})))
        board.send(encode_frame(HELLO, b"\xff\xfe"))                                          # not CBOR
        board.send(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n1", b"early")))
        link = gw.links[0]
        assert eventually(lambda: link.stats.refused >= 4, board)
        assert link.stats.node is None and link.stats.hellos == 0
        # a board that publishes before any HELLO was accepted is asked who it is
        assert eventually(lambda: sum(f.type == ASK_HELLO for f in board.frames) >= 2, board)
        board.pump(0.5)
        assert not got
    finally:
        gw.stop()
        board.close()


def test_noise_and_a_board_reset_lose_no_valid_frame(fleet, observer):
    client, got = observer
    board = ScriptedBoard()
    gw = Gateway([board.url], BROKER).start()
    try:
        board.accept()
        # like a board, speak once the gateway has asked (pyserial drops what arrives while it opens)
        assert eventually(lambda: any(f.type == ASK_HELLO for f in board.frames), board)
        # noise, then a frame as a sender writes it: led by a 0x00 that ends whatever came before
        board.send(b"\x13\x37garbage" * 20 + b"\x00" + hello(fleet, "n1"))
        frame = bytearray(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n1", b"bad")))
        frame[4] ^= 0x01                                             # a CRC error
        board.send(bytes(frame))
        good = encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n1", b"good"))
        board.send(good[:7])                                         # a partial frame ...
        board.pump(0.3)
        board.send(good[7:])                                         # ... completed later
        d = gw.links[0].stats.decoder
        assert eventually(lambda: (f"qora/v1/{fleet}/update/n1", b"good") in got, board), (
            gw.links[0].stats, d.frames_ok, d.crc_errors, d.cobs_errors)
        assert b"bad" not in [p for _t, p in got]
        assert gw.links[0].stats.decoder.crc_errors + gw.links[0].stats.decoder.cobs_errors >= 1
        # the board resets: its line drops and comes back; it says HELLO again
        board.conn.close()
        board.accept(timeout=15)
        board.frames.clear()
        assert eventually(lambda: any(f.type == ASK_HELLO for f in board.frames), board)
        client.publish(f"qora/v1/{fleet}/round", b"\xa1\x00\x02", qos=1, retain=True).wait_for_publish(5)
        board.send(hello(fleet, "n1"))
        assert eventually(lambda: (f"qora/v1/{fleet}/round", b"\xa1\x00\x02") in board.publishes(), board)
        board.send(encode_frame(PUBLISH, publish_content(f"qora/v1/{fleet}/update/n1", b"after reset")))
        assert eventually(lambda: (f"qora/v1/{fleet}/update/n1", b"after reset") in got, board)
        assert gw.links[0].stats.reopened >= 1
    finally:
        gw.stop()
        board.close()
        client.publish(f"qora/v1/{fleet}/round", b"", retain=True)
