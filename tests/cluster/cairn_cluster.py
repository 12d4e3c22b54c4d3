"""Harness for the real-process cluster tests (tests/cluster).

Starts a Cairn cluster of real `cairn serve --config node.json` processes on
loopback, talks to it over HTTP, kills and restarts nodes, and always stops
what it started.

- Each node runs in its own session (so its process group id is its PID) and
  is stopped with killpg by that PID; nodes also get PR_SET_PDEATHSIG=SIGKILL,
  so they die with the test runner even if the runner is itself SIGKILLed
  (a ctest timeout).
- Ports are chosen free by binding port 0 on 127.0.0.1.
- The work directory is removed when the test passes and kept (and printed,
  with the tail of every node's log) when it fails.

Python 3 standard library only. Not thread-safe except where noted: the HTTP
helpers (`http`, `transact`, `query`, `status`) may be called from any thread;
starting and stopping nodes happens on the main thread.
"""

import ctypes
import http.client as hc
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# ---------------------------------------------------------------------------
# Failures


class TestFailure(Exception):
    """A check failed: the message says what was expected and what was seen."""


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


def wait_until(what, predicate, timeout_s, interval_s=0.05):
    """Polls predicate() until it returns a truthy value (returned) or fails after timeout_s."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (OSError, hc.HTTPException, ValueError, KeyError, TypeError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1f s waiting for %s%s" %
                              (timeout_s, what, "" if last_error is None else " (last error: %r)" % (last_error,)))
        time.sleep(interval_s)


# ---------------------------------------------------------------------------
# HTTP


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body  # bytes
        self.headers = headers

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except ValueError as e:
            raise TestFailure("response %d is not JSON (%s): %r" % (self.status, e, self.body[:300]))

    def error(self):
        """The documented error shape {"error": {"code", "message"}}; fails otherwise."""
        doc = self.json()
        check(isinstance(doc, dict) and isinstance(doc.get("error"), dict) and
              isinstance(doc["error"].get("code"), str) and isinstance(doc["error"].get("message"), str),
              "error response %d does not have the shape {\"error\": {\"code\", \"message\"}}: %r" %
              (self.status, self.body[:300]))
        return doc["error"]

    def __repr__(self):
        return "HTTP %d %r" % (self.status, self.body[:500])


def http_request(addr, method, path, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection. addr = "host:port". Raises OSError/HTTPException on transport errors."""
    host, port = addr.rsplit(":", 1)
    conn = hc.HTTPConnection(host, int(port), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.read(), dict(r.getheaders()))
    finally:
        conn.close()


def raw_http(addr, data, timeout=10.0, shut_write=False):
    """Sends raw bytes, returns everything the server sends until it closes (or timeout)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        s.sendall(data)
        if shut_write:
            s.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            # One response is enough when the server keeps the connection open.
            head, sep, rest = out.partition(b"\r\n\r\n")
            if sep:
                m = re.search(rb"(?i)content-length:\s*(\d+)", head)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out
    finally:
        s.close()


def parse_raw_response(data):
    """(status, body bytes) of the first response in raw bytes."""
    head, _, rest = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    check(m is not None, "not an HTTP response: %r" % data[:300])
    cl = re.search(rb"(?i)content-length:\s*(\d+)", head)
    body = rest[:int(cl.group(1))] if cl else rest
    return int(m.group(1)), body


def edn_str(s):
    """An EDN string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------
