"""Reputation keyed by Flower node id survives a server restart (``reputation_path``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from qora.flower import REASON_CODES, QoraAggregation, QoraLegacyStrategy, QoraStrategy
from qora.flower import core

NODES = [4_000_000_000_000_000_001, 17, 18, 19, 20]  # Flower node ids are uint64
ATTACKER = 99


def one_round(replies, rng):
    honest = [[rng.normal(0, 0.1, 6).astype(np.float32)] for _ in NODES]
    flip = [(-20 * np.mean([m[0] for m in honest], axis=0)).astype(np.float32)]
    return [replies.reply(n, m) for n, m in zip(NODES, honest)] + [replies.reply(ATTACKER, flip)]


def test_a_recreated_strategy_remembers_reputation(replies, tmp_path):
    # Prepare: four rounds bring the attacker to 0.18 (banned at 0.2)
    path = tmp_path / "state" / "reputation.json"
    rng = np.random.default_rng(0)
    first = QoraStrategy(reputation_path=path)
    for r in range(1, 5):
        _, metrics = first.aggregate_train(r, one_round(replies, rng))
        on_disk = json.loads(path.read_text())
        assert on_disk["format"] == "qora-reputation"  # written after every round
        assert {c["id"]: c["score"] for c in on_disk["clients"]}[ATTACKER] == pytest.approx(0.5 - 0.08 * r)
    assert "qora.excluded.99" not in metrics

    # Execute: the server restarts
    second = QoraStrategy(reputation_path=path)
    _, metrics = second.aggregate_train(1, one_round(replies, rng))

    # Assert: banned from the first round after the restart, ids kept as ints (uint64 too)
    assert metrics[f"qora.excluded.{ATTACKER}"] == REASON_CODES["banned"]
    assert second.qora.reputation.get_score(NODES[0]) == pytest.approx(0.5 + 5 * 0.02)
    assert all(isinstance(c["id"], int) for c in json.loads(path.read_text())["clients"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["reputation.json"]  # no temp files left


def test_both_adapters_share_one_reputation_file(replies, tmp_path):
    path = tmp_path / "reputation.json"
    message = QoraStrategy(reputation_path=path)
    message.aggregate_train(1, one_round(replies, np.random.default_rng(2)))
    legacy = QoraLegacyStrategy(reputation_path=path)
    assert legacy.qora.reputation.all_scores() == message.qora.reputation.all_scores()
    assert legacy.qora.reputation.get_score(ATTACKER) == pytest.approx(0.42)


def test_the_threshold_given_now_wins_over_the_files(tmp_path):
    path = tmp_path / "reputation.json"
    agg = QoraAggregation(reputation_path=path, reputation_threshold=0.2)
    agg.reputation.set_score(3, 0.25)
    agg.save()
    assert not QoraAggregation(reputation_path=path, reputation_threshold=0.2).reputation.is_banned(3)
    assert QoraAggregation(reputation_path=path, reputation_threshold=0.3).reputation.is_banned(3)


def test_a_failed_write_leaves_the_previous_file_whole(replies, tmp_path, monkeypatch):
    path = tmp_path / "reputation.json"
    rng = np.random.default_rng(1)
    strategy = QoraStrategy(reputation_path=path)
    strategy.aggregate_train(1, one_round(replies, rng))
    before = path.read_text()

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(core.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        strategy.aggregate_train(2, one_round(replies, rng))
    assert path.read_text() == before
    assert os.listdir(tmp_path) == ["reputation.json"]


def test_a_file_that_is_not_reputation_state_is_refused_with_the_cause(tmp_path):
    path = tmp_path / "reputation.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot load the reputation file .*reputation.json.*Likely cause"):
        QoraStrategy(reputation_path=path)
    path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="format"):
        QoraLegacyStrategy(reputation_path=path)
