"""Hand-built Flower replies for the strategy tests.

A reply is made the way a ClientApp makes one: the ServerApp's instruction
``Message(RecordDict, dst_node_id=..., message_type=MessageType.TRAIN)``, then
``Message(content, reply_to=instruction)`` (or ``Message(Error(...), reply_to=...)``); its
``metadata.src_node_id`` is then the node's id. Instructions read the sending process's
identity (run, node, task), which the ServerApp process sets at start: the ``flower_process``
fixture sets it for each test.

Without Flower (the ``flower`` / ``test`` extra) the tests of this folder are not collected.
"""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace
from typing import Any

import pytest

collect_ignore_glob = [] if importlib.util.find_spec("flwr") else ["test_*.py"]


@pytest.fixture(autouse=True)
def flower_process(monkeypatch):
    """The identity a ServerApp process has (run 7, the SuperLink's node, task 1)."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 7)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


@pytest.fixture
def replies() -> SimpleNamespace:
    """``reply(node, arrays, num_examples, metrics=, key=, content=)``, ``error_reply(node)``,
    ``instruction(node)`` and Flower's record classes."""
    from flwr.app import (
        Array,
        ArrayRecord,
        ConfigRecord,
        Error,
        Message,
        MessageType,
        MetricRecord,
        RecordDict,
    )

    def instruction(node: int) -> Message:
        return Message(RecordDict(), dst_node_id=node, message_type=MessageType.TRAIN)

    def reply(node: int, arrays: Any = None, num_examples: Any = 10, *, metrics: dict | None = None,
              key: str = "arrays", content: RecordDict | None = None) -> Message:
        """A training reply from ``node``: ``arrays`` (list or dict of numpy arrays, or an
        ArrayRecord) under ``key`` and a MetricRecord with ``num-examples`` and ``metrics``."""
        if content is None:
            if isinstance(arrays, ArrayRecord):
                record = arrays
            elif isinstance(arrays, dict):
                record = ArrayRecord({k: Array(v) for k, v in arrays.items()})
            else:
                record = ArrayRecord(list(arrays))
            content = RecordDict({key: record, "metrics": MetricRecord(
                {"num-examples": num_examples, **(metrics or {})})})
        return Message(content, reply_to=instruction(node))

    def error_reply(node: int, reason: str = "ClientApp crashed") -> Message:
        return Message(Error(code=2, reason=reason), reply_to=instruction(node))

    return SimpleNamespace(reply=reply, error_reply=error_reply, instruction=instruction,
                           Array=Array, ArrayRecord=ArrayRecord, ConfigRecord=ConfigRecord,
                           MetricRecord=MetricRecord, RecordDict=RecordDict)
