#!/usr/bin/env python3
"""Real-process cluster tests (issue 5, docs/cluster.md "Tests").

Usage: cluster_test.py --cairn PATH [--client-writer PATH] [--client-time-travel PATH] [--keep] TEST
where TEST is one of the names in TESTS below. Each test starts its own
3-node x 4-shard cluster (replication 3) of `cairn serve --config` processes
on loopback, and stops every process it started, also on failure.
Exit code 0 = pass, 1 = fail (the work directory is kept and printed).
"""

import argparse
import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cairn_cluster import (Cluster, TestFailure, check, edn_str, group_entry, log,  # noqa: E402
                           parse_raw_response, partition_of_entity, raw_http, run_test, shard_entry,
                           shard_of_partition, wait_until)

SHARDS = 4

SCHEMA = """[{:db/ident :t/key :db/valueType :db.type/string :db/cardinality :db.cardinality/one
             :db/unique :db.unique/identity}
            {:db/ident :t/val :db/valueType :db.type/long :db/cardinality :db.cardinality/one :db/index true}
            {:db/ident :t/writer :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
            {:db/ident :t/node :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]"""

ARGS = None


def install_schema(node):
    r = node.transact(SCHEMA, request_id="schema-1", timeout=30)
    check(r.status == 200, "schema transaction through node %d -> %r" % (node.id, r))
    return r.json()["t"]


def rows(node, q, consistency=None, args=None):
    r = node.query(q, args=args, consistency=consistency)
    check(r.status == 200, "node %d: query %s (consistency %s) -> %r" % (node.id, q, consistency, r))
    doc = r.json()
    check(isinstance(doc.get("rows"), list), "node %d: query answer without rows: %r" % (node.id, r))
    return doc["rows"]


def count_by_value(node, consistency=None):
    """{value: number of entities carrying :t/val value} as node sees it."""
    counts = collections.Counter()
    for e, v in rows(node, "[:find ?e ?v :where [?e :t/val ?v]]", consistency=consistency):
        counts[v] += 1
    return counts


def val_datoms(node):
    """{value: (e, t)} from /v1/datoms aevt :t/val, failing on a value stored twice."""
    out = {}
    for d in node.datoms("aevt", a=":t/val"):
        e, a, v, t, added = d
        check(a == ":t/val" and added is True, "node %d: unexpected datom %r" % (node.id, d))
        check(v not in out, "node %d: value %r stored twice: %r and %r" % (node.id, v, out.get(v), (e, t)))
        out[v] = (e, t)
    return out


# ---------------------------------------------------------------------------
# Writers: each write has a unique request id and a unique value, is retried
# with the SAME request id across nodes until acknowledged, and remembers
# when it was acknowledged.

Ack = collections.namedtuple("Ack", "value rid partition t eid acked_at attempt_started_at attempts duplicate")


class Writer(threading.Thread):
    def __init__(self, wid, nodes, partitions, start_node=0, pace_s=0.0, per_request_timeout=3.0):
        super().__init__(daemon=True, name="writer-%d" % wid)
        self.wid = wid
        self.nodes = nodes
        self.partitions = partitions
        self.idx = start_node % len(nodes)
        self.pace_s = pace_s
        self.timeout = per_request_timeout
        self.stop = threading.Event()
        self.acks = []
        self.unknown = []  # (value, rid, partition): sent, never acknowledged: may or may not have applied
        self.refused = []  # (value, rid, response): a 4xx, which must not happen for these writes
        self.errors = collections.Counter()
        self.seq = 0

    @staticmethod
    def tx(value, partition, wid):
        return "[{:db/id \"w\" :db/partition %d :t/val %d :t/writer %d}]" % (partition, value, wid)

    def run(self):
        while not self.stop.is_set():
            self.seq += 1
            value = self.wid * 1000000 + self.seq
            rid = "w%d-%d" % (self.wid, self.seq)
            partition = self.partitions[self.seq % len(self.partitions)]
            self.write_one(value, rid, partition, give_up=self.stop)
            if self.pace_s:
                time.sleep(self.pace_s)

    def write_one(self, value, rid, partition, give_up, deadline_s=None):
        tx = self.tx(value, partition, self.wid)
        attempts = 0
        t_end = None if deadline_s is None else time.monotonic() + deadline_s
        while True:
            if give_up.is_set() and attempts > 0 or (t_end is not None and time.monotonic() > t_end):
                self.unknown.append((value, rid, partition))
                return None
            node = self.nodes[self.idx]
            attempts += 1
            started = time.monotonic()
            try:
                r = node.transact(tx, request_id=rid, timeout=self.timeout)
            except Exception as e:  # connection refused/reset, timeout: the outcome is unknown, retry
                self.errors[type(e).__name__] += 1
                self.idx = (self.idx + 1) % len(self.nodes)
                time.sleep(0.02)
                continue
            if r.status == 200:
                doc = r.json()
                eid = doc.get("tempids", {}).get("w")
                ack = Ack(value, rid, partition, doc.get("t"), eid, time.monotonic(), started, attempts,
                          doc.get("duplicate", False))
                self.acks.append(ack)
                return ack
            if r.status in (503, 504, 502):
                self.errors["http_%d" % r.status] += 1
                self.idx = (self.idx + 1) % len(self.nodes)
                time.sleep(0.02)
                continue
            self.refused.append((value, rid, r))
            return None


def check_writers_clean(writers):
    for w in writers:
        check(not w.refused, "writer %d: transactions refused (4xx/5xx other than 502-504): %r" %
              (w.wid, w.refused[:3]))
        for a in w.acks:
            check(isinstance(a.t, int) and a.t > 0, "writer %d: ack without a t: %r" % (w.wid, a))
            # (a duplicate answer's tempids are checked by request_id_retry; here t identifies the write)
            if a.duplicate and a.eid is None:
                continue
            check(isinstance(a.eid, int), "writer %d: the answer to %s (duplicate=%r) has no tempid \"w\"" %
                  (w.wid, a.rid, a.duplicate))
            check(partition_of_entity(a.eid) == a.partition,
                  "writer %d: entity %r of a write hinted to partition %d is in partition %s" %
                  (w.wid, a.eid, a.partition, a.eid and partition_of_entity(a.eid)))


def check_acks_exactly_once(node, acks, maybe=(), consistency=None):
    """Every acknowledged value is stored exactly once with the acknowledged t; `maybe` values at most once;
    nothing else is stored."""
    counts = count_by_value(node, consistency=consistency)
    stored = val_datoms(node)
    acked = {a.value: a for a in acks}
    missing = [v for v in acked if counts.get(v, 0) == 0]
    check(not missing, "node %d: %d acknowledged writes are missing, e.g. %r" %
          (node.id, len(missing), [acked[v] for v in missing[:5]]))
    dup = [v for v, c in counts.items() if c > 1]
    check(not dup, "node %d: values stored more than once: %r" % (node.id, {v: counts[v] for v in dup[:10]}))
    for v, a in acked.items():
        e, t = stored[v]
        check(t == a.t, "node %d: value %d acknowledged with t=%r, stored with t=%r (%r)" % (node.id, v, a.t, t, a))
        check(e == a.eid or (a.duplicate and a.eid is None),
              "node %d: value %d acknowledged as entity %r, stored on entity %r (%r)" % (node.id, v, a.eid, e, a))
    unexpected = set(counts) - set(acked) - set(maybe)
    check(not unexpected, "node %d: stored values nobody wrote: %r" % (node.id, sorted(unexpected)[:10]))
    return counts


# ---------------------------------------------------------------------------
# 1. transact through every node, read back from every node


