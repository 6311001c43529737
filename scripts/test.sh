#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, then pytest (C unit tests, sanitizers,
# property tests, and the cross-target golden vectors under QEMU). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -v -ra "$@"
