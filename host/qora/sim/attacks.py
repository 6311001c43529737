"""Byzantine attacks for the simulated fleet, each with its source.

Threat model: the ``b`` Byzantine clients of a round collude and are omniscient (the
standard model of the robust-aggregation literature): they see this round's honest
updates (:attr:`AttackContext.honest`, ``(h, d)``) as well as the updates they would
have sent honestly from their own data (:attr:`AttackContext.own`, ``(b, d)``), and
return ``(b, d)`` float32 updates to send instead. Data-level attacks
(``data_level = True``) act earlier: the loop trains the attackers on
:meth:`Attack.poison_labels` and they send that update (``updates`` returns ``own``).

========================  ==================================================================
registry name             update sent by every attacker
========================  ==================================================================
``none``                  ``own`` (clean runs)
``noise``                 ``own + N(0, 1)``                                 :class:`Noise`
``gaussian``              ``N(0, 200^2)``  (Blanchard et al. 2017)          :class:`Gaussian`
``random_weights``        random direction, 10 x ``|mean(honest)|``         :class:`RandomWeights`
``sign_flip``             ``-(1.25 h / b) mean(honest)``                    :class:`SignFlip`
``sign_flip_1``           ``-mean(honest)``  (ByzFL SignFlipping)           :class:`SignFlip`
``opposite``              ``-own``                                          :class:`Opposite`
``scaling``               ``10 own``  (model boosting)                      :class:`Scaling`
``label_flip``            trained on ``y -> C - 1 - y``                     :class:`LabelFlip`
``alie``                  ``mean + z_max(n, b) std``  (Baruch et al. 2019)  :class:`ALIE`
``alie_1.5``              ``mean + 1.5 std``  (ByzFL's tau)                 :class:`ALIE`
``ipm_0.1`` / ``ipm_2``   ``-eps mean(honest)``  (Xie et al. 2019)          :class:`IPM`
``mimic``                 honest client 0's update  (Karimireddy 2022)      :class:`Mimic`
``build_then_strike``     ``own`` for 10 rounds, then sign flip             :class:`BuildThenStrike`
``on_off``                ``10 own`` in rounds 0, 1 of every 4, else own    :class:`OnOff`
``slow_drift``            ``mean + 0.5 median_dist u``, ``u`` fixed         :class:`SlowDrift`
``sybil``                 one shared ``-4 mean(honest)``, fresh identities  :class:`Sybil`
========================  ==================================================================

(``mean`` / ``std`` are coordinate-wise over the honest updates of the round; ``std`` is
the population standard deviation, ``ddof = 0``, as in ByzFL.) Statistics are computed
in float64 and the result is cast to float32.

Attack objects may keep state across rounds (:class:`SlowDrift`'s direction): use one
instance per run, e.g. a fresh :func:`get_attack` per simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from qora.errors import InvalidInput, InvalidType

__all__ = [
    "ALIE", "ATTACKS", "Attack", "AttackContext", "BuildThenStrike", "Gaussian", "IPM",
    "LabelFlip", "Mimic", "Noise", "OnOff", "Opposite", "RandomWeights", "Scaling", "SignFlip",
    "SlowDrift", "Sybil", "alie_z_max", "get_attack",
]


# ---- context ---------------------------------------------------------------------------------


def _matrix(name: str, x: object) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise InvalidType(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidInput(f"{name} must be a 2-D array (clients, d), got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float32)


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidType(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InvalidInput(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_number(name: str, value: object, *, positive: bool = False,
                  non_negative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidType(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be finite, got {value}")
    if positive and v <= 0:
        raise InvalidInput(f"{name} must be > 0, got {value}")
    if non_negative and v < 0:
        raise InvalidInput(f"{name} must be >= 0, got {value}")
    return v


@dataclass(frozen=True)
class AttackContext:
    """What the colluding attackers know in one round.

    ``honest``: ``(h, d)`` this round's honest updates (coerced to float32).
    ``own``: ``(b, d)`` the updates the ``b`` Byzantine clients would send honestly.
    ``round_index``: 0-based round number. ``rng``: the run's seeded generator (attacks
    draw their randomness from it only). ``n_total``: clients this round (``h + b``).
    ``global_params``: the current global model, when the loop provides it.
    """

    honest: np.ndarray
    own: np.ndarray
    round_index: int
    rng: np.random.Generator
    n_total: int
    global_params: np.ndarray | None = None

    def __post_init__(self) -> None:
        honest = _matrix("honest", self.honest)
        own = _matrix("own", self.own)
        if honest.shape[1] != own.shape[1]:
            raise InvalidInput(f"honest and own updates must have the same width d: "
                               f"honest {honest.shape}, own {own.shape}")
        _check_int("round_index", self.round_index, 0)
        if not isinstance(self.rng, np.random.Generator):
            raise InvalidType(f"rng must be a numpy.random.Generator, got {type(self.rng).__name__}")
        n_total = _check_int("n_total", self.n_total, 1)
        if n_total < honest.shape[0] + own.shape[0]:
            raise InvalidInput(f"n_total ({n_total}) must count every client of the round: "
                               f"{honest.shape[0]} honest + {own.shape[0]} Byzantine")
        object.__setattr__(self, "honest", honest)
        object.__setattr__(self, "own", own)

    @property
    def n_byzantine(self) -> int:
        """``b``: the number of attackers (rows of ``own``)."""
        return int(self.own.shape[0])

    @property
    def n_honest(self) -> int:
        return int(self.honest.shape[0])

    def honest_mean(self) -> np.ndarray:
        """Coordinate-wise mean of the honest updates, float64 ``(d,)``."""
        if self.n_honest == 0:
            raise InvalidInput("this attack needs at least one honest update to observe, got 0")
        return self.honest.astype(np.float64).mean(axis=0)

    def honest_std(self) -> np.ndarray:
        """Coordinate-wise population standard deviation (``ddof=0``), float64 ``(d,)``."""
        if self.n_honest == 0:
            raise InvalidInput("this attack needs at least one honest update to observe, got 0")
        return self.honest.astype(np.float64).std(axis=0)


def _same_for_all(ctx: AttackContext, v: np.ndarray) -> np.ndarray:
    """Every attacker sends ``v``: ``(b, d)`` float32."""
    row = np.asarray(v, dtype=np.float32)
    return np.repeat(row[None, :], ctx.n_byzantine, axis=0)


# ---- attacks ---------------------------------------------------------------------------------


class Attack:
    """Base class, and the ``"none"`` attack: every attacker sends its honest update.

    Subclasses override :meth:`updates` (model-level attacks) or set
    ``data_level = True`` and override :meth:`poison_labels` (data-level attacks).
    """

    name: str = "none"
    data_level: bool = False

    def updates(self, ctx: AttackContext) -> np.ndarray:
        """The ``(b, d)`` float32 updates the attackers send this round."""
        return ctx.own.copy()

    def poison_labels(self, y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
        """Labels the attackers train on (data-level attacks); here: ``y`` unchanged."""
        return np.asarray(y, dtype=np.int64).copy()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if not k.startswith("_") and k != "name")
        return f"{type(self).__name__}({args})"


class Noise(Attack):
    """Noisy update: ``own + N(0, sigma^2)`` per coordinate.

    A faulty or careless node rather than an optimised adversary: the "noise" baseline
    of Byzantine-robustness benchmarks (Blades has a Gaussian-noise adversary of this kind).
    """

    name = "noise"

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = _check_number("sigma", sigma, non_negative=True)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        noise = ctx.rng.normal(0.0, self.sigma, ctx.own.shape)
        return (ctx.own.astype(np.float64) + noise).astype(np.float32)


class Gaussian(Attack):
    """Gaussian Byzantine workers: a fresh ``N(0, sigma^2 I)`` vector each, ignoring the data.

    Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine learning with adversaries:
    Byzantine tolerant gradient descent", NeurIPS 2017 (their experiments use sigma = 200).
    """

    name = "gaussian"

    def __init__(self, sigma: float = 200.0) -> None:
        self.sigma = _check_number("sigma", sigma, non_negative=True)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return ctx.rng.normal(0.0, self.sigma, ctx.own.shape).astype(np.float32)


class RandomWeights(Attack):
    """Random model: each attacker sends an independent uniformly random direction whose L2
    norm is ``scale * |mean(honest)|`` (``scale`` None -> 10).

    Unlike :class:`Gaussian` it tracks the size of honest updates as they shrink during
    training, so it stays 10x too large without being absurd; the "random weights"
    attacker of the MI-filter scenarios (docs/api.md).
    """

    name = "random_weights"

    def __init__(self, scale: float | None = None) -> None:
        self.scale = 10.0 if scale is None else _check_number("scale", scale, non_negative=True)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        target = self.scale * float(np.linalg.norm(ctx.honest_mean()))
        v = ctx.rng.normal(size=ctx.own.shape)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        norms[norms == 0.0] = 1.0
        return (v / norms * target).astype(np.float32)


class SignFlip(Attack):
    """Sign flipping: every attacker sends ``-scale * mean(honest)``.

    ``scale = 1`` is ByzFL's ``SignFlipping`` (Allouah et al., "Fixing by mixing",
    AISTATS 2023; also Li et al., RSA, AAAI 2019) and the ``"sign_flip_1"`` registry
    entry. With ``h`` honest and ``b`` attackers it only shrinks the plain mean to
    ``(h - b) / n * mean``, so FedAvg still learns at 30 % Byzantine. The default
    ``scale=None`` (registry ``"sign_flip"``) therefore picks ``scale = 1.25 * h / b``,
    the smallest round value that turns the plain mean backwards: FedAvg then moves by
    ``-0.25 * h / n * mean(honest)``, against the honest direction.
    """

    name = "sign_flip"

    def __init__(self, scale: float | None = None) -> None:
        self.scale = None if scale is None else _check_number("scale", scale, non_negative=True)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        h, b = ctx.n_honest, ctx.n_byzantine
        scale = 1.25 * h / max(b, 1) if self.scale is None else self.scale
        return _same_for_all(ctx, -scale * ctx.honest_mean())


class Opposite(Attack):
    """Opposite (reversed) update: ``-scale * own``, each attacker reverses its own honest
    update (the "reverse gradient" attack; sign flipping without collusion)."""

    name = "opposite"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = _check_number("scale", scale)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return (-self.scale * ctx.own.astype(np.float64)).astype(np.float32)


class Scaling(Attack):
    """Scaling / model boosting: ``factor * own``.

    Bhagoji, Chakraborty, Mittal and Calo, "Analyzing federated learning through an
    adversarial lens", ICML 2019 (explicit boosting); Bagdasaryan et al., "How to backdoor
    federated learning", AISTATS 2020 (model replacement).
    """

    name = "scaling"

    def __init__(self, factor: float = 10.0) -> None:
        self.factor = _check_number("factor", factor)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return (self.factor * ctx.own.astype(np.float64)).astype(np.float32)


class LabelFlip(Attack):
    """Label flipping (data level): train honestly on ``y -> n_classes - 1 - y``.

    Biggio, Nelson and Laskov, "Poisoning attacks against support vector machines", ICML
    2012; Tolpegin et al., "Data poisoning attacks against federated learning systems",
    ESORICS 2020. ``C - 1 - y`` (``9 - y`` on digits) is the usual map of Byzantine FL
    benchmarks. ``updates`` returns ``own``: the update trained on the flipped labels.
    """

    name = "label_flip"
    data_level = True

    def poison_labels(self, y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
        n_classes = _check_int("n_classes", n_classes, 2)
        labels = np.asarray(y)
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise InvalidType(f"y must hold integer class labels, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise InvalidInput(f"y labels must be in [0, {n_classes}), "
                               f"got range [{labels.min()}, {labels.max()}]")
        return (n_classes - 1 - labels).astype(np.int64)


_PPF: Callable[[float], float] | None = None


def _norm_ppf(p: float) -> float:
    """Standard normal quantile: scipy.stats.norm.ppf if scipy is installed, else the
    standard library's NormalDist().inv_cdf (both accurate to ~1e-15)."""
    global _PPF
    if _PPF is None:
        try:
            from scipy.stats import norm

            _PPF = lambda q: float(norm.ppf(q))  # noqa: E731
        except ImportError:  # pragma: no cover - scipy ships with scikit-learn
            from statistics import NormalDist

            _PPF = NormalDist().inv_cdf
    return _PPF(p)


