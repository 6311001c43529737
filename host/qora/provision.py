"""Fleet provisioning: per-node HMAC keys and MQTT credentials, plus Mosquitto 2.0 auth files.

`provision()` writes into one directory:

    keys.json            the aggregator's secrets: every node's HMAC key, its own MQTT login (0600)
    nodes/<node>.json    what is flashed onto one node: its key and MQTT login (0600)
    mosquitto.passwd     Mosquitto password file (PBKDF2-SHA512, mosquitto_passwd's default format)
    mosquitto.acl        nodes write only their own update/status topics, read round/model/ledger
    mosquitto.conf       listener + allow_anonymous false + password_file + acl_file

Running it again on the same directory adds nodes: existing nodes keep their key and password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qora.errors import InvalidInput

try:  # the protocol module owns the id rule; until it lands, the same rule is checked here
    from qora.protocol.topics import validate_id as _validate_id
except ImportError:
    _validate_id = None

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_id(value: object, what: str) -> str:
    """`value` if it is a valid fleet/node/user id (ids become MQTT topic levels and user names)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInput(f"{what}: expected 1 to 64 characters of A-Z a-z 0-9 _ -, "
                           f"got {value!r}")
    if _validate_id is not None:
        _validate_id(value, what)
    return value


KEYS_FORMAT = "qora-keys/1"
NODE_FORMAT = "qora-node/1"
KEY_BYTES = 32
DEFAULT_AGGREGATOR_USER = "qora-aggregator"

# Mosquitto 2.0's password hash ("$7$", mosquitto_passwd's default): PBKDF2-HMAC-SHA512,
# 101 iterations, 12-byte salt, 64-byte hash, both in standard base64.
_PW_ITERATIONS = 101
_PW_SALT_BYTES = 12


@dataclass(frozen=True)
class FleetKeys:
    fleet: str
    nodes: dict[str, bytes] = field(repr=False)
    aggregator_username: str
    aggregator_password: str = field(repr=False)


@dataclass(frozen=True)
class NodeCredentials:
    fleet: str
    node: str
    key: bytes = field(repr=False)
    mqtt_username: str
    mqtt_password: str = field(repr=False)


@dataclass(frozen=True)
class ProvisionResult:
    fleet: str
    out_dir: Path
    keys_path: Path
    node_paths: dict[str, Path]
    passwd_path: Path
    acl_path: Path
    conf_path: Path
    added: tuple[str, ...]   # nodes that got fresh credentials in this call
    kept: tuple[str, ...]    # nodes already in keys.json, left untouched

    @property
    def mosquitto_command(self) -> str:
        return f"mosquitto -c {self.conf_path}"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A Mosquitto 2.0 password-file hash: ``$7$101$<b64 salt>$<b64 hash>``."""
    salt = secrets.token_bytes(_PW_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PW_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${_PW_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `encoded` (a ``$7$`` password-file hash) is the hash of `password`."""
    parts = encoded.split("$")
    try:
        if len(parts) != 5 or parts[1] != "7":
            raise ValueError("not a $7$ hash")
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:  # binascii.Error is a ValueError
        raise InvalidInput(f"password hash: expected $7$<iterations>$<salt>$<hash>, "
                           f"got {encoded[:12]!r}…") from None
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def _write(path: Path, text: str, mode: int) -> None:
    # Written beside the target then renamed: a crash never leaves a half-written key file, and
    # the secret is never readable by others, not even for a moment.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)  # umask may have removed bits from an intended 0644
        if path.exists():  # keep a group the operator gave it (e.g. chgrp mosquitto)
            try:
                os.chown(tmp, -1, path.stat().st_gid)
            except PermissionError:
                pass
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{what}: expected a file at {path}, found none") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"{what}: expected JSON in {path}, "
                           f"got {type(e).__name__}: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{what}: expected a JSON object in {path}, got {type(data).__name__}")
    return data


def _check_format(data: dict, expected: str, path: Path) -> None:
    if data.get("format") != expected:
        raise InvalidInput(f"{path}: expected format {expected!r}, got {data.get('format')!r}")


def _check_fleet(data: dict, fleet: str | None, path: Path) -> str:
    got = _check_id(data.get("fleet"), f"{path}: fleet")
    if fleet is not None and got != fleet:
        raise InvalidInput(f"{path}: expected fleet {fleet!r}, got {got!r}")
    return got


def _key(value: object, what: str) -> bytes:
    try:
        key = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        key = None
    if key is None:
        raise InvalidInput(f"{what}: expected {KEY_BYTES * 2} hex digits, got {str(value)[:16]!r}")
    if len(key) != KEY_BYTES:
        raise InvalidInput(f"{what}: expected a {KEY_BYTES}-byte key, got {len(key)} bytes")
    return key


def _secret(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what}: expected a non-empty string, got {type(value).__name__}")
    return value


