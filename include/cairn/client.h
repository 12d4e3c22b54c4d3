// cairn::Client — a Cairn cluster (or one `cairn serve` process) over its
// HTTP API, with the same transact/q interface as the embedded Database.
//
//   auto client = cairn::Client::connect({"127.0.0.1:7001", "127.0.0.1:7002"});
//   auto report = (*client)->transact(R"([{:db/id "a" :user/name "Ann"}])");
//   auto rows = (*client)->db().q("[:find ?n :where [_ :user/name ?n]]");
//   auto old = (*client)->db().as_of(report->t).q("...");
//
// Wire: JSON request bodies carrying EDN text, `Accept: application/edn`
// responses parsed back into TxReport / QueryResult (docs/http.md). One
// keep-alive connection per endpoint and concurrent caller is kept in a pool.
//
// Failover: on a connection failure, a 503 (no leader, no quorum, node
// shutting down) or a 504 (the node timed out), the request is retried on the
// next endpoint, with exponential backoff, until ClientOptions::timeout_ms has
// passed since the call started. Every transact() call carries one request id
// (generated per call, reused by every retry of that call), so a transaction
// retried after a lost answer is applied at most once; the server then answers
// with the first outcome (TxReport::duplicate is true, datoms may be empty).
//
// Errors: the server's error code maps back to a Status code with the server's
// message: invalid_argument/cross_shard (400) -> InvalidArgument, not_found
// (404) -> NotFound, conflict (409) -> Conflict; when the deadline passes
// during retries: Unavailable (the last 503 or connection error) or Timeout
// (the last answer was a 504: the transaction may or may not have applied;
// retrying with the same request id is safe — see transact_with_id).
// Bad endpoints in connect() are InvalidArgument; connect() does not contact
// the servers (the first call does).
//
// Causality (ARCHITECTURE §3): the client remembers the largest t it has
// seen (every transact answer, and what observe_t() is given) and sends it
// as `min-t` with every transaction; a cluster commits the transaction with
// a t above it, whichever shard and leader it lands on. (An embedded
// `cairn serve` accepts and ignores it: its t already grows.)
//
// Differences from the embedded Database: a query result's values come back
// from EDN text, where refs print as numbers, so entity ids in query results
// and datoms are Value::Long, not Value::Ref (compare with as_long() or use
// EntityId{uint64_t(v.as_long())}).
//
// Thread-safety: a Client may be used from many threads at once (each call
// takes its own pooled connection). ClientDb values are immutable and cheap to
// copy; they share the Client, which must outlive them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/database.h"
#include "cairn/datom.h"
#include "cairn/ids.h"
#include "cairn/query.h"
#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn {

struct ClientOptions {
  // Overall deadline of one call, retries included.
  int timeout_ms = 30'000;
  // Deadline of one TCP connect attempt.
  int connect_timeout_ms = 2'000;
  // An attempt that has no answer after this long is abandoned and retried
  // on the next endpoint (a hung or partitioned node); 0 = no limit but
  // timeout_ms.
  int attempt_timeout_ms = 10'000;
  // Backoff between attempts after a failure: starts at backoff_ms_min,
  // doubles, capped at backoff_ms_max.
  int backoff_ms_min = 20;
  int backoff_ms_max = 1'000;
  // "linearizable", "read-index" or "stale"; empty = the server's default.
  std::string consistency;
};

class ClientDb;

class Client {
 public:
  // Endpoints are "HOST:PORT" (IPv6 as "[::1]:PORT"), optionally prefixed by
  // "http://". InvalidArgument (naming the endpoint) if the list is empty or
  // an endpoint does not parse.
  static Result<std::unique_ptr<Client>> connect(const std::vector<std::string>& endpoints,
                                                 const ClientOptions& options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Applies EDN tx-data (a vector of forms) atomically, like
  // Database::transact. A fresh request id is generated for the call.
  Result<TxReport> transact(std::string_view tx_edn);
  Result<TxReport> transact(const TxBuilder& tx);
  // The same with a caller-chosen request id: the server applies a request id
  // at most once, so calling this again after a Timeout is safe.
  Result<TxReport> transact_with_id(std::string_view tx_edn, const std::string& request_id);

  // The current database value (reads at call time of q(), not at db()).
  ClientDb db() const;

  // GET /v1/status, the JSON body as the server sent it (docs/http.md).
  Result<std::string> status_json() const;
  // GET /health on the first endpoint only, one attempt, no retries: OK on
  // 200, else Unavailable with the server's reason (or the connection error).
  Status health() const;
  // The latest t the answering node knows (from /v1/status).
  Result<TxTime> latest_t() const;
  // The datoms asserted and retracted with t1 < t <= t2, in t order
  // (GET /v1/diff), as cairn::diff on an embedded Database; empty unless
  // t1 < t2. InvalidArgument if t1 > t2.
  Result<std::vector<Datom>> diff(TxTime t1, TxTime t2) const;
  // The largest t this client has seen (zero before any transaction).
  TxTime max_t() const;
  // Records a t seen elsewhere (another client, another process): later
  // transactions of this client commit above it.
  void observe_t(TxTime t);

  const std::vector<std::string>& endpoints() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class ClientDb;
};

// A database value read through a Client: current, as of a time, since a
// time, or history — the remote counterpart of cairn::Db.
class ClientDb {
 public:
  ClientDb as_of(TxTime t) const;  // transactions with t' <= t
  ClientDb since(TxTime t) const;  // transactions with t' > t
  ClientDb history() const;        // every assertion and retraction

  // Datalog (docs/query.md). `args` bind :in after $ (EDN text each). The
  // result has the same shape and columns as Db::q (see the header note on
  // refs).
  Result<QueryResult> q(std::string_view query, const std::vector<std::string>& args = {}) const;
  // Pull a pattern for one entity (EDN pattern), as Db::pull: a Value map
  // (empty map if the entity has none of the attributes).
  Result<Value> pull(std::string_view pattern, EntityId e) const;
  Result<std::vector<Value>> pull_many(std::string_view pattern, const std::vector<EntityId>& es) const;
  // Resolves a lookup ref; NotFound if no entity has it.
  Result<EntityId> entid(std::string_view attr, const Value& v) const;
  // Datoms of an index whose leading components equal `components`, as
  // Db::datoms (only the current and as-of views; at most `limit` datoms).
  Result<std::vector<Datom>> datoms(IndexType index, const std::vector<Value>& components = {},
                                    size_t limit = 1'000'000) const;

  explicit ClientDb(const Client* client) : client_(client) {}

 private:
  const Client* client_;
  std::optional<TxTime> as_of_;
  std::optional<TxTime> since_;
  bool history_ = false;
};

}  // namespace cairn