def alie_z_max(n: int, f: int) -> float:
    """Baruch et al.'s ``z_max`` for ``n`` clients of which ``f`` are Byzantine.

    ``s = floor(n / 2 + 1) - f`` honest "supporters" are needed for a majority;
    ``z_max = Phi^-1((n - s) / n)``, the largest shift (in standard deviations) such that
    ``s`` honest updates are still farther from the mean than the attackers' on a
    coordinate. Examples: ``(n, f) = (5, 2)``: ``s = 1``, ``Phi^-1(0.8) = 0.8416``;
    ``(10, 3)``: ``s = 3``, ``Phi^-1(0.7) = 0.5244``; ``(50, 24)``: ``s = 2``,
    ``Phi^-1(0.96) = 1.7507``. Some code (Karimireddy et al.'s) uses
    ``(n - f - s) / (n - f)`` instead; this is the paper's formula, as in ByzFL.

    Raises InvalidInput when ``(n - s) / n`` is not in (0, 1): a Byzantine majority
    (``s <= 0``) or ``n <= 2`` with ``f = 0``.
    """
    n = _check_int("n", n, 1)
    f = _check_int("f", f, 0)
    if f > n:
        raise InvalidInput(f"f must be <= n, got n={n}, f={f}")
    s = math.floor(n / 2 + 1) - f
    p = (n - s) / n
    if not 0.0 < p < 1.0:
        raise InvalidInput(f"ALIE's z_max is undefined for n={n}, f={f}: s = floor(n/2 + 1) - f "
                           f"= {s} gives the quantile Phi^-1({p:g})")
    return _norm_ppf(p)


