"""Client reputation that steers aggregation: a drop-in for Qora-FL's ``ReputationManager``.

Scores live in [0, 1] and start at ``initial_score`` (0.5). The Qora-FL methods behave as
there: ``reward`` / ``penalize`` add or subtract and clamp, ``is_banned`` is *strictly* below
``ban_threshold``, ``decay(rate)`` moves every score toward the initial score
(``s += rate * (initial_score - s)``), ``influence_weight`` is ``min(s**3, max_influence)``.
Bad input (NaN, Inf, out-of-range scores, negative amounts, ids that are not ``str`` / ``int``)
raises :class:`qora.errors.InvalidInput` / :class:`qora.errors.InvalidType` and changes
nothing: a non-finite or out-of-range value is never stored.

What Qora-FL documents but does not wire in, this module does: ``update_from_deviations``
turns each round's distances to the robust aggregate into rewards and penalties with a
scale-free rule, and ``influence_weights`` turns scores into aggregation weights with a
bound on what a swarm of new identities can gain.

Deviation rule (``update_from_deviations``)
-------------------------------------------
``dev_i`` is client i's L2 distance from this round's robust aggregate. With
``med = median(dev)``, ``MAD = median(|dev - med|)``,
``scale = max(1.4826 * MAD, min_relative_scale * med, 1e-12)`` (``min_relative_scale`` = 0.25)
and ``z_i = (dev_i - med) / scale``:

* ``z_i <= reward_z`` (2.0)          -> ``reward(reward_step)``   (+0.02)
* ``reward_z < z_i <= penalty_z``    -> neutral (score unchanged)
* ``z_i > penalty_z`` (6.0)          -> ``penalize(penalty_step)`` (-0.08)

The rule is scale-free: multiplying every deviation by the same ``c > 0`` leaves every
``z_i`` and every action unchanged (exactly for powers of two, up to rounding at the
thresholds otherwise), so it means the same for a 10-parameter model and a 10M-parameter
one, unlike Qora-FL's fixed cut-offs (< 1.0 reward, > 10.0 penalise). 1.4826 * MAD estimates
the standard deviation of the bulk from its middle half, so up to half the clients can be
outliers without inflating the scale. The ``0.25 * med`` floor keeps a round where most
clients sit at nearly the same distance from flagging the ones a hair further out; the
``1e-12`` floor only matters when more than half of the deviations are exactly 0 (then any
client measurably off the aggregate is an outlier).

**Defaults chosen for honest fleets** (penalty_z = 6, min_relative_scale = 0.25, measured
below): a client is penalised only beyond ``med * (1 + penalty_z * min_relative_scale)`` =
**2.5x the median distance** when the bulk is tight, and 6 robust sigmas out when it is
spread. Attackers far outside (sign flips, scaled or random updates: 10x and more) are banned
within 4 rounds; subtle attackers inside that band are the aggregation rule's job, not
reputation's. With the first draft's values (4 and 0.05):

* **Tight bulk, honest stragglers.** When the honest deviations are tightly clustered (IID
  data in high dimension: distances concentrate), the floor decides: a client is penalised
  once ``dev > med * (1 + penalty_z * min_relative_scale)``, i.e. beyond **1.2x the median**
  with 4 and 0.05. An honest client whose update is noisier than the rest (less local
  data: half the data gives about 1.41x the distance) or more biased (a rare label
  distribution among homogeneous peers) is then flagged every round and banned in 4 rounds.
  ``min_relative_scale=0.25`` moves the line to 2x the median and still penalises every
  client at 3x or 10x. A deviation signal alone cannot tell an honest 2x straggler from an
  attacker who scales its noise by 2.
* **Heterogeneous honest clients.** The same holds across rounds: with round-to-round noise
  of a factor ``lognormal(0, 0.3)``, an honest client whose typical distance is 1.5x that of
  its peers is flagged in ~12 % of rounds (it keeps its score), at 2x in ~36 % (it is
  banned). Raise ``penalty_z`` when the federation is known to be that heterogeneous: with
  per-client scales spread over 4x, the defaults ban an honest client in ~4.5 % of 100-round
  runs, ``penalty_z=6`` in 0.2 %, and still bans 10x outliers within 4 rounds.
* **Fewer than 3 clients**: every client is neutral (z reported as 0.0). Two points give no
  robust spread: the median is their midpoint and each sits exactly one MAD from it.
* **Every id passed** has ``rounds_seen`` incremented, whatever its action. Banned ids
  passed here are treated like any other; :class:`qora.ByzantineAggregator` excludes banned
  clients before aggregating and does not pass them, so a ban lasts until ``decay``,
  ``set_score`` or ``reset`` lifts it.
* **Slow gain, fast loss.** A client rewarded in a share ``q_r`` of its rounds and penalised
  in ``q_p`` drifts by ``0.02 q_r - 0.08 q_p`` per round. With no neutral rounds the
  break-even is ``q_p = 0.02 / (0.02 + 0.08) = 20 %``: **a client flagged in more than 20 % of
  its rounds loses reputation over time** and is eventually banned; an honest client flagged
  now and then (heavy-tailed noise, a rare local distribution) recovers. A persistent outlier
  starting at 0.5 is banned at threshold 0.2 after 4 rounds (0.5 - 4 * 0.08 = 0.18); one
  that first built a perfect 1.0 needs 11 (10 bring it to 0.2, which is not below 0.2),
  while its weight falls as ``s**3`` from the first one (three penalties take it from 0.8
  to 0.44).

Influence weights and the collusion bound (``influence_weights``)
----------------------------------------------------------------
``w_i = min(s_i**3, max_influence)`` for ids that are not banned, 0 for banned ones. The
cube makes a newcomer at 0.5 weigh 0.125, an established client at 0.93+ weigh the cap 0.8.
A per-identity cap alone does not bound a *set* of identities, so there is a **newcomer
budget**: let N be the ids with ``rounds_seen < newcomer_rounds`` (5). If
``sum(w over N) > newcomer_budget * sum(w over all ids)`` (0.2), the newcomers' weights are
scaled down by one common factor so that their share is exactly ``newcomer_budget`` (up to
rounding, never above it).

**Guarantee.** Any set of identities younger than ``newcomer_rounds`` rounds holds at most
``newcomer_budget`` of the round's total weight. Hence with a weighted trimmed mean that
trims ``beta >= newcomer_budget`` of the weight on each side, a fresh Sybil swarm cannot move
any coordinate outside the range of the established clients' values, however many
identities it creates: on each side the trimmed weight covers everything the swarm put
beyond the established extremes.

Limits: when every id in the round is a newcomer (the first ``newcomer_rounds`` rounds of a
federation), or the established ids all have weight 0, nothing is scaled (the newcomers'
share is 1 by necessity). Identities that behave for ``newcomer_rounds`` rounds become
established; from then on they are bounded only by the per-id cap and by their score,
which the deviation rule lowers quickly once they strike.

JSON format (``to_json`` / ``from_json``), version 1
----------------------------------------------------
::

    {"format": "qora-reputation",
     "version": 1,
     "ban_threshold": 0.2,
     "params": {"initial_score": 0.5, "reward_step": 0.02, "penalty_step": 0.08,
                "max_influence": 0.8, "reward_z": 2.0, "penalty_z": 4.0,
                "newcomer_rounds": 5, "newcomer_budget": 0.2, "min_relative_scale": 0.25},
     "clients": [{"id": "hospital_A", "score": 0.52, "rounds": 0},
                 {"id": 7, "score": 0.18, "rounds": 12}]}

``clients`` is in first-seen order; ``id`` keeps its type (a JSON string is a ``str`` id, a
JSON integer an ``int`` id, so ``7`` and ``"7"`` are different clients); ``score`` is a float
in [0, 1] written with ``repr`` precision, so a round trip is exact; ``rounds`` is
``rounds_seen``. ``params`` holds every keyword-only constructor parameter (``ban_threshold``
is the top-level field); a missing key takes the constructor default, an unknown key is an
error. ``from_json(s, ban_threshold=x)`` overrides the stored threshold. ``from_json`` also
reads the flat ``{"id": score, ...}`` object that Qora-FL's ``to_json`` writes (see below).

Decisions
---------
* Scores are float64 (Qora-FL stores float32: it reports 0.5199999809 where this reports
  0.52).
* Client ids are ``str`` or ``int`` (Qora-FL takes ``str`` only); numpy integers are accepted
  and stored as ``int``, ``numpy.str_`` as ``str``; ``bool``, ``float``, ``None`` and tuples
  are refused (``True == 1`` and ``1.0 == 1`` would silently alias clients).
* ``reward`` / ``penalize`` take an optional amount (default ``reward_step`` /
  ``penalty_step``); a negative amount is an error, not the opposite action. ``decay``'s rate
  defaults to 0.02 as in Qora-FL. ``reset()`` forgets everything, ``reset(id)`` one client.
* ``active_clients()`` returns the ids (Qora-FL returns ``(id, score)`` pairs); scores are in
  ``all_scores()``.
* ``get_score``, ``is_banned``, ``influence_weight(s)`` and ``rounds_seen`` never create an
  entry; ``reward``, ``penalize``, ``set_score`` and ``update_from_deviations`` do. An unknown
  id is banned exactly when ``initial_score < ban_threshold``.
* ``influence_weight(id)`` is the bare Qora-FL formula (banned or not); the per-round
  ``influence_weights(ids)`` gives banned ids 0 and applies the newcomer budget.
* ``update_from_deviations`` and ``influence_weights`` validate everything (ids unique, one
  finite non-negative deviation per id) before changing anything.
* A Qora-FL state (flat ``{id: score}``) loads with ``ban_threshold`` 0.2 unless overridden,
  default parameters, and every client counted as established
  (``rounds = newcomer_rounds``): the old server already knew them, and counting them as
  newcomers would switch the newcomer budget off for the first rounds after migrating.
* Inside JSON every problem (wrong field type included) is :class:`InvalidInput`, naming the
  field; ``InvalidType`` is kept for a ``from_json`` argument that is not text.
* ``min_relative_scale`` (the 0.05 of the rule) is a keyword parameter, saved in ``params``,
  because it sets how far an honest straggler may sit from the median (see above).
* Not thread-safe: one aggregator (one thread) owns a manager.
"""

