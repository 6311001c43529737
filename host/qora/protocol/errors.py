"""Reject reasons of the wire protocol and the one exception that carries them.

Every bad message ends in ``ProtocolError`` whose ``reason`` is one of ``REJECT_REASONS``,
listed in the order the checks run (docs/protocol.md, "Reject reasons")::

    QoraError
     +-- ProtocolError (ValueError)   .reason, .detail, .penalized
"""

from __future__ import annotations

from qora.errors import InvalidInput, QoraError

REJECT_REASONS: tuple[str, ...] = (
    # decode_update: the message is not an authentic update of this fleet (never penalized)
    "oversize", "malformed", "bad_version", "wrong_type", "wrong_fleet", "forged_sender",
    "unknown_node", "bad_tag",
    # check_update: an authentic update that does not fit the round
    "wrong_round", "bad_chunk", "bad_shape", "bad_encoding", "non_finite", "out_of_range",
    # the service: against the node's earlier chunks of this round
    "replay", "conflict", "inconsistent",
)

# Authenticated misbehaviour: the node signed it, so the node answers for it.
PENALIZED_REASONS: frozenset[str] = frozenset(
    {"bad_chunk", "bad_shape", "bad_encoding", "non_finite", "out_of_range", "conflict", "inconsistent"})


class ProtocolError(QoraError, ValueError):
    """A message was rejected; ``reason`` says why in one word, ``detail`` in a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REJECT_REASONS:
            raise InvalidInput(f"reason: expected one of {', '.join(REJECT_REASONS)}, got {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    @property
    def penalized(self) -> bool:
        """True when the reason counts against the sender's reputation."""
        return self.reason in PENALIZED_REASONS

    def __reduce__(self):
        return (type(self), (self.reason, self.detail))
