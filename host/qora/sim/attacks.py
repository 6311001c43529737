"""Byzantine attacks for the simulated fleet.

Colluding attackers are omniscient (the standard model): they see this round's honest
updates (``AttackContext.honest``). ``own`` holds what each attacker would have sent
honestly, from its own data. Data-level attacks (``data_level = True``) poison labels
before local training and then send that update.

Sources: Gaussian (Blanchard et al., NeurIPS 2017); sign flip, ALIE with tau = 1.5
(ByzFL); ALIE with z_max (Baruch et al., NeurIPS 2019); IPM (Xie et al., UAI 2019);
mimic (Karimireddy et al., ICLR 2022); label flip (Biggio et al., 2012; Tolpegin et al.,
2020); scaling / model boosting (Bhagoji et al., ICML 2019); reputation attacks
(build-then-strike, on-off, slow drift, Sybil swarm) from the trust-management literature
(Hoffman et al., ACM CSUR 2009; Douceur, IPTPS 2002).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from qora.errors import InvalidInput


@dataclass(frozen=True)
class AttackContext:
    honest: np.ndarray
    own: np.ndarray
    round_index: int
    rng: np.random.Generator
    n_total: int
    global_params: np.ndarray | None = None


class Attack:
    """Base: sends its own honest update (the "none" attack)."""

    name = "none"
    data_level = False

    def updates(self, ctx: AttackContext) -> np.ndarray:
        return np.asarray(ctx.own, dtype=np.float32).copy()

    def poison_labels(self, y: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
        return y

    @staticmethod
    def _rows(ctx: AttackContext, v: np.ndarray) -> np.ndarray:
        return np.repeat(np.asarray(v, dtype=np.float32)[None, :], ctx.own.shape[0], axis=0)


class Noise(Attack):
    """own + N(0, sigma^2) per coordinate."""

    name = "noise"

    def __init__(self, sigma: float = 1.0):
        self.sigma = sigma

    def updates(self, ctx):
        return (ctx.own + ctx.rng.normal(0, self.sigma, ctx.own.shape)).astype(np.float32)


class Gaussian(Attack):
    """Pure N(0, sigma^2) vectors (Blanchard et al. 2017)."""

    name = "gaussian"

    def __init__(self, sigma: float = 200.0):
        self.sigma = sigma

    def updates(self, ctx):
        return ctx.rng.normal(0, self.sigma, ctx.own.shape).astype(np.float32)


class RandomWeights(Attack):
    """A random direction with `scale` x the norm of the mean honest update (default 10)."""

    name = "random_weights"

    def __init__(self, scale: float | None = None):
        self.scale = 10.0 if scale is None else scale

    def updates(self, ctx):
        v = ctx.rng.normal(size=ctx.own.shape)
        target = self.scale * np.linalg.norm(ctx.honest.mean(axis=0))
        return (v / np.linalg.norm(v, axis=1, keepdims=True) * target).astype(np.float32)


class SignFlip(Attack):
    """-scale * mean(honest) for every attacker. scale=1 is ByzFL's SignFlipping; the default
    (None) picks scale = 1.25 * h / b, the smallest round value that turns the plain mean
    of h honest and b flipped updates backwards (-0.25 * mean), so the attack matters."""

    name = "sign_flip"

    def __init__(self, scale: float | None = None):
        self.scale = scale

    def updates(self, ctx):
        h, b = ctx.honest.shape[0], ctx.own.shape[0]
        scale = 1.25 * h / max(b, 1) if self.scale is None else self.scale
        return self._rows(ctx, -scale * ctx.honest.mean(axis=0))


class Opposite(Attack):
    """-scale * own."""

    name = "opposite"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def updates(self, ctx):
        return (-self.scale * ctx.own).astype(np.float32)


class Scaling(Attack):
    """factor * own (model boosting)."""

    name = "scaling"

    def __init__(self, factor: float = 10.0):
        self.factor = factor

    def updates(self, ctx):
        return (self.factor * ctx.own).astype(np.float32)


class LabelFlip(Attack):
    """Data level: y -> n_classes - 1 - y, then honest training on the flipped labels."""

    name = "label_flip"
    data_level = True

    def poison_labels(self, y, n_classes, rng):
        return (n_classes - 1 - np.asarray(y)).astype(np.int64)


def alie_z_max(n: int, f: int) -> float:
    """Baruch et al.'s z_max: s = floor(n/2 + 1) - f; z = Phi^-1((n - s) / n)."""
    from statistics import NormalDist

    s = math.floor(n / 2 + 1) - f
    p = (n - s) / n
    p = min(max(p, 1e-6), 1 - 1e-6)
    return NormalDist().inv_cdf(p)


