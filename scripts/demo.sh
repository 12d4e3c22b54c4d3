#!/usr/bin/env bash
# README command 1: install what is missing, build, then bring up a local
# 3-node cluster (cairn cluster up), load the ISO 3166 dataset through it with
# cairn::Client, run example queries, show `cairn status`, and stop it.
#
#   CAIRN_DEMO_KEEP=1 bash scripts/demo.sh   # leave the cluster running; stop it with the printed command
#   CAIRN_DEMO_DIR=/tmp/c bash scripts/demo.sh   # where the cluster lives (default: a new temp dir)
#   CAIRN_DEMO_EMBEDDED=1 bash scripts/demo.sh   # the single-file embedded demo instead (cairn demo --db)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
CAIRN=./build/src/cli/cairn

if [[ ${CAIRN_DEMO_EMBEDDED:-0} == 1 ]]; then
  DB=${CAIRN_DEMO_DB:-$(mktemp -d)/demo.db}
  "$CAIRN" demo --db "$DB"
  echo
  echo "Try: $CAIRN q --db $DB '[:find ?n . :where [?c :country/alpha2 \"FR\"] [?c :country/name ?n]]'"
  exit 0
fi

DIR=${CAIRN_DEMO_DIR:-$(mktemp -d /tmp/cairn-demo.XXXXXX)}
KEEP=${CAIRN_DEMO_KEEP:-0}
stop() {
  if [[ $KEEP != 1 ]]; then
    echo
    echo "== cairn cluster down --dir $DIR"
    "$CAIRN" cluster down --dir "$DIR" || true
  fi
}
trap stop EXIT

echo "== cairn cluster up --nodes 3 --shards 4 --dir $DIR"
"$CAIRN" cluster up --nodes 3 --shards 4 --replication 3 --dir "$DIR"
ENDPOINTS=$(python3 -c 'import json,sys; print(",".join(n["http"] for n in json.load(open(sys.argv[1]))["nodes"]))' \
  "$DIR/cluster.json")
FIRST=${ENDPOINTS%%,*}

echo
echo "== cairn demo --connect $ENDPOINTS"
"$CAIRN" demo --connect "$ENDPOINTS"

echo
echo "== cairn status --connect $FIRST"
"$CAIRN" status --connect "$FIRST"

echo
if [[ $KEEP == 1 ]]; then
  echo "The cluster keeps running in $DIR (logs: $DIR/node*/node.log). Try:"
  echo "  $CAIRN q --connect $ENDPOINTS '[:find ?n . :where [?c :country/alpha2 \"FR\"] [?c :country/name ?n]]'"
  echo "  $CAIRN status --connect $FIRST"
  echo "Stop it with:"
  echo "  $CAIRN cluster down --dir $DIR"
else
  echo "(CAIRN_DEMO_KEEP=1 bash scripts/demo.sh leaves the cluster running; the embedded demo: $CAIRN demo --db FILE)"
fi
