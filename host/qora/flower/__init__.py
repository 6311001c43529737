"""Qora Edge inside Flower: robust aggregation with persistent reputation as a Flower strategy.

One implementation, :class:`QoraAggregation` (``qora.flower.core``), runs a Flower round through
:class:`qora.ByzantineAggregator` and keeps each node's reputation, keyed by its Flower node id,
across rounds and (with ``reputation_path``) across server restarts. Two thin adapters put it
in front of Flower:

* :class:`QoraStrategy` (``qora.flower.strategy``): the current Message API, a subclass of
  ``flwr.serverapp.strategy.FedAvg`` for ``ServerApp`` ``@app.main()`` code.
* :class:`QoraLegacyStrategy` (``qora.flower.legacy``): the legacy API, a subclass of
  ``flwr.server.strategy.FedAvg`` for ``ServerApp(server_fn=...)`` code.

Flower is an extra: ``pip install 'qora-edge[flower]'``. See docs/flower.md.
"""

from __future__ import annotations

try:
    import flwr as _flwr
    from flwr.serverapp.strategy import FedAvg as _MessageFedAvg  # noqa: F401  (API check)
except ImportError as _exc:  # the extra is not installed, or a Flower without the Message API
    _found = None
    try:
        import importlib.metadata as _md

        _found = _md.version("flwr")
    except Exception:  # noqa: BLE001  (only for the message)
        pass
    _why = ("Flower (flwr) is not installed" if _found is None
            else f"the installed Flower {_found} has no Message API (flwr.serverapp.strategy)")
    raise ImportError(
        f"qora.flower needs Flower >= 1.41, < 1.42, but {_why}. "
        "Install the extra: pip install 'qora-edge[flower]'") from _exc

from qora.flower.core import (
    ACTIONS,
    PENALIZED_REASONS,
    REASON_CODES,
    QoraAggregation,
    QoraRound,
    Rejected,
)
from qora.flower.fleet import FleetBridge, FleetSite, fleet_client_app
from qora.flower.legacy import QoraLegacyStrategy
from qora.flower.strategy import QoraStrategy

FLOWER_VERSION: str = _flwr.__version__

__all__ = [
    "ACTIONS",
    "FLOWER_VERSION",
    "FleetBridge",
    "FleetSite",
    "PENALIZED_REASONS",
    "QoraAggregation",
    "QoraLegacyStrategy",
    "QoraRound",
    "QoraStrategy",
    "REASON_CODES",
    "Rejected",
    "fleet_client_app",
]
