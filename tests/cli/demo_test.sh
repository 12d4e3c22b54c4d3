#!/usr/bin/env bash
# `cairn demo` loads Debian's iso-codes and its queries answer correctly.
set -uo pipefail
CAIRN=$1
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK"
out=$("$CAIRN" demo --db "$WORK/iso.db" 2>&1); rc=$?
echo "$out" | tail -60
[[ $rc == 0 ]] || { echo "FAIL demo exited $rc"; exit 1; }
countries=$(python3 -c 'import json;print(len(json.load(open("/usr/share/iso-codes/json/iso_3166-1.json"))["3166-1"]))')
subs=$(python3 -c 'import json;print(len(json.load(open("/usr/share/iso-codes/json/iso_3166-2.json"))["3166-2"]))')
n=$("$CAIRN" q --db "$WORK/iso.db" '[:find (count ?c) . :where [?c :country/alpha2]]')
[[ $n == "$countries" ]] || { echo "FAIL countries: got $n want $countries"; exit 1; }
n=$("$CAIRN" q --db "$WORK/iso.db" '[:find (count ?s) . :where [?s :subdivision/code]]')
[[ $n == "$subs" ]] || { echo "FAIL subdivisions: got $n want $subs"; exit 1; }
grep -q "Île-de-France" <<<"$out" || { echo "FAIL Paris's ancestor Île-de-France missing"; exit 1; }
echo "demo ok: $countries countries, $subs subdivisions"
