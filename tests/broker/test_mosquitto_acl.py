"""The generated password file and ACL, enforced by a real Mosquitto 2.0.

What Mosquitto 2.0.11 does with a publish the ACL denies: it drops the message and, over MQTT 5,
answers the QoS 1 PUBLISH with PUBACK reason code 0x87 (Not authorized); over MQTT 3.1.1, which
has no reason codes, it sends a plain PUBACK, so the publisher cannot tell. The connection stays up.
"""

from __future__ import annotations

import pytest

from qora.provision import load_keys, load_node_credentials

pytestmark = pytest.mark.mqtt

FLEET = "acl-fleet"
ROOT = f"qora/v1/{FLEET}"
NOT_AUTHORIZED = 0x87


@pytest.fixture
def fleet(mosquitto):
    result = mosquitto.provision(FLEET, ["node-a", "node-b"])
    port = mosquitto.start(result)
    keys = load_keys(result.keys_path)
    creds = {n: load_node_credentials(p) for n, p in result.node_paths.items()}
    return port, keys, creds


@pytest.fixture
def login(fleet, clients):
    """login(who, v5=False) -> a connected Client; who is a node id or "aggregator"."""
    port, keys, creds = fleet

    def connect(who: str, *, v5: bool = False, client_id: str | None = None):
        if who == "aggregator":
            user, password = keys.aggregator_username, keys.aggregator_password
        else:
            user, password = creds[who].mqtt_username, creds[who].mqtt_password
        c = clients(port, client_id or f"{who}-{'v5' if v5 else 'v311'}", username=user,
                    password=password, v5=v5)
        assert c.connect() == 0
        return c

    return connect


@pytest.mark.parametrize("v5", [False, True], ids=["v311", "v5"])
def test_right_password_connects_wrong_password_and_anonymous_are_refused(fleet, clients, v5):
    port, keys, creds = fleet
    good = clients(port, "good", username="node-a", password=creds["node-a"].mqtt_password, v5=v5)
    assert good.connect() == 0
    wrong = clients(port, "wrong", username="node-a", password=creds["node-b"].mqtt_password, v5=v5)
    anonymous = clients(port, "anon", v5=v5)
    for refused in (wrong, anonymous):
        rc = refused.connect()
        # 3.1.1 CONNACK code 5 and 5.0 code 0x87: paho reports both as "Not authorized"
        assert rc.is_failure and rc.value == NOT_AUTHORIZED and str(rc) == "Not authorized"
    agg = clients(port, "agg", username=keys.aggregator_username,
                  password=keys.aggregator_password, v5=v5)
    assert agg.connect() == 0


def test_forged_update_is_dropped_and_v5_puback_says_not_authorized(login):
    agg = login("aggregator")
    assert agg.subscribe(f"{ROOT}/update/+")[0].value == 1  # granted QoS 1
    node_a = login("node-a", v5=True)
    assert node_a.publish(f"{ROOT}/update/node-b", b"forged by node-a").value == NOT_AUTHORIZED
    assert node_a.publish(f"{ROOT}/update/node-a", b"own update").value == 0
    # Mosquitto handles one client's publishes in order: once the own update is in, the forged
    # one would have been delivered before it.
    msg = agg.expect()
    assert (msg.topic, msg.payload) == (f"{ROOT}/update/node-a", b"own update")
    assert agg.drain() == []


def test_forged_update_over_v311_is_dropped_silently(login):
    agg = login("aggregator")
    agg.subscribe(f"{ROOT}/update/+")
    node_a = login("node-a")
    assert node_a.publish(f"{ROOT}/update/node-b", b"forged").value == 0  # a plain PUBACK
    assert node_a.publish(f"{ROOT}/update/node-a", b"own").value == 0
    assert agg.expect().payload == b"own"
    assert agg.drain() == []


def test_node_cannot_publish_round_or_model(login):
    node_b = login("node-b")
    node_b.subscribe(f"{ROOT}/round")
    node_b.subscribe(f"{ROOT}/model/#")
    node_a = login("node-a", v5=True)
    for topic in (f"{ROOT}/round", f"{ROOT}/model/0", f"{ROOT}/ledger"):
        assert node_a.publish(topic, b"fake", retain=True).value == NOT_AUTHORIZED
    assert node_b.drain() == []
    # Nor was anything retained: a later reader finds nothing.
    late = login("node-b", client_id="late")
    late.subscribe(f"{ROOT}/#")
    assert late.drain() == []


def test_aggregator_publishes_round_and_model_nodes_read_them(login):
    agg = login("aggregator", v5=True)
    # No reader yet: MQTT 5 answers 0x10 "No matching subscribers", a success code.
    for topic, payload in ((f"{ROOT}/round", b"round 1"), (f"{ROOT}/model/0", b"chunk 0"),
                           (f"{ROOT}/ledger", b"head")):
        assert not agg.publish(topic, payload, retain=True).is_failure
    node = login("node-a")
    node.subscribe(f"{ROOT}/round")
    node.subscribe(f"{ROOT}/model/#")
    node.subscribe(f"{ROOT}/ledger")
    got = {m.topic: (m.payload, m.retain) for m in (node.expect(), node.expect(), node.expect())}
    assert got == {f"{ROOT}/round": (b"round 1", True), f"{ROOT}/model/0": (b"chunk 0", True),
                   f"{ROOT}/ledger": (b"head", True)}
    assert agg.publish(f"{ROOT}/round", b"round 2", retain=True).value == 0  # node-a reads it
    assert node.expect().payload == b"round 2"


def test_node_cannot_read_other_nodes_updates(login):
    agg = login("aggregator")
    agg.subscribe(f"{ROOT}/update/+")
    spy = login("node-b")
    # Mosquitto 2.0 grants the subscription and filters each message on delivery instead.
    assert spy.subscribe(f"{ROOT}/update/+")[0].value == 1
    assert spy.subscribe(f"{ROOT}/#")[0].value == 1
    node_a = login("node-a")
    node_a.publish(f"{ROOT}/update/node-a", b"private")
    assert agg.expect().payload == b"private"
    assert spy.drain() == []


def test_node_writes_its_own_status_only(login):
    agg = login("aggregator")
    agg.subscribe(f"{ROOT}/status/+")
    node_a = login("node-a", v5=True)
    assert node_a.publish(f"{ROOT}/status/node-b", b"offline", retain=True).value == NOT_AUTHORIZED
    assert node_a.publish(f"{ROOT}/status/node-a", b"online", retain=True).value == 0
    msg = agg.expect()
    assert (msg.topic, msg.payload) == (f"{ROOT}/status/node-a", b"online")
    assert agg.drain() == []


def test_acl_is_per_fleet(login):
    """The fleet's patterns name the fleet: a node cannot write into another fleet's topics."""
    node_a = login("node-a", v5=True)
    assert node_a.publish("qora/v1/other-fleet/update/node-a", b"x").value == NOT_AUTHORIZED
