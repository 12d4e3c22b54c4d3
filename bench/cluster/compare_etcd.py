#!/usr/bin/env python3
"""Cairn vs etcd on one machine, driven by the same load generator (`cairn bench`).

Started by compare_etcd.sh (which installs packages and builds `cairn`). In one run:
  1. starts a 3-member etcd on loopback (own ports and data dirs), runs `cairn bench
     --target etcd` at every client count, measures failover (kill -9 the leader ->
     next acknowledged put), stops it;
  2. starts a 3-node Cairn (`cairn cluster up --nodes 3 --shards 4`, else a launcher
     writing node.json files from docs/cluster.md's contract, else -- when this build
     has no cluster yet -- one embedded `cairn serve`, labelled as such), runs the same
     load, measures failover (kill -9 a shard leader -> next acknowledged write to
     that shard), stops it;
  3. prints the table with the ratios, writes OUT/results.json, OUT/etcd.json,
     OUT/cairn.json and OUT/cairn_vs_etcd.png.
Every process started here is stopped by PID on exit (also on errors and Ctrl-C), and
the whole run is bounded by --max-s.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import http.client
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import plot  # noqa: E402

STARTED = []  # every Popen we started and may still have to stop


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def stop_all():
    for p in STARTED:
        if p.poll() is None:
            p.terminate()
    deadline = time.time() + 5
    for p in STARTED:
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if p.poll() is None:
            p.kill()
            p.wait()


def stop_pid(pid, sig=signal.SIGTERM, wait_s=5):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.time() + wait_s
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # Our own child: reap it so it does not stay a zombie.
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def http_json(method, url, body=None, timeout=2.0, content_type="application/json"):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


def wait_until(pred, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


# ---------------------------------------------------------------- failover

class Writers:
    """Starts one write every `interval_s` (each on its own short connection and thread, at most
    `outstanding_max` in flight), so a write is issued soon after any moment, even while
    earlier ones hang on a dead leader. Records (sent, acknowledged) times of acknowledged
    writes. `make_request(n)` returns (path, body, content_type)."""

    def __init__(self, endpoints, make_request, interval_s=0.01, outstanding_max=600, timeout_s=5.0):
        self.endpoints = endpoints
        self.make_request = make_request
        self.interval_s = interval_s
        self.outstanding_max = outstanding_max
        self.timeout_s = timeout_s
        self.acks = []  # (sent, acknowledged), time.monotonic
        self.errors = 0
        self.outstanding = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.workers = []
        self.launcher = threading.Thread(target=self.launch_loop, daemon=True)

    def launch_loop(self):
        n = 0
        while not self.stop.is_set():
            with self.lock:
                room = self.outstanding < self.outstanding_max
                if room:
                    self.outstanding += 1
            if room:
                t = threading.Thread(target=self.one, args=(n,), daemon=True)
                t.start()
                self.workers.append(t)
                n += 1
            time.sleep(self.interval_s)

    def one(self, n):
        host, port = self.endpoints[n % len(self.endpoints)].rsplit(":", 1)
        path, body, ctype = self.make_request(n)
        sent = time.monotonic()
        ok = False
        conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout_s)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": ctype})
            r = conn.getresponse()
            r.read()
            ok = 200 <= r.status < 300
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        done = time.monotonic()
        with self.lock:
            self.outstanding -= 1
            if ok:
                self.acks.append((sent, done))
            else:
                self.errors += 1

    def start(self):
        self.launcher.start()

    def finish(self):
        self.stop.set()
        self.launcher.join()
        for t in self.workers:
            t.join(timeout=self.timeout_s + 1)

    def first_ack_sent_after(self, t0):
        """The earliest acknowledgement of a write sent after t0 (so not one the old leader
        had already committed)."""
        with self.lock:
            later = [done for sent, done in self.acks if sent > t0]
        return min(later) if later else None


def measure_failover(rounds, find_leader, kill_leader, restart, writer_endpoints, make_request, wait_healthy,
                     label, give_up_s=15.0):
    """Per round: writers run against surviving members; kill -9 the leader; the failover time
    is from the kill to the first acknowledgement of a write sent after the kill. Then restart
    the killed member and wait until every member is healthy again. A round with no
    acknowledgement within give_up_s counts as give_up_s (and in `gave_up`)."""
    times_ms = []
    gave_up = 0
    for r in range(rounds):
        wait_healthy()
        leader = find_leader()
        writers = Writers(writer_endpoints(leader), make_request)
        writers.start()
        time.sleep(1.0)  # writers warmed up, acks flowing
        t_kill = time.monotonic()
        kill_leader(leader)
        deadline = t_kill + give_up_s
        first = None
        while time.monotonic() < deadline:
            first = writers.first_ack_sent_after(t_kill)
            if first is not None:
                break
            time.sleep(0.002)
        writers.finish()
        if first is None:
            log(f"{label} failover round {r + 1}: no acknowledged write within {give_up_s} s")
            times_ms.append(give_up_s * 1000)
            gave_up += 1
        else:
            ms = (first - t_kill) * 1000
            log(f"{label} failover round {r + 1}: leader {leader} killed, next ack after {ms:.0f} ms "
                f"({writers.errors} failed writes)")
            times_ms.append(ms)
        restart(leader)
    if not times_ms:
        return None
    return {"rounds": len(times_ms), "times_ms": [round(t, 1) for t in times_ms],
            "median_ms": round(statistics.median(times_ms), 1), "max_ms": round(max(times_ms), 1),
            "gave_up": gave_up, "give_up_ms": give_up_s * 1000}


# ---------------------------------------------------------------- etcd

class Etcd:
    def __init__(self, out, base_port, members=3):
        self.dir = os.path.join(out, "etcd")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.members = []
        cluster = ",".join(f"e{i}=http://127.0.0.1:{base_port + 10 + i}" for i in range(1, members + 1))
        for i in range(1, members + 1):
            client = f"127.0.0.1:{base_port + i}"
            peer = f"http://127.0.0.1:{base_port + 10 + i}"
            cmd = ["etcd", "--name", f"e{i}", "--data-dir", os.path.join(self.dir, f"e{i}"),
                   "--listen-client-urls", f"http://{client}", "--advertise-client-urls", f"http://{client}",
                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                   "--initial-cluster", cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", "cairn-bench", "--logger", "zap", "--log-level", "warn"]
            self.members.append({"name": f"e{i}", "endpoint": client, "cmd": cmd, "proc": None,
                                 "log": os.path.join(self.dir, f"e{i}.log")})
        for m in self.members:
            self.launch(m)
        self.wait_healthy()

    def launch(self, m):
        with open(m["log"], "ab") as logf:
            m["proc"] = subprocess.Popen(m["cmd"], stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        STARTED.append(m["proc"])

    def endpoints(self):
        return [m["endpoint"] for m in self.members]

    def healthy(self):
        for m in self.members:
            code, body = http_json("GET", f"http://{m['endpoint']}/health")
            if code != 200 or not body or body.get("health") != "true":
                return False
        return True

    def wait_healthy(self):
        wait_until(self.healthy, 30, "etcd health on every member")

    def leader(self):
        """Index of the member that leads, from /v3/maintenance/status."""
        def find():
            for i, m in enumerate(self.members):
                code, body = http_json("POST", f"http://{m['endpoint']}/v3/maintenance/status", "{}")
                if code == 200 and body and body.get("leader") and \
                        body["leader"] == body.get("header", {}).get("member_id"):
                    self._leader = i
                    return True
            return False
        wait_until(find, 10, "an etcd leader")
        return self._leader

    def kill(self, i):
        self.members[i]["proc"].send_signal(signal.SIGKILL)
        self.members[i]["proc"].wait()

    def restart(self, i):
        self.launch(self.members[i])
        self.wait_healthy()
        time.sleep(0.5)

    def stop(self):
        for m in self.members:
            if m["proc"] and m["proc"].poll() is None:
                stop_pid(m["proc"].pid)


def etcd_put_request(n):
    import base64
    key = base64.b64encode(f"failover/{n}".encode()).decode()
    val = base64.b64encode(("v%d" % n).ljust(64, "x").encode()).decode()
    return "/v3/kv/put", json.dumps({"key": key, "value": val}), "application/json"


# ---------------------------------------------------------------- Cairn

def cairn_has(cairn, args, needle):
    r = subprocess.run([cairn] + args, capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and needle in (r.stdout + r.stderr)


class CairnCluster:
    """3 nodes x 4 shards through `cairn cluster up` (or node.json files from the contract)."""

    def __init__(self, cairn, out, base_port, nodes=3, shards=4, mode="cluster"):
        self.cairn = cairn
        self.dir = os.path.join(out, "cairn")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.shards = shards
        self.mode = mode
        if mode == "cluster":
            r = subprocess.run([cairn, "cluster", "up", "--nodes", str(nodes), "--shards", str(shards), "--dir",
                                self.dir, "--base-port", str(base_port)], capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"cairn cluster up failed ({r.returncode}): {r.stdout}{r.stderr}")
            with open(os.path.join(self.dir, "cluster.json")) as f:
                info = json.load(f)
            self.nodes = [{"id": n["id"], "http": n["http"], "pid": n["pid"], "config": n["config"],
                           "log": n.get("log", os.path.join(self.dir, f"node{n['id']}.log")), "proc": None}
                          for n in info["nodes"]]
        else:  # "config": our own launcher from docs/cluster.md
            secret = os.path.join(self.dir, "secret")
            with open(secret, "w") as f:
                f.write(os.urandom(16).hex())
            os.chmod(secret, 0o600)
            specs = [{"id": i, "peer": f"127.0.0.1:{base_port + 100 + i}", "http": f"127.0.0.1:{base_port + i}"}
                     for i in range(1, nodes + 1)]
            self.nodes = []
            for s in specs:
                ndir = os.path.join(self.dir, f"node{s['id']}")
                os.makedirs(ndir)
                cfg = {"node_id": s["id"], "dir": ndir, "http": s["http"], "peer": s["peer"],
                       "cluster_secret_file": secret, "shards": shards, "replication": 3, "partitions": 256,
                       "nodes": specs}
                path = os.path.join(ndir, "node.json")
                with open(path, "w") as f:
                    json.dump(cfg, f, indent=1)
                self.nodes.append({"id": s["id"], "http": s["http"], "pid": None, "config": path,
                                   "log": os.path.join(ndir, "node.log"), "proc": None})
            for n in self.nodes:
                self.launch(n)
        self.wait_healthy()

    def launch(self, n):
        with open(n["log"], "ab") as logf:
            p = subprocess.Popen([self.cairn, "serve", "--config", n["config"]], stdout=subprocess.DEVNULL,
                                 stderr=logf, stdin=subprocess.DEVNULL)
        STARTED.append(p)
        n["proc"], n["pid"] = p, p.pid

    def endpoints(self):
        return [n["http"] for n in self.nodes]

    def pids(self):
        return [n["pid"] for n in self.nodes]

    def healthy(self):
        return all(http_json("GET", f"http://{n['http']}/health")[0] == 200 for n in self.nodes)

    def wait_healthy(self):
        wait_until(self.healthy, 60, "/health 200 on every Cairn node")

    def pick_shard_entity(self):
        """An entity id on some shard s, written through the API: (s, eid)."""
        ep = self.nodes[0]["http"]
        schema = ("[{:db/ident :bench/key :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
                  ":db/unique :db.unique/identity} {:db/ident :bench/val :db/valueType :db.type/string "
                  ":db/cardinality :db.cardinality/one}]")
        code, body = http_json("POST", f"http://{ep}/v1/transact", schema, 10, "application/edn")
        if code != 200:
            raise RuntimeError(f"schema transaction failed: {code} {body}")
        code, body = http_json("POST", f"http://{ep}/v1/transact",
                               '[[:db/add "e" :bench/key "failover-probe"]]', 10, "application/edn")
        if code != 200 or "e" not in body.get("tempids", {}):
            raise RuntimeError(f"probe transaction failed: {code} {body}")
        eid = body["tempids"]["e"]
        partition = (eid >> 48) & 0x7FFF
        return 1 + (partition - 1) % self.shards, eid

    def shard_leader(self, shard):
        found = {}

        def find():
            for n in self.nodes:
                code, body = http_json("GET", f"http://{n['http']}/v1/status")
                if code != 200 or not body:
                    continue
                for s in body.get("shards", []):
                    if s.get("shard") == shard and s.get("leader"):
                        found["id"] = s["leader"]
                        return True
            return False
        wait_until(find, 10, f"a leader of shard {shard}")
        return next(i for i, n in enumerate(self.nodes) if n["id"] == found["id"])

    def kill(self, i):
        n = self.nodes[i]
        os.kill(n["pid"], signal.SIGKILL)
        if n["proc"] is not None:
            n["proc"].wait()
        else:
            time.sleep(0.05)

    def restart(self, i):
        self.launch(self.nodes[i])
        self.wait_healthy()
        time.sleep(0.5)

    def stop(self):
        if self.mode == "cluster":
            subprocess.run([self.cairn, "cluster", "down", "--dir", self.dir], capture_output=True, timeout=60)
        for n in self.nodes:
            if n["pid"]:
                stop_pid(n["pid"])


class CairnEmbedded:
    """One embedded `cairn serve` (used only while this build has no cluster)."""

    def __init__(self, cairn, out):
        self.dir = os.path.join(out, "cairn")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "serve.log"), "ab") as logf:
            self.proc = subprocess.Popen([cairn, "serve", "--db", os.path.join(self.dir, "bench.db"), "--http",
                                          "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=logf, text=True)
        STARTED.append(self.proc)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on http://"):
            raise RuntimeError(f"cairn serve did not start: {line!r}")
        self.http = line[len("listening on http://"):]

    def endpoints(self):
        return [self.http]

    def pids(self):
        return [self.proc.pid]

    def stop(self):
        stop_pid(self.proc.pid)


# ---------------------------------------------------------------- main

def capture_metrics(endpoints, out, tag):
    """Saves GET /metrics and /v1/status of every Cairn node (the NodeHost stats sit next
    to the table when reading where the time goes)."""
    for i, ep in enumerate(endpoints):
        for path, name in (("/metrics", "metrics"), ("/v1/status", "status")):
            try:
                with urllib.request.urlopen(f"http://{ep}{path}", timeout=5) as r:
                    body = r.read()
            except OSError as e:
                body = f"unavailable: {e}".encode()
            with open(os.path.join(out, f"cairn_{name}_{tag}_node{i + 1}.txt"), "wb") as f:
                f.write(body)


def start_perf(pids, out):
    """`perf record -g` of the Cairn processes for the whole Cairn bench (PERF=1)."""
    if not shutil.which("perf"):
        log("PERF: perf not found (linux-perf), skipping the profile")
        return None
    data = os.path.join(out, "perf-cairn.data")
    p = subprocess.Popen(["perf", "record", "-F", "199", "-g", "-o", data, "-p", ",".join(map(str, pids))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(p)
    return p, data


def finish_perf(handle, out):
    if not handle:
        return
    p, data = handle
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
    report = os.path.join(out, "perf-cairn.txt")
    with open(report, "w") as f:
        subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "comm,dso,sym", "--stdio",
                        "-g", "none", "--percent-limit", "0.5"], stdout=f, stderr=subprocess.DEVNULL, timeout=300)
    log(f"PERF: profile of the Cairn processes in {report}")


def run_bench(cairn, target, endpoints, args, out_json):
    cmd = [cairn, "bench", "--target", target, "--endpoints", ",".join(endpoints), "--workload", args.workloads,
           "--clients", args.clients, "--duration-s", str(args.duration_s), "--warmup-s", str(args.warmup_s),
           "--out", out_json]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, timeout=args.max_s)
    with open(out_json) as f:
        return json.load(f)


def run_etcd(args, results):
    version = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    log(f"starting a 3-member etcd ({version})")
    etcd = Etcd(args.out, args.etcd_base_port)
    try:
        results["etcd_version"] = version
        results["etcd"] = run_bench(args.cairn, "etcd", etcd.endpoints(), args, os.path.join(args.out, "etcd.json"))
        if args.failover_rounds > 0:
            results["etcd_failover"] = measure_failover(
                args.failover_rounds, etcd.leader, etcd.kill, etcd.restart,
                lambda leader: [m["endpoint"] for j, m in enumerate(etcd.members) if j != leader],
                etcd_put_request, etcd.wait_healthy, "etcd")
    finally:
        etcd.stop()


def run_cairn(args, results, mode):
    log(f"starting Cairn ({mode})")
    if mode == "embedded":
        log("NOTE: this build has no `cairn cluster up` / `serve --config` yet: Cairn runs as ONE embedded "
            "node (no replication), and its failover cannot be measured")
        cairn = CairnEmbedded(args.cairn, args.out)
    else:
        cairn = CairnCluster(args.cairn, args.out, args.cairn_base_port, mode=mode)
    try:
        capture_metrics(cairn.endpoints(), args.out, "before")
        perf = start_perf(cairn.pids(), args.out) if args.perf else None
        try:
            results["cairn"] = run_bench(args.cairn, "cairn", cairn.endpoints(), args,
                                         os.path.join(args.out, "cairn.json"))
        finally:
            finish_perf(perf, args.out)
        capture_metrics(cairn.endpoints(), args.out, "after")
        if mode != "embedded" and args.failover_rounds > 0:
            shard, eid = cairn.pick_shard_entity()
            log(f"failover: writing to entity {eid} on shard {shard}")

            def cairn_write(n):
                return ("/v1/transact", f'[[:db/add {eid} :bench/val "{("v%d" % n).ljust(64, "x")}"]]',
                        "application/edn")
            results["cairn_failover"] = measure_failover(
                args.failover_rounds, lambda: cairn.shard_leader(shard), cairn.kill, cairn.restart,
                lambda leader: [n["http"] for j, n in enumerate(cairn.nodes) if j != leader],
                cairn_write, cairn.wait_healthy, "cairn")
            results["cairn_failover"]["shard"] = shard
    finally:
        cairn.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cairn", required=True, help="the cairn binary")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--workloads", default="tx1,tx100,point")
    ap.add_argument("--duration-s", type=float, default=10)
    ap.add_argument("--warmup-s", type=float, default=2)
    ap.add_argument("--failover-rounds", type=int, default=5)
    ap.add_argument("--cairn-mode", choices=["auto", "cluster", "config", "embedded"], default="auto")
    ap.add_argument("--etcd-base-port", type=int, default=23790)
    ap.add_argument("--cairn-base-port", type=int, default=27000)
    ap.add_argument("--only", choices=["both", "etcd", "cairn"], default="both")
    ap.add_argument("--perf", action="store_true", help="perf record the Cairn processes during their bench")
    ap.add_argument("--max-s", type=int, default=1800, help="bound on the whole run")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    def on_alarm(*_):
        raise TimeoutError(f"the comparison exceeded --max-s {args.max_s}")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.max_s)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    mode = args.cairn_mode
    if mode == "auto":
        if cairn_has(args.cairn, ["cluster", "up", "--help"], "--nodes"):
            mode = "cluster"
        elif cairn_has(args.cairn, ["serve", "--help"], "--config"):
            mode = "config"
        else:
            mode = "embedded"
    results = {"machine": {"cpus": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3]},
               "clients": args.clients, "workloads": args.workloads, "duration_s": args.duration_s,
               "cairn_mode": mode}
    try:
        if args.only in ("both", "etcd"):
            try:
                run_etcd(args, results)
            except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as e:
                results["etcd_error"] = str(e)
                log(f"etcd side failed: {e}")
        if args.only in ("both", "cairn"):
            try:
                run_cairn(args, results, mode)
            except (OSError, RuntimeError, subprocess.SubprocessError, ValueError, KeyError) as e:
                results["cairn_error"] = str(e)
                log(f"Cairn side failed: {e}")
    finally:
        stop_all()
        signal.alarm(0)

    results["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(report(results))
    runs = [results[k] for k in ("etcd", "cairn") if k in results]
    if runs:
        png = os.path.join(args.out, "cairn_vs_etcd.png")
        plot.plot(runs, png, title=f"Cairn ({'one embedded node' if mode == 'embedded' else '3 nodes x 4 shards'}) vs "
                  f"3-member etcd, {os.cpu_count()} vCPU")
        print(f"wrote {png} and {os.path.join(args.out, 'results.json')}")


def report(results):
    lines = []
    etcd = {(r["workload"], r["clients"]): r for r in results.get("etcd", {}).get("runs", [])}
    cairn = {(r["workload"], r["clients"]): r for r in results.get("cairn", {}).get("runs", [])}
    keys = sorted(set(etcd) | set(cairn), key=lambda k: (["tx1", "tx100", "point"].index(k[0]), k[1]))
    lines.append(f"Cairn mode: {results['cairn_mode']}; machine: {results['machine']['cpus']} vCPU, "
                 f"load average at start {' '.join(results['machine']['loadavg_start'])}")
    lines.append("")
    lines.append("| load | clients | etcd ops/s | Cairn ops/s | Cairn/etcd | etcd p99 ms | Cairn p99 ms | "
                 "Cairn datoms/s | errors etcd/Cairn |")
    lines.append("|---|---|---|---|---|---|---|---|---|")

    def fmt(v, d=0):
        return "-" if v is None else f"{v:,.{d}f}"
    for k in keys:
        e, c = etcd.get(k), cairn.get(k)
        eo = e["ops_per_s"] if e else None
        co = c["ops_per_s"] if c else None
        ratio = f"{co / eo:.2f}x" if eo and co is not None else "-"
        lines.append(f"| {k[0]} | {k[1]} | {fmt(eo)} | {fmt(co)} | {ratio} | "
                     f"{fmt(e['latency_ms']['p99'] if e else None, 1)} | {fmt(c['latency_ms']['p99'] if c else None, 1)} | "
                     f"{fmt(c['datoms_per_s'] if c else None)} | {e['errors'] if e else '-'}/{c['errors'] if c else '-'} |")
    lines.append("")
    e, c = etcd.get(("tx1", 64)), cairn.get(("tx1", 64))
    if e and c and e["ops_per_s"] > 0:
        ratio = c["ops_per_s"] / e["ops_per_s"]
        p99_ok = c["latency_ms"]["p99"] <= e["latency_ms"]["p99"]
        lines.append(f"goal tx1 @64 clients: Cairn/etcd write throughput {ratio:.2f}x (goal >= 3x: "
                     f"{'MET' if ratio >= 3 else 'NOT MET'}); p99 {c['latency_ms']['p99']:.1f} vs "
                     f"{e['latency_ms']['p99']:.1f} ms (goal no worse: {'MET' if p99_ok else 'NOT MET'})")
    for name in ("etcd", "cairn"):
        f = results.get(f"{name}_failover")
        if f:
            ok = f["median_ms"] <= 400 and f["max_ms"] <= 1000
            lines.append(f"failover {name}: median {f['median_ms']:.0f} ms, max {f['max_ms']:.0f} ms over "
                         f"{f['rounds']} kills ({', '.join(f'{t:.0f}' for t in f['times_ms'])})"
                         + (f", {f['gave_up']} with no ack within {f['give_up_ms'] / 1000:.0f} s (counted as that)"
                            if f.get("gave_up") else "")
                         + (f" (goal median <= 400, max <= 1000: {'MET' if ok else 'NOT MET'})"
                            if name == "cairn" else ""))
        elif name == "cairn" and "cairn" in results:
            lines.append("failover cairn: not measured (no cluster in this build)"
                         if results.get("cairn_mode") == "embedded" else "failover cairn: not measured")
    for name in ("etcd", "cairn"):
        if results.get(f"{name}_error"):
            lines.append(f"{name} side FAILED: {results[name + '_error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
