"""The aggregator service: rounds over MQTT, SQLite persistence, the signed ledger, verification.

    RoundEngine (engine.py)      the round state machine: messages in, publications out
    AggregatorService (mqtt.py)  the engine on a paho-mqtt client
    Store (store.py)             SQLite (WAL): models, rounds, accepted chunks, rejects, reputation, ledger
    Signer, ledger (ledger.py)   canonical records, hash chain, Ed25519
    compute_round (compute.py)   what a round computes; shared with verify_store (verify.py)
"""

from qora.service.compute import RoundInput, RoundOutcome, compute_round
from qora.service.config import FleetConfig
from qora.service.engine import ClosedRound, Publication, RoundEngine, Verdict
from qora.service.ledger import Signer
from qora.service.mqtt import AggregatorService, Status
from qora.service.store import Store
from qora.service.verify import Finding, VerifyReport, verify_store

__all__ = ["AggregatorService", "ClosedRound", "Finding", "FleetConfig", "Publication", "RoundEngine",
           "RoundInput", "RoundOutcome", "Signer", "Status", "Store", "Verdict", "VerifyReport",
           "compute_round", "verify_store"]
