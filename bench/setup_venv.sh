#!/usr/bin/env bash
# The peers of bench/bench_aggregators.py, in their own virtualenv so the shared environment is
# left as it is. Qora Edge itself comes through --system-site-packages (pip install -e . there).
#   bash bench/setup_venv.sh [VENV]      (default /work/bench-venv)
set -euo pipefail
VENV="${1:-/work/bench-venv}"
python3 -m venv --system-site-packages "$VENV"
PIP="$VENV/bin/pip"
# torch first: 2.13.0 is a CPU wheel on this machine's disk; a bare `torch` requirement (byzfl has
# one) would otherwise pull a CUDA build of several GB. Keep it pinned in the same command so the
# resolver picks the matching torchvision (0.28.0) instead of upgrading torch.
"$PIP" install 'torch==2.13.0'
"$PIP" install 'torch==2.13.0' 'flwr>=1.41,<1.42' byzfl threadpoolctl || echo "warning: flwr/byzfl install failed" >&2
# qora-fl's import name is `qora`, as ours: keep it out of site-packages; the bench runs it in a
# child process with this folder first on sys.path.
"$PIP" install --no-deps --target "$VENV/qora-fl" qora-fl || echo "warning: qora-fl install failed" >&2
"$VENV/bin/python" -c "import qora.native, qora; print('qora.native OK from', qora.__file__)"
