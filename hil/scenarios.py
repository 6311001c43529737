"""The HIL scenarios, written once for any rig (emulated boards in CI, real boards on a desk).

Each takes a started ``Rig`` and raises AssertionError (with the rig's state) when the
fleet does not behave. They return a small dict of what they measured.
"""

from __future__ import annotations

import time

import numpy as np

from hil.rig import Rig


def one_round(rig: Rig) -> dict:
    """Every board trains on the announced model and its update goes into the aggregate."""
    closed = rig.wait_rounds(1)
    assert len(closed[0].record["inputs"]) == len(rig.nodes), rig.describe("not every board's update went in")
    rig.service.stop()
    return rig.check_replay()


def ten_rounds_with_a_byzantine_board(rig: Rig) -> dict:
    """A sign-flipping board is trimmed away, loses reputation and ends banned."""
    assert rig.byzantine, "this scenario needs a Byzantine board"
    closed = rig.wait_rounds(10, timeout=60 + 20 * len(rig.nodes))
    rig.service.stop()
    bad = [rig.nodes[i] for i in rig.byzantine]
    last = closed[-1]
    for node in bad:
        assert last.scores[node] < last.scores[rig.nodes[0]], rig.describe(f"{node} kept its reputation")
    banned = [n for n in bad if last.scores[n] < 0.2]
    result = rig.check_replay()
    result["banned"] = banned
    return result


def board_reset_mid_round(rig: Rig) -> dict:
    """A board power-cycled after sending: it does not train the round again (its flash says
    so), the round still completes, and the next round includes it."""
    rig.wait_rounds(1)
    victim = rig.boards[0]
    # wait until round 2's update of the victim is in, then cut its power
    end = time.monotonic() + 60
    while time.monotonic() < end and victim.node not in rig.engine.complete_nodes():
        time.sleep(0.05)
    victim.reset()
    closed = rig.wait_rounds(3, timeout=120)
    rig.service.stop()
    for c in closed:
        assert victim.node in [i["node"] for i in c.record["inputs"]], rig.describe(
            f"round {c.round} lost {victim.node}")
    return rig.check_replay()


def garbage_on_the_line(rig: Rig) -> dict:
    """Noise on a board's serial line costs nothing but the frames it hits."""
    link = rig.gateway.links[0]
    rng = np.random.default_rng(7)
    closed = rig.wait_rounds(1)
    # the gateway's view: junk and a corrupted frame as if the board had sent them (an emulated
    # board's line is a clean socket, so they are fed to the gateway's decoder for that link)
    junk = bytes(rng.integers(1, 256, 500, dtype=np.uint8)) + b"\x00" + b"\x05\x01\x02\x03\x04\x05\x06\x00"
    before = link.stats.decoder.cobs_errors + link.stats.decoder.crc_errors
    for frame in link.stats.decoder.feed(junk):
        link._on_frame(frame.type, frame.content)
    assert link.stats.decoder.cobs_errors + link.stats.decoder.crc_errors > before
    # the board's view: junk on its receive line before the next round's frames
    link_b = rig.gateway.links[1]
    link_b._write(bytes(rng.integers(1, 256, 300, dtype=np.uint8)) + b"\x00")
    link_b._write(b"\x07garbage-with-no-valid-crc\x00")
    closed = rig.wait_rounds(3, timeout=120)
    rig.service.stop()
    assert all(len(c.record["inputs"]) == len(rig.nodes) for c in closed), rig.describe("a board dropped out")
    return rig.check_replay()


def mesh_round(rig: Rig, rounds: int = 2) -> dict:
    """No aggregator: each board aggregates its neighbours' updates itself (trimmed mean,
    one trimmed per side) and every honest board reaches the same model, which the host's
    own replay confirms."""
    from qora import native
    from qora.protocol import RoundAnnouncement, make_model_chunks, model_digest, model_topic, round_topic
    from qora.mqtt_client import make_client
    from qora.mqtt_url import parse_broker_url
    from qora.service.compute import apply_model

    # the bootstrapper: announce round 1 on the initial model (retained), then step back
    client = make_client(parse_broker_url(rig.broker), f"{rig.fleet}-bootstrap")
    time.sleep(1.0)
    chunks = make_model_chunks(rig.fleet, 0, rig.init, "q16_16", 1024)
    for c in chunks:
        client.publish(model_topic(rig.fleet, c.index), c.encode(), qos=1, retain=True)
    ann = RoundAnnouncement(fleet=rig.fleet, round=1, version=0, digest=model_digest(rig.init, "q16_16"),
                            deadline=int(time.time()) + 600, method="trimmed_mean:1", mode="q16_16",
                            chunk_elements=1024, quorum=len(rig.nodes), elements=int(rig.init.size),
                            layout=(64, 10), model_chunks=len(chunks))
    client.publish(round_topic(rig.fleet), ann.encode(), qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    # the host's replay of the mesh
    model = rig.init.copy()
    for r in range(1, rounds + 1):
        deltas = np.stack([rig.expected_update(n, r, model) for n in rig.nodes])
        agg = native.trimmed_mean(deltas, 1, mode="q16_16").raw
        model = apply_model(model, agg, "q16_16")
    want = model_digest(model, "q16_16").hex()
    honest = [b for i, b in enumerate(rig.boards) if i not in rig.byzantine]
    end = time.monotonic() + 60 + 30 * rounds
    reported: dict[str, str] = {}
    while time.monotonic() < end and len(reported) < len(honest):
        for b in honest:
            for line in b.log().splitlines() + rig.gateway_logs(b.node):
                if f"mesh round {rounds} digest " in line:
                    reported[b.node] = line.rsplit(" ", 1)[-1]
        time.sleep(0.2)
    assert len(reported) == len(honest), rig.describe(f"mesh: only {sorted(reported)} reported round {rounds}")
    assert set(reported.values()) == {want}, rig.describe(f"mesh digests {reported} != host replay {want}")
    return {"boards": len(reported), "digest": want}
