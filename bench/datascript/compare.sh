#!/usr/bin/env bash
# Generates DataScript's benchmark data once, runs DataScript (node) and Cairn on
# it in the same run, prints median ms and the ratio per benchmark, and writes
# results.json and a PNG plot into OUT_DIR (default bench/datascript/out).
#   bash bench/datascript/compare.sh [OUT_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$HERE/out}
mkdir -p "$OUT"
bash "$ROOT/scripts/setup.sh"
for p in nodejs npm python3-matplotlib; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || command -v "${p%%js}" >/dev/null ||
    { echo "installing $p"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null; }
done
(cd "$HERE" && [[ -d node_modules/datascript ]] || npm install --no-audit --no-fund --silent)
bash "$ROOT/scripts/build.sh" >/dev/null
ninja -C "$ROOT/build" cairn_ds_bench >/dev/null
python3 "$HERE/gen_data.py" "$OUT/data.json"
echo "running DataScript $(node -p 'require("'"$HERE"'/node_modules/datascript/package.json").version') on node $(node --version)..."
node "$HERE/run_datascript.mjs" "$OUT/data.json" "$HERE/queries.json" > "$OUT/datascript.json"
echo "running Cairn..."
"$ROOT/build/bench/datascript/cairn_ds_bench" "$OUT/data.json" "$HERE/queries.json" "$OUT/work" > "$OUT/cairn.json"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# Debian's matplotlib is importable by the system python3.
PY=python3; [[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3
"$PY" "$HERE/compare.py" "$OUT/datascript.json" "$OUT/cairn.json" "$OUT"