def test_read_everywhere(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    for n in c.nodes:
        st = n.status()
        check(st.get("mode") == "cluster" and st.get("node") == n.id,
              "node %d: status mode/node: %r" % (n.id, {k: st.get(k) for k in ("mode", "node")}))
        check(sorted(s.get("shard") for s in st.get("shards", [])) == list(range(1, SHARDS + 1)),
              "node %d: status lists shards %r, want 1..%d (replication 3 on 3 nodes)" %
              (n.id, [s.get("shard") for s in st.get("shards", [])], SHARDS))
        check(sorted(m.get("id") for m in st.get("nodes", [])) == [1, 2, 3], "node %d: status nodes %r" %
              (n.id, st.get("nodes")))
        for g in range(0, SHARDS + 1):
            check(group_entry(st, g).get("leader") in (1, 2, 3), "node %d: group %d has no leader in %r" %
                  (n.id, g, group_entry(st, g)))
    install_schema(c.node(2))

    expected = set()
    eids = {}
    for n in c.nodes:
        for k in range(8):
            p = 1 + (n.id * 8 + k) % 8  # partitions 1..8: every shard gets data from every node
            # (no :t/key here: an identity value places by hash and overrides the hint)
            tx = "[{:db/id \"e\" :db/partition %d :t/val %d :t/node %d :t/writer %d}]" % (p, n.id * 100 + k, n.id, k)
            r = n.transact(tx, request_id="rw-%d-%d" % (n.id, k))
            check(r.status == 200, "node %d: transact %s -> %r" % (n.id, tx, r))
            doc = r.json()
            eid = doc["tempids"]["e"]
            check(partition_of_entity(eid) == p, "entity %d hinted to partition %d is in partition %d" %
                  (eid, p, partition_of_entity(eid)))
            check(any(d[1] == ":t/val" and d[2] == n.id * 100 + k for d in doc.get("datoms", [])),
                  "node %d: the transact answer does not list the :t/val datom: %r" % (n.id, doc))
            eids[eid] = (n.id * 100 + k, n.id, k)
            expected.add((eid, n.id * 100 + k, n.id))
        # Identity-keyed entities: placed by hash(attribute, value); the coordinator must route them the same way.
        for k in range(4):
            key = "key-%d-%d" % (n.id, k)
            tx = "[{:db/id \"e\" :t/key %s :t/val %d :t/node %d}]" % (edn_str(key), 10000 + n.id * 100 + k, n.id)
            r = n.transact(tx, request_id="rk-%d-%d" % (n.id, k))
            check(r.status == 200, "node %d: transact %s -> %r" % (n.id, tx, r))
            eid = r.json()["tempids"]["e"]
            expected.add((eid, 10000 + n.id * 100 + k, n.id))
    log("wrote %d entities through 3 nodes" % len(expected))

    q = "[:find ?e ?v ?n :where [?e :t/val ?v] [?e :t/node ?n]]"
    for n in c.nodes:
        got = {tuple(r) for r in rows(n, q)}
        check(got == expected, "node %d: query sees %d rows, want %d; missing %r; extra %r" %
              (n.id, len(got), len(expected), sorted(expected - got)[:5], sorted(got - expected)[:5]))
    # Every replica applied everything: stale (local) reads agree too.
    c.wait_applied_equal(timeout_s=15)

    # The leader of each shard reports every replica's progress; every node sees every node live.
    def progress_reported():
        for s_ in range(1, SHARDS + 1):
            ld = c.node(c.leader_of(s_))
            e = shard_entry(ld.status(), s_)
            reps = {r.get("node"): r for r in e.get("replicas", [])}
            if sorted(reps) != [1, 2, 3]:
                raise TestFailure("shard %d: its leader node %d lists replicas %r, want nodes 1, 2, 3" %
                                  (s_, ld.id, e.get("replicas")))
            if any(r.get("lag") != 0 or r.get("match_index") != e.get("commit_index") for r in reps.values()):
                return False
        return all(all(m.get("live") is True for m in n.status().get("nodes", [])) for n in c.nodes)

    wait_until("every shard leader to report lag 0 for all replicas and every node to see every node live",
               progress_reported, 10)
    for n in c.nodes:
        got = {tuple(r) for r in rows(n, q, consistency="stale")}
        check(got == expected, "node %d: stale query differs: missing %r extra %r" %
              (n.id, sorted(expected - got)[:5], sorted(got - expected)[:5]))
    # Datoms: identical from every node, index order and t included.
    ref = None
    for n in c.nodes:
        ds = n.datoms("aevt", a=":t/val")
        check(len(ds) == len(expected), "node %d: %d :t/val datoms, want %d" % (n.id, len(ds), len(expected)))
        if ref is None:
            ref = ds
        check(ds == ref, "node %d: aevt :t/val datoms differ from node 1's" % n.id)
        for eid in list(eids)[:6]:
            ed = n.datoms("eavt", e=str(eid))
            check(sorted((d[1], d[2]) for d in ed if d[1] != ":db/txInstant") ==
                  sorted([(":t/node", eids[eid][1]), (":t/val", eids[eid][0]), (":t/writer", eids[eid][2])]),
                  "node %d: datoms of entity %d: %r" % (n.id, eid, ed))
    # Lookup refs resolve on every node (routed by the identity hash).
    for n in c.nodes:
        got = rows(n, "[:find ?v :in $ ?k :where [?e :t/key ?k] [?e :t/val ?v]]", args=[edn_str("key-3-2")])
        check(got == [[10302]], "node %d: lookup of key-3-2 -> %r" % (n.id, got))
    # Aggregates across shards.
    for n in c.nodes:
        got = rows(n, "[:find (count ?e) (sum ?v) :where [?e :t/val ?v]]")
        check(got == [[len(expected), sum(v for _, v, _ in expected)]], "node %d: count/sum -> %r" % (n.id, got))


# ---------------------------------------------------------------------------
# 2. kill -9 a shard leader under writes; new leader; nothing lost; restart catches up


def test_leader_failover(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(1))
    shard = 2
    leader = c.leader_of(shard)
    log("shard %d leader: node %d" % (shard, leader))
    parts_s = [p for p in range(1, 17) if shard_of_partition(p, SHARDS) == shard]
    parts_other = [p for p in range(1, 17) if shard_of_partition(p, SHARDS) != shard]
    # per-request timeout 10 s: the measured failover is the nodes' doing, not this client's timeout
    writers = [Writer(1, c.nodes, parts_s, start_node=0, per_request_timeout=10.0),
               Writer(2, c.nodes, parts_s, start_node=1, per_request_timeout=10.0),
               Writer(3, c.nodes, parts_other, start_node=2, per_request_timeout=10.0)]
    for w in writers:
        w.start()
    time.sleep(1.5)
    acked_before = sum(len(w.acks) for w in writers[:2])
    check(acked_before > 0, "no write to shard %d acknowledged in 1.5 s before the kill: %r" %
          (shard, [dict(w.errors) for w in writers]))
    killed = c.node(leader)
    t_kill = time.monotonic()
    kill_ms = int(time.time() * 1000)
    killed.kill9()
    log("killed node %d (leader of shard %d) after %d acknowledged writes to it" % (leader, shard, acked_before))
    survivors = [n for n in c.nodes if n.id != leader]
    new_leader = c.leader_of(shard, nodes=survivors, timeout_s=5)
    t_leader = time.monotonic() - t_kill
    check(new_leader != leader, "shard %d leader still reported as the killed node" % shard)

    # The next write to the shard committed after the kill: its t (hybrid clock: physical ms << 16) was proposed
    # after the kill, so by a new leader, whether the client or a node retried it.
    def acked_after():
        late = [a for w in writers[:2] for a in w.acks if isinstance(a.t, int) and (a.t >> 16) > kill_ms]
        return min(late, key=lambda a: a.acked_at) if late else None

    first = wait_until("an acknowledged write to shard %d after the kill" % shard, acked_after, 15.0)
    failover = first.acked_at - t_kill
    log("failover: new leader node %d seen after %.3f s; first acknowledged write to shard %d %.3f s after the kill" %
        (new_leader, t_leader, shard, failover))
    check(failover < 5.0, "the first write to shard %d committed after the kill was acknowledged %.3f s after it "
          "(bound 5 s; new leader seen after %.3f s); it is %r; errors the writers saw so far: %r" %
          (shard, failover, t_leader, first, [dict(w.errors) for w in writers]))
    time.sleep(1.0)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(timeout=15)
        check(not w.is_alive(), "writer %d did not stop" % w.wid)
    check_writers_clean(writers)
    acks = [a for w in writers for a in w.acks]
    maybe = [u[0] for w in writers for u in w.unknown]
    log("writes: %d acknowledged, %d unknown; errors seen %r" %
        (len(acks), len(maybe), [dict(w.errors) for w in writers]))
    for n in survivors:
        check_acks_exactly_once(n, acks, maybe)

    # Restart the killed node: it catches up (applied index reaches the others', same datoms).
    killed.start()
    c.wait_healthy(nodes=[killed], timeout_s=30)
    c.wait_applied_equal(timeout_s=30)
    ref = val_datoms(survivors[0])
    for n in c.nodes:
        check_acks_exactly_once(n, acks, maybe, consistency="stale")
        check(val_datoms(n) == ref, "node %d: :t/val datoms differ from node %d's after the restart" %
              (n.id, survivors[0].id))
    # And it takes writes again, through itself.
    r = killed.transact(Writer.tx(999999, parts_s[0], 9), request_id="after-restart")
    check(r.status == 200, "write through the restarted node %d -> %r" % (killed.id, r))


# ---------------------------------------------------------------------------
# 3. a node kept down while the others compact; it catches up by snapshot

SNAPSHOT_ENTRIES = 40

SNAPSHOT_METRIC = re.compile(r"^(cairn_\w*snapshot\w*)(\{[^}]*\})?\s+([0-9.eE+]+)\s*$", re.M)
SNAPSHOT_LOG = re.compile(r"(?i)(install\w*|restor\w*|appl\w*|load\w*)\W+(\w+\W+){0,3}snapshot|snapshot\W+(\w+\W+){0,3}(install|restor|appl|load)")


def snapshot_installed_evidence(node):
    """What the node says about snapshots it installed: metrics with 'snapshot' and 'install|restor|receiv' in the
    name with a value > 0, and log lines since its last start."""
    found = []
    for name, labels, value in SNAPSHOT_METRIC.findall(node.metrics()):
        if re.search(r"install|restor|receiv|recv", name) and float(value) > 0:
            found.append("%s%s %s" % (name, labels, value))
    text = node.log_text().rsplit("==== start", 1)[-1]
    for line in text.splitlines():
        if SNAPSHOT_LOG.search(line):
            found.append(line.strip()[:200])
    st = node.status()
    for g in range(0, SHARDS + 1):
        e = group_entry(st, g)
        for k, v in e.items():
            if "snapshot" in k and isinstance(v, (int, float)) and v > 0:
                found.append("status group %d %s=%s" % (g, k, v))
    return found


def _raft_db(node, sql):
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(node.dir, "raft.db"), uri=True, timeout=10)
    try:
        return dict(db.execute(sql).fetchall())
    finally:
        db.close()


def raft_db_first_entries(node):
    """{group: first log index held} from the node's raft.db (read-only; fine while the node runs, WAL mode)."""
    return _raft_db(node, "SELECT grp, min(idx) FROM raft_entries GROUP BY grp")


def raft_db_snapshots(node):
    """{group: index of the snapshot held} from the node's raft.db."""
    return _raft_db(node, "SELECT grp, idx FROM raft_snapshot")


