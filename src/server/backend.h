// Backend: what the HTTP API (src/server/http_server.h) serves.
//
// The HTTP layer parses requests, calls a Backend, and renders the results;
// it never touches storage itself. EmbeddedBackend serves one
// cairn::Database (one shard, no peers); ClusterBackend serves a cluster
// node (src/cluster/node.h) by routing to shard leaders through its
// coordinator, so the HTTP API is the same in both modes.
//
// Errors are Status codes a caller can act on; the HTTP layer maps them to
// status codes (InvalidArgument 400, NotFound 404, Conflict 409,
// Unavailable/NotLeader/WrongShard 503, Timeout/Cancelled 504, else 500).
// A failed call changes no stored data.
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
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

struct TransactRequest {
  std::string tx_edn;      // EDN vector of tx forms
  std::string request_id;  // optional: the same id applies at most once
  // The largest t the client has seen (field `min-t`); zero = none. A
  // cluster commits the transaction with a t above it (ARCHITECTURE §3);
  // embedded mode ignores it (one database: t already grows).
  TxTime min_t;
};

struct TransactResult {
  TxReport report;
  // The request id had applied before: report.t and tempids are the first
  // outcome's (cluster: tempids may be empty), datoms may be empty.
  bool duplicate = false;
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

// Cluster mode (the cluster contract's /v1/status shape).
struct NodeStatus {
  uint32_t id = 0;
  std::string http;
  std::string peer;
  bool live = false;
};

struct ReplicaLag {
  uint32_t node = 0;
  uint64_t match_index = 0;
  uint64_t lag = 0;  // leader's last index - match_index
};

struct GroupStatusInfo {
  uint64_t group = 0;
  uint32_t leader = 0;  // node id, 0 if unknown
  std::string role;     // "leader", "follower", "candidate", "pre-candidate", "learner"
  uint64_t term = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  TxTime last_t;
  TxTime closed_t;  // every transaction with t <= closed_t is applied here
  std::vector<ReplicaLag> replicas;  // where this node leads the group
  uint64_t snapshot_index = 0;       // the latest snapshot this replica holds
  uint64_t snapshots_taken = 0;      // since the node started
  uint64_t snapshots_installed = 0;  // received from a leader since the node started
  std::string snapshot_error;        // why the last snapshot copy failed; empty if it did not
};

// Cluster mode: the shard map this node follows (shard_map_cache.h).
struct MapStatus {
  uint64_t version = 0;  // the meta group's applied index it was read at; 0 = the config's map
  struct Shard {
    uint32_t shard = 0;
    std::vector<uint32_t> replicas;  // placement order
    uint32_t leader_hint = 0;        // 0 = none
  };
  std::vector<Shard> shards;
};

struct BackendStatus {
  std::string mode;  // "embedded" or "cluster"
  std::string path;  // embedded: the database file
  TxTime latest_t;
  uint64_t datoms = 0;        // datoms stored (history included)
  uint64_t transactions = 0;  // transactions committed through this node since start
  uint64_t size_bytes = 0;    // on-disk size of the database (with its WAL)
  std::vector<ShardStatus> shards;
  // Cluster mode only.
  uint32_t node_id = 0;
  std::vector<NodeStatus> nodes;
  std::optional<GroupStatusInfo> meta;     // unset if this node holds no meta replica
  std::vector<GroupStatusInfo> groups;     // the shards this node holds
  uint64_t peer_auth_failures = 0;    // peer handshakes refused (wrong secret)
  uint64_t peer_protocol_errors = 0;  // peer connections closed for a bad frame
  uint64_t peer_connects = 0;         // outbound peer connections established
  uint64_t remote_read_failures = 0;  // remote read requests failed at a replica (moved to the next)
  uint64_t closes_proposed = 0;       // close(T) entries this node proposed as a leader (ReadAt)
  // The node's driver (cluster/node_host.h NodeHostStats): rounds that
  // persisted something (one log save and fsync each), the group Readies and
  // committed entries they carried, raft frames (one per peer per round) and
  // messages sent, and rounds delayed to batch more work.
  uint64_t driver_rounds = 0;
  uint64_t driver_readies = 0;
  uint64_t driver_entries_applied = 0;
  uint64_t driver_frames_sent = 0;
  uint64_t driver_messages_sent = 0;
  uint64_t driver_batched_waits = 0;
  uint64_t driver_slow_rounds = 0;
  uint64_t driver_round_us_max = 0;
  std::optional<MapStatus> map;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Applies EDN tx-data atomically. InvalidArgument (EDN line:column;
  // "cross_shard: ..." for a transaction spanning shards), Conflict (CAS,
  // uniqueness), NotFound (lookup ref) change nothing. With a request id, a
  // request that applied before is not applied again: its first outcome is
  // returned with duplicate = true.
  virtual Result<TransactResult> Transact(const TransactRequest& request) = 0;
  using TransactDone = std::function<void(Result<TransactResult>)>;
  // Transact that may answer later: `done` runs exactly once, on this
  // thread or another one (a cluster node answers from the thread that
  // learns the outcome, so no thread waits for the leader); it must not
  // block. The default runs Transact here.
  virtual void TransactAsync(const TransactRequest& request, TransactDone done) { done(Transact(request)); }
  // TransactAsync if it can start without blocking the calling thread (an
  // I/O thread): returns true and takes `done`; else false, `done` untouched.
  // The default never can.
  virtual bool TryTransactNow(const TransactRequest& request, TransactDone& done) { return false; }
  virtual Result<QueryResult> Query(const QueryRequest& request) = 0;
  virtual Result<DatomsResult> Datoms(const DatomsRequest& request) = 0;
  // Datoms asserted and retracted with from < t <= to, in t order.
  virtual Result<std::vector<Datom>> Diff(TxTime from, TxTime to) = 0;
  // POST /v1/cluster/meta: commits tx-data to a cluster's meta group only
  // (the admin path for the membership and shard-map records). Not
  // available on an embedded database.
  virtual Result<TransactResult> MetaTransact(const TransactRequest&) {
    return Status::InvalidArgument("/v1/cluster/meta is only served by a cluster node");
  }
  virtual BackendStatus GetStatus() = 0;
  // OK when the node can serve reads and writes; else why not.
  virtual Status Health() = 0;
  // A t at least every t the node has applied or read so far (the HTTP
  // layer sends it as the `Cairn-T` response header after a transact, query,
  // datoms or diff, so a client's causal min-t covers what it read). Zero:
  // no header.
  virtual TxTime KnownTime() { return TxTime{}; }
};

// Serves one embedded cairn::Database.
class EmbeddedBackend : public Backend {
 public:
  // Takes ownership of `db`, which was opened from `path`.
  EmbeddedBackend(std::unique_ptr<Database> db, std::string path);
  // Opens (or creates) the database at `path`.
  static Result<std::unique_ptr<EmbeddedBackend>> Open(const std::string& path, const Options& options = {});
  ~EmbeddedBackend() override;

