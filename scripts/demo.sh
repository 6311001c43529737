#!/usr/bin/env bash
# The main job as it stands: set up, then robust aggregation under attack with the
# native core in both numeric modes (a table of each defence's error).
# The MQTT federated run (`qora demo`) replaces this when the service lands (issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 examples/native_aggregation.py