from __future__ import annotations

import json
import math
import numbers
import operator
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from qora.errors import InvalidInput, InvalidType

__all__ = ["FORMAT", "VERSION", "ReputationChange", "ReputationManager", "robust_z"]

FORMAT = "qora-reputation"
VERSION = 1

MAD_TO_SIGMA = 1.4826       # MAD of a normal distribution times this is its standard deviation
MIN_RELATIVE_SCALE = 0.25   # scale >= 25 % of the median deviation
MIN_ABSOLUTE_SCALE = 1e-12  # scale > 0 when most deviations are exactly 0
MIN_CLIENTS_FOR_Z = 3       # below this everyone is neutral

LEGACY_BAN_THRESHOLD = 0.2  # Qora-FL's from_json default

ACTIONS = ("reward", "neutral", "penalize")

_PARAM_NAMES = ("initial_score", "reward_step", "penalty_step", "max_influence",
                "reward_z", "penalty_z", "newcomer_rounds", "newcomer_budget", "min_relative_scale")


@dataclass(frozen=True)
class ReputationChange:
    """What one round did to one client's score.

    action: "reward", "neutral" or "penalize"; z: the client's robust z-score that round
    (0.0 when the round had fewer than 3 clients); before / after: its score.
    """

    client_id: str | int
    action: str
    z: float
    before: float
    after: float


