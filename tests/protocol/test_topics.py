"""qora.protocol.topics: builders, subscriptions, strict parsing, the id rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qora.errors import InvalidInput
from qora.protocol import (
    ProtocolError,
    Topic,
    ledger_topic,
    model_topic,
    parse_topic,
    round_topic,
    status_topic,
    subscription,
    update_topic,
    validate_id,
)

ids = st.text("abcXYZ019_-", min_size=1, max_size=64)


def test_builders_follow_the_spec():
    assert round_topic("demo") == "qora/v1/demo/round"
    assert model_topic("demo", 0) == "qora/v1/demo/model/0"
    assert model_topic("demo", 12) == "qora/v1/demo/model/12"
    assert update_topic("demo", "node-1") == "qora/v1/demo/update/node-1"
    assert status_topic("demo", "node-1") == "qora/v1/demo/status/node-1"
    assert ledger_topic("demo") == "qora/v1/demo/ledger"


@pytest.mark.parametrize("kind, expected", [
    ("round", "qora/v1/f/round"), ("model", "qora/v1/f/model/+"), ("update", "qora/v1/f/update/+"),
    ("status", "qora/v1/f/status/+"), ("ledger", "qora/v1/f/ledger")])
def test_subscription_uses_a_single_level_wildcard_for_per_item_kinds(kind, expected):
    assert subscription("f", kind) == expected


def test_subscription_rejects_an_unknown_kind():
    with pytest.raises(InvalidInput, match="kind: expected one of"):
        subscription("f", "models")


@settings(max_examples=60)
@given(fleet=ids, node=ids, chunk=st.integers(0, 65534))
def test_parse_inverts_every_builder(fleet, node, chunk):
    assert parse_topic(round_topic(fleet)) == Topic(fleet, "round")
    assert parse_topic(ledger_topic(fleet)) == Topic(fleet, "ledger")
    assert parse_topic(model_topic(fleet, chunk)) == Topic(fleet, "model", chunk=chunk)
    assert parse_topic(update_topic(fleet, node)) == Topic(fleet, "update", node=node)
    assert parse_topic(status_topic(fleet, node)) == Topic(fleet, "status", node=node)


@pytest.mark.parametrize("topic", [
    "", "qora", "qora/v1/demo", "qora/v2/demo/round", "Qora/v1/demo/round", "/qora/v1/demo/round",
    "qora/v1/demo/round/", "qora/v1/demo/round/x", "qora/v1/demo/ledger/0", "qora/v1/demo/rounds",
    "qora/v1/de mo/round", "qora/v1//round", "qora/v1/+/round", "qora/v1/#", "qora/v1/" + "a" * 65 + "/round",
    "qora/v1/demo/model", "qora/v1/demo/model/01", "qora/v1/demo/model/00", "qora/v1/demo/model/-1",
    "qora/v1/demo/model/+1", "qora/v1/demo/model/65535", "qora/v1/demo/model/1e3", "qora/v1/demo/model/\u0661",
    "qora/v1/demo/model/1/2", "qora/v1/demo/update", "qora/v1/demo/update/", "qora/v1/demo/update/+",
    "qora/v1/demo/update/n\u00e9", "qora/v1/demo/update/node-1/x", "qora/v1/demo/status/a/b",
    "qora/v1/demo/update/node-1\n"])
def test_parse_rejects_anything_else_as_malformed(topic):
    with pytest.raises(ProtocolError) as e:
        parse_topic(topic)
    assert e.value.reason == "malformed"


@pytest.mark.parametrize("topic", [None, b"qora/v1/demo/round", 3])
def test_parse_rejects_a_non_string_as_malformed(topic):
    with pytest.raises(ProtocolError, match="expected a topic string"):
        parse_topic(topic)


@pytest.mark.parametrize("value", ["a", "A-Z_0-9", "x" * 64])
def test_validate_id_returns_a_valid_id(value):
    assert validate_id(value) == value


@pytest.mark.parametrize("value", ["", "x" * 65, "a b", "a/b", "a+", "#", "n\u00e9", "a\n", "a.b", None, 7,
                                   b"abc"])
def test_validate_id_names_the_rule_and_the_value(value):
    with pytest.raises(InvalidInput, match=r"node: expected 1 to 64 characters of A-Z a-z 0-9 _ -, got"):
        validate_id(value, "node")


@pytest.mark.parametrize("chunk", [-1, 65535, 1.0, True, "3"])
def test_model_topic_rejects_a_bad_chunk_index(chunk):
    with pytest.raises(InvalidInput, match="chunk: expected an integer in 0 .. 65534"):
        model_topic("demo", chunk)
