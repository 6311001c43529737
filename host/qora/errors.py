"""Exceptions raised by qora.

Every error is also a builtin, so callers may catch either::

    QoraError
     +-- InvalidInput (ValueError)    shape, bound, non-finite value, weight ...
     +-- InvalidType (TypeError)      dtype or container type
     +-- NativeError (RuntimeError)   the C core reported a status the wrapper did not expect
"""

from __future__ import annotations


class QoraError(Exception):
    """Base class of every qora error."""


class InvalidInput(QoraError, ValueError):
    """An argument has the right type but a wrong value (shape, bound, NaN ...)."""


class InvalidType(QoraError, TypeError):
    """An argument has the wrong type or dtype."""


class NativeError(QoraError, RuntimeError):
    """The C core returned an error the Python checks should have caught first."""
