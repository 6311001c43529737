#!/usr/bin/env bash
# The main job: set up, then a federated run with attackers over MQTT on an embedded broker —
# 12 node processes (3 Byzantine) training on real data, signed updates, two aggregator services
# (the robust defence and plain FedAvg), a progress bar, result tables, a plot, both ledgers
# verified. Extra arguments go to `qora demo` (e.g. --broker mqtt://127.0.0.1:1883, --rounds 20).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
qora demo "$@"