# Processes


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _child_setup():
    # Runs in the child between fork and exec: die with the parent.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Node:
    """One `cairn serve --config` process (and its files). Start/stop on the main thread."""

    def __init__(self, cluster, node_id, http_addr, peer_addr, dir_):
        self.cluster = cluster
        self.id = node_id
        self.http = http_addr
        self.peer = peer_addr
        self.dir = dir_
        self.config_path = os.path.join(os.path.dirname(dir_), "node%d.json" % node_id)
        self.log_path = os.path.join(os.path.dirname(dir_), "node%d.log" % node_id)
        self.out_path = os.path.join(os.path.dirname(dir_), "node%d.out" % node_id)
        self.proc = None
        self.starts = 0

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait_listening=True):
        check(not self.running, "node %d is already running" % self.id)
        self.starts += 1
        out = open(self.out_path, "wb")
        err = open(self.log_path, "ab")
        err.write(("\n==== start %d of node %d at %s ====\n" % (self.starts, self.id, time.strftime("%H:%M:%S"))).encode())
        err.flush()
        self.proc = subprocess.Popen([self.cluster.cairn, "serve", "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     start_new_session=True, preexec_fn=_child_setup)
        out.close()
        err.close()
        self.cluster.all_pids.add(self.proc.pid)
        if wait_listening:
            self.wait_listening()

    def wait_listening(self, timeout_s=20.0):
        want = "listening on http://%s" % self.http

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("node %d exited with %s before listening; log tail:\n%s" %
                                  (self.id, self.proc.returncode, self.log_tail()))
            with open(self.out_path, "rb") as f:
                first = f.readline().decode(errors="replace")
            if first.endswith("\n"):
                check(first.strip() == want, "node %d: first stdout line is %r, want %r" % (self.id, first.strip(), want))
                return True
            return False

        wait_until("node %d to print its listening line" % self.id, ready, timeout_s)

    def kill9(self):
        """SIGKILL the node's process group, reap it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def stop(self, timeout_s=10.0):
        """SIGTERM, wait; returns the exit code (SIGKILL and -9 after timeout_s)."""
        if self.proc is None:
            return None
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            rc = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = -9
        self.proc = None
        return rc

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines=25):
        return "\n".join(self.log_text().splitlines()[-lines:])

    # -- HTTP on this node (any thread) --
    def get(self, path, timeout=10.0):
        return http_request(self.http, "GET", path, timeout=timeout)

    def post(self, path, body, headers=None, timeout=10.0):
        return http_request(self.http, "POST", path, body=body, headers=headers, timeout=timeout)

    def status(self, timeout=5.0):
        r = self.get("/v1/status", timeout=timeout)
        check(r.status == 200, "node %d: GET /v1/status -> %r" % (self.id, r))
        return r.json()

    def health(self, timeout=5.0):
        return self.get("/health", timeout=timeout)

    def metrics(self, timeout=5.0):
        r = self.get("/metrics", timeout=timeout)
        check(r.status == 200, "node %d: GET /metrics -> %r" % (self.id, r))
        return r.body.decode(errors="replace")

    def transact(self, tx_edn, request_id=None, timeout=10.0):
        body = {"tx-data": tx_edn}
        if request_id is not None:
            body["request-id"] = request_id
        return self.post("/v1/transact", body, timeout=timeout)

    def query(self, q, args=None, consistency=None, timeout=10.0, **extra):
        body = {"query": q}
        if args is not None:
            body["args"] = args
        if consistency is not None:
            body["consistency"] = consistency
        body.update(extra)
        return self.post("/v1/query", body, timeout=timeout)

    def datoms(self, index, timeout=10.0, **components):
        params = {"index": index, "limit": "1000000"}
        params.update(components)
        r = self.get("/v1/datoms?" + urllib.parse.urlencode(params), timeout=timeout)
        check(r.status == 200, "node %d: datoms %s %r -> %r" % (self.id, index, components, r))
        doc = r.json()
        check(doc.get("truncated") is False, "node %d: datoms answer truncated: %r" % (self.id, r))
        return doc["datoms"]


# ---------------------------------------------------------------------------
# Status helpers (the /v1/status shape of docs/cluster.md and the cluster contract)


def shard_entry(status, shard):
    for s in status.get("shards", []):
        if s.get("shard") == shard:
            return s
    raise TestFailure("status of node %s has no entry for shard %d: %r" % (status.get("node"), shard, status))


def group_entry(status, group):
    """Group 0 = the meta group, else the shard."""
    if group == 0:
        check(isinstance(status.get("meta"), dict), "status has no meta object: %r" % (status,))
        return status["meta"]
    return shard_entry(status, group)


class Cluster:
    """A cluster of real nodes described by node.json files the harness writes (the contract format).

    Use as a context manager inside `run_test`, which handles cleanup and the work directory.
    """

    def __init__(self, cairn, work_dir, nodes=3, shards=4, replication=3, partitions=256,
                 snapshot_entries=None, tick_ms=None, secrets=None, sync=None, extra=None):
        self.cairn = cairn
        self.work = work_dir
        self.shards = shards
        self.replication = replication
        self.partitions = partitions
        self.all_pids = set()
        self.secret_path = os.path.join(work_dir, "secret")
        with open(self.secret_path, "w") as f:
            f.write("cairn-cluster-test-secret-%d\n" % os.getpid())
        ports = free_ports(2 * nodes)
        self.nodes = []
        for i in range(nodes):
            node_id = i + 1
            d = os.path.join(work_dir, "node%d" % node_id, "data")
            os.makedirs(d)
            n = Node(self, node_id, "127.0.0.1:%d" % ports[2 * i], "127.0.0.1:%d" % ports[2 * i + 1], d)
            # Nodes keep their files side by side in workdir/nodeI/.
            n.config_path = os.path.join(work_dir, "node%d" % node_id, "node.json")
            n.log_path = os.path.join(work_dir, "node%d" % node_id, "node.log")
            n.out_path = os.path.join(work_dir, "node%d" % node_id, "node.out")
            self.nodes.append(n)
        for n in self.nodes:
            cfg = {
                "node_id": n.id,
                "dir": n.dir,
                "http": n.http,
                "peer": n.peer,
                "cluster_secret_file": (secrets or {}).get(n.id, self.secret_path),
                "shards": shards,
                "replication": replication,
                "partitions": partitions,
                "nodes": [{"id": m.id, "peer": m.peer, "http": m.http} for m in self.nodes],
            }
            if snapshot_entries is not None:
                cfg["snapshot_entries"] = snapshot_entries
            if tick_ms is not None:
                cfg["tick_ms"] = tick_ms
            if sync is not None:
                cfg["sync"] = sync
            if extra:
                cfg.update(extra)
            with open(n.config_path, "w") as f:
                json.dump(cfg, f, indent=2)

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def live(self):
        return [n for n in self.nodes if n.running]

    # -- lifecycle --
    def start(self, wait_healthy=True, timeout_s=30.0):
        for n in self.nodes:
            n.start(wait_listening=False)
        for n in self.nodes:
            n.wait_listening()
        if wait_healthy:
            self.wait_healthy(timeout_s=timeout_s)

    def wait_healthy(self, nodes=None, timeout_s=30.0):
        """Every given (default: running) node answers GET /health with 200."""
        nodes = nodes if nodes is not None else self.live()
        t0 = time.monotonic()
        for n in nodes:
            left = max(0.5, timeout_s - (time.monotonic() - t0))
            last = {}

            def ok(n=n, last=last):
                if not n.running:
                    raise TestFailure("node %d exited (%s); log tail:\n%s" % (n.id, n.proc and n.proc.returncode, n.log_tail()))
                r = n.health(timeout=2.0)
                last["r"] = r
                return r.status == 200

            try:
                wait_until("node %d /health 200" % n.id, ok, left, interval_s=0.1)
            except TestFailure as e:
                raise TestFailure("%s; last answer: %r" % (e, last.get("r")))
        log("healthy: nodes %s after %.2f s" % ([n.id for n in nodes], time.monotonic() - t0))

    def kill_all(self):
        for n in self.nodes:
            n.kill9()

    def cleanup(self):
        """Stops every process this cluster ever started (by PID / process group), SIGKILL."""
        for n in self.nodes:
            if n.proc is not None:
                try:
                    os.killpg(n.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    n.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                n.proc = None

    # -- cluster views --
    def statuses(self, nodes=None):
        return {n.id: n.status() for n in (nodes or self.live())}

    def leader_of(self, group, nodes=None, timeout_s=10.0):
        """The node id leading `group` (0 = meta), agreed by every given live node, waiting up to timeout_s."""
        nodes = nodes or self.live()

        def agreed():
            ids = set()
            for n in nodes:
                e = group_entry(n.status(), group)
                ids.add(e.get("leader"))
            if len(ids) == 1:
                (leader,) = ids
                if leader and leader in [m.id for m in self.live()]:
                    return leader
            return None

        return wait_until("the live nodes %s to agree on a live leader of group %d" % ([n.id for n in nodes], group),
                          agreed, timeout_s)

    def wait_applied_equal(self, nodes=None, timeout_s=30.0):
        """Every group's applied_index is the same on every given node (and equals its commit_index)."""
        nodes = nodes or self.live()
        groups = [0] + list(range(1, self.shards + 1))
        seen = {}

        def equal():
            sts = {n.id: n.status() for n in nodes}
            seen.clear()
            for g in groups:
                applied = {nid: group_entry(st, g).get("applied_index") for nid, st in sts.items()}
                commit = {nid: group_entry(st, g).get("commit_index") for nid, st in sts.items()}
                seen[g] = (applied, commit)
                if len(set(applied.values())) != 1 or None in applied.values():
                    return False
                if set(applied.values()) != set(commit.values()):
                    return False
            return True

        try:
            wait_until("applied_index equal on nodes %s for every group" % [n.id for n in nodes], equal, timeout_s, 0.1)
        except TestFailure as e:
            raise TestFailure("%s; last seen {group: (applied, commit)}: %r" % (e, seen))
        return seen


def shard_of_partition(p, shards):
    """The contract's ShardOfPartition: user partition p (1..) -> shard 1 + (p - 1) % S."""
    assert p >= 1
    return 1 + (p - 1) % shards


def partition_of_entity(eid):
    return (eid >> 48) & 0x7FFF


def partitions_of_shard(shard, shards, partitions=256):
    return [p for p in range(1, partitions) if shard_of_partition(p, shards) == shard]


# ---------------------------------------------------------------------------
# Runner


def run_test(name, body, cairn, keep=False):
    """Runs body(work_dir, register) where register(cluster) adds a cluster to clean up.

    Returns the process exit code: 0 pass, 1 fail. Always stops every node; removes the work directory on
    success (unless keep), keeps and prints it on failure.
    """
    work = tempfile.mkdtemp(prefix="cairn-cluster-%s-" % name)
    clusters = []
    log("test %s: work dir %s" % (name, work))

    def on_term(signum, frame):
        raise TestFailure("stopped by signal %d" % signum)

    signal.signal(signal.SIGTERM, on_term)
    t0 = time.monotonic()
    ok = False
    try:
        body(work, clusters.append)
        ok = True
    except TestFailure as e:
        log("FAIL %s: %s" % (name, e))
    except Exception:  # a harness bug or an unexpected answer: still a failure, with the traceback
        import traceback
        traceback.print_exc()
        log("FAIL %s: unexpected exception" % name)
    finally:
        # A node that exited although the test neither killed nor stopped it crashed: that fails the test.
        for c in clusters:
            for n in getattr(c, "nodes", []):
                proc = getattr(n, "proc", None)
                if proc is not None and proc.poll() is not None:
                    log("FAIL %s: node %d exited by itself with code %s" % (name, n.id, proc.returncode))
                    ok = False
        for c in clusters:
            c.cleanup()
    elapsed = time.monotonic() - t0
    if ok:
        log("PASS %s in %.1f s" % (name, elapsed))
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    for c in clusters:
        for n in c.nodes:
            log("---- node %d log tail (%s)" % (n.id, n.log_path))
            print(n.log_tail(40), flush=True)
    log("FAILED after %.1f s; work dir kept: %s" % (elapsed, work))
    return 1
