// Backend: what the HTTP API (src/server/http_server.h) serves.
//
// The HTTP layer parses requests, calls a Backend, and renders the results;
// it never touches storage itself. Today the only implementation is
// EmbeddedBackend (one cairn::Database, one shard, no peers); the cluster
// coordinator (src/cluster) will implement the same interface by routing to
// shard leaders, so the HTTP API does not change when the node joins a
// cluster.
//
// Errors are Status codes a caller can act on; the HTTP layer maps them to
// status codes (InvalidArgument 400, NotFound 404, Conflict 409,
// Unavailable/NotLeader/WrongShard 503, Timeout/Cancelled 504, else 500).
// A failed call changes no stored data.
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/database.h"
#include "cairn/datom.h"
#include "cairn/query.h"
#include "cairn/status.h"

namespace cairn::server {

// Read consistency requested by a client (ARCHITECTURE §6). A single
// embedded replica is always linearizable, so EmbeddedBackend accepts all.
enum class Consistency { kLinearizable, kReadIndex, kStale };
// "linearizable", "read-index", "stale"; InvalidArgument for anything else.
Result<Consistency> ParseConsistency(std::string_view name);

struct QueryRequest {
  std::string query;              // EDN text of the query
  std::vector<std::string> args;  // EDN text per :in input after $
  std::optional<TxTime> as_of;    // view as of t (inclusive)
  std::optional<TxTime> since;    // only transactions after t
  bool history = false;           // every assertion and retraction
  Consistency consistency = Consistency::kLinearizable;
};

struct DatomsRequest {
  IndexType index = IndexType::kEavt;
  std::vector<Value> components;  // leading components of the index
  std::optional<TxTime> as_of;
  size_t limit = 1000;  // at most this many datoms are returned
};

struct DatomsResult {
  std::vector<Datom> datoms;
  bool truncated = false;  // more datoms matched than `limit`
};

// One shard replica as this node sees it (ARCHITECTURE §7 /v1/status).
struct ShardStatus {
  uint32_t shard = 0;
  bool leader = false;
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
};

struct BackendStatus {
  std::string mode;  // "embedded" or "cluster"
  std::string path;  // embedded: the database file
  TxTime latest_t;
  uint64_t datoms = 0;        // datoms stored (history included)
  uint64_t transactions = 0;  // transactions committed through this node since start
  uint64_t size_bytes = 0;    // on-disk size of the database (with its WAL)
  std::vector<ShardStatus> shards;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Applies EDN tx-data atomically. InvalidArgument (EDN line:column),
  // Conflict (CAS, uniqueness), NotFound (lookup ref) change nothing.
  virtual Result<TxReport> Transact(std::string_view tx_edn) = 0;
  virtual Result<QueryResult> Query(const QueryRequest& request) = 0;
  virtual Result<DatomsResult> Datoms(const DatomsRequest& request) = 0;
  // Datoms asserted and retracted with from < t <= to, in t order.
  virtual Result<std::vector<Datom>> Diff(TxTime from, TxTime to) = 0;
  virtual BackendStatus GetStatus() = 0;
  // OK when the node can serve reads and writes; else why not.
  virtual Status Health() = 0;
};

// Serves one embedded cairn::Database.
class EmbeddedBackend : public Backend {
 public:
  // Takes ownership of `db`, which was opened from `path`.
  EmbeddedBackend(std::unique_ptr<Database> db, std::string path);
  // Opens (or creates) the database at `path`.
  static Result<std::unique_ptr<EmbeddedBackend>> Open(const std::string& path, const Options& options = {});
  ~EmbeddedBackend() override;

  Result<TxReport> Transact(std::string_view tx_edn) override;
  Result<QueryResult> Query(const QueryRequest& request) override;
  Result<DatomsResult> Datoms(const DatomsRequest& request) override;
  Result<std::vector<Datom>> Diff(TxTime from, TxTime to) override;
  BackendStatus GetStatus() override;
  Status Health() override;

  Database& database() { return *db_; }

 private:
  std::unique_ptr<Database> db_;
  std::string path_;
  struct Counters;
  std::unique_ptr<Counters> counters_;
};

}  // namespace cairn::server