def test_snapshot_catchup(work, register):
    c = Cluster(ARGS.cairn, work, snapshot_entries=SNAPSHOT_ENTRIES)
    register(c)
    c.start()
    install_schema(c.node(1))
    down = c.node(3)
    applied_when_down = {s_: shard_entry(down.status(), s_).get("applied_index") for s_ in range(1, SHARDS + 1)}
    rc = down.stop()
    check(rc == 0, "node 3 stopped by SIGTERM exited %r, want 0" % rc)
    up = [c.node(1), c.node(2)]
    c.wait_healthy(nodes=up, timeout_s=15)
    per_shard = 3 * SNAPSHOT_ENTRIES
    writers = []
    for s in range(1, SHARDS + 1):
        w = Writer(s, up, [p for p in range(1, 9) if shard_of_partition(p, SHARDS) == s], start_node=s)
        writers.append(w)
    done = threading.Event()
    threads = []
    for w in writers:
        def run(w=w):
            for k in range(per_shard):
                w.seq += 1
                w.write_one(w.wid * 1000000 + w.seq, "s%d-%d" % (w.wid, w.seq), w.partitions[k % len(w.partitions)],
                            give_up=done, deadline_s=20)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
    t0 = time.monotonic()
    for t in threads:
        t.join(timeout=120)
        check(not t.is_alive(), "writers did not finish in 120 s")
    log("%d writes on 2 nodes in %.1f s" % (sum(len(w.acks) for w in writers), time.monotonic() - t0))
    check_writers_clean(writers)
    acks = [a for w in writers for a in w.acks]
    check(len(acks) == SHARDS * per_shard, "only %d of %d writes acknowledged; unknown %r" %
          (len(acks), SHARDS * per_shard, [w.unknown[:3] for w in writers]))
    c.wait_applied_equal(nodes=up, timeout_s=20)
    st = up[0].status()
    for s in range(1, SHARDS + 1):
        check(shard_entry(st, s).get("applied_index", 0) > 2 * SNAPSHOT_ENTRIES,
              "shard %d applied only %r entries, want > %d so that the log is compacted past node 3" %
              (s, shard_entry(st, s).get("applied_index"), 2 * SNAPSHOT_ENTRIES))
    # The others' logs are compacted past what node 3 applied (their raft.db, read-only: docs/cluster.md "Node
    # host"), so the entries it misses exist nowhere any more: it can only catch up by snapshot.
    for n in up:
        first = raft_db_first_entries(n)
        for s_ in range(1, SHARDS + 1):
            check(first.get(s_, 1 << 62) > (applied_when_down[s_] or 0) + 1,
                  "node %d still holds shard %d's log from index %r, but node 3 applied only up to %r (snapshot_entries "
                  "%d): the log was not compacted" % (n.id, s_, first.get(s_), applied_when_down[s_], SNAPSHOT_ENTRIES))
    down.start()
    c.wait_healthy(nodes=[down], timeout_s=30)
    c.wait_applied_equal(timeout_s=30)
    evidence = snapshot_installed_evidence(down)
    log("snapshot evidence on node 3 (metrics, log, status): %r" % evidence)
    # What node 3 exports about it: /v1/status shows per shard a snapshot index past what it had applied when it went
    # down (installed, or its own once it caught up), and cairn_snapshots_installed_total counts the installs (a shard
    # whose log still reached past node 3's own log may catch up from the log instead).
    st3 = down.status()
    installs = 0
    for s_ in range(1, SHARDS + 1):
        check(shard_entry(st3, s_).get("snapshot_index", 0) > (applied_when_down[s_] or 0),
              "node 3: /v1/status shard %d snapshot_index %r, want past %r" %
              (s_, shard_entry(st3, s_).get("snapshot_index"), applied_when_down[s_]))
        m = re.search(r'^cairn_snapshots_installed_total\{group="%d"\} (\d+)$' % s_, down.metrics(), re.M)
        check(m is not None, "node 3: /metrics lacks cairn_snapshots_installed_total for shard %d" % s_)
        installs += int(m.group(1))
    check(installs >= 1, "node 3: cairn_snapshots_installed_total is 0 for every shard after catching up")
    for n in c.nodes:
        check_acks_exactly_once(n, acks, consistency="stale")
    check(val_datoms(down) == val_datoms(up[0]), "node 3's datoms differ from node 1's after the snapshot")
    # Its durable Raft state (raft.db, docs/cluster.md "Node host") must show the catch-up came by snapshot: per
    # shard a snapshot past what it had applied when it went down, and no log entry between the two.
    rc = down.stop()
    check(rc == 0, "node 3 stopped by SIGTERM exited %r, want 0" % rc)
    snaps = raft_db_snapshots(down)
    first = raft_db_first_entries(down)
    by_snapshot = []
    for s_ in range(1, SHARDS + 1):
        was = applied_when_down[s_] or 0
        if snaps.get(s_, 0) > was and first.get(s_, snaps.get(s_, 0) + 1) > was + 1:
            by_snapshot.append(s_)
    log("node 3 applied %r when stopped; its raft.db now holds snapshots %r and log entries from %r" %
        (applied_when_down, snaps, first))
    check(evidence or len(by_snapshot) == SHARDS,
          "node 3 caught up but neither reports an installed snapshot (metrics cairn_*snapshot*install*, its log "
          "since the restart, a snapshot field in /v1/status) nor holds one past its old applied index for every "
          "shard in raft.db (shards that do: %r)" % by_snapshot)
    check(len(by_snapshot) == SHARDS, "node 3's raft.db shows a catch-up by snapshot only for shards %r: "
          "snapshots %r, first log entries %r, applied when it went down %r" % (by_snapshot, snaps, first,
                                                                                applied_when_down))


# ---------------------------------------------------------------------------
# 4. kill -9 every node at once under concurrent writers; restart; exactly once


