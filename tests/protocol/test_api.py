"""qora.protocol as a package: exports, reject reasons, no MQTT or service imports."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from qora import protocol
from qora.errors import InvalidInput, QoraError
from qora.protocol import PENALIZED_REASONS, REJECT_REASONS, ProtocolError


def test_reject_reasons_are_the_spec_list_in_check_order():
    assert REJECT_REASONS == (
        "oversize", "malformed", "bad_version", "wrong_type", "wrong_fleet", "forged_sender",
        "unknown_node", "bad_tag", "wrong_round", "bad_chunk", "bad_shape", "bad_encoding",
        "non_finite", "out_of_range", "replay", "conflict", "inconsistent")


def test_penalized_reasons_are_the_authenticated_misbehaviours():
    assert PENALIZED_REASONS == {"bad_chunk", "bad_shape", "bad_encoding", "non_finite",
                                 "out_of_range", "conflict", "inconsistent"}
    assert PENALIZED_REASONS < set(REJECT_REASONS)


def test_protocol_error_carries_reason_and_detail_and_pickles():
    e = ProtocolError("bad_tag", "expected x, got y")
    assert isinstance(e, QoraError) and isinstance(e, ValueError)
    assert (e.reason, e.detail, str(e), e.penalized) == ("bad_tag", "expected x, got y",
                                                         "bad_tag: expected x, got y", False)
    back = pickle.loads(pickle.dumps(ProtocolError("conflict", "two contents")))
    assert (back.reason, back.detail, back.penalized) == ("conflict", "two contents", True)


def test_protocol_error_refuses_an_unknown_reason():
    with pytest.raises(InvalidInput, match="reason: expected one of oversize, .*got 'bad'"):
        ProtocolError("bad", "x")


def test_all_lists_every_public_name_once():
    assert len(protocol.__all__) == len(set(protocol.__all__))
    public = {n for n in dir(protocol) if not n.startswith("_")}
    modules = {"auth", "cbor", "errors", "fields", "messages", "model", "tensors", "topics",
               "updates", "vectors", "wire", "annotations"}
    assert public - modules == set(protocol.__all__)


def test_the_package_imports_neither_mqtt_nor_the_service():
    code = ("import sys, qora.protocol, qora.protocol.vectors; "
            "bad = [m for m in sys.modules if m.startswith(('paho', 'qora.service', 'amqtt', 'cryptography'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
