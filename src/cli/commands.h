// Subcommand entry points of the `cairn` CLI. Each returns a process exit
// code (0 ok, 1 operation failed, 2 bad usage) and prints errors to stderr.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cairn/database.h"
#include "cairn/query.h"
#include "cairn/value.h"

namespace cairn::cli {

struct DemoArgs {
  std::string db_path;
  std::string connect;  // HOST:PORT[,HOST:PORT...]: load through a cluster instead
  std::string iso_dir = "/usr/share/iso-codes/json";
};
// `cairn demo --db` (embedded) or `--connect` (a cluster, demo_connect.cc).
int RunDemo(const DemoArgs& args);
int RunDemoConnect(const DemoArgs& args);

// Where the demo loads and queries: an embedded Database or a Client.
struct DemoTarget {
  std::string where;  // for the first line: a file or the endpoints
  std::function<Result<TxReport>(const std::string& tx_edn)> transact;
  std::function<Result<QueryResult>(const std::string& query, const std::vector<std::string>& args,
                                    std::optional<TxTime> as_of)>
      query;
  // The shard a new entity with identity value `v` for `attr` lands on, so a
  // batch is split into one transaction per shard (embedded: always 0).
  std::function<uint32_t(Keyword attr, const Value& v)> shard_of;
  // The shard an existing entity (or a new one placed in its partition) lives on.
  std::function<uint32_t(EntityId e)> shard_of_entity;
};
// Loads ISO 3166 into `target` (progress bar on stderr) and prints the
// example queries; 0 on success, 1 (with the error on stderr) otherwise.
int RunDemoOn(const DemoTarget& target, const std::string& iso_dir);

// Splits "HOST:PORT,HOST:PORT" into endpoints.
std::vector<std::string> SplitEndpoints(const std::string& list);
// `cairn tx --connect` and `cairn q --connect`: through cairn::Client.
int RunTxConnect(const std::string& endpoints, const std::string& tx_edn, int timeout_ms);
int RunQueryConnect(const std::string& endpoints, const std::string& query, const std::vector<std::string>& args,
                    const std::string& format, int64_t as_of, int timeout_ms);
// `cairn status --connect HOST:PORT`: /v1/status as tables.
int RunStatus(const std::string& endpoints, bool json);

// `cairn cluster up` / `cairn cluster down` (cluster.cc).
struct ClusterUpArgs {
  int nodes = 3;
  int shards = 4;
  int replication = 3;
  int partitions = 256;
  std::string dir;
  int base_port = 0;  // 0: pick free ports
  int wait_s = 60;    // how long to wait for every /health to answer 200
  std::string cairn_bin;  // the binary to run `serve --config` with (default: this one)
};
int RunClusterUp(const ClusterUpArgs& args);
int RunClusterDown(const std::string& dir, int wait_s);
// Interactive prompt with history and multi-line input.
int RunRepl(const std::string& db_path);

// Renders a query result as "edn", "table" or "json".
std::string FormatResult(const QueryResult& result, const std::string& format);
// One Value as JSON text (refs as numbers, keywords as ":ns/name" strings).
std::string ValueToJson(const Value& v);

}  // namespace cairn::cli
