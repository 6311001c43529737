"""make_shard.py (the node's shard and config.json from a provisioned fleet) and deploy.sh (the
mpremote command sequence, run against the stand-in mpremote)."""

from __future__ import annotations

import json
import stat
import zlib

import numpy as np
import pytest

from qora.native import to_q16
from qora.provision import load_node_credentials, provision
from qora.sim.fleet import FleetSpec, make_clients

from mpnode_helpers import FW, deploy  # isort: skip
import make_shard  # noqa: E402  (firmware/micropython/, on sys.path through mpnode_helpers)

NODES = ["a-1", "a-2", "a-3", "a-4"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    provision("plant", NODES, d)
    return d


def _shard(fleet, out, *extra):
    make_shard.main(["--credentials", str(fleet / "nodes" / "a-3.json"), "--broker", "mqtt://broker.lan",
                     "--wifi-ssid", "plant-wifi", "--wifi-password", "secret", "--out", str(out), *extra])
    return json.loads((out / "config.json").read_text())


def test_shard_is_the_nodes_partition_in_q16(fleet, tmp_path):
    cfg = _shard(fleet, tmp_path, "--max-rows", "0", "--partition", "iid", "--seed", "4")
    X_q, y, n_classes = make_shard.read_shard(tmp_path / "shard.bin")
    spec = FleetSpec(broker="mqtt://x", fleets=("plant",), credentials=".", nodes=tuple(NODES),
                     partition="iid", seed=4)
    client = make_clients(spec)["a-3"]
    assert n_classes == 10 and X_q.dtype == np.int32
    np.testing.assert_array_equal(X_q, to_q16(client.X.astype(np.float32))[0])
    np.testing.assert_array_equal(y, client.y)
    assert X_q.min() >= 0 and X_q.max() <= 65536          # digits pixels / 16 in Q16.16
    raw = (tmp_path / "shard.bin").read_bytes()
    assert raw[:4] == b"QSH1" and len(raw) == 16 + 4 * 64 * len(y) + len(y)
    assert cfg["training"]["layout"] == [64, 10]


def test_max_rows_keeps_the_first_rows(fleet, tmp_path):
    _shard(fleet, tmp_path / "all", "--max-rows", "0")
    _shard(fleet, tmp_path / "some", "--max-rows", "17")
    X_all, y_all, _ = make_shard.read_shard(tmp_path / "all" / "shard.bin")
    X, y, _ = make_shard.read_shard(tmp_path / "some" / "shard.bin")
    assert len(y) == 17 and len(y_all) > 17
    np.testing.assert_array_equal(X, X_all[:17])
    np.testing.assert_array_equal(y, y_all[:17])


def test_config_carries_the_provisioned_credentials(fleet, tmp_path):
    cfg = _shard(fleet, tmp_path, "--model", "mlp", "--epochs", "3", "--batch-size", "8", "--lr", "0.1")
    cred = load_node_credentials(fleet / "nodes" / "a-3.json")
    assert (cfg["fleet"], cfg["node"], bytes.fromhex(cfg["key"])) == ("plant", "a-3", cred.key)
    assert cfg["mqtt"] == {"host": "broker.lan", "port": 1883, "user": "a-3",
                           "password": cred.mqtt_password, "keepalive": 120}
    assert cfg["wifi"] == {"ssid": "plant-wifi", "password": "secret"}
    assert cfg["training"] == {"layout": [64, 32, 10], "epochs": 3, "batch_size": 8, "lr_q": 6554,
                               "seed": zlib.crc32(b"a-3")}
    assert (cfg["data"], cfg["state"]) == ("shard.bin", "qora_state.json")
    assert stat.S_IMODE((tmp_path / "config.json").stat().st_mode) == 0o600


def test_refuses_a_node_outside_the_list_and_mqtts(fleet, tmp_path):
    with pytest.raises(SystemExit, match="not in the fleet's nodes"):
        _shard(fleet, tmp_path, "--nodes", "a-1,a-2")
    with pytest.raises(SystemExit, match="mqtts is not supported"):
        make_shard.main(["--credentials", str(fleet / "nodes" / "a-3.json"), "--broker", "mqtts://b",
                         "--wifi-ssid", "w", "--out", str(tmp_path)])


def test_shard_format_is_checked(tmp_path):
    X = np.arange(12, dtype=np.int32).reshape(3, 4)
    make_shard.write_shard(tmp_path / "s.bin", X, np.array([0, 2, 1]), 3)
    X2, y2, n = make_shard.read_shard(tmp_path / "s.bin")
    assert (X2 == X).all() and list(y2) == [0, 2, 1] and n == 3
    with pytest.raises(ValueError):
        make_shard.write_shard(tmp_path / "s.bin", X, np.array([0, 3, 1]), 3)
    (tmp_path / "t.bin").write_bytes((tmp_path / "s.bin").read_bytes()[:-1])
    with pytest.raises(ValueError):
        make_shard.read_shard(tmp_path / "t.bin")


def test_deploy_runs_the_documented_mpremote_sequence(fleet, tmp_path):
    _shard(fleet, tmp_path / "cfg")
    dev, log = tmp_path / "board", tmp_path / "mpremote.log"
    proc = deploy(dev, tmp_path / "cfg", log=log)
    assert proc.returncode == 0, proc.stderr
    steps = log.read_text().splitlines()
    assert steps == [
        "connect /dev/ttyUSB0", "error rm: :qora_node: No such file or directory",   # a fresh board
        "connect /dev/ttyUSB0", "error rm: :qref: No such file or directory",
        "connect /dev/ttyUSB0", "mkdir :qora_node", "mkdir :qref",
        "cp __init__.py qora_node/__init__.py", "cp cbor.py qora_node/cbor.py",
        "cp hmac256.py qora_node/hmac256.py", "cp node.py qora_node/node.py",
        "cp protocol.py qora_node/protocol.py", "cp __init__.py qref/__init__.py", "cp q16.py qref/q16.py",
        "cp train.py qref/train.py", "cp main.py main.py", "cp config.json config.json",
        "cp shard.bin shard.bin", "reset"]
    assert (dev / "qref" / "train.py").read_bytes() == (FW.parents[1] / "host/qora/reference/train.py").read_bytes()
    assert (dev / "main.py").read_bytes() == (FW / "main.py").read_bytes()
    assert "+ mpremote connect /dev/ttyUSB0 fs mkdir :qora_node + fs mkdir :qref + fs cp" in proc.stdout


def test_redeploy_replaces_stale_modules_and_keeps_the_state(fleet, tmp_path):
    _shard(fleet, tmp_path / "cfg")
    dev = tmp_path / "board"
    assert deploy(dev, tmp_path / "cfg").returncode == 0
    (dev / "qora_state.json").write_text('{"round": 9}')
    assert deploy(dev, tmp_path / "cfg", mpy=True).returncode == 0
    assert not list((dev / "qora_node").glob("*.py")) and len(list((dev / "qora_node").glob("*.mpy"))) == 5
    assert (dev / "qora_state.json").read_text() == '{"round": 9}'


def test_deploy_needs_config_and_shard(tmp_path):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text("{}")
    proc = deploy(tmp_path / "board", tmp_path / "cfg")
    assert proc.returncode == 1 and "shard.bin is missing" in proc.stderr
    assert not (tmp_path / "board" / "main.py").exists()


def test_deploy_fails_without_a_board(fleet, tmp_path):
    _shard(fleet, tmp_path / "cfg")
    proc = deploy(tmp_path / "board", tmp_path / "cfg", port="/dev/ttyACM7", board_port="/dev/ttyUSB0")
    assert proc.returncode != 0 and "no device found on" in proc.stderr