def load_keys(path: str | Path, *, fleet: str | None = None) -> FleetKeys:
    """Read keys.json (or the keys.json inside a provisioned directory)."""
    path = Path(path)
    path = path / "keys.json" if path.is_dir() else path
    data = _read_json(path, "fleet keys")
    _check_format(data, KEYS_FORMAT, path)
    got_fleet = _check_fleet(data, fleet, path)
    agg = data.get("aggregator")
    nodes = data.get("nodes")
    if not isinstance(agg, dict) or not isinstance(nodes, dict):
        raise InvalidInput(f"{path}: expected objects 'aggregator' and 'nodes', got "
                           f"{type(agg).__name__} and {type(nodes).__name__}")
    keys = {}
    for node, entry in nodes.items():
        _check_id(node, f"{path}: node id")
        value = entry.get("key") if isinstance(entry, dict) else None
        keys[node] = _key(value, f"{path}: key of {node}")
    return FleetKeys(
        fleet=got_fleet,
        nodes=keys,
        aggregator_username=_check_id(agg.get("username"), f"{path}: aggregator username"),
        aggregator_password=_secret(agg.get("password"), f"{path}: aggregator password"),
    )


def load_node_credentials(path: str | Path, *, fleet: str | None = None,
                          node: str | None = None) -> NodeCredentials:
    """Read one node's credential file (nodes/<node>.json)."""
    path = Path(path)
    data = _read_json(path, "node credentials")
    _check_format(data, NODE_FORMAT, path)
    got_fleet = _check_fleet(data, fleet, path)
    got_node = _check_id(data.get("node"), f"{path}: node")
    if node is not None and got_node != node:
        raise InvalidInput(f"{path}: expected node {node!r}, got {got_node!r}")
    return NodeCredentials(
        fleet=got_fleet,
        node=got_node,
        key=_key(data.get("key"), f"{path}: key"),
        mqtt_username=_check_id(data.get("mqtt_username"), f"{path}: mqtt_username"),
        mqtt_password=_secret(data.get("mqtt_password"), f"{path}: mqtt_password"),
    )


def acl_text(fleet: str, aggregator_user: str) -> str:
    root = f"qora/v1/{fleet}"
    return "\n".join([
        f"# Qora fleet {fleet}: Mosquitto 2.0 ACL (generated by `qora provision`).",
        "# Grants only, no `deny`: pattern lines apply to every user, the aggregator included,",
        "# and a deny is checked before any grant, so a pattern deny would lock it out too.",
        "# %u is the MQTT username, which is the node id: a node can write only its own topics.",
        f"pattern write {root}/update/%u",
        f"pattern write {root}/status/%u",
        f"pattern read {root}/round",
        f"pattern read {root}/model/#",
        f"pattern read {root}/ledger",
        "",
        f"user {aggregator_user}",
        f"topic readwrite {root}/#",
        "",
    ])


# Chunks of headroom per node in the aggregator's queue: a whole round's updates may arrive
# faster than the aggregator takes them (docs/benchmarks.md: 1,000 nodes send ~3,000 chunks
# in a quarter second; Mosquitto's default queue of 1,000 drops the rest and the round stalls).
QUEUE_CHUNKS_PER_NODE = 16


def conf_text(fleet: str, passwd: Path, acl: Path, port: int, bind_address: str | None,
              n_nodes: int = 0) -> str:
    listener = f"listener {port}" + (f" {bind_address}" if bind_address else "")
    queued = max(1000, QUEUE_CHUNKS_PER_NODE * n_nodes)
    return "\n".join([
        f"# Qora fleet {fleet}: run `mosquitto -c {passwd.parent / 'mosquitto.conf'}`,",
        "# or copy it into an include_dir of an existing broker (then drop the listener line if",
        "# that broker already listens on this port).",
        "# Started as root, Mosquitto reads the files below as user `mosquitto`: make them",
        "# readable to it (e.g. chgrp mosquitto), or run it as the user who owns them.",
        listener,
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "# the aggregator's session must hold a whole round of update chunks (16 per node);",
        "# Mosquitto's default (1000) drops updates of fleets above ~300 nodes",
        f"max_queued_messages {queued}",
        "",
    ])


