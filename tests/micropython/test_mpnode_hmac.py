"""qora_node.hmac256 on the real MicroPython VM (and under CPython): the RFC 4231 test vectors
of HMAC-SHA-256, keys of every length class against CPython's hmac, messages in parts, and the
constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import shutil

import pytest

from mpnode_helpers import FW, RUNTIMES, run_on

# RFC 4231 section 4: (key, data, HMAC-SHA-256); case 5's output is truncated to 128 bits.
RFC4231 = [
    ("0b" * 20, b"Hi There".hex(),
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe".hex(), b"what do ya want for nothing?".hex(),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    ("aa" * 20, "dd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)).hex(), "cd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ("0c" * 20, b"Test With Truncation".hex(), "a3b6167473100ee06e0c796c2955552b"),
    ("aa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First".hex(),
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ("aa" * 131, (b"This is a test using a larger than block-size key and a larger than block-size "
                  b"data. The key needs to be hashed before being used by the HMAC algorithm.").hex(),
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

SCRIPT = r'''
import binascii, json
from qora_node.hmac256 import equal, hmac_sha256

u = binascii.unhexlify
with open("cases.json") as f:
    cases = json.load(f)
for key, parts in cases["mac"]:
    print("M " + str(binascii.hexlify(hmac_sha256(u(key), *[u(p) for p in parts])), "ascii"))
for a, b in cases["equal"]:
    print("Q %d" % equal(u(a), u(b)))
print("done")
'''


def _cases():
    rng = random.Random(4231)
    mac = [[k, [d]] for k, d, _ in RFC4231]
    for n in (0, 1, 31, 32, 63, 64, 65, 128, 200):
        key = bytes(rng.randrange(256) for _ in range(n))
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
        cut = sorted(rng.sample(range(len(data) + 1), 2)) if data else [0, 0]
        mac.append([key.hex(), [data.hex()]])
        mac.append([key.hex(), [data[:cut[0]].hex(), data[cut[0]:cut[1]].hex(), data[cut[1]:].hex()]])
    mac.append(["00" * 32, []])
    equal = [["", ""], ["00", "00"], ["00", "01"], ["0001", "00"], ["ab" * 32, "ab" * 32],
             ["ab" * 32, "ab" * 31 + "aa"]]
    return {"mac": mac, "equal": equal}


@pytest.fixture(scope="module", params=RUNTIMES)
def output(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("hmac_board")
    shutil.copytree(FW / "qora_node", d / "qora_node")
    cases = _cases()
    (d / "cases.json").write_text(json.dumps(cases))
    (d / "check.py").write_text(SCRIPT)
    lines = run_on(request.param, d, d / "check.py")
    assert lines[-1] == "done"
    return request.param, cases, lines


def test_rfc4231_vectors(output):
    runtime, _, lines = output
    got = [line[2:] for line in lines if line.startswith("M ")]
    for i, (_, _, want) in enumerate(RFC4231):
        assert got[i].startswith(want), "%s: RFC 4231 test case %d" % (runtime, i + 1)
        assert len(got[i]) == 64


def test_every_key_length_and_split_matches_cpython_hmac(output):
    runtime, cases, lines = output
    got = [line[2:] for line in lines if line.startswith("M ")]
    assert len(got) == len(cases["mac"])
    for (key, parts), g in zip(cases["mac"], got):
        want = hmac.new(bytes.fromhex(key), b"".join(bytes.fromhex(p) for p in parts),
                        hashlib.sha256).hexdigest()
        assert g == want, "%s: key of %d bytes" % (runtime, len(key) // 2)


def test_constant_time_equal(output):
    runtime, _, lines = output
    assert [line[2:] for line in lines if line.startswith("Q ")] == ["1", "1", "0", "0", "1", "0"]