def test_kill_all(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(3))
    writers = [Writer(i + 1, c.nodes, list(range(1 + i, 17, 2)), start_node=i, per_request_timeout=2.0)
               for i in range(4)]
    for w in writers:
        w.start()
    time.sleep(2.5)
    n_before = sum(len(w.acks) for w in writers)
    check(n_before > 0, "no write acknowledged in 2.5 s: %r" % [dict(w.errors) for w in writers])
    for n in c.nodes:  # "at once": no waiting between the kills
        os.killpg(n.proc.pid, signal.SIGKILL)
    for n in c.nodes:
        n.kill9()
    log("killed all 3 nodes with %d writes acknowledged" % n_before)
    time.sleep(0.3)
    for w in writers:
        w.stop.set()
    for w in writers:
        w.join(timeout=15)
        check(not w.is_alive(), "writer %d did not stop" % w.wid)
    check_writers_clean(writers)
    acks = [a for w in writers for a in w.acks]
    unknown = [(w, u) for w in writers for u in w.unknown]
    log("%d acknowledged, %d in flight at the kill" % (len(acks), len(unknown)))

    c.start()
    c.wait_applied_equal(timeout_s=30)
    for n in c.nodes:
        check_acks_exactly_once(n, acks, [u[0] for _, u in unknown])
    # Retrying the in-flight ones with the same request id applies each at most once.
    never = threading.Event()
    retried = []
    for w, (value, rid, partition) in unknown:
        a = w.write_one(value, rid, partition, give_up=never, deadline_s=20)
        check(a is not None, "retry of in-flight request %s after the restart was not acknowledged: %r" %
              (rid, w.refused[-1:]))
        retried.append(a)
    check_writers_clean(writers)  # the retries' answers too
    # A retry of an acknowledged request returns its first outcome, marked duplicate.
    for a in acks[:5] + acks[-5:]:
        w = writers[a.value // 1000000 - 1]
        r = c.node(1 + a.value % 3).transact(Writer.tx(a.value, a.partition, w.wid), request_id=a.rid)
        check(r.status == 200, "retry of acknowledged %s -> %r" % (a.rid, r))
        doc = r.json()
        check(doc.get("duplicate") is True and doc.get("t") == a.t,
              "retry of acknowledged %s: want duplicate true and t %d, got %r" % (a.rid, a.t, doc))
    c.wait_applied_equal(timeout_s=20)
    for n in c.nodes:
        check_acks_exactly_once(n, acks + retried, consistency="stale")
    log("after restart: all %d acknowledged present once; %d in-flight retried, %d of them duplicates" %
        (len(acks), len(retried), sum(1 for a in retried if a.duplicate)))


# ---------------------------------------------------------------------------
# 5. a node with a wrong cluster secret is refused

AUTH_METRIC = re.compile(r"^(cairn_\w*auth\w*)(\{[^}]*\})?\s+([0-9.eE+]+)\s*$", re.M)
AUTH_LOG = re.compile(r"(?i)(auth|hmac|handshake|secret)\w*\W+(\w+\W+){0,4}(fail|reject|refus|denied|mismatch|bad|wrong)"
                      r"|(fail|reject|refus|denied|mismatch|bad|wrong)\w*\W+(\w+\W+){0,4}(auth|hmac|handshake|secret)")


def auth_failure_evidence(node):
    found = []
    for name, labels, value in AUTH_METRIC.findall(node.metrics()):
        if re.search(r"fail|reject|refus|denied", name) and float(value) > 0:
            found.append("%s%s %s" % (name, labels, value))
    for line in node.log_text().splitlines():
        if AUTH_LOG.search(line):
            found.append(line.strip()[:200])
    return found


def test_wrong_secret(work, register):
    bad_secret = os.path.join(work, "bad-secret")
    with open(bad_secret, "w") as f:
        f.write("not-the-cluster-secret\n")
    c = Cluster(ARGS.cairn, work, secrets={3: bad_secret})
    register(c)
    c.start(wait_healthy=False)
    good = [c.node(1), c.node(2)]
    bad = c.node(3)
    c.wait_healthy(nodes=good, timeout_s=30)
    install_schema(good[0])
    r = good[1].transact("[{:db/id \"x\" :db/partition 1 :t/val 42}]", request_id="good-1")
    check(r.status == 200, "a write on the good nodes -> %r" % r)
    # The bad node never joins: for 3 s its /health stays 503 and its status knows no leader.
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:
        h = bad.health()
        check(h.status == 503, "node 3 (wrong secret) answered /health %r" % h)
        h.error()
        time.sleep(0.2)
    st = bad.status()
    for g in range(0, SHARDS + 1):
        check(group_entry(st, g).get("leader") in (0, None),
              "node 3 (wrong secret) reports leader %r for group %d" % (group_entry(st, g).get("leader"), g))
    check(bad.running, "node 3 (wrong secret) crashed: %s" % bad.log_tail())
    for n in good:
        ev = auth_failure_evidence(n)
        check(ev, "node %d neither logged nor counted the failed authentication of node 3" % n.id)
        log("node %d auth failure evidence: %r" % (n.id, ev[:3]))
    # The cluster keeps working.
    r = good[0].transact("[{:db/id \"x\" :db/partition 2 :t/val 43}]", request_id="good-2")
    check(r.status == 200, "a write after the refusal -> %r" % r)
    for n in good:
        check(sorted(v for _, v in rows(n, "[:find ?e ?v :where [?e :t/val ?v]]")) == [42, 43],
              "node %d does not see both writes" % n.id)
    # With the right secret the same node joins and catches up: the refusal was the secret.
    bad.stop()
    with open(bad_secret, "w") as f, open(c.secret_path) as g:
        f.write(g.read())
    bad.start()
    c.wait_healthy(nodes=[bad], timeout_s=30)
    c.wait_applied_equal(timeout_s=30)
    check(sorted(v for _, v in rows(bad, "[:find ?e ?v :where [?e :t/val ?v]]", consistency="stale")) == [42, 43],
          "node 3 with the right secret does not hold both writes")


# ---------------------------------------------------------------------------
# 6. malformed HTTP, JSON and EDN: 4xx with the error shape, nothing changes


def snapshot_counts(c):
    out = {}
    for n in c.live():
        out[n.id] = (rows(n, "[:find (count ?e) :where [?e :t/val]]"), len(n.datoms("aevt", a=":t/val")),
                     len(n.datoms("aevt", a=":db/ident")))
    return out


def expect_error(what, resp, status, code=None, message_re=None):
    check(resp.status == status, "%s: want HTTP %d, got %r" % (what, status, resp))
    err = resp.error()
    if code is not None:
        check(err["code"] == code, "%s: error code %r, want %r (%r)" % (what, err["code"], code, err))
    if message_re is not None:
        check(re.search(message_re, err["message"]), "%s: message %r does not match /%s/" %
              (what, err["message"], message_re))
    return err


def malformed_checks(c, nodes):
    for i, n in enumerate(nodes):
        tag = "node %d" % n.id
        # Garbage request line: 400 bad_request, connection closed; the node keeps serving.
        status, body = parse_raw_response(raw_http(n.http, b"\x16\x03\x01 GARBAGE\r\n\r\n"))
        check(status == 400, "%s: garbage request line -> %d %r" % (tag, status, body))
        status, body = parse_raw_response(raw_http(n.http, b"GET /v1/status HTTP/9.9 extra\r\nHost: x\r\n\r\n"))
        check(status == 400, "%s: bad HTTP version -> %d %r" % (tag, status, body))
        # Oversized body: 413 as soon as Content-Length says so, without sending the body.
        data = raw_http(n.http, b"POST /v1/transact HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 1000000000\r\n\r\n{\"tx-data\": \"[")
        status, body = parse_raw_response(data)
        check(status == 413, "%s: Content-Length 1e9 -> %d %r" % (tag, status, body))
        import json as _json
        check(_json.loads(body)["error"]["code"] == "payload_too_large", "%s: 413 body %r" % (tag, body))
        # Bad JSON, with line:column.
        r = n.post("/v1/transact", '{"tx-data": "[]",\n "request-id": }', headers={"Content-Type": "application/json"})
        expect_error(tag + " bad JSON", r, 400, "invalid_argument", r"malformed JSON at 2:\d+")
        r = n.post("/v1/transact", '["not", "an", "object"]', headers={"Content-Type": "application/json"})
        expect_error(tag + " JSON array body", r, 400, "invalid_argument")
        # Bad EDN inside JSON and as an EDN body, with line:column.
        r = n.transact("[{:db/id \"a\" :db/partition 1\n  :t/val }]")
        expect_error(tag + " bad EDN tx-data", r, 400, "invalid_argument", r"\b2:\d+")
        r = n.post("/v1/transact", "[{:db/id \"a\" :t/val 1\n\n :t/node [}]", headers={"Content-Type": "application/edn"})
        expect_error(tag + " bad EDN body", r, 400, "invalid_argument", r"\b3:\d+")
        r = n.query("[:find ?e :where [?e :t/val\n ]")
        expect_error(tag + " bad EDN query", r, 400, "invalid_argument", r"\b\d+:\d+")
        # Unknown fields are named.
        r = n.post("/v1/transact", {"tx-data": "[{:db/id \"a\" :db/partition 1 :t/val 5}]", "txdata": "oops"})
        expect_error(tag + " unknown transact field", r, 400, "invalid_argument", "txdata")
        r = n.post("/v1/query", {"query": "[:find ?e :where [?e :t/val]]", "limitt": 3})
        expect_error(tag + " unknown query field", r, 400, "invalid_argument", "limitt")
        r = n.post("/v1/transact", {"tx-data": 17})
        expect_error(tag + " tx-data not a string", r, 400, "invalid_argument", "tx-data")
        # Valid syntax, refused by the transactor: the attribute is named.
        r = n.transact("[{:db/id \"a\" :db/partition 1 :t/val \"seven\"}]")
        expect_error(tag + " mistyped value", r, 400, "invalid_argument", ":t/val")
        # (undeclared attributes are accepted, docs/transactions.md; in the :db namespace they are typos)
        r = n.transact("[{:db/id \"a\" :db/partition 1 :t/val 3 :db/nope 1}]")
        expect_error(tag + " unknown :db attribute", r, 400, "invalid_argument", ":db/nope")
        # Wrong paths and methods.
        expect_error(tag + " unknown path", n.get("/v1/nothing-here"), 404, "not_found")
        r = n.get("/v1/transact")
        expect_error(tag + " GET /v1/transact", r, 405, "method_not_allowed")
        check("POST" in r.headers.get("Allow", ""), "%s: 405 without Allow: POST: %r" % (tag, r.headers))
        # The connection-level errors did not hurt the node.
        check(n.health().status == 200, "%s: unhealthy after malformed requests" % tag)


def cluster_only_checks(c, nodes):
    for i, n in enumerate(nodes):
        tag = "node %d" % n.id
        # Two new entities hinted to partitions 1 and 2 = shards 1 and 2: refused, naming both shards.
        r = n.transact("[{:db/id \"a\" :db/partition 1 :t/val 7} {:db/id \"b\" :db/partition 2 :t/val 8}]",
                       request_id="cross-%d" % i)
        err = expect_error(tag + " cross-shard transaction", r, 400, "cross_shard")
        check(re.search(r"\b1\b", err["message"]) and re.search(r"\b2\b", err["message"]),
              "%s: cross_shard message does not name shards 1 and 2: %r" % (tag, err["message"]))
        # Schema and data in one transaction: refused.
        r = n.transact("[{:db/ident :t/new :db/valueType :db.type/long :db/cardinality :db.cardinality/one}"
                       " {:db/id \"a\" :db/partition 1 :t/val 9}]", request_id="mixed-%d" % i)
        expect_error(tag + " schema mixed with data", r, 400, "invalid_argument")
        # An unknown request field in EDN form is named too.
        r = n.post("/v1/transact", "{:tx-data [{:db/id \"a\" :db/partition 1 :t/val 10}] :request-idd \"x\"}",
                   headers={"Content-Type": "application/edn"})
        expect_error(tag + " unknown EDN field", r, 400, "invalid_argument", "request-idd")


def test_malformed_http(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(1))
    for k in range(4):
        r = c.node(1 + k % 3).transact("[{:db/id \"a\" :db/partition %d :t/val %d}]" % (k + 1, k), request_id="ok-%d" % k)
        check(r.status == 200, "setup write -> %r" % r)
    c.wait_applied_equal(timeout_s=15)
    before = snapshot_counts(c)
    latest = {n.id: n.status().get("latest_t") for n in c.nodes}
    malformed_checks(c, c.nodes)
    cluster_only_checks(c, c.nodes)
    c.wait_applied_equal(timeout_s=15)
    after = snapshot_counts(c)
    check(before == after, "malformed requests changed stored data: before %r after %r" % (before, after))
    latest_after = {n.id: n.status().get("latest_t") for n in c.nodes}
    check(latest == latest_after, "latest_t moved: %r -> %r" % (latest, latest_after))
    for n in c.nodes:
        check(n.running, "node %d died" % n.id)


# ---------------------------------------------------------------------------
# 7. the C++ client survives a leader change


def test_client_failover(work, register):
    prog = ARGS.client_writer
    check(prog and os.path.exists(prog), "the cairn::Client writer program is not built (cairn::Client has not "
          "landed: include/cairn/client.h); this test stays in the cluster-pending label until it does")
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(1))
    shard = 3
    leader = c.leader_of(shard)
    partition = [p for p in range(1, 9) if shard_of_partition(p, SHARDS) == shard][0]
    count = 300
    out_path = os.path.join(work, "client.out")
    endpoints = ",".join(n.http for n in c.nodes)
    with open(out_path, "wb") as out, open(os.path.join(work, "client.err"), "wb") as err:
        proc = subprocess.Popen([prog, endpoints, str(partition), str(count), "7000000"], stdout=out, stderr=err,
                                start_new_session=True)
    c.all_pids.add(proc.pid)
    try:
        def acked(k):
            with open(out_path) as f:
                return sum(1 for line in f if line.startswith("ack ")) >= k

        wait_until("the client's first 30 writes", lambda: acked(30), 30)
        c.node(leader).kill9()
        log("killed node %d, leader of shard %d, under the client" % (leader, shard))
        rc = proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(out_path) as f:
        lines = f.read().splitlines()
    with open(os.path.join(work, "client.err")) as f:
        err_text = f.read()
    check(rc == 0, "the client writer exited %r (it must ride through the leader change); stderr:\n%s" %
          (rc, err_text[-2000:]))
    acks = []
    for line in lines:
        if line.startswith("ack "):
            _, value, t, eid, dup, ms = line.split()
            acks.append(collections.namedtuple("A", "value t eid dup ms")(int(value), int(t), int(eid), dup == "1",
                                                                          int(ms)))
    check(len(acks) == count, "the client acknowledged %d of %d writes" % (len(acks), count))
    gaps = [b.ms - a.ms for a, b in zip(acks, acks[1:])]
    log("client: %d writes, %d answered as duplicates, longest wait between two acknowledgements %d ms "
        "(the leader change)" % (len(acks), sum(1 for a in acks if a.dup), max(gaps) if gaps else 0))
    survivor = [n for n in c.nodes if n.id != leader][0]
    stored = val_datoms(survivor)
    counts = count_by_value(survivor)
    for a in acks:
        check(counts.get(a.value) == 1, "client write %d stored %d times" % (a.value, counts.get(a.value, 0)))
        want = (stored[a.value][0] if a.dup and a.eid == 0 else a.eid, a.t)  # request_id_retry checks tempids
        check(stored[a.value] == want, "client write %d: acknowledged (e, t) %r, stored %r" %
              (a.value, (a.eid, a.t), stored[a.value]))
    check(set(counts) == {a.value for a in acks}, "stored values nobody acknowledged: %r" %
          sorted(set(counts) - {a.value for a in acks})[:10])


