"""qora.provision: the files it writes, adding nodes, refusing to clobber keys, loading, the CLI,
and a real Mosquitto accepting the generated password file (also before and after adding nodes)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess

import pytest
from click.testing import CliRunner

from qora.cli import main
from qora.errors import InvalidInput
from qora.provision import (
    hash_password,
    load_keys,
    load_node_credentials,
    provision,
    verify_password,
)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def passwd_lines(path):
    return dict(line.split(":", 1) for line in path.read_text().splitlines())


def test_files_formats_and_modes(tmp_path):
    r = provision("fleet-1", ["node-1", "node-2"], tmp_path / "out")
    keys = json.loads(r.keys_path.read_text())
    assert keys["format"] == "qora-keys/1" and keys["fleet"] == "fleet-1"
    assert keys["aggregator"]["username"] == "qora-aggregator"
    assert set(keys["nodes"]) == {"node-1", "node-2"}
    assert mode(r.keys_path) == 0o600
    for node in ("node-1", "node-2"):
        path = tmp_path / "out" / "nodes" / f"{node}.json"
        assert r.node_paths[node] == path and mode(path) == 0o600
        data = json.loads(path.read_text())
        assert set(data) == {"format", "fleet", "node", "key", "mqtt_username", "mqtt_password"}
        assert data["format"] == "qora-node/1" and data["node"] == data["mqtt_username"] == node
        assert data["key"] == keys["nodes"][node]["key"] and len(bytes.fromhex(data["key"])) == 32
        assert verify_password(data["mqtt_password"], passwd_lines(r.passwd_path)[node])
    assert keys["nodes"]["node-1"]["key"] != keys["nodes"]["node-2"]["key"]
    agg_hash = passwd_lines(r.passwd_path)["qora-aggregator"]
    assert verify_password(keys["aggregator"]["password"], agg_hash)
    assert r.added == ("node-1", "node-2") and r.kept == ()


def test_passwd_acl_and_conf_text(tmp_path):
    r = provision("f", ["n1"], tmp_path, port=11883, bind_address="127.0.0.1")
    for encoded in passwd_lines(r.passwd_path).values():
        _, seven, iterations, salt, digest = encoded.split("$")
        assert (seven, iterations) == ("7", "101")
        assert len(base64.b64decode(salt)) == 12 and len(base64.b64decode(digest)) == 64
    acl = [line for line in r.acl_path.read_text().splitlines() if line and line[0] != "#"]
    assert acl == ["pattern write qora/v1/f/update/%u", "pattern write qora/v1/f/status/%u",
                   "pattern read qora/v1/f/round", "pattern read qora/v1/f/model/#",
                   "pattern read qora/v1/f/ledger",
                   "user qora-aggregator", "topic readwrite qora/v1/f/#"]
    conf = [line for line in r.conf_path.read_text().splitlines() if not line.startswith("#")]
    assert conf == ["listener 11883 127.0.0.1", "allow_anonymous false",
                    f"password_file {r.passwd_path}", f"acl_file {r.acl_path}", "max_queued_messages 1000"]
    # the aggregator's queue holds a whole round of a big fleet's update chunks
    big = provision("big", [f"n{i}" for i in range(200)], tmp_path / "big")
    assert "max_queued_messages 3200" in big.conf_path.read_text().splitlines()
    assert r.passwd_path.is_absolute() and r.mosquitto_command == f"mosquitto -c {r.conf_path}"


def test_hash_matches_mosquitto_passwd(tmp_path):
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(path), "alice", "s3cret pässword"], check=True)
    theirs = passwd_lines(path)["alice"]
    assert verify_password("s3cret pässword", theirs)
    assert not verify_password("s3cret password", theirs)
    salt = base64.b64decode(theirs.split("$")[3])
    assert hash_password("s3cret pässword", salt=salt) == theirs


def test_adding_nodes_keeps_existing_credentials(tmp_path):
    first = provision("fleet", ["a", "b"], tmp_path)
    before = {n: load_node_credentials(p) for n, p in first.node_paths.items()}
    agg_before = load_keys(first.keys_path)
    hashes_before = passwd_lines(first.passwd_path)
    second = provision("fleet", ["b", "c"], tmp_path)
    assert second.added == ("c",) and set(second.kept) == {"a", "b"}
    keys = load_keys(tmp_path)
    assert set(keys.nodes) == {"a", "b", "c"}
    for n in ("a", "b"):
        assert load_node_credentials(second.node_paths[n]) == before[n]
        assert keys.nodes[n] == before[n].key
    assert keys.aggregator_password == agg_before.aggregator_password
    hashes = passwd_lines(second.passwd_path)
    assert {u: hashes[u] for u in hashes_before} == hashes_before
    assert verify_password(load_node_credentials(second.node_paths["c"]).mqtt_password, hashes["c"])


def test_lost_password_file_is_rebuilt_from_node_files(tmp_path):
    r = provision("fleet", ["a"], tmp_path)
    r.passwd_path.unlink()
    provision("fleet", ["b"], tmp_path)
    hashes = passwd_lines(r.passwd_path)
    assert verify_password(load_node_credentials(r.node_paths["a"]).mqtt_password, hashes["a"])
    assert verify_password(load_keys(tmp_path).aggregator_password, hashes["qora-aggregator"])


def test_other_fleet_or_aggregator_is_refused_unless_forced(tmp_path):
    provision("fleet", ["a", "b"], tmp_path)
    old = load_keys(tmp_path)
    with pytest.raises(InvalidInput, match="expected fleet 'other', got 'fleet'"):
        provision("other", ["a"], tmp_path)
    with pytest.raises(InvalidInput, match="expected aggregator user 'agg2'"):
        provision("fleet", ["a"], tmp_path, aggregator_user="agg2")
    assert load_keys(tmp_path) == old
    r = provision("other", ["a"], tmp_path, force=True)
    new = load_keys(tmp_path)
    assert new.fleet == "other" and set(new.nodes) == {"a"} and new.nodes["a"] != old.nodes["a"]
    assert not (tmp_path / "nodes" / "b.json").exists()  # revoked: its key is gone from keys.json
    assert set(passwd_lines(r.passwd_path)) == {"qora-aggregator", "a"}


def test_merge_refuses_a_stray_file_for_a_new_node(tmp_path):
    provision("fleet", ["a"], tmp_path)
    (tmp_path / "nodes" / "b.json").write_text("{}")
    with pytest.raises(InvalidInput, match="for nodes missing from keys.json, got b"):
        provision("fleet", ["b"], tmp_path)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to another needs root")
def test_rewrite_keeps_the_group_an_operator_set(tmp_path):
    r = provision("fleet", ["a"], tmp_path)
    os.chown(r.passwd_path, -1, 1)  # as `chgrp mosquitto mosquitto.passwd` would
    provision("fleet", ["b"], tmp_path)
    assert r.passwd_path.stat().st_gid == 1 and mode(r.passwd_path) == 0o640


def test_verify_password_refuses_other_formats():
    with pytest.raises(InvalidInput, match="expected \\$7\\$"):
        verify_password("x", "$6$abc$def")
    with pytest.raises(InvalidInput, match="expected \\$7\\$"):
        verify_password("x", "$7$101$not base64!$AAAA")


def test_node_files_without_keys_json_are_not_overwritten(tmp_path):
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "a.json").write_text("{}")
    with pytest.raises(InvalidInput, match="force overwrites"):
        provision("fleet", ["a"], tmp_path)
    provision("fleet", ["a"], tmp_path, force=True)
    assert load_node_credentials(tmp_path / "nodes" / "a.json").node == "a"


@pytest.mark.parametrize(("fleet", "nodes", "message"), [
    ("bad fleet", ["a"], "fleet: expected"),
    ("f" * 65, ["a"], "fleet: expected"),
    ("f", ["a/b"], "node id: expected"),
    ("f", ["a+"], "node id: expected"),
    ("f", [""], "node id: expected"),
    ("f", [], "at least one node"),
    ("f", ["a", "a"], "duplicates"),
    ("f", ["qora-aggregator"], "other than the aggregator"),
    ("f", "node-1", "sequence of node ids"),
])
def test_bad_ids_are_refused(tmp_path, fleet, nodes, message):
    with pytest.raises(InvalidInput, match=message):
        provision(fleet, nodes, tmp_path)
    assert not (tmp_path / "keys.json").exists()


def test_load_errors_say_what_was_expected(tmp_path):
    r = provision("fleet", ["a"], tmp_path)
    assert load_keys(r.keys_path, fleet="fleet").fleet == "fleet"
    with pytest.raises(InvalidInput, match="expected fleet 'x', got 'fleet'"):
        load_keys(r.keys_path, fleet="x")
    with pytest.raises(InvalidInput, match="expected node 'b', got 'a'"):
        load_node_credentials(r.node_paths["a"], node="b")
    with pytest.raises(InvalidInput, match="expected format 'qora-keys/1', got 'qora-node/1'"):
        load_keys(r.node_paths["a"])
    with pytest.raises(InvalidInput, match="expected a file"):
        load_keys(tmp_path / "missing.json")

    def edited(path, **changes):
        data = json.loads(path.read_text()) | changes
        out = tmp_path / f"edited-{path.name}"
        out.write_text(json.dumps(data))
        return out

    short = edited(r.node_paths["a"], key="ab" * 16)
    with pytest.raises(InvalidInput, match="expected a 32-byte key, got 16 bytes"):
        load_node_credentials(short)
    with pytest.raises(InvalidInput, match="expected 64 hex digits"):
        load_node_credentials(edited(r.node_paths["a"], key="zz" * 32))
    with pytest.raises(InvalidInput, match="key of a: expected a 32-byte key, got 31 bytes"):
        load_keys(edited(r.keys_path, nodes={"a": {"key": "00" * 31}}))
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(InvalidInput, match="expected JSON"):
        load_keys(bad_json)


def test_secrets_stay_out_of_repr(tmp_path):
    r = provision("fleet", ["a"], tmp_path)
    keys, creds = load_keys(tmp_path), load_node_credentials(r.node_paths["a"])
    for secret, obj in ((keys.aggregator_password, keys), (creds.mqtt_password, creds),
                        (creds.key.hex(), creds), (keys.nodes["a"].hex(), keys)):
        assert secret not in repr(obj)


# ---- CLI ------------------------------------------------------------------------------


def qora_provision(*args):
    return CliRunner().invoke(main, ["provision", *map(str, args)])


def test_cli_count_then_add_nodes(tmp_path):
    out = tmp_path / "fleet-dir"
    res = qora_provision("--fleet", "lab", "--count", 3, "--out", out)
    assert res.exit_code == 0, res.output
    assert set(load_keys(out).nodes) == {"node-1", "node-2", "node-3"}
    assert "node-3" in res.output and "0600" in res.output
    assert f"mosquitto -c {out.resolve() / 'mosquitto.conf'}" in res.output
    first = load_keys(out).nodes
    res = qora_provision("--fleet", "lab", "--nodes", "gw-1, node-1", "--out", out)
    assert res.exit_code == 0, res.output
    keys = load_keys(out).nodes
    assert set(keys) == {"node-1", "node-2", "node-3", "gw-1"} and keys["node-1"] == first["node-1"]
    assert "1 new, 3 kept" in res.output


def test_cli_prefix_force_and_errors(tmp_path):
    res = qora_provision("--fleet", "lab", "--count", 2, "--prefix", "s", "--out", tmp_path)
    assert res.exit_code == 0 and set(load_keys(tmp_path).nodes) == {"s1", "s2"}
    res = qora_provision("--fleet", "other", "--count", 1, "--out", tmp_path)
    assert res.exit_code == 2 and "expected fleet 'other', got 'lab'" in res.output
    res = qora_provision("--fleet", "other", "--count", 1, "--out", tmp_path, "--force")
    assert res.exit_code == 0 and load_keys(tmp_path).fleet == "other"
    for both_or_neither in (["--nodes", "a", "--count", 2], []):
        res = qora_provision("--fleet", "lab", *both_or_neither, "--out", tmp_path)
        assert res.exit_code == 2 and "exactly one of --nodes and --count" in res.output
    res = qora_provision("--fleet", "lab", "--nodes", "bad id", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "InvalidInput: node id: expected" in res.output


# ---- a real Mosquitto -----------------------------------------------------------------


@pytest.mark.mqtt
def test_mosquitto_accepts_generated_logins_before_and_after_adding_nodes(mosquitto, clients):
    first = mosquitto.provision("fleet", ["a"])
    a = load_node_credentials(first.node_paths["a"])
    port = mosquitto.start(first)
    assert clients(port, "a1", username="a", password=a.mqtt_password).connect() == 0
    mosquitto.stop()
    second = mosquitto.provision("fleet", ["b"])
    b = load_node_credentials(second.node_paths["b"])
    port = mosquitto.start(second)
    assert clients(port, "a2", username="a", password=a.mqtt_password).connect() == 0
    assert clients(port, "b2", username="b", password=b.mqtt_password).connect() == 0
    assert clients(port, "b3", username="b", password=a.mqtt_password).connect().is_failure
    keys = load_keys(second.keys_path)
    agg = clients(port, "agg", username=keys.aggregator_username, password=keys.aggregator_password)
    assert agg.connect() == 0


@pytest.mark.mqtt
def test_mosquitto_accepts_a_mosquitto_passwd_line_next_to_ours(mosquitto, clients, tmp_path):
    """Our lines and mosquitto_passwd's coexist in one file, and Mosquitto checks both."""
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.skip("mosquitto_passwd is not installed")
    r = mosquitto.provision("fleet", ["a"])
    subprocess.run([tool, "-b", str(r.passwd_path), "operator", "op-pass"], check=True)
    port = mosquitto.start(r)
    assert clients(port, "op", username="operator", password="op-pass").connect() == 0
    a = load_node_credentials(r.node_paths["a"])
    assert clients(port, "a", username="a", password=a.mqtt_password).connect() == 0
