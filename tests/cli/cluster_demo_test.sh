#!/usr/bin/env bash
# The README demo's cluster path: `cairn cluster up` (3 nodes x 4 shards),
# `cairn demo --connect` loads iso-codes through cairn::Client, every node
# answers the counts and the as-of step, `cairn status` shows the groups, `cairn cluster down`
# stops every process (and is idempotent). Bounded: cluster up waits at most
# 60 s, the trap stops the nodes on any exit.
set -uo pipefail
CAIRN=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
D=$WORK/c
fails=0
fail() { echo "FAIL $*"; fails=$((fails+1)); }
# Running and not a zombie (the nodes outlive `cluster up`, their parent).
alive() { [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1) != Z ]]; }
trap '"$CAIRN" cluster down --dir "$D" --wait 5 >/dev/null 2>&1' EXIT

out=$("$CAIRN" cluster up --nodes 3 --shards 4 --dir "$D" --wait 60 2>&1); rc=$?
echo "$out"
if [[ $rc != 0 ]]; then
  for f in "$D"/node*/node.log; do echo "== $f"; tail -20 "$f"; done
  echo "FAIL cluster up exited $rc"; exit 1
fi
mapfile -t HTTP < <(python3 -c 'import json,sys; [print(n["http"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$D/cluster.json")
mapfile -t PIDS < <(python3 -c 'import json,sys; [print(n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]]' "$D/cluster.json")
[[ ${#HTTP[@]} == 3 ]] || fail "cluster.json lists ${#HTTP[@]} nodes, want 3"
for i in 0 1 2; do
  grep -q "pid ${PIDS[$i]} .*http ${HTTP[$i]}" <<<"$out" || fail "cluster up does not print node $((i+1))'s pid and endpoint"
  alive "${PIDS[$i]}" || fail "node $((i+1)) (pid ${PIDS[$i]}) is not running"
done
[[ $(stat -c %a "$D/secret") == 600 ]] || fail "the secret file is not 0600"
out=$("$CAIRN" cluster up --nodes 3 --shards 4 --dir "$D" 2>&1); rc=$?
[[ $rc == 1 ]] && grep -q "already running" <<<"$out" || fail "a second cluster up over a running one: rc $rc: $out"

EPS=$(IFS=,; echo "${HTTP[*]}")
out=$(timeout 240 "$CAIRN" demo --connect "$EPS" 2>&1); rc=$?
echo "$out" | tail -40
[[ $rc == 0 ]] || fail "demo --connect exited $rc"
grep -q "Île-de-France" <<<"$out" || fail "Paris's ancestor Île-de-France missing from the demo's output"

countries=$(python3 -c 'import json;print(len(json.load(open("/usr/share/iso-codes/json/iso_3166-1.json"))["3166-1"]))')
subs=$(python3 -c 'import json;print(len(json.load(open("/usr/share/iso-codes/json/iso_3166-2.json"))["3166-2"]))')
for ep in "${HTTP[@]}"; do
  n=$("$CAIRN" q --connect "$ep" '[:find (count ?c) . :where [?c :country/alpha2]]' 2>&1)
  [[ $n == "$countries" ]] || fail "countries through $ep: got $n want $countries"
  n=$("$CAIRN" q --connect "$ep" '[:find (count ?s) . :where [?s :subdivision/code]]' 2>&1)
  [[ $n == "$subs" ]] || fail "subdivisions through $ep: got $n want $subs"
done
n=$("$CAIRN" q --connect "${HTTP[2]}" '[:find ?n . :where [?s :subdivision/code "FR-75"] [?s :subdivision/country ?c] [?c :country/name ?n]]' 2>&1)
[[ $n == '"France"' ]] || fail "the ref from FR-75 to its country: got $n"

# Time travel through the cluster: the demo's as-of step answers (no error), and as of the countries'
# transaction every node sees every country and no subdivision.
grep -A3 "^Time travel: subdivisions as of the countries' transaction" <<<"$out" | grep -q "error" &&
  fail "the demo's time-travel step failed: $(grep -A3 '^Time travel' <<<"$out")"
T=$(grep -o "as of the countries' transaction (t=[0-9]*)" <<<"$out" | grep -o "[0-9][0-9]*")
if [[ -z $T ]]; then
  fail "the demo printed no time-travel step"
else
  for ep in "${HTTP[@]}"; do
    n=$("$CAIRN" q --connect "$ep" --as-of "$T" '[:find (count ?c) . :where [?c :country/alpha2]]' 2>&1)
    [[ $n == "$countries" ]] || fail "countries as of t=$T through $ep: got $n want $countries"
    n=$("$CAIRN" q --connect "$ep" --as-of "$T" '[:find (count ?s) . :where [?s :subdivision/code]]' 2>&1)
    [[ $n == "nil" || $n == "0" || -z $n ]] || fail "subdivisions as of t=$T through $ep: got $n, want none"
  done
fi

out=$("$CAIRN" status --connect "${HTTP[0]}" 2>&1); rc=$?
echo "$out"
[[ $rc == 0 ]] || fail "status exited $rc"
grep -q "mode cluster" <<<"$out" || fail "status does not say mode cluster"
grep -qE '^\| meta ' <<<"$out" || fail "status has no meta group row"
for s in 1 2 3 4; do grep -qE "^\| $s +\|" <<<"$out" || fail "status has no row for shard $s"; done

out=$("$CAIRN" cluster down --dir "$D" 2>&1); rc=$?
echo "$out"
[[ $rc == 0 ]] || fail "cluster down exited $rc"
for i in 0 1 2; do
  [[ $(grep -c "node $((i+1)) (pid ${PIDS[$i]}): stopped" <<<"$out") == 1 ]] || fail "cluster down did not report node $((i+1)) stopped"
  alive "${PIDS[$i]}" && fail "node $((i+1)) (pid ${PIDS[$i]}) still runs after cluster down"
done
out=$("$CAIRN" cluster down --dir "$D" 2>&1); rc=$?
[[ $rc == 0 ]] && grep -q "not running" <<<"$out" || fail "a second cluster down: rc $rc: $out"

[[ $fails == 0 ]] && echo "cluster demo ok: $countries countries, $subs subdivisions through 3 nodes"
[[ $fails == 0 ]]
