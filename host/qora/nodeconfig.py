"""The config blob a board is provisioned with (firmware/core/src/config.c reads it).

What a node needs and cannot fetch: its fleet, node id and HMAC key (from `qora provision`),
its model shape and training settings, its local data shard, and — for hardware-in-the-loop
tests of the defences — an attack, and in mesh mode its neighbours' ids and keys. Real boards
get it flashed into a config partition; QEMU boards get it from `-device loader`; the posix
node reads it from a file. Layout in docs/firmware.md.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from qora.errors import InvalidInput
from qora.protocol import validate_id

MAGIC = b"QNCF"
VERSION = 1
ATTACKS = {"none": 0, "sign_flip": 1}
MESH_METHODS = {"trimmed_mean": 0, "krum": 1}
MAX_ROWS = 256
MAX_LAYERS = 4


@dataclass
class NodeConfig:
    fleet: str
    node: str
    key: bytes
    X_q: np.ndarray                       # (m, n_features) int32 Q16.16
    y: np.ndarray                         # (m,) labels
    sizes: tuple[int, ...] = (64, 32, 10)
    epochs: int = 1
    batch: int = 32
    seed: int = 0
    lr_q: int = 32768                     # 0.5
    attack: str = "none"
    attack_scale: int = 4 * 65536         # sign flip: delta * -scale
    mesh: Sequence[tuple[str, bytes]] = field(default_factory=tuple)   # (id, key), self included
    mesh_method: str = "trimmed_mean"
    mesh_f: int = 1

    def blob(self) -> bytes:
        """The bytes to flash / load (a multiple of 4, starting aligned)."""
        validate_id(self.fleet, "fleet")
        validate_id(self.node, "node")
        if len(self.key) != 32:
            raise InvalidInput(f"key must be 32 bytes, got {len(self.key)}")
        X = np.asarray(self.X_q)
        y = np.asarray(self.y)
        if X.dtype != np.int32 or X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise InvalidInput(f"X_q must be int32 (m, {self.sizes[0]}), got {X.dtype} {X.shape}")
        if not 1 <= X.shape[0] <= MAX_ROWS or y.shape != (X.shape[0],):
            raise InvalidInput(f"a shard holds 1..{MAX_ROWS} rows with one label each; got X {X.shape}, y {y.shape}")
        if not 2 <= len(self.sizes) <= MAX_LAYERS + 1:
            raise InvalidInput(f"sizes needs 2..{MAX_LAYERS + 1} entries, got {self.sizes}")
        if y.min() < 0 or y.max() >= self.sizes[-1]:
            raise InvalidInput(f"labels must be in 0..{self.sizes[-1] - 1}")
        if self.attack not in ATTACKS:
            raise InvalidInput(f"attack must be one of {sorted(ATTACKS)}, got {self.attack!r}")
        if len(self.mesh) > 8:
            raise InvalidInput(f"a mesh has at most 8 members, got {len(self.mesh)}")
        out = bytearray(MAGIC + struct.pack("<I", VERSION))
        out += _id(self.fleet) + _id(self.node) + self.key
        out += struct.pack("<B", len(self.sizes)) + b"".join(struct.pack("<H", s) for s in self.sizes)
        out += struct.pack("<IIIi", self.epochs, self.batch, self.seed & 0xFFFFFFFF, self.lr_q)
        out += struct.pack("<Bi", ATTACKS[self.attack], self.attack_scale)
        out += struct.pack("<BBB", len(self.mesh), MESH_METHODS[self.mesh_method], self.mesh_f)
        for mid, mkey in self.mesh:
            out += _id(mid) + bytes(mkey)
        out += struct.pack("<I", X.shape[0])
        while len(out) % 4:
            out.append(0)
        out += X.astype("<i4").tobytes() + y.astype(np.uint8).tobytes()
        out += struct.pack("<I", zlib.crc32(bytes(out)))
        while len(out) % 4:
            out.append(0)
        return bytes(out)


def round_seed(seed: int, round_: int, epochs: int) -> int:
    """node.h's qn_round_seed: the seed a node trains round ``round_`` with."""
    return (seed + round_ * max(epochs, 1)) & 0xFFFFFFFF


def parse_blob(blob: bytes) -> NodeConfig:
    """Read a blob back (the HIL rig does, for boards flashed beforehand); checks the CRC."""
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from(fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return vals if len(vals) > 1 else vals[0]

    def take_id() -> str:
        nonlocal pos
        n = take("<B")
        s = blob[pos:pos + n].decode()
        pos += n
        return s

    try:
        if blob[:4] != MAGIC:
            raise InvalidInput("not a node config blob (no QNCF magic)")
        pos = 4
        if take("<I") != VERSION:
            raise InvalidInput(f"unsupported node config version (this qora reads {VERSION})")
        fleet, node = take_id(), take_id()
        key = blob[pos:pos + 32]
        pos += 32
        n_sizes = take("<B")
        sizes = tuple(take("<H") for _ in range(n_sizes))
        epochs, batch, seed, lr_q = take("<IIIi")
        attack, attack_scale = take("<Bi")
        mesh_n, mesh_method, mesh_f = take("<BBB")
        mesh = []
        for _ in range(mesh_n):
            mid = take_id()
            mesh.append((mid, blob[pos:pos + 32]))
            pos += 32
        m = take("<I")
        pos = (pos + 3) // 4 * 4
        X = np.frombuffer(blob, "<i4", m * sizes[0], pos).astype(np.int32).reshape(m, sizes[0])
        pos += 4 * m * sizes[0]
        y = np.frombuffer(blob, np.uint8, m, pos).astype(np.int64)
        pos += m
        if take("<I") != zlib.crc32(blob[:pos - 4]):
            raise InvalidInput("node config blob: CRC mismatch (damaged or truncated)")
    except (struct.error, ValueError, IndexError) as e:
        raise InvalidInput(f"node config blob is truncated or malformed: {e}") from None
    return NodeConfig(fleet, node, bytes(key), X, y, sizes, epochs, batch, seed, lr_q,
                      {v: k for k, v in ATTACKS.items()}[attack], attack_scale, tuple(mesh),
                      {v: k for k, v in MESH_METHODS.items()}[mesh_method], mesh_f)


def _id(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<B", len(b)) + b
