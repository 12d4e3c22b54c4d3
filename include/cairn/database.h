// cairn::Database — the embedded database: one process, one shard, no server.
//
//   auto db = cairn::Database::open("data.db");
//   auto report = (*db)->transact(R"([{:db/id "a" :user/name "Ann"}])");
//   auto rows = (*db)->db().q("[:find ?n :where [_ :user/name ?n]]");
//
// Public method names follow the ARCHITECTURE's API (open, transact, db, q,
// as_of, ...); internal code uses Google style.
//
// Durability: transact() returns only after the transaction is durable in
// SQLite (WAL, synchronous=FULL unless Options::sync is false).
// Thread-safety: a Database may be used from many threads; transactions are
// serialized; Db values are immutable and safe to share.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/datom.h"
#include "cairn/ids.h"
#include "cairn/query.h"
#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn {

struct Options {
  bool create_if_missing = true;
  // fsync every commit (synchronous=FULL). false trades durability for speed.
  bool sync = true;
  // Number of partitions entity ids are spread over (ARCHITECTURE §2).
  uint32_t partitions = 256;
};

struct TxReport {
  TxTime t;
  std::map<std::string, EntityId> tempids;
  std::vector<Datom> datoms;
  // True when a server answered a retried request id with the outcome of its
  // first application (cairn::Client; datoms may then be empty).
  bool duplicate = false;
  // {:t 123 :tempids {"a" 456} :tx-data [[e :a v t true] ...]}
  std::string ToEdn() const;
};

// A C++ builder for transaction data, equivalent to the EDN forms.
class TxBuilder {
 public:
  // Entity references: an existing id, a tempid string, or a lookup ref.
  struct Ref {
    enum class Kind { kId, kTempid, kLookup } kind = Kind::kId;
    EntityId id;
    std::string tempid;
    Keyword lookup_attr;
    Value lookup_value;
    static Ref Id(EntityId e) { return Ref{Kind::kId, e, {}, {}, {}}; }
    static Ref Temp(std::string t) { return Ref{Kind::kTempid, {}, std::move(t), {}, {}}; }
    static Ref Lookup(std::string_view attr, Value v) {
      return Ref{Kind::kLookup, {}, {}, Keyword::Intern(attr), std::move(v)};
    }
  };
  TxBuilder& Add(Ref e, std::string_view attr, Value v);
  TxBuilder& Add(Ref e, std::string_view attr, Ref target);  // a ref value
  TxBuilder& Retract(Ref e, std::string_view attr, Value v);
  TxBuilder& RetractEntity(Ref e);
  TxBuilder& Cas(Ref e, std::string_view attr, Value old_value, Value new_value);
  // The EDN tx-data this builder stands for.
  std::string ToEdn() const;

 private:
  std::vector<std::string> forms_;
};

class Db;

class Database {
 public:
  // Opens (or creates) the database file at `path`. Errors: IOError if the
  // file cannot be opened, Corruption if it is not a Cairn database or fails
  // its integrity check.
  static Result<std::unique_ptr<Database>> open(const std::string& path, const Options& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Applies EDN tx-data (a vector of forms) atomically and durably. On error
  // (InvalidArgument with EDN line:column, Conflict for CAS/uniqueness,
  // NotFound for an unresolvable lookup ref) nothing is written.
  Result<TxReport> transact(std::string_view tx_edn);
  Result<TxReport> transact(const TxBuilder& tx);

  // The current database value.
  Db db() const;
  // The latest committed t (invalid TxTime for an empty database).
  TxTime latest_t() const;
  // Datoms stored: every assertion and retraction ever committed (history
  // included, so it never decreases), counting each transaction's
  // :db/txInstant datom. O(1); never waits for a commit in progress.
  uint64_t datom_count() const;

  struct Impl;

 private:
  explicit Database(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace internal {
struct DbImpl;
}

// An immutable database value: current, as of a time, since a time, or history.
class Db {
 public:
  Db as_of(TxTime t) const;    // transactions with t' <= t
  Db since(TxTime t) const;    // transactions with t' > t
  Db history() const;          // every assertion and retraction

  // Datoms of an index whose leading components equal `components`
  // (e.g. kEavt with {Value::Ref(e), Value::Kw("user/name")}).
  Result<std::vector<Datom>> datoms(IndexType index, const std::vector<Value>& components = {}) const;

  // Datalog (docs/query.md). `args` bind :in after $ (EDN text each).
  Result<QueryResult> q(std::string_view query, const std::vector<std::string>& args = {}) const;
  // Runs the query and returns its plan: each executed step with its strategy
  // and estimated and actual rows (the "explain" of docs/query.md).
  Result<std::string> explain(std::string_view query, const std::vector<std::string>& args = {}) const;
  // Pull a pattern for one entity (EDN pattern); result is a Value map.
  Result<Value> pull(std::string_view pattern, EntityId e) const;
  Result<std::vector<Value>> pull_many(std::string_view pattern, const std::vector<EntityId>& es) const;

  // Resolves a lookup ref; NotFound if no entity has it.
  Result<EntityId> entid(std::string_view attr, const Value& v) const;

  // Internal access for the implementation.
  explicit Db(std::shared_ptr<const internal::DbImpl> impl) : impl_(std::move(impl)) {}
  const std::shared_ptr<const internal::DbImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<const internal::DbImpl> impl_;
};

// The datoms asserted and retracted with t1 < t <= t2, in t order.
Result<std::vector<Datom>> diff(const Database& db, TxTime t1, TxTime t2);

}  // namespace cairn
