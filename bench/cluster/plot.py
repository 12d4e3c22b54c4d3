#!/usr/bin/env python3
"""Plots `cairn bench --out` JSON files: per workload, throughput and p99 latency against
the number of clients, one line per file (target).

    python3 bench/cluster/plot.py OUT.png cairn.json [etcd.json ...]

Uses Debian's python3-matplotlib (scripts/setup.sh) with the Agg backend (no display).
"""
import json
import os
import sys

ORDER = ["tx1", "tx100", "point"]
TITLES = {"tx1": "tx1: 1 datom / put per op", "tx100": "tx100: 100 datoms / puts per op",
          "point": "point: read one key"}


def plot(runs_by_target, png, title=None):
    """runs_by_target: a list of parsed `cairn bench` JSON documents."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [w for w in ORDER if any(r["workload"] == w for doc in runs_by_target for r in doc["runs"])]
    if not workloads:
        raise SystemExit("plot: no runs to draw")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter
    fig, axes = plt.subplots(2, len(workloads), figsize=(4.6 * len(workloads), 7.5), squeeze=False)
    for col, w in enumerate(workloads):
        for doc in runs_by_target:
            runs = sorted((r for r in doc["runs"] if r["workload"] == w), key=lambda r: r["clients"])
            if not runs:
                continue
            xs = [r["clients"] for r in runs]
            label = doc.get("target", "?")
            axes[0][col].plot(xs, [r["ops_per_s"] for r in runs], marker="o", label=label)
            axes[1][col].plot(xs, [r["latency_ms"]["p99"] for r in runs], marker="o", label=label)
        axes[0][col].set_title(TITLES.get(w, w), fontsize=10)
        axes[0][col].set_ylabel("ops/s")
        axes[1][col].set_ylabel("p99 latency (ms)")
        for row in (0, 1):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            xs = sorted({r["clients"] for doc in runs_by_target for r in doc["runs"] if r["workload"] == w})
            ax.xaxis.set_major_locator(FixedLocator(xs))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("clients")
            ax.grid(True, alpha=0.3)
            ax.set_ylim(bottom=0)
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        # Another python3 first on PATH: Debian's matplotlib is the system python3's.
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath(
                "/usr/bin/python3"):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        raise
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    docs = []
    for path in sys.argv[2:]:
        with open(path) as f:
            docs.append(json.load(f))
    plot(docs, sys.argv[1])
    print(f"wrote {sys.argv[1]}")


if __name__ == "__main__":
    main()
