#!/usr/bin/env bash
# Catch-up by snapshot: how long a node that was down needs to catch up, the longest driver round it has meanwhile
# (every group of a node waits for its driver) and the nodes' peak memory.
#   bash bench/cluster/catchup.sh BUILD_DIR OUT_DIR [DOWN_S]
# Starts a 3-node x 1-shard cluster (`cairn cluster up`, ports from 27400), kills node 3 (SIGKILL), drives nodes 1
# and 2 with `cairn bench --workload tx1 --clients 64` for DOWN_S seconds (35: enough writes that their logs are
# compacted past node 3, which then needs the snapshot), restarts node 3 and polls until its applied index equals
# node 1's. Prints per node the peak RSS (VmHWM), then node 3's catch-up time (polled every 0.5 s), its snapshots
# installed and its driver metrics (since its restart). The cluster is stopped at the end.
set -u
B=$1; OUT=$2; DOWN_S=${3:-35}
CAIRN="$B/src/cli/cairn"
rm -rf "$OUT"; mkdir -p "$OUT"
"$CAIRN" cluster up --nodes 3 --shards 1 --dir "$OUT/c" --base-port 27400 > "$OUT/up.txt" 2>&1 || { cat "$OUT/up.txt"; exit 1; }
trap '"$CAIRN" cluster down --dir "$OUT/c" > /dev/null 2>&1; [[ -n ${P3:-} ]] && kill -9 "$P3" 2> /dev/null' EXIT
node() {  # node(id, field)
  python3 -c "import json,sys;print([n for n in json.load(open('$OUT/c/cluster.json'))['nodes'] if n['id']==$1][0]['$2'])"
}
applied() {  # the applied index of shard 1 on the node at HTTP address $1
  curl -s "http://$1/v1/status" | python3 -c "import json,sys;print(json.load(sys.stdin)['shards'][0]['applied_index'])" 2> /dev/null
}
H1=$(node 1 http); H2=$(node 2 http); H3=$(node 3 http)
kill -9 "$(node 3 pid)"
"$CAIRN" bench --target cairn --endpoints "$H1,$H2" --workload tx1 --clients 64 --duration-s "$DOWN_S" --warmup-s 1 \
  --out "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
echo "load while node 3 was down: $(tail -1 "$OUT/bench.txt" | tr '\r' '\n' | tail -1)"
"$CAIRN" serve --config "$(node 3 config)" >> "$(node 3 log)" 2>&1 &
P3=$!
START=$(date +%s.%N)
for _ in $(seq 1 240); do
  a=$(applied "$H3"); l=$(applied "$H1")
  [[ -n $a && $a == "$l" ]] && break
  sleep 0.5
done
END=$(date +%s.%N)
for id in 1 2; do echo "node $id: peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$(node $id pid)/status")"; done
echo "node 3: peak RSS $(awk '/VmHWM/ {print $2, $3}' "/proc/$P3/status")"
python3 -c "print(f'node 3 caught up {float($END) - float($START):.1f} s after its restart: applied ${a:-?} / ${l:-?}')"
curl -s "http://$H3/metrics" | grep -E "^cairn_(snapshots_installed_total|driver_slow_rounds_total|driver_round_seconds_max)"
