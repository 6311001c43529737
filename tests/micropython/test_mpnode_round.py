"""Whole rounds of the MicroPython node, as deployed on a board, with hardware stand-ins.

A fleet is provisioned (qora.provision), make_shard.py writes node-2's shard and config.json,
deploy.sh puts the node on a "board" (a directory, through the stand-in mpremote), and main.py
runs there -- on the real MicroPython VM and under CPython -- against the stand-in broker fed
with ROUND and MODEL messages that qora.protocol encodes. The UPDATE bytes the node publishes
must equal what the host computes from the same shard, seed and model:
qora.reference.train.train_node_q16 on CPython, delta = local - global (saturating), then
qora.protocol.make_update.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from qora.protocol import (Encoding, RoundAnnouncement, make_model_chunks, make_update, model_digest,
                           model_topic, round_topic)
from qora.provision import provision
from qora.reference.train import train_node_q16
from qora.sim.fixed import Q16Model

from mpnode_helpers import RUNTIMES, SCENARIO, deploy, end_of, events, published, run_on  # isort: skip
import make_shard  # noqa: E402  (firmware/micropython/, on sys.path through mpnode_helpers)

FLEET, NODE = "lab", "node-2"
NODES = ["node-1", "node-2", "node-3"]
MASK32 = 0xFFFFFFFF
I32_MIN, I32_MAX = -2**31, 2**31 - 1
SOFTMAX, MLP = [64, 10], [64, 32, 10]


def round_seed(seed: int, rnd: int, epochs: int) -> int:
    """The per-round seed of the C node (node.h: qn_round_seed, seed + round * epochs) and of
    qora_node.node.round_seed, restated."""
    return (seed + rnd * max(epochs, 1)) & MASK32


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    provision(FLEET, NODES, d)
    return d


def make_config(fleet_dir, out, *, model="softmax", rows=40, epochs=2, batch=16, lr="0.5", extra=None):
    make_shard.main(["--credentials", str(fleet_dir / "nodes" / f"{NODE}.json"), "--broker",
                     "mqtt://10.0.0.1:1883", "--wifi-ssid", "lab-wifi", "--wifi-password", "pw",
                     "--out", str(out), "--max-rows", str(rows), "--model", model, "--epochs",
                     str(epochs), "--batch-size", str(batch), "--lr", lr])
    cfg = json.loads((out / "config.json").read_text())
    cfg.update({"retry_delay_s": 0, "reset_delay_s": 0})
    cfg.update(extra or {})
    (out / "config.json").write_text(json.dumps(cfg))
    return cfg


def board(tmp_path, fleet_dir, *, mpy=False, **kw):
    cfg_dir = tmp_path / "config"
    cfg = make_config(fleet_dir, cfg_dir, **kw)
    dev = tmp_path / "board"
    proc = deploy(dev, cfg_dir, mpy=mpy)
    assert proc.returncode == 0, proc.stderr
    return dev, cfg


def announce(version, params, rnd, layout, chunk_elements, *, mode="q16_16", deadline=1767225600):
    chunks = make_model_chunks(FLEET, version, params, mode, chunk_elements)
    ann = RoundAnnouncement(fleet=FLEET, round=rnd, version=version, digest=model_digest(params, mode),
                            deadline=deadline, method="trimmed_mean:0.2", mode=mode,
                            chunk_elements=chunk_elements, quorum=2, elements=int(params.size),
                            layout=tuple(layout), model_chunks=len(chunks))
    return ann, [(model_topic(FLEET, c.index), c.encode()) for c in chunks]


def expected_update(cfg, dev, params, ann, layout):
    """The host's computation of the node's update messages."""
    X, y, _ = make_shard.read_shard(dev / "shard.bin")
    tr = cfg["training"]
    local = train_node_q16(params.tolist(), list(layout), X.tolist(), y.tolist(), tr["epochs"],
                           tr["batch_size"], tr["lr_q"], round_seed(tr["seed"], ann.round, tr["epochs"]))
    delta = np.clip(np.array(local, np.int64) - params.astype(np.int64), I32_MIN, I32_MAX).astype(np.int32)
    return make_update(FLEET, NODE, ann.round, delta, Encoding.Q16, len(y), ann.chunk_elements,
                       bytes.fromhex(cfg["key"]))


def scenario(dev, retained, script=(), **extra):
    sc = {"retained": [[t, p.hex()] for t, p in retained],
          "script": [[[t, p.hex(), r] for t, p, r in batch] for batch in script]}
    sc.update(extra)
    (dev / "scenario.json").write_text(json.dumps(sc))


def init_params(layout, seed=3):
    return Q16Model(tuple(layout)).init_params(seed).astype(np.int32)


# ---- one round -----------------------------------------------------------------------------
CASES = {
    # softmax regression, 650 parameters in chunks of 256: 3 update chunks, 2 epochs
    "softmax": dict(model="softmax", layout=SOFTMAX, chunk_elements=256, rows=40, epochs=2),
    # the ~2.4k-parameter MLP in chunks of 1024: 3 update chunks
    "mlp": dict(model="mlp", layout=MLP, chunk_elements=1024, rows=32, epochs=2),
}


@pytest.fixture(scope="module", params=[(r, c) for r in RUNTIMES for c in CASES],
                ids=lambda p: "%s-%s" % p)
def one_round(request, fleet_dir, tmp_path_factory):
    runtime, case = request.param
    c = CASES[case]
    tmp = tmp_path_factory.mktemp("round_%s_%s" % (runtime, case))
    dev, cfg = board(tmp, fleet_dir, model=c["model"], rows=c["rows"], epochs=c["epochs"])
    params = init_params(c["layout"])
    ann, chunks = announce(2, params, 3, c["layout"], c["chunk_elements"])
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks)
    lines = run_on(runtime, dev, SCENARIO)
    return dict(runtime=runtime, case=case, dev=dev, cfg=cfg, lines=lines, evs=events(lines),
                want=expected_update(cfg, dev, params, ann, c["layout"]), ann=ann, chunks=chunks)


def test_update_bytes_equal_the_host_computation(one_round):
    got = published(one_round["evs"], "update")
    want = one_round["want"]
    assert len(want) == 3
    assert len(got) == len(want), "\n".join(one_round["lines"])
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, "%s %s: update chunk %d differs from the host's" % (
            one_round["runtime"], one_round["case"], i)


def test_connects_as_the_protocol_says(one_round):
    evs, cfg = one_round["evs"], one_round["cfg"]
    assert end_of(one_round["lines"]) == "stop"
    connect = [e for e in evs if e[0] == "connect"]
    assert len(connect) == 1
    _, client_id, host, port, user, password, keepalive, will, clean = connect[0]
    assert client_id == f"{FLEET}-{NODE}" and (host, port) == ("10.0.0.1", 1883)
    assert (user, password) == (NODE, cfg["mqtt"]["password"]) and keepalive == 120
    status_offline = "a50001010402636c616203666e6f64652d3213f4"
    assert will == [f"qora/v1/{FLEET}/status/{NODE}", status_offline, True, 1]
    pubs = [e for e in evs if e[0] == "publish"]
    assert pubs[0] == ["publish", f"qora/v1/{FLEET}/status/{NODE}", status_offline[:-2] + "f5", True, 1]
    subs = [e[1:] for e in evs if e[0] == "subscribe"]
    assert subs == [[f"qora/v1/{FLEET}/round", 1], [f"qora/v1/{FLEET}/model/+", 1]]
    assert all(e[1] == f"qora/v1/{FLEET}/update/{NODE}" and e[3:] == [False, 1] for e in pubs[1:])
    wifi = [line for line in one_round["lines"] if line.startswith("WIFI ")]
    assert json.loads(wifi[0][5:]) == [["lab-wifi", "pw"]]


def test_the_node_prints_its_progress(one_round):
    text = "\n".join(one_round["lines"])
    for what in ("qora: node node-2 of fleet lab:", "qora: Wi-Fi up: 10.0.0.42",
                 "qora: connected to 10.0.0.1:1883 as node-2", "qora: round 3: model v2",
                 "qora: model v2 complete", "qora: trained in", "qora: sent update for round 3: 3 chunk(s)"):
        assert what in text


def test_state_file_remembers_the_round(one_round):
    st = json.loads((one_round["dev"] / "qora_state.json").read_text())
    assert st == {"fleet": FLEET, "node": NODE, "round": 3, "version": 2}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_reboot_does_not_retrain_a_sent_round(runtime, fleet_dir, tmp_path):
    """The same retained state after a reboot: the node reconnects and sends nothing."""
    dev, cfg = board(tmp_path, fleet_dir, rows=16, epochs=1)
    params = init_params(SOFTMAX)
    ann, chunks = announce(2, params, 3, SOFTMAX, 1024)
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks)
    first = run_on(runtime, dev, SCENARIO)
    assert published(events(first), "update") == expected_update(cfg, dev, params, ann, SOFTMAX)
    again = run_on(runtime, dev, SCENARIO)                  # the board restarts: same files
    assert published(events(again), "update") == []
    assert published(events(again), "status") == [bytes.fromhex("a50001010402636c616203666e6f64652d3213f5")]
    assert "qora: state: round 3 (model v2) already sent" in again
    (dev / "qora_state.json").write_text('{"fleet": "lab", "node": "no')   # a torn write
    third = run_on(runtime, dev, SCENARIO)                   # retrains: the same bytes again
    assert published(events(third), "update") == published(events(first), "update")


# ---- several rounds, reconnects, errors ------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_next_round_waits_for_its_whole_model(runtime, fleet_dir, tmp_path):
    dev, cfg = board(tmp_path, fleet_dir, rows=24, epochs=1)
    p2 = init_params(SOFTMAX)
    p3 = p2.copy()
    p3[::7] += 1234
    p3[0] = I32_MAX
    ann3, chunks2 = announce(2, p2, 3, SOFTMAX, 256)
    ann4, chunks3 = announce(3, p3, 4, SOFTMAX, 256)
    ann3_later, _ = announce(2, p2, 3, SOFTMAX, 256, deadline=1767229200)
    # a MODEL chunk of version 3 whose data is still version 2's (partly updated retained chunks)
    stale = make_model_chunks(FLEET, 3, p3, "q16_16", 256)[1]
    stale = type(stale)(**{**vars(stale), "data": make_model_chunks(FLEET, 2, p2, "q16_16", 256)[1].data})
    junk = [(round_topic(FLEET), b"\xa1\x00\x01", True),                 # malformed ROUND
            (model_topic(FLEET, 5), chunks3[0][1], True),               # chunk 0 on topic model/5
            (f"qora/v1/{FLEET}/model/07", chunks3[0][1], True)]         # a topic of the wrong shape
    script = [
        [(round_topic(FLEET), ann3_later.encode(), True)],              # round 3 extended: nothing new
        [(round_topic(FLEET), ann4.encode(), True)] + junk,            # round 4 announced first
        [(model_topic(FLEET, 1), stale.encode(), True)] + [(t, p, True) for t, p in chunks3[::2]],
        [(model_topic(FLEET, 1), chunks3[1][1], True)],                 # now the model is whole
    ]
    scenario(dev, [(round_topic(FLEET), ann3.encode())] + chunks2, script)
    lines = run_on(runtime, dev, SCENARIO)
    got = published(events(lines), "update")
    want = expected_update(cfg, dev, p2, ann3, SOFTMAX) + expected_update(cfg, dev, p3, ann4, SOFTMAX)
    assert len(got) == 6 and got == want, "\n".join(lines)
    # training started only after the last chunk of version 3 came
    evs = events(lines)
    last_release = max(i for i, e in enumerate(evs) if e[0] == "release")
    first_r4 = [i for i, e in enumerate(evs) if e[0] == "publish" and bytes.fromhex(e[2]) == want[3]][0]
    assert first_r4 > last_release
    assert sum("ignored a bad message" in line for line in lines) == 3
    assert json.loads((dev / "qora_state.json").read_text())["round"] == 4


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_reconnects_and_finishes_an_update_after_a_lost_connection(runtime, fleet_dir, tmp_path):
    dev, cfg = board(tmp_path, fleet_dir, rows=24, epochs=1)
    params = init_params(SOFTMAX)
    ann, chunks = announce(2, params, 3, SOFTMAX, 256)
    # publish 1: STATUS online; 2: update chunk 0; 3: chunk 1 -> the connection drops
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks, fail_publish=[3], refuse_connects=1)
    lines = run_on(runtime, dev, SCENARIO)
    evs = events(lines)
    want = expected_update(cfg, dev, params, ann, SOFTMAX)
    assert published(evs, "update") == want          # chunk 1 again after the reconnect, then 2
    kinds = [e[0] for e in evs]
    assert kinds.count("refused") == 1 and kinds.count("connect") == 2 and kinds.count("lost") == 1
    will = [e for e in evs if e[0] == "will"]
    assert will and will[0][2] == "a50001010402636c616203666e6f64652d3213f4"   # offline, by the broker
    assert published(evs, "status")[-1].endswith(b"\xf5")                    # online again
    assert sum("reconnecting" in line for line in lines) == 2
    assert any(line.startswith("qora: sent update for round 3: 2 chunk(s), ")
               and line.endswith("(from chunk 1 on, after a reconnect)") for line in lines)
    assert json.loads((dev / "qora_state.json").read_text())["round"] == 3


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_float32_round_is_skipped(runtime, fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1)
    params = np.zeros(650, np.float32)
    ann, chunks = announce(2, params, 3, SOFTMAX, 1024, mode="float32")
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks)
    lines = run_on(runtime, dev, SCENARIO)
    assert published(events(lines), "update") == []
    assert "qora: skipping round 3: mode float32 (this node trains in q16_16 only)" in lines


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_layout_that_does_not_fit_is_skipped(runtime, fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1)
    params = init_params([63, 10])
    ann, chunks = announce(2, params, 3, [63, 10], 1024)
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks)
    lines = run_on(runtime, dev, SCENARIO)
    assert published(events(lines), "update") == []
    assert any(line.startswith("qora: skipping round 3: layout [63, 10] does not fit") for line in lines)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_fatal_errors_reset_the_board(runtime, fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1)
    (dev / "shard.bin").unlink()
    scenario(dev, [])
    lines = run_on(runtime, dev, SCENARIO)
    assert end_of(lines) == "reset"
    assert any(line.startswith("qora: fatal:") for line in lines)
    assert "qora: resetting in 0 s" in lines


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_no_wifi_resets_the_board(runtime, fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1, extra={"wifi_timeout_s": 0})
    scenario(dev, [], fail_ssids=["lab-wifi"])
    lines = run_on(runtime, dev, SCENARIO)
    assert end_of(lines) == "reset"
    assert any("not connected after 0 s" in line for line in lines)
    assert not [e for e in events(lines) if e[0] == "connect"]


def test_keepalive_pings_when_idle(fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1, extra={"mqtt": {
        "host": "10.0.0.1", "port": 1883, "user": NODE, "password": "x", "keepalive": 1}})
    scenario(dev, [], idle_limit=30)        # 30 polls of 50 ms: more than half a keepalive
    lines = run_on("micropython", dev, SCENARIO)
    assert [e for e in events(lines) if e[0] == "ping"]


def test_compiled_mpy_modules_give_the_same_bytes(fleet_dir, tmp_path):
    """deploy.sh --mpy: the board gets .mpy files only, and they run on MicroPython 1.27."""
    dev, cfg = board(tmp_path, fleet_dir, mpy=True, rows=24, epochs=1)
    mods = sorted(p.relative_to(dev).as_posix() for p in dev.rglob("*.*py"))
    assert mods == ["main.py", "qora_node/__init__.mpy", "qora_node/cbor.mpy", "qora_node/hmac256.mpy",
                    "qora_node/node.mpy", "qora_node/protocol.mpy", "qref/__init__.mpy", "qref/q16.mpy",
                    "qref/train.mpy"]
    params = init_params(SOFTMAX)
    ann, chunks = announce(2, params, 3, SOFTMAX, 256)
    scenario(dev, [(round_topic(FLEET), ann.encode())] + chunks)
    lines = run_on("micropython", dev, SCENARIO)
    assert published(events(lines), "update") == expected_update(cfg, dev, params, ann, SOFTMAX)
    shutil.rmtree(dev)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctrl_c_says_offline_and_disconnects(runtime, fleet_dir, tmp_path):
    dev, _ = board(tmp_path, fleet_dir, rows=8, epochs=1)
    scenario(dev, [], ctrl_c=True)
    lines = run_on(runtime, dev, SCENARIO)
    assert end_of(lines) == "interrupt"
    evs = events(lines)
    assert [e[0] for e in evs][-2:] == ["publish", "disconnect"]
    assert evs[-2][1:] == [f"qora/v1/{FLEET}/status/{NODE}", "a50001010402636c616203666e6f64652d3213f4", True, 1]
    assert not [e for e in evs if e[0] == "will"]