def _existing_hashes(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _remove_stale_node_files(keys_path: Path, node_dir: Path, keep: set[str]) -> None:
    # A forced re-provision revokes every old key; an old node's file left behind would look valid.
    try:
        old = load_keys(keys_path)
    except InvalidInput:
        return  # unreadable or absent: nothing known to remove, and nothing else is deleted
    for n in set(old.nodes) - keep:
        (node_dir / f"{n}.json").unlink(missing_ok=True)


def provision(fleet: str, nodes: Sequence[str], out_dir: str | Path, *,
              aggregator_user: str = DEFAULT_AGGREGATOR_USER, force: bool = False,
              port: int = 1883, bind_address: str | None = None) -> ProvisionResult:
    """Create (or extend) the credentials of a fleet in `out_dir`.

    Without `force`, an existing keys.json must belong to the same fleet and aggregator user; its
    nodes keep their key and password and `nodes` are added. With `force`, everything is new.
    """
    _check_id(fleet, "fleet")
    _check_id(aggregator_user, "aggregator user")
    if isinstance(nodes, str):
        raise InvalidInput(f"nodes: expected a sequence of node ids, got the string {nodes!r}")
    nodes = [_check_id(n, "node id") for n in nodes]
    if not nodes:
        raise InvalidInput("nodes: expected at least one node id, got none")
    if len(set(nodes)) != len(nodes):
        dupes = sorted({n for n in nodes if nodes.count(n) > 1})
        raise InvalidInput(f"nodes: expected distinct ids, got duplicates {dupes}")
    if aggregator_user in nodes:
        raise InvalidInput(f"nodes: expected ids other than the aggregator user, "
                           f"got {aggregator_user!r}")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"port: expected 1..65535, got {port!r}")

    out = Path(out_dir).resolve()
    keys_path, node_dir = out / "keys.json", out / "nodes"
    passwd_path, acl_path = out / "mosquitto.passwd", out / "mosquitto.acl"
    conf_path = out / "mosquitto.conf"

    keys: dict[str, bytes] = {}
    hashes: dict[str, str] = {}  # kept password-file lines: no need to know the plain passwords
    agg_password = None
    if keys_path.exists() and not force:
        old = load_keys(keys_path)
        if old.fleet != fleet:
            raise InvalidInput(f"{keys_path}: expected fleet {fleet!r}, got {old.fleet!r} "
                               "(use another directory, or force to replace every key)")
        if old.aggregator_username != aggregator_user:
            raise InvalidInput(f"{keys_path}: expected aggregator user {aggregator_user!r}, "
                               f"got {old.aggregator_username!r} (force replaces every key)")
        if aggregator_user in old.nodes:
            raise InvalidInput(f"{keys_path}: expected node ids other than the aggregator user, "
                               f"got {aggregator_user!r}")
        keys, agg_password = dict(old.nodes), old.aggregator_password
        hashes = _existing_hashes(passwd_path)
    elif force:
        _remove_stale_node_files(keys_path, node_dir, set(nodes))

    kept = tuple(n for n in keys)
    added = tuple(n for n in nodes if n not in keys)
    clash = [n for n in added if (node_dir / f"{n}.json").exists()]
    if clash and not force:
        raise InvalidInput(f"{node_dir}: expected no credential files for nodes missing from "
                           f"keys.json, got {', '.join(clash)} (force overwrites them)")
    passwords: dict[str, str] = {}
    for n in added:
        keys[n] = secrets.token_bytes(KEY_BYTES)
        passwords[n] = secrets.token_urlsafe(24)
    if agg_password is None:
        agg_password = secrets.token_urlsafe(24)
        hashes.pop(aggregator_user, None)
    for n in kept:
        if n not in hashes:  # password file lost: rebuild the line from the node's own file
            hashes[n] = hash_password(load_node_credentials(node_dir / f"{n}.json", fleet=fleet,
                                                            node=n).mqtt_password)

    node_dir.mkdir(parents=True, exist_ok=True)
    node_paths = {n: node_dir / f"{n}.json" for n in keys}
    for n in added:
        _write(node_paths[n], json.dumps({
            "format": NODE_FORMAT, "fleet": fleet, "node": n, "key": keys[n].hex(),
            "mqtt_username": n, "mqtt_password": passwords[n]}, indent=2) + "\n", 0o600)
    _write(keys_path, json.dumps({
        "format": KEYS_FORMAT, "fleet": fleet,
        "aggregator": {"username": aggregator_user, "password": agg_password},
        "nodes": {n: {"key": keys[n].hex()} for n in sorted(keys)}}, indent=2) + "\n", 0o600)

    for n, pw in [*passwords.items(), (aggregator_user, agg_password)]:
        if n not in hashes:
            hashes[n] = hash_password(pw)
    users = [aggregator_user, *sorted(keys)]
    # 0640, not 0600: a broker started as root reads it as user mosquitto (see mosquitto.conf).
    _write(passwd_path, "".join(f"{u}:{hashes[u]}\n" for u in users), 0o640)
    _write(acl_path, acl_text(fleet, aggregator_user), 0o644)
    _write(conf_path, conf_text(fleet, passwd_path, acl_path, port, bind_address, len(keys)), 0o644)
    return ProvisionResult(fleet=fleet, out_dir=out, keys_path=keys_path, node_paths=node_paths,
                           passwd_path=passwd_path, acl_path=acl_path, conf_path=conf_path,
                           added=added, kept=kept)
