"""The Qora-FL README's Python examples, unchanged, against qora (Qora Edge).

Each block below is copied from the Qora-FL 0.4.0 README (Python sections). They
run as written and print what that README promises.
"""

from __future__ import annotations

import contextlib
import io

import pytest


def run(source: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<qora-fl readme>", "exec"), {})
    return out.getvalue()


STANDALONE = '''
import numpy as np
from qora import ByzantineAggregator

agg = ByzantineAggregator("trimmed_mean", 0.3)

# 7 honest clients + 3 Byzantine attackers
updates = [np.array([[1.0, 2.0]], dtype=np.float32) for _ in range(7)]
updates += [np.array([[100.0, 200.0]], dtype=np.float32) for _ in range(3)]

result = agg.aggregate(updates)
# Result is [1.0, 2.0] -- attackers rejected
print(result)
'''

NORM_BOUND = '''
from qora import ByzantineAggregator

agg = ByzantineAggregator("median", 0.0, norm_bound=10.0)
print(agg.norm_bound)   # 10.0, or None when disabled
'''

REPUTATION = '''
from qora import ReputationManager

rep = ReputationManager(ban_threshold=0.2)
rep.reward("hospital_A", 0.02)
rep.penalize("hospital_bad", 0.08)

print(rep.is_banned("hospital_bad"))  # True after enough penalties
print(rep.active_clients())           # Only non-banned clients

# Persist between server restarts
json_state = rep.to_json()
rep2 = ReputationManager.from_json(json_state, ban_threshold=0.2)
'''


def test_standalone_example_rejects_the_attackers():
    assert run(STANDALONE).strip() == "[[1. 2.]]"


def test_norm_bound_example():
    assert run(NORM_BOUND).strip() == "10.0"


def test_reputation_example_and_enough_penalties_ban():
    lines = run(REPUTATION).splitlines()
    assert lines[0] == "False"  # one penalty: 0.42, not yet below 0.2
    assert lines[1].startswith("[('hospital_A', 0.52") and "hospital_bad" in lines[1]
    more = run(REPUTATION + "\nfor _ in range(3):\n    rep.penalize('hospital_bad', 0.08)\n"
               "print(rep.is_banned('hospital_bad'), rep.get_score('hospital_bad'))\n"
               "rep3 = ReputationManager.from_json(rep.to_json(), ban_threshold=0.2)\n"
               "print(rep3.is_banned('hospital_bad'), rep3.get_score('hospital_A'))\n")
    last = more.splitlines()
    assert last[2].split()[0] == "True" and float(last[2].split()[1]) == pytest.approx(0.18)
    assert last[3].split()[0] == "True" and float(last[3].split()[1]) == pytest.approx(0.52)
