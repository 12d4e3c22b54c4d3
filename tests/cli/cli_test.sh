#!/usr/bin/env bash
# cairn tx / q / datoms end to end, and clear errors for bad input.
set -uo pipefail
CAIRN=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
DB=$WORK/people.db
fails=0
expect() {  # expect NAME PATTERN OUTPUT
  if grep -qE -- "$2" <<<"$3"; then echo "ok   $1"; else echo "FAIL $1: expected /$2/ in:"; echo "$3"; fails=$((fails+1)); fi
}
expect_rc() {  # expect_rc NAME WANT GOT
  if [[ $2 == "$3" ]]; then echo "ok   $1"; else echo "FAIL $1: exit code $3, want $2"; fails=$((fails+1)); fi
}

out=$("$CAIRN" tx --db "$DB" '[{:db/ident :person/name :db/valueType :db.type/string :db/unique :db.unique/identity}
                               {:db/ident :person/age :db/valueType :db.type/long}]' 2>&1); rc=$?
expect_rc "schema tx exits 0" 0 $rc
expect "schema tx prints :t" ':t [0-9]+' "$out"

out=$("$CAIRN" tx --db "$DB" '[{:db/id "ann" :person/name "Ann" :person/age 31} {:person/name "Bob" :person/age 45}]' 2>&1); rc=$?
expect_rc "data tx exits 0" 0 $rc
expect "report names the tempid" '"ann" [0-9]+' "$out"
expect "report lists datoms" ':person/age 31' "$out"

out=$("$CAIRN" q --db "$DB" '[:find ?n ?a :where [?e :person/name ?n] [?e :person/age ?a]]' 2>&1)
expect "q edn has both rows" '\["Ann" 31\]' "$out"
expect "q edn has Bob" '\["Bob" 45\]' "$out"

out=$("$CAIRN" q --db "$DB" --format table '[:find ?n :where [?e :person/age ?a] [(> ?a 40)] [?e :person/name ?n]]' 2>&1)
expect "q table" '\| Bob' "$out"
expect "q table row count" '^1 row' "$out"

out=$("$CAIRN" q --db "$DB" --format json '[:find ?n ?a :in $ ?n :where [?e :person/name ?n] [?e :person/age ?a]]' '"Ann"' 2>&1)
expect "q json with an :in argument" '\[\["Ann",31\]\]' "$out"

out=$("$CAIRN" q --db "$DB" --explain '[:find ?n :where [?e :person/age ?a] [(> ?a 40)] [?e :person/name ?n]]' 2>&1); rc=$?
expect_rc "q --explain exits 0" 0 $rc
expect "q --explain shows estimated and actual rows" '[0-9]' "$out"
expect "q --explain names a clause" 'person/age' "$out"
expect "q --explain counts the result" '^1 row' "$out"

out=$("$CAIRN" datoms --db "$DB" aevt :person/age 2>&1)
expect "datoms aevt" ':person/age 45' "$out"

# Bad input: a clear error with line:column, non-zero exit, nothing written.
before=$("$CAIRN" datoms --db "$DB" aevt :person/name | wc -l)
out=$("$CAIRN" tx --db "$DB" '[{:person/name "Cy"
  :person/age }]' 2>&1); rc=$?
expect_rc "malformed EDN exits 1" 1 $rc
expect "malformed EDN names line:column" '2:[0-9]+' "$out"
out=$("$CAIRN" tx --db "$DB" '[{:person/name "Cy" :person/age "old"}]' 2>&1); rc=$?
expect_rc "mistyped value exits 1" 1 $rc
expect "mistyped value names the attribute" 'person/age' "$out"
after=$("$CAIRN" datoms --db "$DB" aevt :person/name | wc -l)
expect_rc "bad transactions wrote nothing" "$before" "$after"

out=$("$CAIRN" q --db "$DB" '[:find ?x :where [?e :person/name ?n]]' 2>&1); rc=$?
expect_rc "unbound find variable exits 1" 1 $rc
expect "unbound find variable is named" '\?x' "$out"

echo garbage > "$WORK/not-a-db.db"
out=$("$CAIRN" q --db "$WORK/not-a-db.db" '[:find ?e :where [?e :a]]' 2>&1); rc=$?
expect_rc "a non-database file exits 1" 1 $rc
expect "a non-database file is named" 'not-a-db.db' "$out"

