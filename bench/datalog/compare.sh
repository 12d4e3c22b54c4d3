#!/usr/bin/env bash
# Runs DataScript (npm `datascript` in node, via bench/datascript's runner and
# data generator) and cairn_bench_datalog (the engine over the in-memory index,
# same data shapes from its own seeded generator) and prints median ms and the
# ratio per benchmark.
#   bash bench/datalog/compare.sh [BUILD_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${1:-$ROOT/build-datalog}
DS=$ROOT/bench/datascript
OUT=$(mktemp -d)
(cd "$DS" && [[ -d node_modules/datascript ]] || npm install --no-audit --no-fund --silent)
ninja -C "$BUILD" cairn_bench_datalog >/dev/null
python3 "$DS/gen_data.py" "$OUT/data.json" >/dev/null
echo "running DataScript $(node -p 'require("'"$DS"'/node_modules/datascript/package.json").version') on node $(node --version)..." >&2
node "$DS/run_datascript.mjs" "$OUT/data.json" "$DS/queries.json" > "$OUT/datascript.json"
echo "running cairn_bench_datalog..." >&2
"$BUILD/bench/datalog/cairn_bench_datalog" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_format=json > "$OUT/cairn.json"
python3 "$HERE/compare.py" "$OUT/datascript.json" "$OUT/cairn.json"
