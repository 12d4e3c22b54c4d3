#!/usr/bin/env bash
# `cairn bench` against a real embedded `cairn serve` (and a one-member etcd when one is
# installed): 1 s per run, 2 clients, every workload; the JSON has every field and
# non-zero ops; bad flags exit 2. Bounded: servers run under `timeout`, stopped by PID.
set -uo pipefail
CAIRN=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
fails=0
expect() {  # expect NAME PATTERN OUTPUT
  if grep -qE -- "$2" <<<"$3"; then echo "ok   $1"; else echo "FAIL $1: expected /$2/ in:"; echo "$3"; fails=$((fails+1)); fi
}
expect_rc() {  # expect_rc NAME WANT GOT
  if [[ $2 == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: exit code $3, want $2"; fails=$((fails+1)); fi
}

timeout 100 "$CAIRN" serve --db "$WORK/bench.db" --http 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
ENDPOINT=$(sed -n 's|^listening on http://||p' "$WORK/serve.out")
expect "server started" '^127\.0\.0\.1:[0-9]+$' "$ENDPOINT"

out=$(timeout 60 "$CAIRN" bench --endpoints "$ENDPOINT" --workload tx1,tx100,point --clients 2 --duration-s 1 \
      --warmup-s 0.2 --point-keys 50 --quiet --out "$WORK/r.json" 2>&1); rc=$?
expect_rc "bench exits 0" 0 $rc
expect "table has a tx1 row" 'cairn +tx1 +2 ' "$out"
expect "table has a point row" 'cairn +point +2 ' "$out"

check=$(python3 - "$WORK/r.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
problems = []
for key in ("target", "endpoints", "runs", "machine", "value_bytes"):
    if key not in doc: problems.append(f"missing {key}")
runs = {r["workload"]: r for r in doc.get("runs", [])}
if sorted(runs) != ["point", "tx1", "tx100"]: problems.append(f"workloads {sorted(runs)}")
for w, r in runs.items():
    for key in ("clients", "seconds", "ops", "errors", "ops_per_s", "datoms_per_s", "latency_ms", "error_kinds"):
        if key not in r: problems.append(f"{w}: missing {key}")
    if r.get("ops", 0) <= 0 or r.get("ops_per_s", 0) <= 0: problems.append(f"{w}: no ops")
    if r.get("errors") != 0: problems.append(f"{w}: {r.get('errors')} errors: {r.get('first_error')}")
    lat = r.get("latency_ms", {})
    if not (0 < lat.get("p50", 0) <= lat.get("p99", 0) <= lat.get("p999", 0) <= lat.get("max", 0)):
        problems.append(f"{w}: latency percentiles out of order: {lat}")
if runs.get("tx100", {}).get("datoms_per_s") != round(runs.get("tx100", {}).get("ops_per_s", -1) * 100, 1):
    problems.append("tx100 datoms_per_s is not 100 x ops_per_s")
print("; ".join(problems) or "json ok")
PY
)
expect "JSON has every field, non-zero ops, no errors" '^json ok$' "$check"

# The writes really landed: the point keys are there and the tx1 keys are unique values.
n=$(python3 -c "
import json, urllib.request
r = urllib.request.urlopen(urllib.request.Request('http://$ENDPOINT/v1/query', data=b'[:find (count ?e) . :where [?e :bench/key]]', headers={'Content-Type': 'application/edn'}), timeout=10)
print(json.load(r)['rows'][0][0])")
ops=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sum(r['ops'] for r in d['runs'] if r['workload'] != 'point'))" "$WORK/r.json")
if (( n >= ops + 50 )); then echo "ok   every counted write is stored ($n keys >= $ops writes + 50 point keys)"; else
  echo "FAIL stored keys $n < counted writes $ops + 50 point keys"; fails=$((fails+1)); fi

out=$("$CAIRN" bench --endpoints "$ENDPOINT" --workload nope 2>&1); rc=$?
expect_rc "unknown workload exits 2" 2 $rc
expect "unknown workload is named" 'nope' "$out"
out=$("$CAIRN" bench --endpoints "127.0.0.1" 2>&1); rc=$?
expect_rc "endpoint without a port exits 2" 2 $rc
expect "bad endpoint is named" "'127.0.0.1' is not HOST:PORT" "$out"
out=$("$CAIRN" bench --endpoints "$ENDPOINT" --clients 0 2>&1); rc=$?
expect_rc "zero clients exits 2" 2 $rc
out=$("$CAIRN" bench --help 2>&1)
expect "--help explains --target" '--target' "$out"

# Nothing listens there: setup fails with a clear error instead of hanging.
out=$(timeout 30 "$CAIRN" bench --endpoints 127.0.0.1:1 --timeout-ms 200 --duration-s 1 2>&1); rc=$?
expect_rc "unreachable target exits 1" 1 $rc
expect "unreachable target is reported" 'schema' "$out"

# The etcd side of the comparison (bench/cluster/compare_etcd.sh) through a one-member
# etcd, if it is installed (scripts/setup.sh lists etcd-server).
if command -v etcd >/dev/null; then
  port=$((20000 + RANDOM % 20000))
  timeout 60 etcd --name b1 --data-dir "$WORK/etcd" --listen-client-urls "http://127.0.0.1:$port" \
    --advertise-client-urls "http://127.0.0.1:$port" --listen-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((port + 1))" \
    --initial-cluster "b1=http://127.0.0.1:$((port + 1))" >"$WORK/etcd.log" 2>&1 &
  ETCD=$!
  trap 'kill $SERVER $ETCD 2>/dev/null; wait $SERVER $ETCD 2>/dev/null' EXIT
  etcd_up=0
  for _ in $(seq 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" \
      2>/dev/null && { etcd_up=1; break; }
    sleep 0.1
  done
  if [[ $etcd_up == 0 ]]; then
    # Not cairn bench's fault (e.g. the random port was taken): say so, do not fail.
    echo "skip etcd side: etcd did not start on port $port:"; tail -5 "$WORK/etcd.log"
  else
    out=$(timeout 60 "$CAIRN" bench --target etcd --endpoints "127.0.0.1:$port" --workload tx1,tx100,point \
          --clients 2 --duration-s 1 --warmup-s 0.2 --point-keys 20 --quiet --out "$WORK/etcd.json" 2>&1); rc=$?
    expect_rc "bench --target etcd exits 0" 0 $rc
    check=$(python3 -c "
import json, sys
runs = json.load(open(sys.argv[1]))['runs']
bad = [f\"{r['workload']}: ops {r['ops']} errors {r['errors']} {r['first_error']}\" for r in runs if r['ops'] <= 0 or r['errors']]
print('; '.join(bad) if bad or len(runs) != 3 else 'etcd ok')" "$WORK/etcd.json" 2>&1)
    expect "etcd runs have ops and no errors" '^etcd ok$' "$check"
  fi
  kill $ETCD 2>/dev/null; wait $ETCD 2>/dev/null
else
  echo "skip etcd side: etcd is not installed (bash scripts/setup.sh)"
fi

[[ $fails == 0 ]]
