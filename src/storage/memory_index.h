// MemoryIndex: the memory-resident datom index in front of SQLite.
//
// Two kinds (the template argument):
//  - CurrentIndex (kHistory = false): the datoms true now, one entry per
//    (e, a, v) carrying the tx that asserted it; a retraction removes it.
//  - HistoryIndex (kHistory = true): every assertion and retraction, keyed by
//    (e, a, v, tx, added).
// Each keeps four access paths as ChunkedSets of IndexEntry:
//   EAVT (e, a, v)   one global set
//   AEVT (a, e, v)   one set per attribute
//   AVET (a, v, e)   one set per attribute, built lazily on the first scan
//                    that needs it and then maintained by every Apply (so
//                    bulk loads of attributes nobody looks up by value pay
//                    nothing; the transactor's unique checks build it for
//                    unique attributes at once). The public datoms(:avet)
//                    API still shows only indexed/unique attributes.
//   VAET (v, a, e)   one global set of the entries whose value is a ref
// (the history sets append tx, added to each key). Attributes are the small
// integer ids of the store's attrs table, so AEVT order is attribute-id order.
//
// A MemoryIndex is a value: copying it copies chunk pointers only, and
// Apply() on the copy is copy-on-write, so a published snapshot never changes.
//
// Thread-safety: const methods are safe concurrently; Build/Apply need
// exclusive access to the object they modify.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "cairn/ids.h"
#include "cairn/value.h"
#include "storage/chunked_set.h"

namespace cairn::storage {

struct IndexEntry {
  EntityId e;
  TxTime tx;
  Value v;
  uint32_t aid = 0;
  bool added = true;
};

enum class IndexOrder : uint8_t { kEavt, kAevt, kAvet, kVaet };

// Bound components of a scan; unset ones match anything.
struct IndexBounds {
  std::optional<EntityId> e;
  std::optional<uint32_t> aid;
  const Value* v = nullptr;  // not owned; nullptr = unbound
};

template <bool kHistory>
class MemoryIndex {
 public:
  static constexpr bool kIsHistory = kHistory;

  size_t size() const { return eavt_.size(); }
  // Bytes held by this snapshot's index structures (string/bytes heap blocks
  // are shared between the sets and not counted).
  size_t MemoryBytes() const;

  // Replaces the contents with the state after replaying `log` (every
  // assertion and retraction, in commit order).
  void Build(std::vector<IndexEntry> log);
  // Applies one transaction's datoms, in the order the transaction wrote them.
  void Apply(const std::vector<IndexEntry>& tx_entries);

  // Visits entries matching every bound component, in `order`, until fn
  // returns false; returns false if stopped early. The range walked is set by
  // the bound leading components of `order`; others are filtered.
  bool Scan(IndexOrder order, const IndexBounds& b, const std::function<bool(const IndexEntry&)>& fn) const;
  // Entries in the range Scan(order, b) walks: an upper bound of what it
  // yields. O(log n) (O(attributes) for an unbound attribute in AEVT/AVET).
  size_t CountRange(IndexOrder order, const IndexBounds& b) const;
  // The cheapest order for the bounds: EAVT for e, AVET for a+v, VAET for a
  // ref v, else AEVT.
  static IndexOrder BestOrder(const IndexBounds& b);

  size_t attr_count(uint32_t aid) const { return aid < attrs_.size() ? attrs_[aid].aevt.size() : 0; }

  struct LessEav {
    bool operator()(const IndexEntry& x, const IndexEntry& y) const;
  };
  struct LessAev {
    bool operator()(const IndexEntry& x, const IndexEntry& y) const;
  };
  struct LessAve {
    bool operator()(const IndexEntry& x, const IndexEntry& y) const;
  };
  struct LessVae {
    bool operator()(const IndexEntry& x, const IndexEntry& y) const;
  };

  // Checks every set's ordering and that the per-order sizes agree (tests).
  bool CheckInvariants() const;
  // Builds attribute `aid`'s AVET now rather than on its first use (which
  // sorts all of the attribute's datoms): a replica does it for unique
  // attributes, which the transactor reads on every write, while it loads
  // off the driver thread. Thread-safe, like any first use.
  void BuildAvet(uint32_t aid) const {
    if (aid < attrs_.size()) (void)Avet(aid);
  }
  // Whether attribute `aid`'s AVET is built (tests).
  bool AvetBuilt(uint32_t aid) const;

 private:
  using AvetSet = ChunkedSet<IndexEntry, LessAve>;
  // An attribute's AVET, built on first use. Each LazyAvet stands for the
  // AVET of exactly one AEVT state: Apply() replaces it when the attribute
  // changes, and snapshots that share the AEVT share it.
  struct LazyAvet {
    std::mutex mu;
    std::shared_ptr<const AvetSet> set;  // guarded by mu; null until built
  };
  struct AttrIndex {
    ChunkedSet<IndexEntry, LessAev> aevt;
    std::shared_ptr<LazyAvet> avet = std::make_shared<LazyAvet>();
  };
  // The attribute's AVET, building it if needed (thread-safe).
  const AvetSet& Avet(uint32_t aid) const;
  void ApplySorted(std::vector<IndexEntry> erase, std::vector<IndexEntry> insert);

  std::vector<AttrIndex> attrs_;  // by attribute id
  ChunkedSet<IndexEntry, LessEav> eavt_;
  ChunkedSet<IndexEntry, LessVae> vaet_;
};

using CurrentIndex = MemoryIndex<false>;
using HistoryIndex = MemoryIndex<true>;

extern template class MemoryIndex<false>;
extern template class MemoryIndex<true>;

}  // namespace cairn::storage