class ALIE(Attack):
    """A Little Is Enough: mean(honest) + tau * std(honest), coordinate-wise."""

    name = "alie"

    def __init__(self, tau: float | None = None):
        self.tau = tau

    def updates(self, ctx):
        f = ctx.own.shape[0]
        tau = alie_z_max(ctx.n_total, f) if self.tau is None else self.tau
        return self._rows(ctx, ctx.honest.mean(axis=0) + tau * ctx.honest.std(axis=0))


class IPM(Attack):
    """Inner-product manipulation: -epsilon * mean(honest)."""

    name = "ipm"

    def __init__(self, epsilon: float = 0.1):
        self.epsilon = epsilon

    def updates(self, ctx):
        return self._rows(ctx, -self.epsilon * ctx.honest.mean(axis=0))


class Mimic(Attack):
    """Every attacker copies honest client `target`, over-weighting its data."""

    name = "mimic"

    def __init__(self, target: int = 0):
        self.target = target

    def updates(self, ctx):
        return self._rows(ctx, ctx.honest[self.target % len(ctx.honest)])


class BuildThenStrike(Attack):
    """Honest for `build_rounds` rounds (earning reputation), then `strike`."""

    name = "build_then_strike"

    def __init__(self, build_rounds: int = 10, strike: Attack | None = None):
        self.build_rounds, self.strike = build_rounds, strike or SignFlip()

    def updates(self, ctx):
        return Attack.updates(self, ctx) if ctx.round_index < self.build_rounds else self.strike.updates(ctx)


class OnOff(Attack):
    """Attack in the first half of every `period` rounds, honest in the second."""

    name = "on_off"

    def __init__(self, period: int = 4, attack: Attack | None = None):
        self.period, self.attack = period, attack or Scaling(10.0)

    def updates(self, ctx):
        on = (ctx.round_index % self.period) < self.period / 2
        return self.attack.updates(ctx) if on else Attack.updates(self, ctx)


class SlowDrift(Attack):
    """mean(honest) + step * (median honest distance to the mean) * u, u a unit direction
    fixed for the run: inside the honest spread, so distance-based reputation never fires,
    yet it biases every round the same way."""

    name = "slow_drift"

    def __init__(self, step: float = 0.5, seed: int = 17):
        self.step, self.seed, self._u = step, seed, None

    def updates(self, ctx):
        mu = ctx.honest.mean(axis=0)
        if self._u is None or self._u.shape != mu.shape:
            u = np.random.default_rng(self.seed).normal(size=mu.shape)
            self._u = u / np.linalg.norm(u)
        spread = float(np.median(np.linalg.norm(ctx.honest - mu, axis=1)))
        return self._rows(ctx, mu + self.step * spread * self._u)


class Sybil(Attack):
    """A swarm sending one update, mean - direction_scale * mean (the eval gives the swarm
    fresh identities every round)."""

    name = "sybil"

    def __init__(self, direction_scale: float = 5.0):
        self.direction_scale = direction_scale

    def updates(self, ctx):
        mu = ctx.honest.mean(axis=0)
        return self._rows(ctx, mu - self.direction_scale * mu)


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
    try:
        return ATTACKS[name]()
    except KeyError:
        raise InvalidInput(f"unknown attack {name!r}; expected one of {', '.join(ATTACKS)}") from None
