#!/usr/bin/env python3
"""Prints DataScript vs Cairn median ms per benchmark and the ratio.
Usage: compare.py datascript.json cairn_benchmark.json"""
import json
import sys

NAMES = {
    "q1": "BM_q1", "q2": "BM_q2", "q2-swapped": "BM_q2_swapped", "q3": "BM_q3", "q4": "BM_q4",
    "qpred1": "BM_qpred1", "qpred2": "BM_qpred2",
    "rules-wide-3x3": "BM_rules_wide/3/3", "rules-wide-5x3": "BM_rules_wide/5/3",
    "rules-wide-7x3": "BM_rules_wide/7/3", "rules-wide-4x6": "BM_rules_wide/4/6",
    "rules-long-10x3": "BM_rules_long/10/3", "rules-long-30x3": "BM_rules_long/30/3",
    "rules-long-30x5": "BM_rules_long/30/5",
}

ds = json.load(open(sys.argv[1]))
cairn = {}
for b in json.load(open(sys.argv[2]))["benchmarks"]:
    if b.get("aggregate_name", "median") == "median":
        name = b.get("run_name", b["name"]).replace("_median", "")
        unit = {"ms": 1.0, "us": 1e-3, "ns": 1e-6}[b.get("time_unit", "ns")]
        cairn[name] = b["real_time"] * unit
print(f"{'benchmark':18} {'DataScript ms':>14} {'Cairn ms':>10} {'ratio':>8}")
for ds_name, c_name in NAMES.items():
    if ds_name in ds and c_name in cairn:
        print(f"{ds_name:18} {ds[ds_name]:14.3f} {cairn[c_name]:10.3f} {ds[ds_name] / cairn[c_name]:7.1f}x")
