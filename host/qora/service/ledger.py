"""The round ledger: one signed record per closed round, each chained to the one before.

A record is canonical JSON (sorted keys, no spaces, ASCII): the round's inputs (node,
samples, SHA-256 of the update messages as signed by the node), the aggregation
settings, who was excluded and why, rejects by reason and sender, reputation before /
after (digests) and its changes, the digest of the aggregate, and the model versions
in and out. ``hash = SHA-256(record)``; each record names the previous hash
(``prev``; 32 zero bytes for the first), and the aggregator signs the record with its
Ed25519 key. Changing any stored byte breaks a digest, the chain or the signature,
which ``qora verify`` reports with the round and the field.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from qora.errors import InvalidInput

RECORD_FORMAT = "qora-ledger/1"
GENESIS = bytes(32)


def canonical(record: dict[str, Any]) -> bytes:
    """The one byte form of a record that is hashed and signed."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def record_hash(record_bytes: bytes) -> bytes:
    return sha256(record_bytes)


class Signer:
    """The aggregator's Ed25519 key (raw 32-byte seed in a 0600 file)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @classmethod
    def generate(cls) -> "Signer":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: str | Path) -> "Signer":
        """Read the key at ``path``, or create it there (mode 0600) when it does not exist."""
        path = Path(path)
        if path.exists():
            seed = path.read_bytes()
            if len(seed) != 32:
                raise InvalidInput(f"{path}: an Ed25519 key file holds 32 raw bytes, found {len(seed)}")
            return cls(Ed25519PrivateKey.from_private_bytes(seed))
        signer = cls.generate()
        seed = signer._key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(seed)
        # the public half beside it, for auditors to pin (`qora verify --public-key FILE`)
        path.with_name(path.name + ".pub").write_text(signer.public_key.hex() + "\n")
        return signer

    def sign(self, record_bytes: bytes) -> bytes:
        return self._key.sign(record_bytes)


def signature_ok(public_key: bytes, record_bytes: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, record_bytes)
        return True
    except (InvalidSignature, ValueError):
        return False


def parse_public_key(text: str) -> bytes:
    """A public key given as 64 hex digits, or a file holding them (or 32 raw bytes)."""
    candidate = text.strip()
    if len(candidate) != 64 and Path(candidate).exists():
        data = Path(candidate).read_bytes()
        candidate = data.decode(errors="replace").strip() if len(data) != 32 else data.hex()
    try:
        key = bytes.fromhex(candidate)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidInput(f"a public key is 64 hex digits (32 bytes) or a file holding them, got {text!r}")
    return key
