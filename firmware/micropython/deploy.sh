#!/usr/bin/env bash
# Put the Qora MicroPython node onto a board that already runs MicroPython (README.md says
# how to flash MicroPython itself with esptool), then reset it so main.py starts the node.
#
#   firmware/micropython/deploy.sh [--mpy] [--stage DIR] PORT CONFIG_DIR
#
#   PORT        the board's serial port, e.g. /dev/ttyUSB0 (anything `mpremote connect` takes)
#   CONFIG_DIR  holds config.json and shard.bin (make_shard.py writes them)
#   --mpy       compile every module with mpy-cross first (.mpy loads faster and takes less
#               RAM; mpy-cross must emit the .mpy version of the board's MicroPython: v6.3
#               for MicroPython 1.23 and later)
#   --stage DIR build the board's file tree in DIR (kept) instead of a temporary directory
#
# The board ends up with:
#   /main.py /config.json /shard.bin    the node, its settings and secrets, its data
#   /qora_node/*.py|.mpy                cbor, hmac256, protocol, node
#   /qref/q16 train (.py|.mpy)          the integer reference kernels (host/qora/reference)
#   /qora_state.json                    written by the node (left alone here)
#
# The mpremote commands are printed before they run. MPREMOTE and MPY_CROSS override the
# tools' names.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mpremote="${MPREMOTE:-mpremote}"
mpy_cross="${MPY_CROSS:-mpy-cross}"

usage() {
    sed -n '5,12p' "$0" >&2
    exit 2
}

mpy=0
stage=""
while [ $# -gt 0 ]; do
    case "$1" in
        --mpy) mpy=1; shift ;;
        --stage) [ $# -ge 2 ] || usage; stage="$2"; shift 2 ;;
        -h|--help) usage ;;
        -*) echo "deploy.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[ $# -eq 2 ] || usage
port="$1"
config_dir="$2"
for f in config.json shard.bin; do
    if [ ! -f "$config_dir/$f" ]; then
        echo "deploy.sh: $config_dir/$f is missing (make_shard.py writes it)" >&2
        exit 1
    fi
done

# ---- the board's file tree -------------------------------------------------------------------
if [ -z "$stage" ]; then
    stage="$(mktemp -d)"
    trap 'rm -rf "$stage"' EXIT
fi
rm -rf "$stage/qora_node" "$stage/qref"
mkdir -p "$stage/qora_node" "$stage/qref"
cp "$here"/qora_node/*.py "$stage/qora_node/"
cp "$root/host/qora/reference/q16.py" "$root/host/qora/reference/train.py" "$stage/qref/"
printf '# q16 and train from host/qora/reference (copied by deploy.sh)\n' > "$stage/qref/__init__.py"
cp "$here/main.py" "$stage/"
cp "$config_dir/config.json" "$config_dir/shard.bin" "$stage/"
if [ "$mpy" = 1 ]; then
    for f in "$stage"/qora_node/*.py "$stage"/qref/*.py; do
        "$mpy_cross" -o "${f%.py}.mpy" "$f"
        rm "$f"
    done
fi

# ---- onto the board --------------------------------------------------------------------------
run() {
    echo "+ $*"
    "$@"
}
# Old modules go first, so a stale .py cannot shadow a new .mpy (or the other way round).
# They are absent on a fresh board: that failure is expected and ignored.
for d in qora_node qref; do
    echo "+ $mpremote connect $port fs rm -r :$d"
    "$mpremote" connect "$port" fs rm -r ":$d" >/dev/null 2>&1 || true
done
run "$mpremote" connect "$port" \
    fs mkdir :qora_node + fs mkdir :qref + \
    fs cp "$stage"/qora_node/* :qora_node/ + \
    fs cp "$stage"/qref/* :qref/ + \
    fs cp "$stage/main.py" :main.py + \
    fs cp "$stage/config.json" :config.json + \
    fs cp "$stage/shard.bin" :shard.bin + \
    reset
echo "deployed to $port; watch it with: $mpremote connect $port repl  (Ctrl-] leaves)"
