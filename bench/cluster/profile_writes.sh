#!/usr/bin/env bash
# Node CPU per write: starts a 3-node x 4-shard cluster (`cairn cluster up`, ports from 27100), drives it with
# `cairn bench` (WL=tx1, CL=64 clients, DUR=12 s) and, 4 s in, for 8 s:
#   STAT=1                 perf stat task-clock/context-switches of the node PIDs -> CPU us and switches per write
#   extra arguments        `perf record <args>` of the node PIDs -> OUT/perf.data (then: profile_roles.py OUT/perf.data)
# Writes are counted from the nodes' /metrics (/v1/transact 200s) over the same 8 s. The cluster is stopped at the end.
#   bash bench/cluster/profile_writes.sh BUILD_DIR OUT_DIR [perf record args...]
#   e.g. STAT=1 bash bench/cluster/profile_writes.sh build /tmp/p
#        bash bench/cluster/profile_writes.sh build /tmp/p --call-graph dwarf,16384 -F 97
set -u
B=$1; OUT=$2; shift 2
rm -rf "$OUT"; mkdir -p "$OUT"
"$B/src/cli/cairn" cluster up --nodes 3 --shards 4 --dir "$OUT/c" --base-port 27100 > "$OUT/up.txt" 2>&1 || { cat "$OUT/up.txt"; exit 1; }
trap '"$B/src/cli/cairn" cluster down --dir "$OUT/c" > /dev/null 2>&1' EXIT
PIDS=$(python3 -c "import json;print(','.join(str(n['pid']) for n in json.load(open('$OUT/c/cluster.json'))['nodes']))")
EPS=$(python3 -c "import json;print(','.join(n['http'] for n in json.load(open('$OUT/c/cluster.json'))['nodes']))")
writes() {
  local t=0 n
  for e in ${EPS//,/ }; do
    n=$(curl -s "http://$e/metrics" | awk '/^cairn_http_requests_total\{path="\/v1\/transact",code="200"\}/ {print $2}')
    t=$((t + ${n:-0}))
  done
  echo "$t"
}
driver() {  # the driver counters of every node, summed: rounds readies entries frames messages waits terms slow max_round_us
  for e in ${EPS//,/ }; do curl -s "http://$e/metrics"; done | awk '
    /^cairn_driver_rounds_total / {r += $2} /^cairn_driver_readies_total / {d += $2}
    /^cairn_driver_entries_applied_total / {n += $2} /^cairn_raft_frames_sent_total / {f += $2}
    /^cairn_raft_messages_sent_total / {m += $2} /^cairn_driver_batched_waits_total / {w += $2}
    /^cairn_raft_term\{/ {t += $2} /^cairn_driver_slow_rounds_total / {s += $2}
    /^cairn_driver_round_seconds_max / {if ($2 * 1e6 > x) x = $2 * 1e6}
    END {print r + 0, d + 0, n + 0, f + 0, m + 0, w + 0, t + 0, s + 0, int(x)}'
}
"$B/src/cli/cairn" bench --target cairn --endpoints "$EPS" --workload "${WL:-tx1}" --clients "${CL:-64}" \
  --duration-s "${DUR:-12}" --warmup-s 2 --out "$OUT/bench.json" > "$OUT/bench.txt" 2>&1 &
BP=$!
sleep 4
W0=$(writes); D0=$(driver)
if [[ -n ${STAT:-} ]]; then
  perf stat -e task-clock,context-switches -p "$BP" -- sleep 8 > "$OUT/stat_bench.txt" 2>&1 &
  perf stat -e task-clock,context-switches -p "$PIDS" -- sleep 8 > "$OUT/stat.txt" 2>&1
  wait %2 2>/dev/null
fi
if [[ $# -gt 0 ]]; then perf record "$@" -o "$OUT/perf.data" -p "$PIDS" -- sleep 8 > "$OUT/perf.log" 2>&1; fi
W1=$(writes); D1=$(driver)
wait $BP
tail -1 "$OUT/bench.txt" | tr '\r' '\n' | tail -1
python3 - "$D0" "$D1" $((W1 - W0)) <<'PY'
import sys
d0, d1, w = [int(x) for x in sys.argv[1].split()], [int(x) for x in sys.argv[2].split()], max(1, int(sys.argv[3]))
r, d, n, f, m, wt, terms, slow, _ = (b - a for a, b in zip(d0, d1))
r = max(r, 1)
print(f"driver (3 nodes): {r / w:.2f} rounds per write, {n / r:.1f} entries applied, {d / r:.1f} readies, "
      f"{m / max(f, 1):.1f} messages per frame; {wt / r:.0%} of rounds delayed to batch; "
      f"{terms} term changes (elections, summed over nodes and groups); {slow} driver rounds over 100 ms, "
      f"the longest since start {d1[8] / 1000:.0f} ms")
PY
if [[ -n ${STAT:-} ]]; then
  python3 - "$OUT/stat.txt" "$OUT/stat_bench.txt" $((W1 - W0)) <<'PY'
import re, sys
writes = int(sys.argv[3])
def counter(path, name):
    m = re.search(r"([\d,.]+)\s+(?:msec\s+)?" + re.escape(name), open(path).read())
    return float(m.group(1).replace(",", "")) if m else 0.0
print(f"{writes} writes in 8 s: {counter(sys.argv[1], 'task-clock') * 1e3 / writes:.0f} us of node CPU and "
      f"{counter(sys.argv[1], 'context-switches') / writes:.1f} context switches per write; the load generator "
      f"{counter(sys.argv[2], 'task-clock') * 1e3 / writes:.0f} us and "
      f"{counter(sys.argv[2], 'context-switches') / writes:.1f} switches per write")
PY
fi
