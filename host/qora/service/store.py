"""SQLite (WAL) store of one fleet's aggregator: everything a restart or an audit needs.

Tables: meta (config, public key), models (every version's bytes), rounds (state
machine), chunks (every accepted update message, byte for byte as it arrived),
rejects (counts by round, reason, claimed sender), reputation (snapshot after each
round) and ledger (the signed, hash-chained records). Closing a round writes the new
model, the reputation snapshot, the ledger record, the round's state and the next
round in one transaction, so a crash leaves either the old round open or the new one.

WAL with synchronous=NORMAL survives the process being killed at any point; a power
cut may lose the last transactions (``durable=True`` makes every commit fsync).
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from qora.errors import InvalidInput

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    version INTEGER PRIMARY KEY, round INTEGER, digest BLOB NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY, version_in INTEGER NOT NULL, opened_at REAL NOT NULL,
    deadline REAL NOT NULL, state TEXT NOT NULL CHECK (state IN ('open', 'closed', 'published')),
    closed_at REAL);
CREATE TABLE IF NOT EXISTS chunks (
    round INTEGER NOT NULL, node TEXT NOT NULL, idx INTEGER NOT NULL, message BLOB NOT NULL,
    received_at REAL NOT NULL, PRIMARY KEY (round, node, idx));
CREATE TABLE IF NOT EXISTS rejects (
    round INTEGER NOT NULL, reason TEXT NOT NULL, node TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (round, reason, node));
CREATE TABLE IF NOT EXISTS reputation (round INTEGER PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ledger (
    round INTEGER PRIMARY KEY, record BLOB NOT NULL, hash BLOB NOT NULL, signature BLOB NOT NULL);
"""


@dataclass(frozen=True)
class RoundRow:
    round: int
    version_in: int
    opened_at: float
    deadline: float
    state: str
    closed_at: float | None


@dataclass(frozen=True)
class LedgerRow:
    round: int
    record: bytes
    hash: bytes
    signature: bytes


