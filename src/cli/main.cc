// The `cairn` command (ARCHITECTURE §7). CLI11 stays in this file.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "cairn/database.h"
#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/serve.h"
#include "core/edn.h"

namespace cairn::cli {
namespace {

Result<std::unique_ptr<Database>> OpenDb(const std::string& path) {
  auto db = Database::open(path);
  if (!db.ok()) std::fprintf(stderr, "cairn: cannot open %s: %s\n", path.c_str(), db.status().ToString().c_str());
  return db;
}

// "-" reads standard input; "@file" reads a file; else the text itself.
Result<std::string> ReadArg(const std::string& arg) {
  if (arg == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  if (!arg.empty() && arg[0] == '@') {
    FILE* f = std::fopen(arg.c_str() + 1, "rb");
    if (!f) return Status::IOError("cannot read " + arg.substr(1));
    std::string s;
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
    return s;
  }
  return arg;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "cairn: %s\n", s.ToString().c_str());
  return 1;
}

int RunTx(const std::string& db_path, const std::string& edn_arg) {
  auto text = ReadArg(edn_arg);
  if (!text.ok()) return Fail(text.status());
  auto db = OpenDb(db_path);
  if (!db.ok()) return 1;
  auto report = (*db)->transact(*text);
  if (!report.ok()) return Fail(report.status());
  std::printf("%s\n", report->ToEdn().c_str());
  return 0;
}

Result<IndexType> ParseIndex(const std::string& name) {
  if (name == "eavt") return IndexType::kEavt;
  if (name == "aevt") return IndexType::kAevt;
  if (name == "avet") return IndexType::kAvet;
  if (name == "vaet") return IndexType::kVaet;
  return Status::InvalidArgument("unknown index '" + name + "' (expected eavt, aevt, avet or vaet)");
}

int RunDatoms(const std::string& db_path, const std::string& index_name, const std::vector<std::string>& parts) {
  auto index = ParseIndex(index_name);
  if (!index.ok()) return Fail(index.status());
  // Which component positions hold entity ids, per index.
  auto is_entity_pos = [&](size_t i) {
    switch (*index) {
      case IndexType::kEavt: return i == 0;
      case IndexType::kAevt: return i == 1;
      case IndexType::kAvet: return i == 2;
      case IndexType::kVaet: return i == 0 || i == 2;
    }
    return false;
  };
  std::vector<Value> components;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto edn = ReadEdn(parts[i]);
    if (!edn.ok()) return Fail(edn.status().WithContext("component " + std::to_string(i + 1)));
    auto v = EdnToValue(*edn);
    if (!v.ok()) return Fail(v.status().WithContext("component " + std::to_string(i + 1)));
    if (is_entity_pos(i) && v->type() == ValueType::kLong) v = Value::Ref(EntityId{static_cast<uint64_t>(v->as_long())});
    components.push_back(*v);
  }
  auto db = OpenDb(db_path);
  if (!db.ok()) return 1;
  auto datoms = (*db)->db().datoms(*index, components);
  if (!datoms.ok()) return Fail(datoms.status());
  for (const auto& d : *datoms) std::printf("%s\n", d.ToString().c_str());
  return 0;
}

int RunQuery(const std::string& db_path, const std::string& query_arg, const std::vector<std::string>& args,
             const std::string& format, int64_t as_of, bool explain) {
  auto query = ReadArg(query_arg);
  if (!query.ok()) return Fail(query.status());
  auto db = OpenDb(db_path);
  if (!db.ok()) return 1;
  Db view = (*db)->db();
  if (as_of > 0) view = view.as_of(TxTime{static_cast<uint64_t>(as_of)});
  if (explain) {
    auto plan = view.explain(*query, args);
    if (!plan.ok()) return Fail(plan.status());
    std::fwrite(plan->data(), 1, plan->size(), stdout);
    return 0;
  }
  auto result = view.q(*query, args);
  if (!result.ok()) return Fail(result.status());
  std::string out = FormatResult(*result, format);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace
}  // namespace cairn::cli

int main(int argc, char** argv) {
  using namespace cairn::cli;
  CLI::App app{"cairn — a sharded, multi-Raft datom database with Datalog queries"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cairn 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")->capture_default_str();

  DemoArgs demo;
  auto* demo_cmd = app.add_subcommand("demo", "Load ISO 3166 countries and subdivisions into an embedded database "
                                               "(--db) or a cluster (--connect) and run example queries");
  auto* demo_db = demo_cmd->add_option("--db", demo.db_path, "Database file to create or reuse");
  auto* demo_connect =
      demo_cmd->add_option("--connect", demo.connect, "Load into a running cluster instead: HOST:PORT[,HOST:PORT...]");
  demo_db->excludes(demo_connect);
  demo_cmd->require_option(1);
  demo_cmd->add_option("--iso-dir", demo.iso_dir, "Directory of Debian's iso-codes JSON")->capture_default_str();

  std::string db_path, edn;
  auto* tx_cmd = app.add_subcommand("tx", "Transact EDN tx-data and print the report (t, tempids, datoms) as EDN");
  std::string connect;
  int connect_timeout_ms = 30'000;
  auto* tx_db = tx_cmd->add_option("--db", db_path, "Database file");
  tx_cmd->add_option("--connect", connect, "Transact through a server or cluster: HOST:PORT[,HOST:PORT...]")
      ->excludes(tx_db);
  tx_cmd->add_option("--timeout-ms", connect_timeout_ms, "With --connect: give up after this long, retries included")
      ->capture_default_str();
  tx_cmd->add_option("tx-data", edn, "EDN vector of forms; '-' reads stdin, '@FILE' reads a file")->required();

  std::string index_name;
  std::vector<std::string> components;
  auto* datoms_cmd = app.add_subcommand("datoms", "Print the datoms of an index range");
  datoms_cmd->add_option("--db", db_path, "Database file")->required();
  datoms_cmd->add_option("index", index_name, "eavt, aevt, avet or vaet")->required();
  datoms_cmd->add_option("components", components, "Leading components as EDN (e.g. :user/name \"Ann\")");

  std::string query, format = "edn";
  std::vector<std::string> qargs;
  int64_t as_of = 0;
  auto* q_cmd = app.add_subcommand("q", "Run a Datalog query");
  auto* q_db = q_cmd->add_option("--db", db_path, "Database file");
  q_cmd->add_option("--connect", connect, "Query a server or cluster: HOST:PORT[,HOST:PORT...]")->excludes(q_db);
  q_cmd->add_option("--timeout-ms", connect_timeout_ms, "With --connect: give up after this long, retries included")
      ->capture_default_str();
  q_cmd->add_option("query", query, "EDN query; '-' reads stdin, '@FILE' reads a file")->required();
  q_cmd->add_option("args", qargs, "Inputs bound to :in after $, as EDN");
  q_cmd->add_option("--format", format, "edn, table or json")
      ->check(CLI::IsMember({"edn", "table", "json"}))
      ->capture_default_str();
  q_cmd->add_option("--as-of", as_of, "Query the database as of this t");
  bool explain = false;
  q_cmd->add_flag("--explain", explain, "Run the query and print its plan: steps, estimated and actual rows");

  std::string status_connect;
  bool status_json = false;
  auto* status_cmd = app.add_subcommand("status", "Show a node's view of the cluster: nodes, meta group, shards "
                                                   "(leader, term, commit, applied, replica lag)");
  status_cmd->add_option("--connect", status_connect, "HOST:PORT[,HOST:PORT...] of a node")->required();
  status_cmd->add_flag("--json", status_json, "Print /v1/status as the node sent it");

  ClusterUpArgs up;
  std::string down_dir;
  int down_wait_s = 10;
  auto* cluster_cmd = app.add_subcommand("cluster", "Run a local multi-process cluster (cluster up / cluster down)");
  cluster_cmd->require_subcommand(1);
  auto* up_cmd = cluster_cmd->add_subcommand(
      "up", "Start N `cairn serve --config` processes, wait until all are healthy, write DIR/cluster.json");
  up_cmd->add_option("--nodes", up.nodes, "Number of nodes")->capture_default_str();
  up_cmd->add_option("--shards", up.shards, "Number of shards (Raft groups 1..S)")->capture_default_str();
  up_cmd->add_option("--dir", up.dir, "Directory for the secret, node configs, data and logs")->required();
  up_cmd->add_option("--replication", up.replication, "Replicas per shard")->capture_default_str();
  up_cmd->add_option("--partitions", up.partitions, "Partitions entity ids are spread over")->capture_default_str();
  up_cmd->add_option("--base-port", up.base_port,
                     "First port to probe: HTTP ports from here, peer ports after them (default: free ports)");
  up_cmd->add_option("--wait", up.wait_s, "Seconds to wait for every node's /health")->capture_default_str();
  up_cmd->add_option("--cairn-bin", up.cairn_bin, "The cairn binary the nodes run (default: this one)");
  auto* down_cmd = cluster_cmd->add_subcommand("down", "Stop the nodes listed in DIR/cluster.json (SIGTERM, then "
                                                       "SIGKILL after --wait seconds); data is kept");
  down_cmd->add_option("--dir", down_dir, "The directory given to cluster up")->required();
  down_cmd->add_option("--wait", down_wait_s, "Seconds to wait before SIGKILL")->capture_default_str();

  auto* repl_cmd = app.add_subcommand("repl", "Interactive queries and transactions with history");
  repl_cmd->add_option("--db", db_path, "Database file")->required();

  ServeArgs serve;
  auto* serve_cmd = app.add_subcommand(
      "serve", "Serve the HTTP API (docs/http.md) over an embedded database (--db) or as a cluster node (--config)");
  auto* serve_db = serve_cmd->add_option("--db", serve.db_path, "Embedded: database file to create or reuse");
  auto* serve_config =
      serve_cmd->add_option("--config", serve.config_path, "Cluster: the node's JSON config (docs/cluster.md)");
  serve_db->excludes(serve_config);
  serve_config->excludes(serve_db);
  serve_cmd->add_option("--http", serve.http, "HOST:PORT to listen on (port 0 picks one)")->capture_default_str();
  serve_cmd->add_option("--max-body-bytes", serve.body_bytes_max, "Largest request body accepted")
      ->capture_default_str();
  serve_cmd->add_option("--header-timeout-ms", serve.header_timeout_ms,
                        "Time allowed for a request header (and keep-alive idle time)")
      ->capture_default_str();
  serve_cmd->add_option("--body-timeout-ms", serve.body_timeout_ms, "Time allowed for a request body")
      ->capture_default_str();
  serve_cmd->add_option("--request-timeout-ms", serve.request_timeout_ms,
                        "Answer 504 when a request takes longer (0 = never)")
      ->capture_default_str();
  serve_cmd->add_option("--max-connections", serve.connections_max, "Open connections allowed")
      ->capture_default_str();
  serve_cmd->add_option("--workers", serve.worker_threads,
                        "Threads that run transactions and queries (0: 4 embedded, 64 in a cluster)")
      ->capture_default_str();

  BenchArgs bench;
  auto* bench_cmd = app.add_subcommand(
      "bench",
      "Drive a running node or cluster (or etcd's v3 JSON gateway) over HTTP with concurrent clients and "
      "report ops/s, datoms/s and latency percentiles (docs/cli.md)");
  bench_cmd
      ->add_option("--endpoints", bench.endpoints,
                   "HOST:PORT of the HTTP API, comma-separated; clients are "
                   "spread over them round-robin")
      ->required()
      ->delimiter(',');
  bench_cmd
      ->add_option("--target", bench.target,
                   "cairn (POST /v1/transact, /v1/query) or etcd (/v3/kv/put, "
                   "/v3/kv/txn, /v3/kv/range)")
      ->capture_default_str();
  bench_cmd
      ->add_option("--workload", bench.workloads,
                   "Comma-separated: tx1 (one 64-byte datom / one put per op), tx100 (100 datoms / a txn of "
                   "100 puts), point (read one key by a unique attribute / range of one key)")
      ->delimiter(',')
      ->capture_default_str();
  bench_cmd
      ->add_option("--clients", bench.clients,
                   "Concurrent clients (keep-alive connections), comma-separated "
                   "for a sweep, e.g. 1,16,64")
      ->delimiter(',')
      ->capture_default_str();
  bench_cmd->add_option("--duration-s", bench.duration_s, "Measured seconds per run (after the warm-up)")
      ->capture_default_str();
  bench_cmd->add_option("--warmup-s", bench.warmup_s, "Seconds per run before measuring (ops not counted)")
      ->capture_default_str();
  bench_cmd->add_option("--ops", bench.ops, "Ops per run instead of a duration (0 = use --duration-s); no warm-up")
      ->capture_default_str();
  bench_cmd->add_option("--threads", bench.threads, "I/O threads driving the clients")->capture_default_str();
  bench_cmd->add_option("--timeout-ms", bench.timeout_ms, "Per-request timeout (connect, send, answer)")
      ->capture_default_str();
  bench_cmd->add_option("--value-bytes", bench.value_bytes, "Size of each written value (and Cairn key)")
      ->capture_default_str();
  bench_cmd->add_option("--point-keys", bench.point_keys, "Keys written before point runs; reads pick among them")
      ->capture_default_str();
  bench_cmd->add_option("--out", bench.out, "Also write the results as JSON to this file");
  bench_cmd->add_flag("--quiet", bench.quiet, "No progress lines on stderr");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (CLI11's own
    // codes, 100 and up, would collide with nothing a script expects).
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  auto logger = spdlog::stderr_color_mt("cairn");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (*demo_cmd) return demo.connect.empty() ? RunDemo(demo) : RunDemoConnect(demo);
  if (*tx_cmd || *q_cmd) {
    if (db_path.empty() == connect.empty()) {
      std::fprintf(stderr, "cairn: give exactly one of --db FILE or --connect HOST:PORT\n");
      return 2;
    }
  }
  if (*tx_cmd && !connect.empty()) {
    auto text = ReadArg(edn);
    if (!text.ok()) return Fail(text.status());
    return RunTxConnect(connect, *text, connect_timeout_ms);
  }
  if (*q_cmd && !connect.empty()) {
    if (explain) {
      std::fprintf(stderr, "cairn: --explain needs --db (the plan is not served over HTTP yet)\n");
      return 2;
    }
    auto text = ReadArg(query);
    if (!text.ok()) return Fail(text.status());
    return RunQueryConnect(connect, *text, qargs, format, as_of, connect_timeout_ms);
  }
  if (*status_cmd) return RunStatus(status_connect, status_json);
  if (*up_cmd) return RunClusterUp(up);
  if (*down_cmd) return RunClusterDown(down_dir, down_wait_s);
  if (*tx_cmd) return RunTx(db_path, edn);
  if (*datoms_cmd) return RunDatoms(db_path, index_name, components);
  if (*q_cmd) return RunQuery(db_path, query, qargs, format, as_of, explain);
  if (*repl_cmd) return RunRepl(db_path);
  if (*serve_cmd) return RunServe(serve);
  if (*bench_cmd) return RunBench(bench);
  return 2;
}