class ALIE(Attack):
    """A Little Is Enough: every attacker sends ``mean(honest) + tau * std(honest)``,
    coordinate-wise (population std).

    Baruch, Baruch and Goldberg, "A little is enough: circumventing defenses for
    distributed learning", NeurIPS 2019. ``tau=None`` uses their ``z_max`` for this
    round (:func:`alie_z_max` with ``n = n_total``, ``f = b``); ``tau=1.5`` is ByzFL's
    fixed value (registry ``"alie_1.5"``).
    """

    name = "alie"

    def __init__(self, tau: float | None = None) -> None:
        self.tau = None if tau is None else _check_number("tau", tau)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        tau = alie_z_max(ctx.n_total, ctx.n_byzantine) if self.tau is None else self.tau
        return _same_for_all(ctx, ctx.honest_mean() + tau * ctx.honest_std())


class IPM(Attack):
    """Inner-product manipulation: every attacker sends ``-epsilon * mean(honest)``.

    Xie, Koyejo and Gupta, "Fall of empires: breaking Byzantine-tolerant SGD by inner
    product manipulation", UAI 2019. ``epsilon = 0.1`` hides inside the honest spread
    (registry ``"ipm_0.1"``); ``epsilon = 2`` reverses the mean (``"ipm_2"``).
    """

    name = "ipm"

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = _check_number("epsilon", epsilon)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return _same_for_all(ctx, -self.epsilon * ctx.honest_mean())