# ---------------------------------------------------------------------------
# 8. `cairn cluster up/down` (the client helper's CLI): cluster.json, a restart with the node's config, down


class UpCluster:
    """Stops whatever `cairn cluster up` started if the test fails before `cluster down` did."""

    def __init__(self):
        self.pids = set()
        self.nodes = []

    def cleanup(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for n in self.nodes:
            n.cleanup_proc()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_cli_up_down(work, register):
    from cairn_cluster import Node
    import json as _json
    up = UpCluster()
    register(up)
    d = os.path.join(work, "c")
    cmd = [ARGS.cairn, "cluster", "up", "--nodes", "3", "--shards", "4", "--dir", d]  # free ports by default
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    cj_path = os.path.join(d, "cluster.json")
    if os.path.exists(cj_path):
        try:
            up.pids.update(n.get("pid") for n in _json.load(open(cj_path)).get("nodes", []) if n.get("pid"))
        except ValueError:
            pass
    check(r.returncode == 0, "%s exited %d:\n%s" % (" ".join(cmd), r.returncode, out[-2000:]))
    cj = _json.load(open(cj_path))
    check(cj.get("shards") == 4 and cj.get("replication") == 3 and cj.get("partitions") == 256,
          "cluster.json shards/replication/partitions: %r" % {k: cj.get(k) for k in ("shards", "replication", "partitions")})
    check(os.path.exists(cj.get("secret_file", "")), "cluster.json secret_file %r does not exist" % cj.get("secret_file"))
    check(len(cj.get("nodes", [])) == 3, "cluster.json nodes: %r" % cj.get("nodes"))
    for n in cj["nodes"]:
        for k in ("id", "pid", "http", "peer", "dir", "log", "config"):
            check(k in n, "cluster.json node %r lacks %r" % (n, k))
        check(pid_alive(n["pid"]), "node %d pid %d from cluster.json is not running" % (n["id"], n["pid"]))
        check(str(n["pid"]) in out and n["http"] in out, "cluster up does not print node %d's PID and endpoint:\n%s" %
              (n["id"], out))
        check(os.path.exists(n["config"]), "node %d config %s missing" % (n["id"], n["config"]))
    # The same views the harness uses, on the nodes cluster up started.
    fake = type("C", (), {"cairn": ARGS.cairn, "all_pids": set()})()
    nodes = []
    for n in sorted(cj["nodes"], key=lambda n: n["id"]):
        node = Node(fake, n["id"], n["http"], n["peer"], n["dir"])
        node.config_path, node.log_path = n["config"], os.path.join(work, "restart-node%d.log" % n["id"])
        node.out_path = os.path.join(work, "restart-node%d.out" % n["id"])
        node.cleanup_proc = lambda node=node: node.kill9()
        nodes.append(node)
    up.nodes = nodes

    def healthy(n):
        return wait_until("node %d /health 200" % n.id, lambda: n.health(timeout=2).status == 200, 30, 0.1)

    for n in nodes:
        healthy(n)
    install_schema(nodes[0])
    r = nodes[1].transact("[{:db/id \"a\" :db/partition 3 :t/val 31}]", request_id="up-1")
    check(r.status == 200, "write through node 2 -> %r" % r)
    # The CLI talks to the cluster too.
    q = subprocess.run([ARGS.cairn, "q", "--connect", nodes[2].http, "[:find ?v :where [_ :t/val ?v]]"],
                       capture_output=True, timeout=30)
    check(q.returncode == 0 and b"31" in q.stdout, "cairn q --connect -> %d %r %r" % (q.returncode, q.stdout, q.stderr))
    # A node is restarted with `cairn serve --config D/nodeI/node.json`.
    victim = cj["nodes"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    wait_until("node %d (pid %d) to die" % (victim["id"], victim["pid"]), lambda: not pid_alive(victim["pid"]), 10)
    nodes[0].start()
    up.pids.add(nodes[0].proc.pid)
    healthy(nodes[0])
    # cluster down stops what cluster up started (the restarted node is ours; the others must be gone).
    r = subprocess.run([ARGS.cairn, "cluster", "down", "--dir", d], capture_output=True, timeout=60)
    check(r.returncode == 0, "cluster down exited %d: %r" % (r.returncode, r.stderr[-1000:]))
    for n in cj["nodes"][1:]:
        wait_until("node %d (pid %d) to stop after cluster down" % (n["id"], n["pid"]),
                   lambda n=n: not pid_alive(n["pid"]), 15)


# ---------------------------------------------------------------------------
# 9. a bad node.json: exit code 2, an error naming the key, nothing started or created


def test_config_errors(work, register):
    import json as _json
    import socket as _socket
    from cairn_cluster import free_ports
    http_port, peer_port, other_http, other_peer = free_ports(4)
    secret = os.path.join(work, "secret")
    with open(secret, "w") as f:
        f.write("s3cret\n")

    def good():
        return {"node_id": 1, "dir": os.path.join(work, "data"), "http": "127.0.0.1:%d" % http_port,
                "peer": "127.0.0.1:%d" % peer_port, "cluster_secret_file": secret, "shards": 4, "replication": 1,
                "partitions": 256,
                "nodes": [{"id": 1, "peer": "127.0.0.1:%d" % peer_port, "http": "127.0.0.1:%d" % http_port},
                          {"id": 2, "peer": "127.0.0.1:%d" % other_peer, "http": "127.0.0.1:%d" % other_http}]}

    def without(d, k):
        d = dict(d)
        del d[k]
        return d

    g = good()
    bad_node = dict(g)
    bad_node["nodes"] = [g["nodes"][0], {"id": 2, "http": g["nodes"][1]["http"]}]
    cases = [
        ("unknown key", dict(g, bogus_key=1), "bogus_key"),
        ("missing shards", without(g, "shards"), "shards"),
        ("address without a port", dict(g, http="127.0.0.1"), "http"),
        ("address with a bad port", dict(g, peer="127.0.0.1:99999"), "peer"),
        ("node missing its peer", bad_node, "peer"),
        ("node_id not among nodes", dict(g, node_id=7), "node_id"),
        ("shards not a number", dict(g, shards="four"), "shards"),
        ("secret file missing", dict(g, cluster_secret_file=os.path.join(work, "no-such-secret")),
         "cluster_secret_file"),
        ("malformed JSON", None, "JSON"),
    ]
    for what, cfg, key in cases:
        path = os.path.join(work, "node.json")
        with open(path, "w") as f:
            f.write('{"node_id": 1, "dir": ' if cfg is None else _json.dumps(cfg))
        r = subprocess.run([ARGS.cairn, "serve", "--config", path], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=20, preexec_fn=None)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2, "%s: exit code %d, want 2; stdout %r stderr %r" % (what, r.returncode, r.stdout, err))
        check(key in err, "%s: the error does not name %r: %r" % (what, key, err))
        check(b"listening" not in r.stdout, "%s: the node printed %r" % (what, r.stdout))
        check(not os.path.exists(g["dir"]), "%s: the refused config created its data dir %s" % (what, g["dir"]))
        with _socket.socket() as sock:
            check(sock.connect_ex(("127.0.0.1", http_port)) != 0, "%s: something listens on the http port" % what)
        log("ok: %s -> exit 2: %s" % (what, err.strip().splitlines()[-1][:160] if err.strip() else ""))


# ---------------------------------------------------------------------------
# 10. a request id is applied at most once, and its retry answers the first outcome on every node


def test_request_id_retry(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(1))
    tx = "[{:db/id \"r\" :db/partition 4 :t/val 4242 :t/writer 1}]"
    r = c.node(1).transact(tx, request_id="once-1")
    check(r.status == 200, "first write -> %r" % r)
    first = r.json()
    check(first.get("duplicate", False) is False, "a first application answered duplicate: %r" % first)
    eid = first["tempids"]["r"]
    for n in c.nodes:
        r = n.transact(tx, request_id="once-1")
        check(r.status == 200, "node %d: retry of once-1 -> %r" % (n.id, r))
        doc = r.json()
        check(doc.get("duplicate") is True, "node %d: retry of once-1 not marked duplicate: %r" % (n.id, doc))
        check(doc.get("t") == first["t"], "node %d: retry of once-1 answered t %r, first t %r" %
              (n.id, doc.get("t"), first["t"]))
        check(doc.get("tempids") == first["tempids"],
              "node %d: retry of once-1 answered tempids %r, the first outcome had %r (the contract: a retry returns "
              "the first outcome, t and tempids)" % (n.id, doc.get("tempids"), first["tempids"]))
    # The same id with other tx-data is still the same request: nothing new is applied.
    r = c.node(2).transact("[{:db/id \"r\" :db/partition 4 :t/val 4343}]", request_id="once-1")
    check(r.status == 200 and r.json().get("duplicate") is True and r.json().get("t") == first["t"],
          "other tx-data under an applied request id -> %r" % r)
    c.wait_applied_equal(timeout_s=15)
    for n in c.nodes:
        got = rows(n, "[:find ?e ?v :where [?e :t/val ?v]]", consistency="stale")
        check(got == [[eid, 4242]], "node %d: after 5 sends of once-1 it holds %r, want [[%d, 4242]]" % (n.id, got, eid))


def tx_t(v):
    """A query's ?tx value (the transaction entity id, bit 63 set, as a signed JSON integer) -> its t."""
    if v < 0:
        v += 1 << 64
    return v & ~(1 << 63)


def test_time_travel(work, register):
    """As-of, since, history, diff and datoms as-of through every node of a 4-node cluster (replication 3: node 4
    holds no meta replica and no replica of shard 1, so it reads them from other nodes) equal what a model of the
    writes says."""
    c = Cluster(ARGS.cairn, work, nodes=4)
    register(c)
    c.start()
    install_schema(c.node(4))
    events = []  # (t, e, v, added) of :t/val
    current = {}  # e -> (v, t asserted)
    ts = []
    k = 0

    def write(tx, what):
        nonlocal k
        n = c.nodes[k % len(c.nodes)]
        k += 1
        r = n.transact(tx, request_id="tt-%d" % k)
        check(r.status == 200, "node %d: %s: %s -> %r" % (n.id, what, tx, r))
        doc = r.json()
        ts.append(doc["t"])
        return doc

    # Entities on every shard (partitions 1..8: two per shard), each written through another node.
    eids = []
    for i in range(8):
        doc = write("[{:db/id \"e\" :db/partition %d :t/val %d :t/writer %d}]" % (1 + i, 100 + i, i), "create")
        e = doc["tempids"]["e"]
        eids.append(e)
        events.append((doc["t"], e, 100 + i, True))
        current[e] = (100 + i, doc["t"])
    # Cardinality-one updates (a retraction and an assertion in one transaction), then a retracted entity.
    for i in (0, 3, 5, 6, 3):
        e = eids[i]
        v = 200 + 10 * i + len(ts)
        doc = write("[[:db/add %d :t/val %d]]" % (e, v), "update")
        old = current[e][0]
        events += [(doc["t"], e, old, False), (doc["t"], e, v, True)]
        current[e] = (v, doc["t"])
    doc = write("[[:db/retractEntity %d]]" % eids[2], "retract entity")
    events.append((doc["t"], eids[2], current.pop(eids[2])[0], False))
    check(len(events) == 8 + 10 + 1, "model has %d events" % len(events))
    log("wrote %d transactions on %d shards; t from %d to %d" % (len(ts), SHARDS, min(ts), max(ts)))

    def as_of(T):
        state = {}
        for t, e, v, added in sorted(events, key=lambda x: (x[0], x[3])):
            if t > T:
                continue
            if added:
                state[(e, v)] = t
            else:
                state.pop((e, v), None)
        return state  # (e, v) -> t asserted

    def pairs(got):
        return {tuple(r) for r in got}

    # A few points in time: before everything, after the creates, in the updates, after the last write.
    points = sorted(set([ts[0] - 1, ts[3], ts[7], ts[9], ts[11], ts[-2], ts[-1]]))
    q = "[:find ?e ?v :where [?e :t/val ?v]]"
    hq = "[:find ?e ?v ?tx ?added :where [?e :t/val ?v ?tx ?added]]"
    want_history = {(e, v, t, added) for t, e, v, added in events}
    for n in c.nodes:
        for T in points:
            want = as_of(T)
            got = pairs(rows_view(n, q, **{"as-of": T}))
            check(got == set(want), "node %d: as-of %d: %d rows, want %d; missing %r; extra %r" %
                  (n.id, T, len(got), len(want), sorted(set(want) - got)[:4], sorted(got - set(want))[:4]))
            want_since = {ev for ev, t in as_of(max(ts)).items() if t > T}
            got = pairs(rows_view(n, q, since=T))
            check(got == want_since, "node %d: since %d: got %r, want %r" % (n.id, T, sorted(got), sorted(want_since)))
            got = {(d[0], d[2], d[3]) for d in n.datoms("aevt", a=":t/val", **{"as-of": str(T)})}
            want_datoms = {(e, v, t) for (e, v), t in want.items()}
            check(got == want_datoms, "node %d: datoms as-of %d: got %r, want %r" %
                  (n.id, T, sorted(got), sorted(want_datoms)))
        got = {(e, v, tx_t(tx), added) for e, v, tx, added in rows_view(n, hq, history=True)}
        check(got == want_history, "node %d: history: missing %r; extra %r" %
              (n.id, sorted(want_history - got)[:4], sorted(got - want_history)[:4]))
        for t1, t2 in ((ts[0], ts[7]), (ts[7], ts[-1]), (ts[9], ts[11]), (ts[0] - 1, ts[-1])):
            r = n.get("/v1/diff?from=%d&to=%d" % (t1, t2))
            check(r.status == 200, "node %d: diff %d..%d -> %r" % (n.id, t1, t2, r))
            doc = r.json()
            check(doc.get("from") == t1 and doc.get("to") == t2, "node %d: diff answer bounds %r" % (n.id, doc))
            datoms = doc["datoms"]
            check([d[3] for d in datoms] == sorted(d[3] for d in datoms), "node %d: diff not in t order" % n.id)
            check(all(t1 < d[3] <= t2 for d in datoms), "node %d: diff %d..%d holds a datom outside: %r" %
                  (n.id, t1, t2, [d for d in datoms if not t1 < d[3] <= t2][:3]))
            got = {(d[0], d[2], d[3], d[4]) for d in datoms if d[1] == ":t/val"}
            want = {(e, v, t, added) for t, e, v, added in events if t1 < t <= t2}
            check(got == want, "node %d: diff %d..%d: missing %r; extra %r" %
                  (n.id, t1, t2, sorted(want - got)[:4], sorted(got - want)[:4]))
    # Bad input is refused with the embedded server's error.
    r = c.node(4).get("/v1/diff?from=%d&to=%d" % (ts[-1], ts[0]))
    check(r.status == 400, "diff with from after to -> %r" % r)
    # An as-of a minute ahead of every clock cannot be closed: 400, and nothing changes.
    ahead = ts[-1] + (60000 << 16)
    r = c.node(4).query(q, **{"as-of": ahead})
    check(r.status == 400 and "clock" in r.body.decode(errors="replace"), "as-of a minute ahead -> %r" % r)
    check(pairs(rows_view(c.node(1), q)) == set(as_of(max(ts))), "the current view changed")

    # The same through cairn::Client (db().as_of/since/history, datoms as-of, diff), starting at node 4.
    prog = ARGS.client_time_travel
    check(prog and os.path.exists(prog), "the client time-travel reader %r is missing (--client-time-travel)" % prog)
    eps = ",".join(n.http for n in reversed(c.nodes))
    out = subprocess.run([prog, eps] + [str(T) for T in points], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "client reader exited %d: %s" % (out.returncode, out.stderr[-2000:]))
    got = collections.defaultdict(set)
    for line in out.stdout.splitlines():
        f = line.split()
        got[f[0]].add(tuple(int(x) for x in f[1:]))
    want = collections.defaultdict(set)
    for T in points:
        for (e, v), t in as_of(T).items():
            want["asof"].add((T, e, v))
            want["datoms"].add((T, e, v, t))
        for (e, v), t in as_of(max(ts)).items():
            if t > T:
                want["since"].add((T, e, v))
    want["history"] = {(e, v, t, int(added)) for t, e, v, added in events}
    got["history"] = {(e, v, tx_t(tx), added) for e, v, tx, added in got["history"]}
    for i in range(len(points) - 1):
        for j in (i + 1, len(points) - 1):
            t1, t2 = points[i], points[j]
            want["diff"] |= {(t1, t2, e, v, t, int(added)) for t, e, v, added in events if t1 < t <= t2}
    for kind in ("asof", "since", "datoms", "history", "diff"):
        check(got[kind] == want[kind], "client %s: %d lines, want %d; missing %r; extra %r" %
              (kind, len(got[kind]), len(want[kind]), sorted(want[kind] - got[kind])[:4],
               sorted(got[kind] - want[kind])[:4]))
    log("cairn::Client read %d lines of time views and diffs" % len(out.stdout.splitlines()))

    # As-of T is a cut (each shard closes T before it is read): while writers keep committing on every shard,
    # as-of T answers the same through every node, every time, and holds exactly the acknowledged writes with
    # t <= T. T is 2 s ahead of the clocks (within the 5 s bound), so without the close the writes that follow
    # would still get t <= T and show up in later reads.
    acks = []  # (t, e)
    acks_lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def writer(wid):
        i = 0
        while not stop.is_set() and i < 400:
            n = c.nodes[(wid + i) % len(c.nodes)]
            p = 1 + (wid * 3 + i) % 8
            r = n.transact("[{:db/id \"w\" :db/partition %d :t/writer %d :t/node %d}]" % (p, 900 + wid, i),
                           request_id="cut-%d-%d" % (wid, i))
            if r.status != 200:
                errors.append("writer %d: %r" % (wid, r))
                return
            with acks_lock:
                acks.append((r.json()["t"], r.json()["tempids"]["w"]))
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for th in threads:
        th.start()
    try:
        wait_until("some concurrent writes acknowledged", lambda: len(acks) >= 10, timeout_s=10)
        with acks_lock:
            T = max(a[0] for a in acks) + (2000 << 16)
        cq = "[:find ?e :where [?e :t/writer ?w] [(>= ?w 900)]]"
        answers = []
        deadline = time.time() + 1.5
        while time.time() < deadline:
            for n in c.nodes:
                answers.append((n.id, frozenset(r[0] for r in rows_view(n, cq, **{"as-of": T}))))
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=20)
    check(not errors, "concurrent writers failed: %r" % errors[:3])
    final = frozenset(r[0] for r in rows_view(c.node(4), cq, **{"as-of": T}))
    want = frozenset(e for t, e in acks if t <= T)
    check(final == want, "as-of %d after the writers stopped: %d entities, want the %d acknowledged with t <= T; "
          "missing %r; extra %r" % (T, len(final), len(want), sorted(want - final)[:4], sorted(final - want)[:4]))
    changed = [(nid, len(a)) for nid, a in answers if a != final]
    check(not changed, "as-of %d answered differently while writes went on (node, rows): %r (final %d rows)" %
          (T, changed[:6], len(final)))
    log("as-of T stable across %d reads through 4 nodes during %d concurrent writes (%d at or before T)" %
        (len(answers), len(acks), len(want)))