  Result<TransactResult> Transact(const TransactRequest& request) override;
  Result<QueryResult> Query(const QueryRequest& request) override;
  Result<DatomsResult> Datoms(const DatomsRequest& request) override;
  Result<std::vector<Datom>> Diff(TxTime from, TxTime to) override;
  BackendStatus GetStatus() override;
  Status Health() override;
  TxTime KnownTime() override;

  Database& database() { return *db_; }

 private:
  std::unique_ptr<Database> db_;
  std::string path_;
  struct Counters;
  std::unique_ptr<Counters> counters_;
};

}  // namespace cairn::server

namespace cairn::cluster {
class Node;
}

namespace cairn::server {

// Serves one cluster node: transactions through its coordinator (routed to
// the shard leader, forwarded from followers), queries over the merged view
// of every group (current, as-of, since, history: the same views and
// answers as EmbeddedBackend), diffs from every group's history, status and
// health from its replicas.
class ClusterBackend : public Backend {
 public:
  // `node` must outlive the backend.
  explicit ClusterBackend(cluster::Node* node);
  ~ClusterBackend() override;

  Result<TransactResult> Transact(const TransactRequest& request) override;
  void TransactAsync(const TransactRequest& request, TransactDone done) override;
  bool TryTransactNow(const TransactRequest& request, TransactDone& done) override;
  Result<QueryResult> Query(const QueryRequest& request) override;
  Result<DatomsResult> Datoms(const DatomsRequest& request) override;
  Result<std::vector<Datom>> Diff(TxTime from, TxTime to) override;
  Result<TransactResult> MetaTransact(const TransactRequest& request) override;
  BackendStatus GetStatus() override;
  Status Health() override;
  TxTime KnownTime() override;

 private:
  cluster::Node* node_;
  struct Counters;
  std::unique_ptr<Counters> counters_;
};

}  // namespace cairn::server
