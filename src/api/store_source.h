// StoreSource: the IndexSource (database value) of the embedded store.
//
// A StoreSource reads one committed Snapshot of the memory index: the current
// view, since(T) (the current view restricted to datoms asserted after T),
// as_of(T) and history (both from the history index, restricted to
// transactions up to the snapshot's basis t). It never touches SQLite, so
// queries run at memory speed and never block a commit.
//
// Thread-safety: immutable; all methods are safe to call concurrently.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "cairn/datom.h"
#include "core/schema.h"
#include "datalog/index_source.h"
#include "storage/datom_store.h"
#include "storage/memory_index.h"

namespace cairn::internal {

// One committed state of the embedded database.
struct Snapshot {
  TxTime basis_t;  // the last transaction it contains
  std::shared_ptr<const storage::CurrentIndex> current;
  std::shared_ptr<const storage::AttrTable> attrs;
  std::shared_ptr<const Schema> schema;
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
  std::optional<EntityId> Lookup(Keyword attr, const Value& v) const override;

  // Datoms of `index` whose leading components equal `components`, in index
  // order (Db::datoms). InvalidArgument for a component of the wrong type or
  // an AVET scan of an attribute that is not indexed.
  Result<std::vector<Datom>> Datoms(IndexType index, const std::vector<Value>& components) const;

  Kind kind() const { return kind_; }
  TxTime t() const { return t_; }
  const Snapshot& snapshot() const { return snap_; }

 private:
  // Scans in a fixed order with the view's semantics.
  void ScanOrdered(storage::IndexOrder order, const storage::IndexBounds& b, const datalog::DatomPattern& p,
                   const std::function<bool(const Datom&)>& fn) const;
  // False if the pattern cannot match anything (unknown attribute...).
  bool ToBounds(const datalog::DatomPattern& p, storage::IndexBounds* b) const;
  Keyword Name(uint32_t aid) const;

  Snapshot snap_;
  Kind kind_;
  TxTime t_;
  HistoryState history_;
};

}  // namespace cairn::internal