def rows_view(node, q, **view):
    r = node.query(q, **view)
    check(r.status == 200, "node %d: query %s %r -> %r" % (node.id, q, view, r))
    return r.json()["rows"]


# ---------------------------------------------------------------------------
# 11. a query through a node that holds no replica of shard 1 while the replica serving its reads is killed -9


def metric_value(node, name):
    m = re.search(r"^%s(\{[^}]*\})?\s+([0-9.eE+]+)\s*$" % re.escape(name), node.metrics(), re.M)
    return float(m.group(2)) if m else None


def test_remote_read_failover(work, register):
    c = Cluster(ARGS.cairn, work, nodes=4, replication=3)
    register(c)
    c.start()
    install_schema(c.node(1))
    # Node 4 holds shards 2, 3, 4 and no meta replica; shard 1 lives on nodes 1, 2, 3 and node 4 reads it (and the
    # meta group) from the first live replica: node 1.
    reader, victim = c.node(4), c.node(1)
    status4 = reader.status()
    check(1 not in [e.get("shard") for e in status4.get("shards", [])],
          "node 4 reports a replica of shard 1: %r" % status4.get("shards"))
    want = set()
    value = 0
    for batch in range(24):
        part = 1 if batch < 20 else 2 + batch % 3  # mostly shard 1, a little elsewhere
        forms = []
        for k in range(250):
            value += 1
            forms.append("{:db/id \"e%d\" :db/partition %d :t/val %d :t/writer %d}" % (k, part, value, batch))
        r = c.node(2).transact("[" + " ".join(forms) + "]", request_id="load-%d" % batch, timeout=30)
        check(r.status == 200, "load batch %d -> %r" % (batch, r))
        for k in range(250):
            want.add(value - k)
    q = "[:find ?v ?w :where [?e :t/val ?v] [?e :t/writer ?w]]"
    ref = rows(c.node(2), q)
    check(set(r[0] for r in ref) == want and len(ref) == len(want),
          "node 2 before the kill: %d rows, want %d" % (len(ref), len(want)))
    expected = sorted(map(tuple, ref))

    # A round: queries through node 4 in a loop, node 1 killed -9 a little after one starts, three more answers.
    # A query can also span the kill without reading from node 1 then (e.g. while a ReadIndex on node 4's own
    # replica waits for a new leader, its remote views are built after node 1 is seen dead), so rounds repeat,
    # node 1 restarted in between, until node 4 counts a remote read that failed at node 1 and moved on.
    def round_(no):
        answers = []  # (started, ended, status, rows or error)
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = reader.query(q, timeout=20)
                    body = sorted(map(tuple, r.json()["rows"])) if r.status == 200 else r.body[:300]
                    answers.append((t0, time.monotonic(), r.status, body))
                except Exception as e:  # noqa: BLE001 - a connection error is an answer too
                    answers.append((t0, time.monotonic(), None, repr(e)))

        th = threading.Thread(target=loop, daemon=True)
        th.start()
        wait_until("two queries through node 4", lambda: len(answers) >= 2, 30)
        durations = [a[1] - a[0] for a in answers]
        n = len(answers)
        wait_until("the next query to start", lambda: len(answers) == n, 10)
        time.sleep(min(durations) / 4)
        t_kill = time.monotonic()
        victim.kill9()
        wait_until("three queries answered after the kill", lambda: sum(1 for a in answers if a[0] > t_kill) >= 3, 60)
        stop.set()
        th.join(timeout=30)
        spanning = [a for a in answers if a[0] < t_kill < a[1]]
        log("round %d: query durations and answers: %s" %
            (no, [("%.3f" % (a[1] - a[0]), a[2], "spans the kill" if a in spanning else "") for a in answers]))
        for a in answers:
            check(a[2] == 200, "a query through node 4 failed (%s): %r" % (a[2], a[3]))
            check(a[3] == expected, "a query through node 4 answered %d rows, want %d" % (len(a[3]), len(expected)))
        return bool(spanning)

    failures = 0
    for no in range(1, 5):
        spanned = round_(no)
        failures = metric_value(reader, "cairn_remote_read_failures_total")
        log("round %d: a query spanned the kill: %s; node 4 cairn_remote_read_failures_total %s" %
            (no, spanned, failures))
        if spanned and failures and failures >= 1:
            return
        victim.start()
        c.wait_healthy(timeout_s=30)
    raise TestFailure("in 4 rounds node 4 never counted a remote read that failed at node 1 and moved to another "
                      "replica while a query ran (cairn_remote_read_failures_total %r)" % failures)