# ---- validation helpers ------------------------------------------------------------------


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _client_id(client_id: Any, what: str = "client id") -> str | int:
    if isinstance(client_id, str):
        return str(client_id)
    if isinstance(client_id, bool) or isinstance(client_id, np.bool_):
        raise InvalidType(f"{what} must be str or int, got {_describe(client_id)}")
    if isinstance(client_id, numbers.Integral):
        return operator.index(client_id)
    raise InvalidType(f"{what} must be str or int, got {_describe(client_id)}")


def _real(value: Any, name: str) -> float:
    """A finite real number as float (bool and non-numbers are InvalidType)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{name} must be a finite real number, got {_describe(value)}")
    try:
        x = float(value)
    except OverflowError:
        raise InvalidInput(f"{name} must be a finite real number, got {value!r}") from None
    if not math.isfinite(x):
        raise InvalidInput(f"{name} must be a finite real number, got {x}")
    return x


def _unit(value: Any, name: str) -> float:
    x = _real(value, name)
    if not 0.0 <= x <= 1.0:
        raise InvalidInput(f"{name} must be in [0, 1], got {x}")
    return x


def _non_negative(value: Any, name: str, hint: str = "") -> float:
    x = _real(value, name)
    if x < 0.0:
        raise InvalidInput(f"{name} must be >= 0, got {x}{hint}")
    return x


def _count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name} must be an int >= 0, got {_describe(value)}")
    v = operator.index(value)
    if v < 0:
        raise InvalidInput(f"{name} must be an int >= 0, got {v}")
    return v


def _id_list(client_ids: Any) -> list[str | int]:
    if isinstance(client_ids, (str, bytes)) or not isinstance(client_ids, Iterable):
        raise InvalidType(f"client_ids must be a sequence of str or int ids, got {_describe(client_ids)}")
    try:
        raw = list(client_ids)
    except TypeError:
        raise InvalidType(f"client_ids must be a sequence of str or int ids, got {_describe(client_ids)}") from None
    ids = [_client_id(c, f"client_ids[{i}]") for i, c in enumerate(raw)]
    seen: dict[str | int, int] = {}
    for i, c in enumerate(ids):
        if c in seen:
            raise InvalidInput(f"client ids must be unique: {c!r} appears at positions {seen[c]} and {i}")
        seen[c] = i
    return ids


def _median(sorted_x: np.ndarray) -> float:
    n = sorted_x.size
    a = float(sorted_x[(n - 1) // 2])
    b = float(sorted_x[n // 2])
    return a + (b - a) / 2.0  # no overflow, exact when a == b


def robust_z(deviations: Any, min_relative_scale: float = MIN_RELATIVE_SCALE) -> np.ndarray:
    """The z-scores of the deviation rule (see the module docstring); zeros below 3 clients."""
    d = np.asarray(deviations, dtype=np.float64)
    if d.size < MIN_CLIENTS_FOR_Z:
        return np.zeros(d.size, dtype=np.float64)
    med = _median(np.sort(d))
    mad = _median(np.sort(np.abs(d - med)))
    scale = max(MAD_TO_SIGMA * mad, min_relative_scale * med, MIN_ABSOLUTE_SCALE)
    fmax = np.finfo(np.float64).max
    with np.errstate(over="ignore"):
        z = (d - med) / scale
    return np.clip(z, -fmax, fmax)  # finite even for 1e300 against a 1e-12 scale


# ---- the manager ---------------------------------------------------------------------------


class ReputationManager:
    """Per-client trust scores in [0, 1] that gate and weight aggregation.

    Qora-FL compatible (``ReputationManager(ban_threshold=0.2)``, ``reward``, ``penalize``,
    ``is_banned``, ``active_clients``, ``to_json`` / ``from_json(s, ban_threshold=…)`` …),
    plus the deviation rule (:meth:`update_from_deviations`) and influence weights with a
    newcomer budget (:meth:`influence_weights`). See the module docstring for the rule, the
    collusion bound and the JSON format.

    Parameters: ban_threshold: banned means score strictly below it, in [0, 1].
    initial_score: where unknown clients start and where ``decay`` pulls, in [0, 1].
    reward_step / penalty_step: default amounts (>= 0). max_influence: per-id weight cap,
    in (0, 1]. reward_z <= penalty_z: the z-score cut-offs. newcomer_rounds: rounds an id
    must be seen before it is established (int >= 0). newcomer_budget: the most weight the
    newcomers of a round hold together, in [0, 1]. min_relative_scale: the floor of the
    z-score scale as a fraction of the median deviation (>= 0).

    >>> rep = ReputationManager(ban_threshold=0.2)
    >>> rep.reward("hospital_A", 0.02)
    0.52
    """

    def __init__(self, ban_threshold: float = 0.2, *, initial_score: float = 0.5,
                 reward_step: float = 0.02, penalty_step: float = 0.08, max_influence: float = 0.8,
                 reward_z: float = 2.0, penalty_z: float = 6.0,
                 newcomer_rounds: int = 5, newcomer_budget: float = 0.2,
                 min_relative_scale: float = MIN_RELATIVE_SCALE) -> None:
        self._ban_threshold = _unit(ban_threshold, "ban_threshold")
        self._initial = _unit(initial_score, "initial_score")
        self._reward_step = _non_negative(reward_step, "reward_step")
        self._penalty_step = _non_negative(penalty_step, "penalty_step")
        self._max_influence = _unit(max_influence, "max_influence")
        if self._max_influence == 0.0:
            raise InvalidInput("max_influence must be in (0, 1], got 0.0 (every weight would be 0)")
        self._reward_z = _real(reward_z, "reward_z")
        self._penalty_z = _real(penalty_z, "penalty_z")
        if self._reward_z > self._penalty_z:
            raise InvalidInput(f"reward_z must be <= penalty_z, got reward_z={self._reward_z}, "
                               f"penalty_z={self._penalty_z}")
        self._newcomer_rounds = _count(newcomer_rounds, "newcomer_rounds")
        self._newcomer_budget = _unit(newcomer_budget, "newcomer_budget")
        self._min_relative_scale = _non_negative(min_relative_scale, "min_relative_scale")
        # id -> [score, rounds_seen]; dict order is first-seen order
        self._clients: dict[str | int, list] = {}

    # ---- configuration ------------------------------------------------------------------
    @property
    def ban_threshold(self) -> float:
        return self._ban_threshold

    @property
    def params(self) -> dict[str, float | int]:
        """The keyword-only constructor parameters (as written to JSON)."""
        return {"initial_score": self._initial, "reward_step": self._reward_step,
                "penalty_step": self._penalty_step, "max_influence": self._max_influence,
                "reward_z": self._reward_z, "penalty_z": self._penalty_z,
                "newcomer_rounds": self._newcomer_rounds, "newcomer_budget": self._newcomer_budget,
                "min_relative_scale": self._min_relative_scale}

    def __repr__(self) -> str:
        return f"ReputationManager(ban_threshold={self._ban_threshold}, clients={len(self._clients)})"

    def __len__(self) -> int:
        return len(self._clients)

    def __contains__(self, client_id: object) -> bool:
        try:
            return _client_id(client_id) in self._clients
        except InvalidType:
            return False

    # ---- Qora-FL methods ----------------------------------------------------------------
    def _entry(self, cid: str | int) -> list:
        e = self._clients.get(cid)
        if e is None:
            e = self._clients[cid] = [self._initial, 0]
        return e

    def get_score(self, client_id: str | int) -> float:
        """The client's score; ``initial_score`` for an unknown id (no entry is created)."""
        e = self._clients.get(_client_id(client_id))
        return self._initial if e is None else e[0]

    def set_score(self, client_id: str | int, score: float) -> None:
        """Set a score in [0, 1] (out of range is an error, not clamped)."""
        cid = _client_id(client_id)
        s = _unit(score, "score")
        self._entry(cid)[0] = s

    def reward(self, client_id: str | int, amount: float | None = None) -> float:
        """Add ``amount`` (default ``reward_step``), clamp to 1; return the new score."""
        cid = _client_id(client_id)
        a = self._reward_step if amount is None else _non_negative(
            amount, "reward amount", " (use penalize to lower a score)")
        e = self._entry(cid)
        e[0] = min(1.0, e[0] + a)
        return e[0]

    def penalize(self, client_id: str | int, amount: float | None = None) -> float:
        """Subtract ``amount`` (default ``penalty_step``), clamp to 0; return the new score."""
        cid = _client_id(client_id)
        a = self._penalty_step if amount is None else _non_negative(
            amount, "penalty amount", " (use reward to raise a score)")
        e = self._entry(cid)
        e[0] = max(0.0, e[0] - a)
        return e[0]

    def is_banned(self, client_id: str | int) -> bool:
        """Score strictly below ``ban_threshold``."""
        return self.get_score(client_id) < self._ban_threshold

    def active_clients(self) -> list[tuple[str | int, float]]:
        """(id, score) of every known client that is not banned, in first-seen order
        (pairs, as Qora-FL returns them; :meth:`active_ids` gives the ids alone)."""
        return [(c, e[0]) for c, e in self._clients.items() if not e[0] < self._ban_threshold]

    def active_ids(self) -> list[str | int]:
        """Known ids that are not banned, in first-seen order."""
        return [c for c, e in self._clients.items() if not e[0] < self._ban_threshold]

    def all_scores(self) -> dict[str | int, float]:
        """A copy of every known score, in first-seen order."""
        return {c: e[0] for c, e in self._clients.items()}

    def reset(self, client_id: str | int | None = None) -> None:
        """Forget one client (no-op if unknown), or everything when called without an id."""
        if client_id is None:
            self._clients.clear()
        else:
            self._clients.pop(_client_id(client_id), None)

    def decay(self, rate: float = 0.02) -> None:
        """Move every known score toward ``initial_score``: ``s += rate * (initial_score - s)``."""
        r = _unit(rate, "decay rate")
        for e in self._clients.values():
            e[0] = min(1.0, max(0.0, e[0] + r * (self._initial - e[0])))

    def influence_weight(self, client_id: str | int) -> float:
        """Qora-FL's ``min(s**3, max_influence)`` for one client (ban and budget not applied)."""
        return min(self.get_score(client_id) ** 3, self._max_influence)

    def rounds_seen(self, client_id: str | int) -> int:
        """Rounds in which :meth:`update_from_deviations` saw this id (0 if unknown)."""
        e = self._clients.get(_client_id(client_id))
        return 0 if e is None else e[1]

    # ---- reputation that steers aggregation ----------------------------------------------
    def update_from_deviations(self, client_ids: Iterable[str | int],
                               deviations: Any) -> dict[str | int, ReputationChange]:
        """Reward clients close to this round's robust aggregate, penalise outliers.

        ``deviations[i]`` is ``client_ids[i]``'s L2 distance from the aggregate (finite,
        >= 0). The rule (median / MAD z-score, reward at z <= reward_z, penalise at
        z > penalty_z, neutral between, everyone neutral below 3 clients) is in the module
        docstring. Increments ``rounds_seen`` of every id. Returns ``{id: ReputationChange}``
        in input order. Nothing changes if any input is invalid.
        """
        ids = _id_list(client_ids)
        try:
            d = np.asarray(deviations)
        except (TypeError, ValueError) as exc:
            raise InvalidType(f"deviations must be a 1-D array of real numbers, got {_describe(deviations)}") from exc
        if d.dtype.kind not in "iuf":
            raise InvalidType(f"deviations must be real numbers, got dtype {d.dtype}")
        if d.ndim != 1:
            raise InvalidInput(f"deviations must be 1-D, got shape {d.shape}")
        if d.size != len(ids):
            raise InvalidInput(f"deviations has {d.size} entries for {len(ids)} client ids")
        d = d.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(d) | (d < 0))
        if bad.size:
            i = int(bad[0])
            raise InvalidInput(f"deviations must be finite and >= 0, got {d[i]} for client {ids[i]!r} "
                               f"(position {i})")
        z = robust_z(d, self._min_relative_scale)
        few = len(ids) < MIN_CLIENTS_FOR_Z
        changes: dict[str | int, ReputationChange] = {}
        for cid, zi in zip(ids, z.tolist()):
            e = self._entry(cid)
            before = e[0]
            if few or self._reward_z < zi <= self._penalty_z:
                action = "neutral"
            elif zi <= self._reward_z:
                action = "reward"
                e[0] = min(1.0, before + self._reward_step)
            else:
                action = "penalize"
                e[0] = max(0.0, before - self._penalty_step)
            e[1] += 1
            changes[cid] = ReputationChange(cid, action, float(zi), before, e[0])
        return changes

    def influence_weights(self, client_ids: Iterable[str | int]) -> np.ndarray:
        """This round's aggregation weights, float64, one per id (unknown ids: newcomers).

        ``w_i = min(s_i**3, max_influence)``, 0 for banned ids; then the newcomer budget:
        if the ids with ``rounds_seen < newcomer_rounds`` hold more than ``newcomer_budget``
        of the total, their weights are scaled by one common factor so that they hold
        exactly that share (never more). No scaling when every weighted id is a newcomer.

        Guarantee: any set of identities younger than ``newcomer_rounds`` holds at most
        ``newcomer_budget`` of the round's weight, so a weighted trimmed mean that trims
        ``beta >= newcomer_budget`` of the weight on each side keeps a fresh Sybil swarm
        from moving any coordinate outside the range of the established clients' values.
        """
        ids = _id_list(client_ids)
        n = len(ids)
        w = np.zeros(n, dtype=np.float64)
        new = np.zeros(n, dtype=bool)
        for i, cid in enumerate(ids):
            e = self._clients.get(cid)
            s, rounds = (self._initial, 0) if e is None else (e[0], e[1])
            if not s < self._ban_threshold:
                w[i] = min(s ** 3, self._max_influence)
            new[i] = rounds < self._newcomer_rounds
        b = self._newcomer_budget
        w_new = float(w[new].sum())
        w_old = float(w[~new].sum())
        if w_new > 0.0 and w_old > 0.0 and w_new > b * (w_new + w_old):
            # f * w_new / (f * w_new + w_old) = b  <=>  f = b * w_old / ((1 - b) * w_new); b < 1 here
            f = b * w_old / ((1.0 - b) * w_new)
            raw = w[new]
            for _ in range(64):  # rounding: step f down until the share is not above b
                w[new] = raw * f
                if float(w[new].sum()) <= b * float(w.sum()):
                    break
                f *= 1.0 - 2.0 ** -40
            else:  # only with a subnormal budget: zero is within any budget
                w[new] = 0.0
        return w

    # ---- persistence ------------------------------------------------------------------------
    def to_json(self) -> str:
        """The state as versioned JSON (format in the module docstring)."""
        state = {
            "format": FORMAT,
            "version": VERSION,
            "ban_threshold": self._ban_threshold,
            "params": self.params,
            "clients": [{"id": c, "score": e[0], "rounds": e[1]} for c, e in self._clients.items()],
        }
        return json.dumps(state, allow_nan=False)

    @classmethod
    def from_json(cls, s: str | bytes | bytearray, ban_threshold: float | None = None) -> ReputationManager:
        """Restore a state written by :meth:`to_json` (or Qora-FL's flat ``{id: score}``).

        ``ban_threshold`` overrides the stored threshold when given. Every field is checked;
        an error names the field.
        """
        if not isinstance(s, (str, bytes, bytearray)):
            raise InvalidType(f"from_json needs a JSON string, got {_describe(s)}")
        override = None if ban_threshold is None else _unit(ban_threshold, "ban_threshold")
        try:
            state = json.loads(s)
        except ValueError as exc:
            raise InvalidInput(f"reputation state is not valid JSON: {exc}") from None
        if not isinstance(state, dict):
            raise InvalidInput(f"reputation state must be a JSON object, got {type(state).__name__}")
        if "format" not in state:
            return cls._from_legacy(state, override)
        return cls._from_v1(state, override)

    @classmethod
    def _from_v1(cls, state: dict, override: float | None) -> ReputationManager:
        if state["format"] != FORMAT:
            raise InvalidInput(f"field 'format' must be {FORMAT!r}, got {state['format']!r}")
        version = state.get("version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput(f"field 'version' must be an integer, got {version!r}")
        if version != VERSION:
            raise InvalidInput(f"field 'version' is {version}; this qora reads version {VERSION}")
        unknown = set(state) - {"format", "version", "ban_threshold", "params", "clients"}
        if unknown:
            raise InvalidInput(f"unknown field(s) in reputation state: {sorted(unknown)}")
        params = state.get("params", {})
        if not isinstance(params, dict):
            raise InvalidInput(f"field 'params' must be an object, got {type(params).__name__}")
        unknown = set(params) - set(_PARAM_NAMES)
        if unknown:
            raise InvalidInput(f"unknown key(s) in field 'params': {sorted(unknown)}")
        if "ban_threshold" not in state:
            raise InvalidInput("field 'ban_threshold' is missing")
        stored = _field(_unit, state["ban_threshold"], "field 'ban_threshold'")
        threshold = stored if override is None else override
        try:
            rep = cls(threshold, **params)
        except (InvalidInput, InvalidType) as exc:
            raise InvalidInput(f"field 'params': {exc}") from None
        clients = state.get("clients")
        if not isinstance(clients, list):
            raise InvalidInput(f"field 'clients' must be a list, got {type(clients).__name__}")
        for i, item in enumerate(clients):
            where = f"clients[{i}]"
            if not isinstance(item, dict) or set(item) != {"id", "score", "rounds"}:
                raise InvalidInput(f"{where} must be an object with exactly 'id', 'score', 'rounds', "
                                   f"got {item!r}")
            cid = _field(_client_id, item["id"], f"{where}.id")
            if cid in rep._clients:
                raise InvalidInput(f"{where}.id {cid!r} appears twice")
            score = _field(_unit, item["score"], f"{where}.score (client {cid!r})")
            rounds = _field(_count, item["rounds"], f"{where}.rounds (client {cid!r})")
            rep._clients[cid] = [score, rounds]
        return rep

    @classmethod
    def _from_legacy(cls, state: dict, override: float | None) -> ReputationManager:
        rep = cls(LEGACY_BAN_THRESHOLD if override is None else override)
        for key, value in state.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise InvalidInput(f"reputation state has no 'format' field and is not a Qora-FL "
                                   f"{{id: score}} object: {key!r} maps to {value!r}")
            rep._clients[key] = [_field(_unit, value, f"score of client {key!r}"), rep._newcomer_rounds]
        return rep


def _field(check, value: Any, name: str):
    """Run a validator on a JSON field; any problem becomes InvalidInput naming the field."""
    try:
        return check(value, name)
    except InvalidType as exc:
        raise InvalidInput(str(exc)) from None
