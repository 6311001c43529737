#!/usr/bin/env bash
# The main job as it stands: set up, then a federated evaluation with attackers on real data
# (digits; every defence against the main attacks at 0 and 30 % Byzantine clients), with a
# progress bar, a result table, and CSV + plots in eval-results/.
# The MQTT federated run (`qora demo`) joins this when the service lands (issue 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 examples/native_aggregation.py
qora eval --quick --out eval-results