class Mimic(Attack):
    """Mimic: every attacker copies honest client ``target``'s update, over-weighting that
    client's data (harmful under heterogeneity, invisible to outlier tests).

    Karimireddy, He and Jaggi, "Byzantine-robust learning on heterogeneous datasets via
    bucketing", ICLR 2022 (they pick the target by a variance heuristic; here it is fixed).
    """

    name = "mimic"

    def __init__(self, target: int = 0) -> None:
        self.target = _check_int("target", target, 0)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        if self.target >= ctx.n_honest:
            raise InvalidInput(f"mimic target {self.target} is not an honest client of this "
                               f"round ({ctx.n_honest} honest updates)")
        return _same_for_all(ctx, ctx.honest[self.target])


# ---- reputation attacks ----------------------------------------------------------------------
# Hoffman, Zage and Nita-Rotaru, "A survey of attack and defense techniques for reputation
# systems", ACM Computing Surveys 2009 (on-off, whitewashing, Sybil); Douceur, "The Sybil
# attack", IPTPS 2002; Fung, Yoon and Beschastnikh, "The limitations of federated learning in
# Sybil settings" (FoolsGold), RAID 2020.


class BuildThenStrike(Attack):
    """Build reputation, then strike: honest (``own``) while ``round_index < build_rounds``,
    then ``strike`` (default :class:`SignFlip`) in every later round."""

    name = "build_then_strike"

    def __init__(self, build_rounds: int = 10, strike: Attack | None = None) -> None:
        self.build_rounds = _check_int("build_rounds", build_rounds, 0)
        self.strike = SignFlip() if strike is None else strike
        if self.strike.data_level:
            raise InvalidInput("strike must be a model-level attack (data_level = False)")

    def updates(self, ctx: AttackContext) -> np.ndarray:
        if ctx.round_index < self.build_rounds:
            return ctx.own.copy()
        return self.strike.updates(ctx)


