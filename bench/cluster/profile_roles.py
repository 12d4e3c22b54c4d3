#!/usr/bin/env python3
"""Splits a `perf record --call-graph dwarf` profile of Cairn nodes by where the work happens.

Each sample goes to the first class (in the order below) whose frames it contains.
  python3 bench/cluster/profile_roles.py OUT/perf.data
"""
import subprocess
import sys

CLASSES = [
    ("driver: apply - transactor", ["Impl::Run", "ApplyBatch", "Transactor::Prepare"]),
    ("driver: apply - memory index", ["Impl::Run", "ApplyBatch", "MemoryIndex"]),
    ("driver: apply - SQLite (datoms, outcomes)", ["Impl::Run", "ApplyBatch"]),
    ("driver: Raft log save (SQLite + fsync)", ["Impl::Run", "RaftLogStore::Save"]),
    ("driver: Raft steps, messages, wake-ups", ["Impl::Run"]),
    ("coordinator: routing dry run", ["RouteTransaction"]),
    ("coordinator: forwarding, proposing, waits", ["ProposeAt"]),
    ("HTTP", ["Session::|ApiRouter|thread_pool|http_server"]),
    ("peer transport I/O", ["PeerTransport|net::"]),
    ("other", []),
]


def stacks(path):
    text = subprocess.run(["perf", "script", "-i", path], capture_output=True, text=True).stdout
    for block in text.split("\n\n"):
        frames = [line.strip() for line in block.strip().split("\n")[1:]]
        if frames:
            yield frames


def matches(frames, needle):
    return any(alt in f for alt in needle.split("|") for f in frames)


def main():
    counts = {name: 0 for name, _ in CLASSES}
    total = 0
    for frames in stacks(sys.argv[1]):
        total += 1
        for name, needles in CLASSES:
            if all(matches(frames, n) for n in needles):
                counts[name] += 1
                break
    for name, _ in CLASSES:
        print(f"{100.0 * counts[name] / max(total, 1):5.1f}%  {name}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
