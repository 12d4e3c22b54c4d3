#!/usr/bin/env bash
# Cairn vs etcd on this machine, driven by the same load generator (`cairn bench`):
# a 3-member etcd and a 3-node x 4-shard Cairn on loopback, tx1 / tx100 / point at
# 1, 16 and 64 clients, then failover (kill -9 the leader -> next acknowledged write,
# 5 times). Prints the table with the ratios; writes OUT_DIR/results.json, etcd.json,
# cairn.json and cairn_vs_etcd.png. Everything it starts is stopped by PID on exit.
#   bash bench/cluster/compare_etcd.sh [OUT_DIR]
# Knobs (environment): DURATION_S (10), WARMUP_S (2), CLIENTS (1,16,64),
# WORKLOADS (tx1,tx100,point), FAILOVER_ROUNDS (5), CAIRN_MODE (auto: cluster up,
# else serve --config, else one embedded node), MAX_S (1800), ONLY (both|etcd|cairn),
# PERF=1 (perf record the Cairn processes during their bench -> OUT_DIR/perf-cairn.txt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/out}
BUILD=${CAIRN_BUILD_DIR:-$ROOT/build}
mkdir -p "$OUT"
bash "$ROOT/scripts/setup.sh"   # etcd-server, etcd-client, python3-matplotlib among the rest
[[ -f $BUILD/build.ninja ]] || CAIRN_BUILD_DIR=$BUILD bash "$ROOT/scripts/build.sh" >/dev/null
ninja -C "$BUILD" cairn_cli >/dev/null
echo "machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
# Debian's matplotlib is importable by the system python3.
PY=python3; [[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
exec "$PY" "$HERE/compare_etcd.py" --cairn "$BUILD/src/cli/cairn" --out "$OUT" \
  --duration-s "${DURATION_S:-10}" --warmup-s "${WARMUP_S:-2}" --clients "${CLIENTS:-1,16,64}" \
  --workloads "${WORKLOADS:-tx1,tx100,point}" --failover-rounds "${FAILOVER_ROUNDS:-5}" \
  --cairn-mode "${CAIRN_MODE:-auto}" --max-s "${MAX_S:-1800}" --only "${ONLY:-both}" \
  ${PERF:+--perf}