# ---------------------------------------------------------------------------
# 12. every node follows the shard map recorded in the meta group (admin edits through POST /v1/cluster/meta)


def map_entry(status, shard):
    m = status.get("map") or {}
    for e in m.get("shards", []):
        if e.get("shard") == shard:
            return e
    return None


def test_meta_map_follow(work, register):
    c = Cluster(ARGS.cairn, work, nodes=4, replication=3)
    register(c)
    c.start()
    install_schema(c.node(1))
    # Every node reads the map from the meta group (nodes 1-3 from their meta replica, node 4 from a member).
    def all_from_meta():
        sts = c.statuses()
        return sts if all((st.get("map") or {}).get("source") == "meta" for st in sts.values()) else None

    sts = wait_until("every node's map read from the meta group", all_from_meta, 10)
    for nid, st in sts.items():
        check(map_entry(st, 3)["replicas"] == [3, 4, 1], "node %d: shard 3 replicas %r, want the config's [3, 4, 1]" %
              (nid, map_entry(st, 3)))
        check(sorted(n["id"] for n in st["nodes"]) == [1, 2, 3, 4], "node %d: nodes %r" % (nid, st["nodes"]))
    versions = {nid: st["map"]["version"] for nid, st in sts.items()}
    # The admin path, through node 4 (no meta replica: forwarded to the meta leader): a leader hint for shard 2,
    # shard 3's replica set {1,3,4} -> {2,3,4}, a node record for node 9.
    # Refused, nothing committed: a replica that is not a member, and ordinary data.
    for bad, want in (("[[:db/add [:cairn.shard/id 3] :cairn.shard/replicas 77]]", "node 77"),
                      ("[[:db/add \"u\" :user/name \"x\"]]", ":user/name")):
        r = c.node(4).post("/v1/cluster/meta", {"tx-data": bad})
        check(r.status == 400 and want in r.body.decode(), "POST /v1/cluster/meta %s -> %r" % (bad, r))
    edit = ("[{:cairn.shard/id 2 :cairn.shard/leader 3}"
            " [:db/retract [:cairn.shard/id 3] :cairn.shard/replicas 1]"
            " [:db/add [:cairn.shard/id 3] :cairn.shard/replicas 2]"
            " {:cairn.node/id 9 :cairn.node/peer \"127.0.0.1:1\" :cairn.node/http \"127.0.0.1:2\"}]")
    r = c.node(4).post("/v1/cluster/meta", {"tx-data": edit, "request-id": "map-edit-1"})
    check(r.status == 200, "POST /v1/cluster/meta through node 4 -> %r" % r)
    t_edit = time.monotonic()

    def followed():
        sts = c.statuses()
        for nid, st in sts.items():
            e2, e3 = map_entry(st, 2), map_entry(st, 3)
            if not (e2 and e2["leader_hint"] == 3 and e3 and e3["replicas"] == [2, 3, 4]):
                return None
            n9 = [n for n in st["nodes"] if n["id"] == 9]
            if not (n9 and n9[0]["http"] == "127.0.0.1:2" and n9[0]["live"] is False):
                return None
            if st["map"]["version"] <= versions[nid]:
                return None
        return sts

    wait_until("every node's map and /v1/status to follow the edit", followed, 2.0)
    log("every node followed the map edit within %.3f s" % (time.monotonic() - t_edit))
    # The map a node routes with changed: writes to every shard still commit through every node (shard 3 is now
    # "on" node 2 in the records, which hosts no replica of it: the coordinator skips it).
    for n in c.nodes:
        for p in range(1, 5):
            r = n.transact("[{:db/id \"x\" :db/partition %d :t/val %d}]" % (p, 1000 * n.id + p),
                           request_id="after-edit-%d-%d" % (n.id, p))
            check(r.status == 200, "node %d: write to partition %d after the map edit -> %r" % (n.id, p, r))
    # A bad edit changes nothing and names the problem.
    r = c.node(1).post("/v1/cluster/meta", {"tx-data": "[{:cairn.shard/id 2 :cairn.shard/leader \"x\"}]"})
    check(r.status == 400, "a mistyped record edit -> %r" % r)
    # A node restarted: the meta copy (which now differs from its config) wins at once, with a warning.
    victim = c.node(4)
    victim.stop()
    victim.start()
    c.wait_healthy(nodes=[victim], timeout_s=30)
    st = wait_until("node 4 restarted to read the map from meta",
                    lambda: (lambda st: st if (st.get("map") or {}).get("source") == "meta" else None)(victim.status()),
                    10)
    check(map_entry(st, 3)["replicas"] == [2, 3, 4] and map_entry(st, 2)["leader_hint"] == 3,
          "node 4 after a restart: map %r" % st.get("map"))
    text = victim.log_text()
    check("differs from the config" in text and "shard 3 replicas [2 3 4]" in text,
          "node 4's log has no warning that the meta group's map differs from its config:\n%s" % victim.log_tail(40))