# Usage errors exit 2 (unknown option, unknown subcommand, missing argument); --help exits 0.
out=$("$CAIRN" q --db "$DB" --no-such-option '[:find ?e :where [?e :a]]' 2>&1); rc=$?
expect_rc "an unknown option exits 2" 2 $rc
expect "the unknown option is named" 'no-such-option' "$out"
"$CAIRN" no-such-command >/dev/null 2>&1; rc=$?
expect_rc "an unknown subcommand exits 2" 2 $rc
"$CAIRN" q --db "$DB" >/dev/null 2>&1; rc=$?
expect_rc "a missing query exits 2" 2 $rc
"$CAIRN" q --help >/dev/null 2>&1; rc=$?
expect_rc "q --help exits 0" 0 $rc

# --connect: the same commands through cairn::Client against a real server.
"$CAIRN" serve --db "$DB" --http 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$WORK/serve.out" && break; sleep 0.1; done
EP=$(sed -n 's|^listening on http://||p' "$WORK/serve.out")
expect "serve printed its address" '^127\.0\.0\.1:[0-9]+$' "$EP"
out=$("$CAIRN" tx --connect "$EP" '[{:person/name "Dee" :person/age 52}]' 2>&1); rc=$?
expect_rc "tx --connect exits 0" 0 $rc
expect "tx --connect prints the report" ':person/age 52' "$out"
out=$("$CAIRN" q --connect "$EP" --format table '[:find ?n :where [?e :person/age ?a] [(> ?a 50)] [?e :person/name ?n]]' 2>&1)
expect "q --connect sees the write" '\| Dee' "$out"
out=$("$CAIRN" q --connect "127.0.0.1:1,$EP" '[:find ?a . :in $ ?n :where [?e :person/name ?n] [?e :person/age ?a]]' '"Ann"' 2>&1)
expect "q --connect skips a dead endpoint" '^31$' "$out"
out=$("$CAIRN" tx --connect "$EP" '[{:person/name "Cy"
  :person/age }]' 2>&1); rc=$?
expect_rc "malformed EDN over --connect exits 1" 1 $rc
expect "malformed EDN over --connect names line:column" 'InvalidArgument: .*2:[0-9]+' "$out"
out=$("$CAIRN" status --connect "$EP" 2>&1); rc=$?
expect_rc "status --connect exits 0" 0 $rc
expect "status shows the mode" 'mode embedded' "$out"
out=$("$CAIRN" q --db "$DB" --connect "$EP" '[:find ?e :where [?e :person/name]]' 2>&1); rc=$?
expect "--db and --connect together are refused" 'excludes' "$out"
out=$("$CAIRN" q '[:find ?e :where [?e :person/name]]' 2>&1); rc=$?
expect_rc "q without --db or --connect exits 2" 2 $rc
kill $SERVE_PID; wait $SERVE_PID 2>/dev/null
out=$("$CAIRN" q --connect "$EP" --timeout-ms 1000 '[:find ?e :where [?e :person/name]]' 2>&1); rc=$?
expect_rc "q --connect to a stopped server exits 1" 1 $rc
expect "a stopped server is reported as unavailable" 'Unavailable' "$out"

# cluster up/down: bad usage and a failing start are reported and leave nothing running.
out=$("$CAIRN" cluster up --nodes 3 --replication 5 --dir "$WORK/c0" 2>&1); rc=$?
expect_rc "cluster up --replication > --nodes exits 2" 2 $rc
expect "the bad option is named" 'replication' "$out"
out=$("$CAIRN" cluster up --nodes 2 --shards 1 --replication 1 --dir "$WORK/c1" --cairn-bin /bin/false --wait 10 2>&1); rc=$?
expect_rc "cluster up with nodes that exit fails" 1 $rc
expect "the failure points at the node's log" 'node[12]/node.log' "$out"
expect "the started nodes are stopped" 'node [12] \(pid [0-9]+\)' "$out"
[[ -e $WORK/c1/cluster.json ]] && { echo "FAIL a failed cluster up wrote cluster.json"; fails=$((fails+1)); }
expect "cluster up wrote node configs" '"cluster_secret_file"' "$(cat "$WORK/c1/node1/node.json")"
expect "the secret is private" '^600$' "$(stat -c %a "$WORK/c1/secret")"
out=$("$CAIRN" cluster down --dir "$WORK/c1" 2>&1); rc=$?
expect_rc "cluster down without a cluster exits 0" 0 $rc
expect "cluster down says there is nothing to stop" 'nothing to stop' "$out"

out=$("$CAIRN" --help 2>&1)
expect "--help lists subcommands" 'demo' "$out"

echo "cli: $((fails == 0 ? 1 : 0)) passed, $fails failed" >/dev/null
[[ $fails == 0 ]]
