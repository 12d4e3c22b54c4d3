#!/usr/bin/env python3
"""Merges DataScript's and Cairn's results: prints a table with ratios, writes
results.json and a PNG plot. Usage: compare.py datascript.json cairn.json OUT_DIR"""
import json
import os
import platform
import sys


def main():
    ds = json.load(open(sys.argv[1]))
    cairn = json.load(open(sys.argv[2]))
    out_dir = sys.argv[3]
    rows = []
    print(f"{'benchmark':<18} {'DataScript ms':>14} {'Cairn ms':>10} {'speed-up':>9}  rows")
    for name, ds_ms in ds.items():
        if name.endswith(":rows") or name not in cairn:
            continue
        c_ms = cairn[name]
        ratio = ds_ms / c_ms if c_ms > 0 else float("inf")
        ds_rows, c_rows = ds.get(name + ":rows"), cairn.get(name + ":rows")
        check = "" if ds_rows == c_rows else f"  MISMATCH: DataScript {ds_rows} rows, Cairn {c_rows}"
        print(f"{name:<18} {ds_ms:>14.3f} {c_ms:>10.3f} {ratio:>8.1f}x  {c_rows}{check}")
        rows.append({"bench": name, "datascript_ms": ds_ms, "cairn_ms": c_ms, "speedup": ratio,
                     "rows_match": ds_rows == c_rows})
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "system": platform.platform()}
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"machine": machine, "results": rows}, f, indent=1)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(python3-matplotlib not installed: no plot)")
        return
    names = [r["bench"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [r["datascript_ms"] for r in rows], 0.4, label="DataScript (node)")
    ax.bar([i + 0.2 for i in x], [r["cairn_ms"] for r in rows], 0.4, label="Cairn (embedded)")
    ax.set_yscale("log")
    ax.set_ylabel("median ms per run (log)")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=40, ha="right")
    for i, r in enumerate(rows):
        ax.text(i, max(r["datascript_ms"], r["cairn_ms"]) * 1.2, (f"{r['speedup']:.0f}x" if r["speedup"] >= 10 else f"{r['speedup']:.1f}x"), ha="center", fontsize=8)
    ax.legend()
    ax.set_title("Cairn vs DataScript, DataScript's benchmark shapes")
    fig.tight_layout()
    path = os.path.join(out_dir, "datascript_vs_cairn.png")
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
