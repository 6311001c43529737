#!/usr/bin/env bash
# Run the qora-digits Flower app for real on this machine: one SuperLink and 6 SuperNodes
# (insecure, loopback only, free ports), then `flwr run . qora-local --stream`; everything is
# torn down on exit, on error and on Ctrl-C. Extra arguments go to `flwr run`, e.g.
#
#   ./run_local.sh                                   # 6 rounds, trimmed mean + reputation
#   ./run_local.sh -c "num-server-rounds=2 aggregation-method='multi_krum:1'"
#
# Needs the Python environment with qora-edge[flower] installed. FLWR_HOME (where the flwr CLI
# keeps its SuperLink connections, config.toml) is a temporary directory, so ~/.flwr is not
# touched; logs go to $QORA_FLOWER_LOGS (default: a temporary directory, printed at the end).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
NODES="${NODES:-6}"
PYTHON="${PYTHON:-python3}"
# Flower's commands of that Python's environment (beside it), else the ones on PATH
PYBIN="$(dirname "$(command -v "$PYTHON")")"
flower_cmd() { if [ -x "$PYBIN/$1" ]; then echo "$PYBIN/$1"; else command -v "$1" || true; fi; }
SUPERLINK="$(flower_cmd flower-superlink)"
SUPERNODE="$(flower_cmd flower-supernode)"
FLWR_BIN="$(flower_cmd flwr)"
if [ -z "$SUPERLINK" ] || [ -z "$SUPERNODE" ]; then
  echo "run_local.sh: flower-superlink / flower-supernode not found for $PYTHON: pip install 'qora-edge[flower]'" >&2
  exit 1
fi
WORK="$(mktemp -d "${TMPDIR:-/tmp}/qora-flower.XXXXXX")"
LOGS="${QORA_FLOWER_LOGS:-$WORK/logs}"
mkdir -p "$LOGS"
export FLWR_HOME="$WORK/flwr-home"
mkdir -p "$FLWR_HOME"

pids=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # SIGTERM to every process started here (SuperNodes first, then the SuperLink), by pid
  for (( i=${#pids[@]}-1; i>=0; i-- )); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$FLWR_HOME"                   # the installed app and the CLI config of this run
  rmdir "$LOGS" 2>/dev/null || true     # only when nothing was logged
  rmdir "$WORK" 2>/dev/null || true     # empty unless the logs are in it
  if (( ${#pids[@]} > 0 )); then
    echo "run_local.sh: stopped the SuperLink and $(( ${#pids[@]} - 1 )) SuperNodes; logs in $LOGS" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {  # a port nobody listens on now (the kernel picks it)
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() {  # host port seconds
  "$PYTHON" - "$@" <<'EOF'
import socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(f"nothing listens on {host}:{port} after {limit:.0f} s")
EOF
}

LINK_PORT="$(free_port)"
# The SuperLink serves its Fleet, Control and Runtime APIs on one HTTP port in Flower 1.41.
# Runtime dependency installation is off: the apps use this Python environment as it is.
"$SUPERLINK" --insecure --host 127.0.0.1 --port "$LINK_PORT" \
  --disable-runtime-dependency-installation >"$LOGS/superlink.log" 2>&1 &
pids+=($!)
wait_for_port 127.0.0.1 "$LINK_PORT" 60

for (( i=0; i<NODES; i++ )); do
  "$SUPERNODE" --insecure --superlink "127.0.0.1:$LINK_PORT" \
    --node-config "partition-id=$i num-partitions=$NODES" \
    --host 127.0.0.1 --port "$(free_port)" >"$LOGS/supernode-$i.log" 2>&1 &
  pids+=($!)
done

cat >"$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "qora-local"

[superlink.qora-local]
address = "127.0.0.1:$LINK_PORT"
insecure = true
EOF

# flwr 1.41's CLI needs typer >= 0.19; with an older one (amqtt 0.11 pins 0.15.4) use the shim
if [ -n "$FLWR_BIN" ] && "$FLWR_BIN" --version >/dev/null 2>&1; then FLWR=("$FLWR_BIN")
else FLWR=("$PYTHON" "$HERE/flwr_cli_compat.py"); fi
echo "run_local.sh: SuperLink on 127.0.0.1:$LINK_PORT, $NODES SuperNodes; ${FLWR[*]} run . qora-local --stream $*" >&2
"${FLWR[@]}" run . qora-local --stream "$@"
