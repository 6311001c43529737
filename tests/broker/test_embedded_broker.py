"""EmbeddedBroker (amqtt in a thread) with real paho-mqtt clients, and broker URL parsing."""

from __future__ import annotations

import os
import socket
import time

import pytest

from qora.broker import BrokerError, EmbeddedBroker
from qora.errors import InvalidInput
from qora.mqtt_url import BrokerAddress, free_port, parse_broker_url


@pytest.fixture
def broker():
    with EmbeddedBroker() as b:
        yield b


def pair(broker, clients, topic):
    """A subscriber (already SUBACKed on `topic`) and a publisher."""
    sub = clients(broker.port, "sub")
    assert sub.connect() == 0
    assert sub.subscribe(topic)[0].value == 1
    pub = clients(broker.port, "pub")
    assert pub.connect() == 0
    return sub, pub


def test_url_host_port(broker):
    assert broker.host == "127.0.0.1" and 0 < broker.port < 65536
    assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
    assert parse_broker_url(broker.url) == BrokerAddress("127.0.0.1", broker.port)


def test_qos1_messages_between_two_clients(broker, clients):
    sub, pub = pair(broker, clients, "qora/v1/f/update/+")
    for i in range(5):
        assert pub.publish(f"qora/v1/f/update/n{i}", f"m{i}".encode()) == 0
    got = [sub.expect() for _ in range(5)]
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"qora/v1/f/update/n{i}", f"m{i}".encode(), 1) for i in range(5)]
    assert sub.drain() == []


def test_retained_message_reaches_a_later_subscriber(broker, clients):
    pub = clients(broker.port, "pub")
    assert pub.connect() == 0
    payload = os.urandom(100)
    assert pub.publish("qora/v1/f/round", payload, retain=True) == 0
    late = clients(broker.port, "late")
    assert late.connect() == 0
    late.subscribe("qora/v1/f/round")
    first = late.expect()
    assert (first.topic, first.payload, first.retain) == ("qora/v1/f/round", payload, True)
    # amqtt may deliver a retained message twice to a new subscriber: any extra copy is the same.
    assert all(m.payload == payload for m in late.drain())


def test_16_kib_payload_passes_unchanged(broker, clients):
    sub, pub = pair(broker, clients, "big")
    payload = os.urandom(16 * 1024)
    assert pub.publish("big", payload) == 0
    assert sub.expect().payload == payload


def test_stop_frees_the_port_and_disconnects_clients(clients):
    b = EmbeddedBroker().start()
    port = b.port
    c = clients(port, "c")
    assert c.connect() == 0
    started = time.monotonic()
    b.stop()
    assert time.monotonic() - started < 5
    assert not b.running
    deadline = time.monotonic() + 5
    while c.mqtt.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not c.mqtt.is_connected()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    # Free for the next listener. (A bind without SO_REUSEADDR may still fail for a minute: the
    # broker closed the client's connection, leaving it in TIME_WAIT. Every server sets it.)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
    with EmbeddedBroker(port=port) as again:
        assert clients(port, "c2").connect() == 0 and again.port == port
    b.stop()  # stopping twice is harmless


def test_start_stop_twice_in_one_process(clients):
    for round_ in range(2):
        with EmbeddedBroker() as b:
            sub, pub = pair(b, clients, "t")
            assert pub.publish("t", f"hello {round_}".encode()) == 0
            assert sub.expect().payload == f"hello {round_}".encode()
    again = EmbeddedBroker()
    for _ in range(2):  # the same object restarts too
        again.start()
        socket.create_connection(("127.0.0.1", again.port), timeout=1).close()
        again.stop()


def test_fixed_port(clients):
    port = free_port()
    with EmbeddedBroker(port=port) as b:
        assert b.port == port and b.url == f"mqtt://127.0.0.1:{port}"
        assert clients(port, "c").connect() == 0


def test_busy_port_raises_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        b = EmbeddedBroker(port=port)
        started = time.monotonic()
        with pytest.raises(BrokerError, match=f"expected the broker to listen on 127.0.0.1:{port}"):
            b.start()
        assert time.monotonic() - started < 10
        assert not b.running


def test_misuse_is_reported():
    b = EmbeddedBroker()
    with pytest.raises(BrokerError, match="not running"):
        b.port
    with pytest.raises(BrokerError, match="expected 0..65535"):
        EmbeddedBroker(port=70000)
    with b:
        with pytest.raises(BrokerError, match="expected a stopped broker"):
            b.start()


def test_amqtt_loggers_stay_at_warning(broker):
    import logging

    assert logging.getLogger("amqtt").getEffectiveLevel() >= logging.WARNING


# ---- broker URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://localhost", BrokerAddress("localhost", 1883)),
    ("mqtt://127.0.0.1:1884", BrokerAddress("127.0.0.1", 1884)),
    ("mqtts://broker.example.com", BrokerAddress("broker.example.com", 8883, tls=True)),
    ("mqtts://broker.example.com:9883/", BrokerAddress("broker.example.com", 9883, tls=True)),
    ("mqtt://user:pass@host:1000", BrokerAddress("host", 1000, "user", "pass")),
    ("mqtt://user@host", BrokerAddress("host", 1883, "user", None)),
    ("mqtt://us%40er:p%3Ass%2F@host", BrokerAddress("host", 1883, "us@er", "p:ss/")),
    ("MQTT://Host:1883", BrokerAddress("host", 1883)),
    ("mqtt://[::1]:1883", BrokerAddress("::1", 1883)),
    ("mqtt://user:@host", BrokerAddress("host", 1883, "user", "")),
])
def test_parse_broker_url(url, expected):
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("", "expected mqtt://"),
    ("localhost:1883", "scheme"),
    ("tcp://host:1883", "expected mqtt or mqtts, got 'tcp'"),
    ("ws://host", "expected mqtt or mqtts"),
    ("mqtt://", "expected a host name"),
    ("mqtt://:1883", "expected a host name"),
    ("mqtt://host:abc", "got 'mqtt://host:abc'"),
    ("mqtt://host:70000", "got 'mqtt://host:70000'"),
    ("mqtt://host:0", "expected 1..65535, got 0"),
    ("mqtt://host/path", "extra path"),
    ("mqtt://host?x=1", "extra path"),
    ("mqtt://:pw@host", "expected a user name"),
    (None, "expected mqtt://"),
])
def test_parse_broker_url_refuses(url, message):
    with pytest.raises(InvalidInput, match=message):
        parse_broker_url(url)


def test_password_is_not_in_repr_nor_in_errors():
    address = parse_broker_url("mqtt://u:hunter2@h")
    assert "hunter2" not in repr(address) and address.url == "mqtt://h:1883"
    for bad in ("tcp://u:hunter2@h", "mqtt://u:hunter2@h:99999", "mqtt://u:hunter2@h/x"):
        with pytest.raises(InvalidInput) as e:
            parse_broker_url(bad)
        assert "hunter2" not in str(e.value) and "u:***@h" in str(e.value)
    assert parse_broker_url("mqtts://[::1]").url == "mqtts://[::1]:8883"


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