# ---------------------------------------------------------------------------
# 13. a schema transaction that reached only the meta group reaches every shard without a restart


def test_schema_repair(work, register):
    c = Cluster(ARGS.cairn, work)
    register(c)
    c.start()
    install_schema(c.node(1))
    # Every node done with its start-up work (bootstrap and the schema re-send at start, which would also
    # repair): its map then comes from the meta group.
    wait_until("every node's map read from the meta group",
               lambda: all((st.get("map") or {}).get("source") == "meta" for st in c.statuses().values()), 10)
    # A cardinality-many attribute: a shard that lacks the definition treats :t/tags as cardinality one (user
    # attributes need no schema on a shard's transactor), so two values on one entity do not both stay.
    extra = "[{:db/ident :t/tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}]"
    # Committed to the meta group only: as if the push to the shards had failed (leader down, coordinator died).
    r = c.node(2).post("/v1/cluster/meta", {"tx-data": extra, "request-id": "extra-schema"})
    check(r.status == 200, "schema to the meta group only -> %r" % r)
    t0 = time.monotonic()
    attempt = [0]

    def two_tags(node, p):
        attempt[0] += 1
        tag = "p%d-%d" % (p, attempt[0])
        r = node.transact("[{:db/id \"x\" :db/partition %d :t/val %d :t/tags \"%s-a\"} [:db/add \"x\" :t/tags \"%s-b\"]]"
                          % (p, 100000 + attempt[0], tag, tag), request_id="tags-%d" % attempt[0])
        if r.status != 200:
            return None, r
        e = r.json()["tempids"]["x"]
        got = sorted(v for (v,) in rows(node, "[:find ?t :in $ ?e :where [?e :t/tags ?t]]", args=[e]))
        return got == [tag + "-a", tag + "-b"], (e, got)

    # The shards do not have it yet: both values do not stay (refused, or one replaces the other).
    ok, what = two_tags(c.node(1), 1)
    check(not ok, "shard 1 kept two :t/tags values before any shard had the definition: %r" % (what,))
    log("before the repair: %r" % (what,))

    def repaired():
        return all(two_tags(c.node(1 + p % 3), p)[0] for p in range(1, 5))

    wait_until("every shard to keep two :t/tags values (background schema repair)", repaired, 15, interval_s=0.5)
    log("every shard repaired %.2f s after the meta-only schema transaction" % (time.monotonic() - t0))
    check(any("schema repair: re-sent" in n.log_text() for n in c.nodes),
          "no node logged a schema repair:\n%s" % "\n".join(n.log_tail(10) for n in c.nodes))
    # Every shard takes it through every node.
    c.wait_applied_equal(timeout_s=15)
    for n in c.nodes:
        for p in range(1, 5):
            ok, what = two_tags(n, p)
            check(ok, "node %d, partition %d: %r" % (n.id, p, what))


# ---------------------------------------------------------------------------
# 14. causal t across shards and leaders (ARCHITECTURE §3, docs/cluster.md "Time")


def test_time_causality(work, register):
    """3 nodes x 3 shards, replication 1 (shard s lives on node s alone, so it leads it), node clocks skewed
    0 / -20 s / -40 s. A t taken from a write on one shard, sent as min-t with a write on another shard through
    another node, gets a larger t; without min-t the node behind would assign a smaller one (checked too)."""
    shards = 3
    c = Cluster(ARGS.cairn, work, nodes=3, shards=shards, replication=1)
    register(c)
    offsets = {1: 0, 2: -20000, 3: -40000}
    for n in c.nodes:
        with open(n.config_path) as f:
            cfg = json.load(f)
        cfg["clock_offset_ms"] = offsets[n.id]
        with open(n.config_path, "w") as f:
            json.dump(cfg, f, indent=2)
    c.start()
    install_schema(c.node(1))
    part = {s: [p for p in range(1, 10) if shard_of_partition(p, shards) == s][0] for s in range(1, shards + 1)}

    def write(node, shard, value, min_t=None):
        body = {"tx-data": "[{:db/id \"x\" :db/partition %d :t/val %d}]" % (part[shard], value)}
        if min_t is not None:
            body["min-t"] = min_t
        r = node.post("/v1/transact", body)
        check(r.status == 200, "write %d to shard %d through node %d (min-t %r) -> %r" % (value, shard, node.id, min_t, r))
        eid = list(r.json()["tempids"].values())[0]
        check(shard_of_partition(partition_of_entity(eid), shards) == shard,
              "write %d landed on entity %d, not on shard %d" % (value, eid, shard))
        return r.json()["t"]

    time.sleep(0.05)  # t_a's millisecond is past the schema's
    t_a = write(c.node(1), 1, 1)
    # The skew is real: node 3 (40 s behind, leader of shard 3) assigns a smaller t when not told better.
    t_ctrl = write(c.node(3), 3, 2)
    check(t_ctrl < t_a, "without min-t node 3 (clock -40 s) gave t %d, expected below %d: the skew is not in effect"
          % (t_ctrl, t_a))
    t_b = write(c.node(2), 2, 3, min_t=t_a)  # shard 2's leader, clock -20 s
    check(t_b > t_a, "shard 2 through node 2 with min-t %d committed at t %d" % (t_a, t_b))
    t_c = write(c.node(1), 3, 4, min_t=t_b)  # forwarded by node 1 to node 3 (clock -40 s)
    check(t_c > t_b, "shard 3 through node 1 (forwarded) with min-t %d committed at t %d" % (t_b, t_c))
    t_d = write(c.node(3), 2, 5, min_t=t_c)  # forwarded by node 3 to node 2
    check(t_d > t_c, "shard 2 through node 3 (forwarded) with min-t %d committed at t %d" % (t_c, t_d))
    log("t: shard1 %d, shard3 w/o min-t %d, shard2 %d, shard3 %d, shard2 %d" % (t_a, t_ctrl, t_b, t_c, t_d))

    # Bad min-t: 400 naming the field, nothing written.
    before = c.node(2).status()
    r = c.node(2).post("/v1/transact", {"tx-data": "[{:db/id \"x\" :db/partition %d :t/val 9}]" % part[2],
                                        "min-t": "soon"})
    expect_error("min-t not a number", r, 400, message_re="min-t")
    far = (int(time.time() * 1000) + 600000) << 16  # 10 minutes ahead of every clock
    r = c.node(2).post("/v1/transact", {"tx-data": "[{:db/id \"x\" :db/partition %d :t/val 9}]" % part[2],
                                        "min-t": far})
    expect_error("min-t far ahead", r, 400, message_re="min-t.*ahead")
    after = c.node(2).status()
    check(shard_entry(after, 2)["latest_t"] == shard_entry(before, 2)["latest_t"],
          "a refused min-t wrote something: %r -> %r" % (shard_entry(before, 2), shard_entry(after, 2)))

    # The closed time per shard in /v1/status: at least the shard's latest t.
    for n in c.nodes:
        st = n.status()
        for e in st["shards"]:
            check("closed_t" in e and e["closed_t"] >= e["latest_t"],
                  "node %d shard %s: closed_t missing or below latest_t: %r" % (n.id, e.get("shard"), e))
        m = n.metrics()
        check(re.search(r'^cairn_closed_t\{group="%d"\} \d+$' % n.id, m, re.M) and re.search(r"^cairn_closes_total \d+$", m, re.M),
              "node %d: /metrics lacks cairn_closed_t or cairn_closes_total" % n.id)
        # The driver's stall counters: the longest loop iteration is positive once the node did any work.
        longest = metric_value(n, "cairn_driver_round_seconds_max")
        check(longest is not None and longest > 0 and metric_value(n, "cairn_driver_slow_rounds_total") is not None,
              "node %d: /metrics lacks cairn_driver_round_seconds_max > 0 or cairn_driver_slow_rounds_total" % n.id)


TESTS = {
    "read_everywhere": test_read_everywhere,
    "leader_failover": test_leader_failover,
    "snapshot_catchup": test_snapshot_catchup,
    "kill_all": test_kill_all,
    "wrong_secret": test_wrong_secret,
    "malformed_http": test_malformed_http,
    "client_failover": test_client_failover,
    "cli_up_down": test_cli_up_down,
    "config_errors": test_config_errors,
    "request_id_retry": test_request_id_retry,
    "time_travel": test_time_travel,
    "remote_read_failover": test_remote_read_failover,
    "meta_map_follow": test_meta_map_follow,
    "schema_repair": test_schema_repair,
    "time_causality": test_time_causality,
}


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cairn", required=True, help="the cairn binary")
    ap.add_argument("--client-writer", default="", help="the cairn::Client writer program (test client_failover)")
    ap.add_argument("--client-time-travel", default="",
                    help="the cairn::Client time-travel reader program (test time_travel)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory even on success")
    ap.add_argument("test", choices=sorted(TESTS))
    ARGS = ap.parse_args()
    sys.exit(run_test(ARGS.test, TESTS[ARGS.test], ARGS.cairn, keep=ARGS.keep))


if __name__ == "__main__":
    main()
