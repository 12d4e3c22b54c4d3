#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole default
# test suite through ctest. Longer soak/simulation runs: CAIRN_SIM_SEEDS=100000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${CAIRN_BUILD_DIR:-build}"
# cluster-pending: real-process cluster tests whose behaviour has not landed yet (tests/cluster/CMakeLists.txt).
ctest --output-on-failure -j "$(nproc)" --timeout 900 -LE cluster-pending "$@"