class Store:
    """One fleet's SQLite file. Use from one thread (the service's worker)."""

    def __init__(self, path: str | Path, *, durable: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if readonly:  # an auditor's view: nothing written, not even the schema
            if not self.path.exists():
                raise InvalidInput(f"no store at {self.path}")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
            return
        # one writer per fleet: a second `qora serve` on the same store would fight the first
        # for the MQTT session and the rounds; the OS drops the lock when the process dies
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise InvalidInput(f"{self.path} is in use by another aggregator process "
                               f"(one writer per fleet store)") from None
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        version = self.get_meta("schema")
        if version is None:
            self.set_meta("schema", str(SCHEMA_VERSION).encode())
        elif int(version) != SCHEMA_VERSION:
            raise InvalidInput(f"{self.path}: store schema {int(version)}, this qora reads {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()
        lock = getattr(self, "_lock_file", None)
        if lock is not None:
            lock.close()  # releases the flock
            self._lock_file = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- transactions ----------------------------------------------------------------
    def transaction(self) -> "_Transaction":
        """``with store.transaction():`` — all writes inside commit together or not at all."""
        return _Transaction(self)

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # ---- meta ------------------------------------------------------------------------
    def get_meta(self, key: str) -> bytes | None:
        row = self._exec("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, key: str, value: bytes) -> None:
        self._exec("INSERT INTO meta (key, value) VALUES (?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    # ---- models ----------------------------------------------------------------------
    def put_model(self, version: int, round_: int | None, digest: bytes, data: bytes) -> None:
        self._exec("INSERT INTO models (version, round, digest, data) VALUES (?, ?, ?, ?)",
                   (version, round_, digest, data))

    def model(self, version: int) -> tuple[bytes, bytes] | None:
        """(digest, data) of a model version."""
        row = self._exec("SELECT digest, data FROM models WHERE version = ?", (version,)).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def latest_model_version(self) -> int | None:
        row = self._exec("SELECT MAX(version) FROM models").fetchone()
        return row[0]

    # ---- rounds ----------------------------------------------------------------------
    def open_round(self, round_: int, version_in: int, opened_at: float, deadline: float) -> None:
        self._exec("INSERT INTO rounds (round, version_in, opened_at, deadline, state) "
                   "VALUES (?, ?, ?, ?, 'open')", (round_, version_in, opened_at, deadline))

    def set_deadline(self, round_: int, deadline: float) -> None:
        self._exec("UPDATE rounds SET deadline = ? WHERE round = ?", (deadline, round_))

    def set_round_state(self, round_: int, state: str, closed_at: float | None = None) -> None:
        if closed_at is None:
            self._exec("UPDATE rounds SET state = ? WHERE round = ?", (state, round_))
        else:
            self._exec("UPDATE rounds SET state = ?, closed_at = ? WHERE round = ?", (state, closed_at, round_))

    def round(self, round_: int) -> RoundRow | None:
        row = self._exec("SELECT round, version_in, opened_at, deadline, state, closed_at FROM rounds "
                         "WHERE round = ?", (round_,)).fetchone()
        return None if row is None else RoundRow(*row)

    def last_round(self) -> RoundRow | None:
        row = self._exec("SELECT round, version_in, opened_at, deadline, state, closed_at FROM rounds "
                         "ORDER BY round DESC LIMIT 1").fetchone()
        return None if row is None else RoundRow(*row)

    def rounds(self) -> list[RoundRow]:
        return [RoundRow(*r) for r in self._exec(
            "SELECT round, version_in, opened_at, deadline, state, closed_at FROM rounds ORDER BY round")]

    # ---- accepted update chunks -----------------------------------------------------
    def put_chunk(self, round_: int, node: str, idx: int, message: bytes, received_at: float) -> None:
        # a row can be there already only if it was left out on restart (it no longer
        # validated, e.g. the node was re-keyed): the accepted copy replaces it
        self._exec("INSERT INTO chunks (round, node, idx, message, received_at) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (round, node, idx) DO UPDATE SET message = excluded.message, "
                   "received_at = excluded.received_at",
                   (round_, node, idx, message, received_at))

    def chunks(self, round_: int) -> Iterator[tuple[str, int, bytes]]:
        """(node, index, message) of a round, by node then index."""
        for node, idx, msg in self._exec("SELECT node, idx, message FROM chunks WHERE round = ? "
                                         "ORDER BY node, idx", (round_,)):
            yield node, idx, bytes(msg)

    # ---- rejects ---------------------------------------------------------------------
    def add_reject(self, round_: int, reason: str, node: str) -> None:
        self._exec("INSERT INTO rejects (round, reason, node, count) VALUES (?, ?, ?, 1) "
                   "ON CONFLICT (round, reason, node) DO UPDATE SET count = count + 1",
                   (round_, reason, node))

    def rejects(self, round_: int) -> dict[tuple[str, str], int]:
        """{(reason, node): count} for a round."""
        return {(r, n): c for r, n, c in self._exec(
            "SELECT reason, node, count FROM rejects WHERE round = ? ORDER BY reason, node", (round_,))}

    # ---- reputation ------------------------------------------------------------------
    def put_reputation(self, round_: int, state: str) -> None:
        self._exec("INSERT INTO reputation (round, state) VALUES (?, ?)", (round_, state))

    def reputation(self, round_: int) -> str | None:
        row = self._exec("SELECT state FROM reputation WHERE round = ?", (round_,)).fetchone()
        return None if row is None else row[0]

    # ---- ledger ----------------------------------------------------------------------
    def put_ledger(self, round_: int, record: bytes, hash_: bytes, signature: bytes) -> None:
        self._exec("INSERT INTO ledger (round, record, hash, signature) VALUES (?, ?, ?, ?)",
                   (round_, record, hash_, signature))

    def ledger(self) -> list[LedgerRow]:
        return [LedgerRow(r, bytes(rec), bytes(h), bytes(s)) for r, rec, h, s in self._exec(
            "SELECT round, record, hash, signature FROM ledger ORDER BY round")]

    def ledger_head(self) -> LedgerRow | None:
        row = self._exec("SELECT round, record, hash, signature FROM ledger ORDER BY round DESC LIMIT 1"
                         ).fetchone()
        return None if row is None else LedgerRow(row[0], bytes(row[1]), bytes(row[2]), bytes(row[3]))


class _Transaction:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> Store:
        self._store._lock.acquire()
        self._store._db.execute("BEGIN IMMEDIATE")
        return self._store

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._store._lock.release()
