#!/usr/bin/env bash
# README command 1: install what is missing, build, and run `cairn demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
DB=${CAIRN_DEMO_DB:-$(mktemp -d)/demo.db}
./build/src/cli/cairn demo --db "$DB"
echo
echo "Try: ./build/src/cli/cairn q --db $DB '[:find ?n . :where [?c :country/alpha2 \"FR\"] [?c :country/name ?n]]'"
