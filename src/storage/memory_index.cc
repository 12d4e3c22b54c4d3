#include "storage/memory_index.h"

#include <algorithm>
#include <atomic>
#include <map>

namespace cairn::storage {

namespace {

template <typename T>
int Cmp(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Order of the history tail (tx, added); retraction before assertion.
template <bool kHistory>
int CompareTail(const IndexEntry& x, const IndexEntry& y) {
  if constexpr (!kHistory) {
    return 0;
  } else {
    if (int c = Cmp(x.tx.raw, y.tx.raw)) return c;
    return Cmp(x.added, y.added);
  }
}

bool Matches(const IndexEntry& x, const IndexBounds& b) {
  if (b.e && x.e != *b.e) return false;
  if (b.aid && x.aid != *b.aid) return false;
  if (b.v != nullptr && x.v.Compare(*b.v) != 0) return false;
  return true;
}

}  // namespace

template <bool H>
bool MemoryIndex<H>::LessEav::operator()(const IndexEntry& x, const IndexEntry& y) const {
  if (x.e != y.e) return x.e < y.e;
  if (x.aid != y.aid) return x.aid < y.aid;
  if (int c = x.v.Compare(y.v)) return c < 0;
  return CompareTail<H>(x, y) < 0;
}
template <bool H>
bool MemoryIndex<H>::LessAev::operator()(const IndexEntry& x, const IndexEntry& y) const {
  if (x.e != y.e) return x.e < y.e;
  if (int c = x.v.Compare(y.v)) return c < 0;
  return CompareTail<H>(x, y) < 0;
}
template <bool H>
bool MemoryIndex<H>::LessAve::operator()(const IndexEntry& x, const IndexEntry& y) const {
  if (int c = x.v.Compare(y.v)) return c < 0;
  if (x.e != y.e) return x.e < y.e;
  return CompareTail<H>(x, y) < 0;
}
template <bool H>
bool MemoryIndex<H>::LessVae::operator()(const IndexEntry& x, const IndexEntry& y) const {
  if (int c = x.v.Compare(y.v)) return c < 0;
  if (x.aid != y.aid) return x.aid < y.aid;
  if (x.e != y.e) return x.e < y.e;
  return CompareTail<H>(x, y) < 0;
}

template <bool H>
size_t MemoryIndex<H>::MemoryBytes() const {
  size_t bytes = sizeof(*this) + eavt_.MemoryBytes() + vaet_.MemoryBytes() + attrs_.capacity() * sizeof(AttrIndex);
  for (const AttrIndex& a : attrs_) {
    bytes += a.aevt.MemoryBytes();
    std::lock_guard<std::mutex> lock(a.avet->mu);
    if (a.avet->set) bytes += a.avet->set->MemoryBytes();
  }
  return bytes;
}

template <bool H>
bool MemoryIndex<H>::AvetBuilt(uint32_t aid) const {
  if (aid >= attrs_.size()) return false;
  LazyAvet& lazy = *attrs_[aid].avet;
  std::lock_guard<std::mutex> lock(lazy.mu);
  return lazy.set != nullptr;
}

template <bool H>
const typename MemoryIndex<H>::AvetSet& MemoryIndex<H>::Avet(uint32_t aid) const {
  LazyAvet& lazy = *attrs_[aid].avet;
  std::lock_guard<std::mutex> lock(lazy.mu);
  if (!lazy.set) {
    std::vector<IndexEntry> entries;
    entries.reserve(attrs_[aid].aevt.size());
    attrs_[aid].aevt.ForEachAll([&](const IndexEntry& x) {
      entries.push_back(x);
      return true;
    });
    auto set = std::make_shared<AvetSet>();
    set->Apply({}, std::move(entries));
    lazy.set = std::move(set);
  }
  // Never replaced once built, and owned by this snapshot's attrs_.
  return *lazy.set;
}

template <bool H>
void MemoryIndex<H>::ApplySorted(std::vector<IndexEntry> erase, std::vector<IndexEntry> insert) {
  uint32_t max_aid = 0;
  for (const auto& x : erase) max_aid = std::max(max_aid, x.aid);
  for (const auto& x : insert) max_aid = std::max(max_aid, x.aid);
  if (attrs_.size() <= max_aid) attrs_.resize(max_aid + 1);

  // Per attribute.
  // Indexed by aid (dense, small): no per-datom tree node allocations.
  std::vector<std::pair<std::vector<IndexEntry>, std::vector<IndexEntry>>> by_attr(max_aid + 1);
  {
    // Exact sizes first: growing each list by doubling moved every entry
    // several times.
    std::vector<std::pair<size_t, size_t>> counts(max_aid + 1);
    for (const auto& x : erase) ++counts[x.aid].first;
    for (const auto& x : insert) ++counts[x.aid].second;
    for (uint32_t aid = 0; aid <= max_aid; ++aid) {
      by_attr[aid].first.reserve(counts[aid].first);
      by_attr[aid].second.reserve(counts[aid].second);
    }
  }
  for (const auto& x : erase) by_attr[x.aid].first.push_back(x);
  for (const auto& x : insert) by_attr[x.aid].second.push_back(x);
  for (uint32_t aid = 0; aid < by_attr.size(); ++aid) {
    auto& lists = by_attr[aid];
    if (lists.first.empty() && lists.second.empty()) continue;
    AttrIndex& attr = attrs_[aid];
    bool updated_in_place = false;
    if (attr.avet.use_count() == 1) {
      std::atomic_thread_fence(std::memory_order_acquire);  // see database.cc ApplyTo
      // Only this index holds the AVET: update it where it is.
      std::lock_guard<std::mutex> lock(attr.avet->mu);
      if (attr.avet->set && attr.avet->set.use_count() == 1) {
        const_cast<AvetSet&>(*attr.avet->set).Apply(lists.first, lists.second);
        updated_in_place = true;
      }
    }
    if (!updated_in_place) {
      auto fresh = std::make_shared<LazyAvet>();
      {
        std::lock_guard<std::mutex> lock(attr.avet->mu);
        if (attr.avet->set) {
          auto set = std::make_shared<AvetSet>(*attr.avet->set);
          set->Apply(lists.first, lists.second);
          fresh->set = std::move(set);
        }
      }
      attr.avet = std::move(fresh);
    }
    attr.aevt.Apply(std::move(lists.first), std::move(lists.second));
  }
  std::vector<IndexEntry> ref_erase, ref_insert;
  for (const auto& x : erase)
    if (x.v.type() == ValueType::kRef) ref_erase.push_back(x);
  for (const auto& x : insert)
    if (x.v.type() == ValueType::kRef) ref_insert.push_back(x);
  vaet_.Apply(std::move(ref_erase), std::move(ref_insert));
  eavt_.Apply(std::move(erase), std::move(insert));
}

template <bool H>
void MemoryIndex<H>::Build(std::vector<IndexEntry> log) {
  *this = MemoryIndex<H>();
  if constexpr (H) {
    ApplySorted({}, std::move(log));
  } else {
    // The last entry of each (e, a, v) in commit order decides.
    std::stable_sort(log.begin(), log.end(), LessEav());
    std::vector<IndexEntry> live;
    LessEav less;
    for (size_t i = 0; i < log.size(); ++i) {
      if (i + 1 < log.size() && !less(log[i], log[i + 1])) continue;
      if (log[i].added) live.push_back(std::move(log[i]));
    }
    ApplySorted({}, std::move(live));
  }
}

template <bool H>
void MemoryIndex<H>::Apply(const std::vector<IndexEntry>& tx_entries) {
  if constexpr (H) {
    ApplySorted({}, tx_entries);
  } else {
    // Net effect per (e, a, v): the last datom of the transaction wins.
    std::vector<const IndexEntry*> order;
    order.reserve(tx_entries.size());
    for (const IndexEntry& x : tx_entries) order.push_back(&x);
    LessEav less;
    std::stable_sort(order.begin(), order.end(), [&](const IndexEntry* x, const IndexEntry* y) { return less(*x, *y); });
    std::vector<IndexEntry> erase, insert;
    insert.reserve(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      if (i + 1 < order.size() && !less(*order[i], *order[i + 1])) continue;  // a later one decides
      if (order[i]->added) insert.push_back(*order[i]);
      else erase.push_back(*order[i]);
    }
    ApplySorted(std::move(erase), std::move(insert));
  }
}

template <bool H>
IndexOrder MemoryIndex<H>::BestOrder(const IndexBounds& b) {
  if (b.e) return IndexOrder::kEavt;
  if (b.v != nullptr && b.aid) return IndexOrder::kAvet;
  if (b.v != nullptr && b.v->type() == ValueType::kRef) return IndexOrder::kVaet;
  if (b.v != nullptr) return IndexOrder::kAvet;
  return IndexOrder::kAevt;
}

namespace {

// Probes: compare an entry's leading components with the bound ones, in the
// order's component order, stopping at the first unbound one.
struct EavProbe {
  const IndexBounds& b;
  int operator()(const IndexEntry& x) const {
    if (!b.e) return 0;
    if (int c = Cmp(x.e.raw, b.e->raw)) return c;
    if (!b.aid) return 0;
    if (int c = Cmp(x.aid, *b.aid)) return c;
    if (b.v == nullptr) return 0;
    return x.v.Compare(*b.v);
  }
};
struct AevProbe {  // within one attribute
  const IndexBounds& b;
  int operator()(const IndexEntry& x) const {
    if (!b.e) return 0;
    if (int c = Cmp(x.e.raw, b.e->raw)) return c;
    if (b.v == nullptr) return 0;
    return x.v.Compare(*b.v);
  }
};
struct AveProbe {  // within one attribute
  const IndexBounds& b;
  int operator()(const IndexEntry& x) const {
    if (b.v == nullptr) return 0;
    if (int c = x.v.Compare(*b.v)) return c;
    if (!b.e) return 0;
    return Cmp(x.e.raw, b.e->raw);
  }
};
struct VaeProbe {
  const IndexBounds& b;
  int operator()(const IndexEntry& x) const {
    if (b.v == nullptr) return 0;
    if (int c = x.v.Compare(*b.v)) return c;
    if (!b.aid) return 0;
    if (int c = Cmp(x.aid, *b.aid)) return c;
    if (!b.e) return 0;
    return Cmp(x.e.raw, b.e->raw);
  }
};

}  // namespace

template <bool H>
bool MemoryIndex<H>::Scan(IndexOrder order, const IndexBounds& b,
                          const std::function<bool(const IndexEntry&)>& fn) const {
  auto visit = [&](const IndexEntry& x) { return !Matches(x, b) || fn(x); };
  switch (order) {
    case IndexOrder::kEavt:
      return eavt_.ForEach(EavProbe{b}, visit);
    case IndexOrder::kVaet:
      if (b.v != nullptr && b.v->type() != ValueType::kRef) return true;
      return vaet_.ForEach(VaeProbe{b}, visit);
    case IndexOrder::kAevt:
    case IndexOrder::kAvet: {
      uint32_t first = b.aid ? *b.aid : 0;
      uint32_t last = b.aid ? *b.aid + 1 : static_cast<uint32_t>(attrs_.size());
      for (uint32_t aid = first; aid < last && aid < attrs_.size(); ++aid) {
        if (attrs_[aid].aevt.empty()) continue;
        bool more = order == IndexOrder::kAevt ? attrs_[aid].aevt.ForEach(AevProbe{b}, visit)
                                               : Avet(aid).ForEach(AveProbe{b}, visit);
        if (!more) return false;
      }
      return true;
    }
  }
  return true;
}

template <bool H>
size_t MemoryIndex<H>::CountRange(IndexOrder order, const IndexBounds& b) const {
  switch (order) {
    case IndexOrder::kEavt:
      return eavt_.CountRange(EavProbe{b});
    case IndexOrder::kVaet:
      if (b.v != nullptr && b.v->type() != ValueType::kRef) return 0;
      return vaet_.CountRange(VaeProbe{b});
    case IndexOrder::kAevt:
    case IndexOrder::kAvet: {
      uint32_t first = b.aid ? *b.aid : 0;
      uint32_t last = b.aid ? *b.aid + 1 : static_cast<uint32_t>(attrs_.size());
      size_t n = 0;
      for (uint32_t aid = first; aid < last && aid < attrs_.size(); ++aid) {
        if (attrs_[aid].aevt.empty()) continue;
        n += order == IndexOrder::kAevt ? attrs_[aid].aevt.CountRange(AevProbe{b})
                                        : Avet(aid).CountRange(AveProbe{b});
      }
      return n;
    }
  }
  return 0;
}

template <bool H>
bool MemoryIndex<H>::CheckInvariants() const {
  if (!eavt_.CheckInvariants() || !vaet_.CheckInvariants()) return false;
  size_t aevt = 0, avet = 0;
  for (uint32_t aid = 0; aid < attrs_.size(); ++aid) {
    const AttrIndex& a = attrs_[aid];
    if (!a.aevt.CheckInvariants() || !Avet(aid).CheckInvariants()) return false;
    aevt += a.aevt.size();
    avet += Avet(aid).size();
  }
  return aevt == eavt_.size() && avet == eavt_.size();
}

template class MemoryIndex<false>;
template class MemoryIndex<true>;

}  // namespace cairn::storage
