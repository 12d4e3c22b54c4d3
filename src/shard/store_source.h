// StoreSource: the database value (datalog::IndexSource) of one store's memory
// index, shared by the embedded Database (src/api) and a shard Replica
// (shard/replica.h): both hand out the same views, so time travel means the
// same thing on one store and on every replica of a cluster.
//
// A StoreSource reads one committed Snapshot of the memory index: the current
// view, since(T) (the current view restricted to datoms asserted after T),
// as_of(T) and history (both from the history index, restricted to
// transactions up to the snapshot's basis t). It never touches SQLite, so
// queries run at memory speed and never block a commit.
//
// Planner statistics (EstimateDistinct of values, EstimateRange) come from a
// per-attribute sample of values cached in the snapshot (AttrStatsCache).
// ScanRange walks the attribute's AEVT and skips values outside the range
// before building datoms (the storage index has no seek into AVET by value
// range yet).
//
// LoadSchemaFromIndex rebuilds the schema from the attribute entities of a
// current index (used when a store is opened or a replica reloads).
//
// Thread-safety: immutable apart from the internally locked statistics
// cache; all methods are safe to call concurrently.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cairn/datom.h"
#include "core/schema.h"
#include "datalog/index_source.h"
#include "storage/datom_store.h"
#include "storage/memory_index.h"

namespace cairn::shard {

// Planner statistics of one attribute in one snapshot's current index: the
// datom count, an estimate of its distinct values and a sorted sample of its
// values (every value below kExactBelow datoms, else evenly strided).
struct AttrValueStats {
  static constexpr uint64_t kExactBelow = 1024;
  uint64_t count = 0;
  uint64_t distinct_v = 0;
  bool exact = false;        // the sample is every value
  std::vector<Value> sample;  // sorted by Value::Compare
};

// Per-attribute statistics, computed on first use and shared by every view
// of one snapshot (a Snapshot copy shares its cache). A commit's snapshot
// takes Successor() of the previous one: an attribute's sampled (inexact)
// statistics carry over while its datom count stays within kDrift of the
// count they were computed at, so a query after each small commit does not
// rescan a large attribute (estimates need not be exact; exact samples, of
// small attributes, are always recomputed). Thread-safe.
class AttrStatsCache {
 public:
  static constexpr double kDrift = 0.1;

  std::shared_ptr<const AttrValueStats> Get(const storage::CurrentIndex& index, uint32_t aid);
  // A cache for the next snapshot that may reuse this one's entries.
  std::shared_ptr<AttrStatsCache> Successor();

 private:
  std::mutex mu_;
  std::unordered_map<uint32_t, std::shared_ptr<const AttrValueStats>> by_attr_;    // guarded by mu_
  std::unordered_map<uint32_t, std::shared_ptr<const AttrValueStats>> inherited_;  // guarded by mu_
};

// One committed state of a store (the embedded database or a replica).
struct Snapshot {
  TxTime basis_t;  // the last transaction it contains
  std::shared_ptr<const storage::CurrentIndex> current;
  std::shared_ptr<const storage::AttrTable> attrs;
  std::shared_ptr<const Schema> schema;
  std::shared_ptr<AttrStatsCache> stats = std::make_shared<AttrStatsCache>();
};

// The history index and the attribute table that names its entries; may be
// newer than a snapshot (entries after its basis t are filtered out).
struct HistoryState {
  std::shared_ptr<const storage::HistoryIndex> index;
  std::shared_ptr<const storage::AttrTable> attrs;
};

class StoreSource : public datalog::IndexSource {
 public:
  enum class Kind { kCurrent, kAsOf, kSince, kHistory };

  // `history` is required for kAsOf and kHistory, ignored otherwise.
  StoreSource(Snapshot snap, Kind kind, TxTime t, HistoryState history);

  const Schema& schema() const override { return *snap_.schema; }
  bool is_history() const override { return kind_ == Kind::kHistory; }
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override;
  uint64_t EstimateDistinct(Keyword a, int position) const override;
  Status ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                   const std::function<bool(const Datom&)>& fn) const override;
  uint64_t EstimateRange(const datalog::DatomPattern& p, const datalog::ValueRange& r) const override;
  std::optional<EntityId> Lookup(Keyword attr, const Value& v) const override;

  // Datoms of `index` whose leading components equal `components`, in index
  // order (Db::datoms). InvalidArgument for a component of the wrong type or
  // an AVET scan of an attribute that is not indexed.
  Result<std::vector<Datom>> Datoms(IndexType index, const std::vector<Value>& components) const;

  // A sibling view of the same snapshot and history (Db::as_of/since/
  // history). Unavailable if `kind` needs the history index and this value
  // has none (the embedded Database was closed).
  Result<std::shared_ptr<const StoreSource>> View(Kind kind, TxTime t) const;

  Kind kind() const { return kind_; }
  TxTime t() const { return t_; }
  const Snapshot& snapshot() const { return snap_; }

 private:
  // Scans in a fixed order with the view's semantics.
  // `range`, if set, skips values outside it before building datoms.
  void ScanOrdered(storage::IndexOrder order, const storage::IndexBounds& b, const datalog::DatomPattern& p,
                   const std::function<bool(const Datom&)>& fn, const datalog::ValueRange* range = nullptr) const;
  // Statistics of the attribute in the current index; nullptr for views
  // that do not read it (as-of, history) or an unknown attribute.
  std::shared_ptr<const AttrValueStats> Stats(Keyword a) const;
  // False if the pattern cannot match anything (unknown attribute...).
  bool ToBounds(const datalog::DatomPattern& p, storage::IndexBounds* b) const;
  Keyword Name(uint32_t aid) const;

  Snapshot snap_;
  Kind kind_;
  TxTime t_;
  HistoryState history_;
};

// `db` as a view of `kind` at `t`, if `db` is a StoreSource (a replica's or
// the embedded store's value); InvalidArgument otherwise.
Result<std::shared_ptr<const datalog::IndexSource>> ViewOf(const std::shared_ptr<const datalog::IndexSource>& db,
                                                            StoreSource::Kind kind, TxTime t);

// `index` updated by one transaction's entries: in place when the caller
// holds the only reference (nobody can see it change), else a copy-on-write
// copy (other holders keep theirs). Used by the embedded Database and the
// Replica alike for their current and history indexes.
template <typename Index>
std::shared_ptr<const Index> ApplyTo(std::shared_ptr<const Index> index,
                                     const std::vector<storage::IndexEntry>& entries) {
  if (index.use_count() == 1) {
    // Pairs with the release in the last other holder's reference drop, so
    // its reads happen before our writes.
    std::atomic_thread_fence(std::memory_order_acquire);
    const_cast<Index&>(*index).Apply(entries);
    return index;
  }
  auto copy = std::make_shared<Index>(*index);
  copy->Apply(entries);
  return copy;
}

std::shared_ptr<const Schema> LoadSchemaFromIndex(const storage::CurrentIndex& index,
                                                  const storage::AttrTable& attrs);

}  // namespace cairn::shard
