"""Pure-Python, integers-only reference for the Qora Edge numeric contract.

q16        Q16.16 conversion, saturating arithmetic, integer square roots
aggregate  Q16.16 fedavg, trimmed mean, median, krum, multi-krum, deviations,
           and the xorshift32 test-data generator shared with the C vectors

Both modules are valid MicroPython. golden.py (not imported here) is the
host-side generator of shared_c/tests/vectors/golden_vectors.h.
"""

from . import q16
from . import aggregate

__all__ = ["q16", "aggregate"]
