#!/usr/bin/env bash
# Configures and builds Cairn into ./build (Ninja, RelWithDebInfo, -Werror).
# Extra arguments go to cmake's configure step (e.g. -DCAIRN_ASAN=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${CAIRN_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_WERROR=ON "$@" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
