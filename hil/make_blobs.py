"""Write the config blobs to flash onto real boards for the HIL scenarios.

    python -m hil.make_blobs --fleet-dir fleet/ --out blobs/ [--byzantine b3]

``fleet-dir`` is a `qora provision --out` directory; one blob per node (softmax regression,
a 40-row digits shard each, as the emulated rig). Flash each with the board's tool at its
config address (docs/firmware.md), then run
``QORA_HIL_PORTS=/dev/ttyUSB0,… QORA_HIL_BLOBS=blobs/b0.blob,… pytest tests/hil -k real``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hil.rig import BATCH, EPOCHS, LR_Q, ROWS, SIZES
from qora import native
from qora.nodeconfig import NodeConfig
from qora.provision import load_keys
from qora.sim import data as data_lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fleet-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--byzantine", default="", help="comma-separated node ids that sign-flip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mesh", action="store_true", help="mesh mode: every node gets every node's id and key")
    args = ap.parse_args()
    keys = load_keys(args.fleet_dir / "keys.json")
    nodes = sorted(keys.nodes)
    bad = {n for n in args.byzantine.split(",") if n}
    ds = data_lib.load_digits(seed=args.seed)
    shards = data_lib.partition(ds.y_train, len(nodes), "iid", seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, node in enumerate(nodes):
        idx = shards[i][:ROWS]
        cfg = NodeConfig(fleet=keys.fleet, node=node, key=keys.nodes[node],
                         X_q=native.to_q16(ds.X_train[idx].astype(np.float32))[0], y=ds.y_train[idx],
                         sizes=SIZES, epochs=EPOCHS, batch=BATCH, seed=1000 + i, lr_q=LR_Q,
                         attack="sign_flip" if node in bad else "none",
                         mesh=tuple((n, keys.nodes[n]) for n in nodes) if args.mesh else ())
        path = args.out / f"{node}.blob"
        path.write_bytes(cfg.blob())
        print(path)


if __name__ == "__main__":
    main()
