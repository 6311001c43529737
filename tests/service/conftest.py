"""Fixtures of the service tests that run over MQTT: brokers, fleets with their clean-up."""

from __future__ import annotations

import contextlib

import pytest
from mqttkit import Broker, cleanup_fleet, port_open, provision_fleet, unique_fleet
from qora.broker import EmbeddedBroker
from qora.mqtt_url import BrokerAddress

SYSTEM_BROKER = ("127.0.0.1", 1883)


def _system_mosquitto() -> Broker:
    if not port_open(*SYSTEM_BROKER):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    return Broker("mosquitto", BrokerAddress(*SYSTEM_BROKER), "5")


@pytest.fixture
def mosquitto_1883() -> Broker:
    """The shared Mosquitto on 127.0.0.1:1883 (MQTT 5, anonymous)."""
    return _system_mosquitto()


@pytest.fixture
def embedded_broker():
    """An amqtt broker in this process on a free port (MQTT 3.1.1 only)."""
    with EmbeddedBroker() as b:
        yield Broker("embedded", BrokerAddress("127.0.0.1", b.port), "3.1.1")


@pytest.fixture(params=["mosquitto", "embedded"])
def broker(request):
    """Each test runs against Mosquitto on 1883 and against an embedded broker."""
    if request.param == "mosquitto":
        return _system_mosquitto()
    return request.getfixturevalue("embedded_broker")


@pytest.fixture
def cleanup():
    """An ExitStack unwound after the test, pass or fail: register closers as you create things."""
    with contextlib.ExitStack() as stack:
        yield stack


@pytest.fixture
def new_fleet(tmp_path, cleanup):
    """new_fleet(tag, nodes, broker) -> FleetSetup with a fresh fleet name; its retained messages
    and the aggregator's session are removed from a shared broker afterwards."""

    def make(tag, nodes, broker, subdir=None):
        fleet = provision_fleet(tmp_path / (subdir or tag), unique_fleet(tag), list(nodes))
        if broker.kind == "mosquitto":
            cleanup.callback(cleanup_fleet, broker, fleet.name)
        return fleet

    return make
