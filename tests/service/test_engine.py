"""The round state machine without a network: intake, rejects, closing, restart, the ledger."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetkit import FLEET, Clock, make_fleet, messages, send_all, update_values
from qora.protocol import Encoding, RoundAnnouncement, update_topic
from qora.service import verify_store
from qora.service.compute import apply_model


def topic(node):
    return update_topic(FLEET, node)


def test_a_full_round_publishes_the_model_ledger_and_next_round(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    pubs = engine.start()
    assert pubs[-1].topic == f"qora/v1/{FLEET}/round"
    ann = RoundAnnouncement.decode(pubs[-1].payload)
    assert (ann.round, ann.version, ann.model_chunks) == (1, 0, 3)
    send_all(engine, fleet, 1)
    assert engine.due()  # every provisioned node is complete: no need to wait for the deadline
    model_before = engine.model.copy()
    closed = engine.close()
    assert closed.round == 1 and engine.round == 2 and engine.version_in == 1
    topics = [p.topic for p in closed.publications]
    assert topics[:3] == [f"qora/v1/{FLEET}/model/{i}" for i in range(3)]
    assert topics[3:] == [f"qora/v1/{FLEET}/ledger", f"qora/v1/{FLEET}/round"]
    assert not np.array_equal(engine.model, model_before)
    rec = closed.record
    assert [i["node"] for i in rec["inputs"]] == fleet.nodes
    assert rec["model_out"]["version"] == 1
    report = verify_store(tmp_path / "fleet.db")
    assert report.ok and report.replayed_q16 == 1


def test_the_aggregate_is_the_trimmed_mean_of_the_updates(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    send_all(engine, fleet, 1)
    before = engine.model.copy()
    engine.close()
    from qora import native
    x = np.stack([update_values(i, 1) for i in range(5)])
    want = native.trimmed_mean(x, 1, mode="q16_16").raw
    assert np.array_equal(engine.model, apply_model(before, want, "q16_16"))


def test_byzantine_updates_are_trimmed_and_their_senders_lose_reputation(tmp_path):
    fleet = make_fleet(tmp_path, n=7)
    engine = fleet.engine()
    engine.start()
    bad = {"n6"}
    for r in range(1, 6):
        send_all(engine, fleet, r, byzantine=bad)
        closed = engine.close()
    assert closed.scores["n6"] < 0.2 and closed.excluded == {"n6": "banned"}
    assert min(s for n, s in closed.scores.items() if n != "n6") >= 0.5
    assert np.abs(engine.model.astype(np.int64)).max() < 65536  # the 20.0s never got in
    assert verify_store(tmp_path / "fleet.db").ok


def test_round_waits_for_quorum_and_extends_its_deadline(tmp_path):
    fleet = make_fleet(tmp_path)
    clock = Clock()
    engine = fleet.engine(clock=clock)
    engine.start()
    for i, node in enumerate(fleet.nodes[:2]):
        for m in messages(fleet, node, 1, update_values(i, 1)):
            engine.handle(topic(node), m)
    clock.t += 31
    assert not engine.due()                       # 2 < quorum 3
    pubs = engine.extend_if_late()
    assert len(pubs) == 1 and RoundAnnouncement.decode(pubs[0].payload).deadline >= clock.t + 29
    for m in messages(fleet, "n2", 1, update_values(2, 1)):
        engine.handle(topic("n2"), m)
    assert not engine.due()                       # quorum, but the new deadline has not passed
    clock.t += 31
    assert engine.due()
    closed = engine.close()
    assert [i["node"] for i in closed.record["inputs"]] == ["n0", "n1", "n2"]


def test_an_incomplete_update_is_left_out_and_named(tmp_path):
    fleet = make_fleet(tmp_path)
    clock = Clock()
    engine = fleet.engine(clock=clock)
    engine.start()
    for i, node in enumerate(fleet.nodes[:4]):
        for m in messages(fleet, node, 1, update_values(i, 1)):
            engine.handle(topic(node), m)
    engine.handle(topic("n4"), messages(fleet, "n4", 1, update_values(4, 1))[0])
    clock.t += 31
    closed = engine.close()
    assert closed.record["incomplete"] == ["n4"]
    assert "n4" not in [i["node"] for i in closed.record["inputs"]]


def _reject(engine, node, message):
    v = engine.handle(topic(node), message)
    assert not v.accepted
    return v.reason


def test_every_reject_reason_is_counted_and_the_round_still_completes(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    good = messages(fleet, "n0", 1, update_values(0, 1))
    assert engine.handle(topic("n0"), good[0]).accepted
    f32 = update_values(1, 1, mode="float32")
    cases = {
        "oversize": ("n1", b"\x00" * 20000),
        "malformed": ("n1", b"\xff\x00garbage"),
        "forged_sender": ("n2", messages(fleet, "n1", 1, update_values(1, 1))[0]),
        "bad_tag": ("n1", messages(fleet, "n1", 1, update_values(1, 1), key=bytes(32))[0]),
        "wrong_round": ("n1", messages(fleet, "n1", 7, update_values(1, 1))[0]),
        "bad_shape": ("n1", messages(fleet, "n1", 1, update_values(1, 1, d=200))[0]),
        "bad_encoding": ("n1", messages(fleet, "n1", 1, f32)[0]),
        "replay": ("n0", good[0]),
        "conflict": ("n0", messages(fleet, "n0", 1, update_values(9, 9))[0]),
        "inconsistent": ("n0", messages(fleet, "n0", 1, update_values(0, 1), samples=99)[1]),
        "bad_chunk": ("n1", messages(fleet, "n1", 1, update_values(1, 1), chunk_elements=64)[0]),
    }
    for want, (node, msg) in cases.items():
        assert _reject(engine, node, msg) == want, want
    assert engine.handle(topic("ghost"), good[0]).reason in ("unknown_node", "forged_sender")
    assert engine.handle("qora/v1/other/update/n0", good[0]).reason == "wrong_fleet"
    for m in good[1:]:
        assert engine.handle(topic("n0"), m).accepted
    send_rest = [n for n in fleet.nodes if n != "n0"]
    for node in send_rest:
        i = fleet.nodes.index(node)
        for m in messages(fleet, node, 1, update_values(i, 1)):
            assert engine.handle(topic(node), m).accepted
    assert engine.due()
    closed = engine.close()
    rejects = closed.record["rejects"]
    assert sum(rejects.values()) == len(cases) + 2
    assert rejects["bad_tag/n1"] == 1 and rejects["replay/n0"] == 1
    # authenticated misbehaviour is penalised; QoS 1 redelivery (replay) and unauthenticated junk are not
    assert closed.record["penalties"] == {"n0": 2, "n1": 3}
    assert verify_store(tmp_path / "fleet.db").ok


def test_float32_fleets_take_float32_and_int8_updates_and_refuse_nan(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine(mode="float32")
    engine.start()
    for i, node in enumerate(fleet.nodes):
        vals = update_values(i, 1, mode="float32")
        enc = Encoding.I8 if i % 2 else Encoding.F32
        for m in messages(fleet, node, 1, vals, encoding=enc):
            assert engine.handle(topic(node), m).accepted
    nan = np.full(300, np.nan, np.float32)
    assert _reject(engine, "n0", messages(fleet, "n0", 1, nan)[0]) in ("non_finite", "replay", "conflict")
    engine.close()
    report = verify_store(tmp_path / "fleet.db")
    assert report.ok and report.replayed_float == 1


def test_a_restarted_engine_resumes_the_open_round_with_every_accepted_chunk(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    for i, node in enumerate(fleet.nodes[:3]):
        for m in messages(fleet, node, 1, update_values(i, 1)):
            engine.handle(topic(node), m)
    engine.handle(topic("n3"), messages(fleet, "n3", 1, update_values(3, 1))[0])
    engine.store.close()                                   # the process dies here
    again = fleet.engine()
    again.start()
    assert again.round == 1 and again.complete_nodes() == ["n0", "n1", "n2"]
    assert again.handle(topic("n0"), messages(fleet, "n0", 1, update_values(0, 1))[0]).reason == "replay"
    for m in messages(fleet, "n3", 1, update_values(3, 1))[1:]:
        assert again.handle(topic("n3"), m).accepted
    for m in messages(fleet, "n4", 1, update_values(4, 1)):
        again.handle(topic("n4"), m)
    again.close()
    # the same round, uninterrupted, gives the same model
    other = make_fleet(tmp_path / "b")
    other.keys, other.signer = fleet.keys, fleet.signer
    ref = other.engine()
    ref.start()
    send_all(ref, other, 1)
    ref.close()
    assert np.array_equal(again.model, ref.model)
    assert json.loads(again.store.ledger_head().record)["aggregate"] == \
        json.loads(ref.store.ledger_head().record)["aggregate"]


def test_a_closed_round_is_never_aggregated_again_after_a_restart(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    send_all(engine, fleet, 1)
    engine.close()
    engine.store.close()
    again = fleet.engine()
    pubs = again.start()
    assert again.round == 2 and again.version_in == 1
    assert [r.round for r in again.store.rounds() if r.state != "open"] == [1]
    assert len(again.store.ledger()) == 1
    assert RoundAnnouncement.decode(pubs[-1].payload).round == 2
    assert again.unpublished() == [1]      # closed, publication never confirmed: re-sent, not re-run


def test_a_store_of_another_fleet_is_refused(tmp_path):
    fleet = make_fleet(tmp_path)
    fleet.engine().store.close()
    with pytest.raises(Exception, match="belongs to fleet"):
        fleet.engine(fleet="otherfleet")


def test_a_second_aggregator_on_the_same_store_is_refused(tmp_path):
    fleet = make_fleet(tmp_path)
    first = fleet.engine()
    with pytest.raises(Exception, match="in use by another aggregator"):
        fleet.engine()
    first.store.close()
    fleet.engine().store.close()   # free again once the first one is gone


def test_a_node_resending_a_chunk_whose_stored_copy_no_longer_validates_is_taken(tmp_path):
    # n0's chunk 0 is stored, then the fleet is re-provisioned (n0 has a new key) and the
    # aggregator restarts: the stored copy is left out, so the chunk n0 sends again under its
    # new key must be accepted, not crash the intake on the store's primary key
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    engine.handle(topic("n0"), messages(fleet, "n0", 1, update_values(0, 1))[0])
    engine.store.close()
    fleet.keys = {**fleet.keys, "n0": bytes(range(32))}
    again = fleet.engine()
    again.start()
    assert again.pending == {}
    for m in messages(fleet, "n0", 1, update_values(0, 1)):
        with again.intake():
            assert again.handle(topic("n0"), m).accepted
    assert again.complete_nodes() == ["n0"]
    again.store.close()
    third = fleet.engine()
    third.start()
    assert third.complete_nodes() == ["n0"]   # what was stored is the accepted copy


def test_rejects_from_names_that_are_not_ours_are_counted_under_one_row(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    for i in range(50):  # an outsider inventing senders must not grow the store or the ledger
        engine.handle(topic(f"made-up-{i}"), b"\xff")
    assert engine.store.rejects(1) == {("malformed", "?"): 50}


def test_a_store_keeps_its_numeric_mode_and_its_open_rounds_chunking(tmp_path):
    fleet = make_fleet(tmp_path)
    engine = fleet.engine()
    engine.start()
    for m in messages(fleet, "n0", 1, update_values(0, 1)):
        engine.handle(topic("n0"), m)
    engine.store.close()
    with pytest.raises(Exception, match="cannot switch to float32"):
        fleet.engine(mode="float32", init=update_values(0, 0, mode="float32"))
    with pytest.raises(Exception, match="finish it before changing chunk_elements"):
        fleet.engine(chunk_elements=64)
    again = fleet.engine(trim_fraction=0.4)          # aggregation settings may change
    again.start()
    assert again.complete_nodes() == ["n0"]
    again.store.close()
