"""Qora Edge: Byzantine-robust federated learning for IoT fleets.

The aggregation core is one C99 library (``shared_c/``), bit-identical on every
target in Q16.16 mode; ``qora.native`` is its thin, checked binding, and
``ByzantineAggregator`` / ``ReputationManager`` the public aggregation layer
(a drop-in for the Qora-FL Python API).
"""

from __future__ import annotations

from qora.aggregator import ByzantineAggregator
from qora.errors import InvalidInput, InvalidType, NativeError, QoraError
from qora.methods import AggregationMethod
from qora.report import RoundReport
from qora.reputation import ReputationManager

__version__ = "0.1.0"

__all__ = [
    "AggregationMethod",
    "ByzantineAggregator",
    "InvalidInput",
    "InvalidType",
    "NativeError",
    "QoraError",
    "ReputationManager",
    "RoundReport",
    "__version__",
]