class OnOff(Attack):
    """On-off attack: ``attack`` (default ``Scaling(10)``) in the "on" half of every period
    (``round_index % period < period / 2``: rounds 0, 1 of 4 for ``period=4``), honest
    (``own``) in the other half, so reputation earned while off pays for the next strike."""

    name = "on_off"

    def __init__(self, period: int = 4, attack: Attack | None = None) -> None:
        self.period = _check_int("period", period, 2)
        self.attack = Scaling(10.0) if attack is None else attack
        if self.attack.data_level:
            raise InvalidInput("attack must be a model-level attack (data_level = False)")

    def is_on(self, round_index: int) -> bool:
        return (round_index % self.period) < self.period / 2

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return self.attack.updates(ctx) if self.is_on(ctx.round_index) else ctx.own.copy()


class SlowDrift(Attack):
    """Slow drift under the ban threshold: every attacker sends
    ``mean(honest) + step * r * u`` with ``r`` the median L2 distance of the honest updates
    to their mean and ``u`` a unit direction fixed for the whole run.

    For ``step <= 1`` the attackers sit closer to the honest mean than half the honest
    clients do, so a distance-based reputation never singles them out, yet every round
    pushes the model the same way. ``u`` is drawn at the first call, from ``seed`` when
    given, else from the run's generator (``ctx.rng``): seeded either way.
    """

    name = "slow_drift"

    def __init__(self, step: float = 0.5, seed: int | None = None) -> None:
        self.step = _check_number("step", step, non_negative=True)
        self.seed = None if seed is None else _check_int("seed", seed, 0)
        self._u: np.ndarray | None = None

    def direction(self, d: int, rng: np.random.Generator) -> np.ndarray:
        """The fixed unit direction (drawn on the first call for width ``d``)."""
        if self._u is None or self._u.shape != (d,):
            gen = rng if self.seed is None else np.random.default_rng(self.seed)
            u = gen.normal(size=d)
            self._u = u / np.linalg.norm(u)
        return self._u

    def updates(self, ctx: AttackContext) -> np.ndarray:
        mu = ctx.honest_mean()
        u = self.direction(mu.shape[0], ctx.rng)
        r = float(np.median(np.linalg.norm(ctx.honest.astype(np.float64) - mu, axis=1)))
        return _same_for_all(ctx, mu + self.step * r * u)


class Sybil(Attack):
    """Sybil swarm: all attackers send the one update
    ``mean(honest) - direction_scale * mean(honest)`` (``-4 * mean`` by default).

    The evaluation loop gives the swarm fresh identities every round (whitewashing), so
    per-identity reputation never accumulates against it and a per-client weight cap does
    not bound the swarm's total weight.
    """

    name = "sybil"

    def __init__(self, direction_scale: float = 5.0) -> None:
        self.direction_scale = _check_number("direction_scale", direction_scale)

    def updates(self, ctx: AttackContext) -> np.ndarray:
        mu = ctx.honest_mean()
        return _same_for_all(ctx, mu - self.direction_scale * mu)


# ---- registry --------------------------------------------------------------------------------

ATTACKS: dict[str, Callable[[], Attack]] = {
    "none": Attack,
    "noise": Noise,
    "gaussian": Gaussian,
    "random_weights": RandomWeights,
    "sign_flip": SignFlip,
    "sign_flip_1": lambda: SignFlip(1.0),
    "opposite": Opposite,
    "scaling": Scaling,
    "label_flip": LabelFlip,
    "alie": ALIE,
    "alie_1.5": lambda: ALIE(1.5),
    "ipm_0.1": lambda: IPM(0.1),
    "ipm_2": lambda: IPM(2.0),
    "mimic": Mimic,
    "build_then_strike": BuildThenStrike,
    "on_off": OnOff,
    "slow_drift": SlowDrift,
    "sybil": Sybil,
}


def get_attack(name: str) -> Attack:
    """A fresh instance of the registered attack ``name`` (its ``name`` set to it)."""
    factory = ATTACKS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise InvalidInput(f"unknown attack {name!r}; expected one of {', '.join(ATTACKS)}")
    attack = factory()
    attack.name = name
    return attack
