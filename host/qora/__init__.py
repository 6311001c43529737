"""Qora Edge: Byzantine-robust federated learning for IoT fleets.

The aggregation core is one C99 library (``shared_c/``), bit-identical on every
target in Q16.16 mode; ``qora.native`` is its thin, checked binding.
"""

from __future__ import annotations

from qora.errors import InvalidInput, InvalidType, NativeError, QoraError

__version__ = "0.1.0"

__all__ = [
    "InvalidInput",
    "InvalidType",
    "NativeError",
    "QoraError",
    "__version__",
]
