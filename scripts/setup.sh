#!/usr/bin/env bash
# Set up a fresh Debian machine for Qora Edge: the cross toolchains and emulators the
# tests use, then the Python package with its test extras (the C core compiles here).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: compilers for every target the core is proven on, and QEMU to run them.
debs=(make gcc clang libclang-rt-14-dev gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm qemu-system-misc
      gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106 binutils-xtensa-lx106)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The package itself, editable so tests see the sources; CFFI compiles shared_c/ during this step.
python3 -m pip install -q --disable-pip-version-check -e ".[test]"

# The real MicroPython VM (WebAssembly, under Node.js) the reference tests run on; pinned by
# tools/micropython/package-lock.json.
if [ ! -d tools/micropython/node_modules ]; then
  echo "setup: installing the MicroPython VM (npm ci in tools/micropython)"
  npm ci --silent --prefix tools/micropython
fi

# PyTorch, CPU build, for the TorchAdapter tests: these machines keep the 2.13.0 CPU wheel on
# disk, so this is a local install (~20 s). Elsewhere an unpinned `torch` would pull a CUDA build
# of several GB, which is why it is not a package dependency.
if ! python3 -c "import torch" 2>/dev/null; then
  python3 -m pip install -q --disable-pip-version-check "torch==2.13.0" \
    || echo "setup: torch 2.13.0 not available here; the TorchAdapter test checks its ImportError"
fi

python3 -c "import qora, qora.native; print('setup: qora', qora.__version__, 'ready')"
