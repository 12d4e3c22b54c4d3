#include "datalog/memory_index.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "core/check.h"

namespace cairn::datalog {

namespace {

template <typename T>
int Cmp3(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}
int CmpKw(Keyword a, Keyword b) { return Cmp3(a.id(), b.id()); }

// Compares a datom with a partial key in a given component order; absent
// trailing components compare equal (prefix search).
struct Key {
  const EntityId* e = nullptr;
  const Keyword* a = nullptr;
  const Value* v = nullptr;
};

int CmpEavt(const Datom& d, const Key& k) {
  if (k.e == nullptr) return 0;
  if (int c = Cmp3(d.e.raw, k.e->raw)) return c;
  if (k.a == nullptr) return 0;
  if (int c = CmpKw(d.a, *k.a)) return c;
  if (k.v == nullptr) return 0;
  return d.v.Compare(*k.v);
}
int CmpAevt(const Datom& d, const Key& k) {
  if (k.a == nullptr) return 0;
  if (int c = CmpKw(d.a, *k.a)) return c;
  if (k.e == nullptr) return 0;
  return Cmp3(d.e.raw, k.e->raw);
}
int CmpAvet(const Datom& d, const Key& k) {
  if (k.a == nullptr) return 0;
  if (int c = CmpKw(d.a, *k.a)) return c;
  if (k.v == nullptr) return 0;
  return d.v.Compare(*k.v);
}
int CmpVaet(const Datom& d, const Key& k) {
  if (k.v == nullptr) return 0;
  if (int c = d.v.Compare(*k.v)) return c;
  if (k.a == nullptr) return 0;
  return CmpKw(d.a, *k.a);
}

bool LessFull(const Datom& x, const Datom& y, int order) {
  int c = 0;
  auto step = [&](int r) {
    if (c == 0) c = r;
  };
  switch (order) {
    case 0:
      step(Cmp3(x.e.raw, y.e.raw));
      step(CmpKw(x.a, y.a));
      if (c == 0) step(x.v.Compare(y.v));
      break;
    case 1:
      step(CmpKw(x.a, y.a));
      step(Cmp3(x.e.raw, y.e.raw));
      if (c == 0) step(x.v.Compare(y.v));
      break;
    case 2:
      step(CmpKw(x.a, y.a));
      if (c == 0) step(x.v.Compare(y.v));
      step(Cmp3(x.e.raw, y.e.raw));
      break;
    default:
      step(x.v.Compare(y.v));
      step(CmpKw(x.a, y.a));
      step(Cmp3(x.e.raw, y.e.raw));
      break;
  }
  step(Cmp3(x.tx.raw, y.tx.raw));
  step(Cmp3(x.added, y.added));
  return c < 0;
}

}  // namespace

MemoryIndex::MemoryIndex(std::shared_ptr<const Schema> schema, std::vector<Datom> datoms, bool history)
    : schema_(std::move(schema)), history_(history), datoms_(std::move(datoms)) {
  CAIRN_CHECK(datoms_.size() < (uint64_t{1} << 32));
  std::sort(datoms_.begin(), datoms_.end(), [](const Datom& x, const Datom& y) { return LessFull(x, y, 0); });
  eavt_e_.reserve(datoms_.size());
  for (const Datom& d : datoms_) eavt_e_.push_back(d.e.raw);
  for (int o = 0; o < 4; ++o) {
    auto& idx = idx_[o];
    idx.resize(datoms_.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint32_t>(i);
    std::sort(idx.begin(), idx.end(),
              [&](uint32_t x, uint32_t y) { return LessFull(datoms_[x], datoms_[y], o); });
  }
  // Statistics from AEVT (distinct e) and AVET (distinct v).
  const auto& aevt = idx_[kAevt];
  for (size_t i = 0; i < aevt.size(); ++i) {
    const Datom& d = datoms_[aevt[i]];
    auto [it, fresh] = attr_range_.try_emplace(d.a.id(), static_cast<uint32_t>(i), static_cast<uint32_t>(i));
    it->second.second = static_cast<uint32_t>(i + 1);
    AttrStats& s = stats_[d.a.id()];
    ++s.count;
    if (i == 0 || datoms_[aevt[i - 1]].a != d.a || datoms_[aevt[i - 1]].e != d.e) ++s.distinct_e;
  }
  const auto& avet = idx_[kAvet];
  for (size_t i = 0; i < avet.size(); ++i) {
    const Datom& d = datoms_[avet[i]];
    if (i == 0 || datoms_[avet[i - 1]].a != d.a || !(datoms_[avet[i - 1]].v == d.v)) ++stats_[d.a.id()].distinct_v;
  }
}

std::shared_ptr<MemoryIndex> MemoryIndex::FromLog(std::shared_ptr<const Schema> schema, const std::vector<Datom>& log,
                                                  View view, TxTime t) {
  if (view == View::kHistory) return std::make_shared<MemoryIndex>(std::move(schema), log, true);
  // Replay in tx order; the last word on each (e, a, v) decides whether it is true.
  std::vector<const Datom*> order;
  order.reserve(log.size());
  for (const Datom& d : log) {
    if (view == View::kAsOf && d.tx > t) continue;
    order.push_back(&d);
  }
  std::stable_sort(order.begin(), order.end(), [](const Datom* x, const Datom* y) { return x->tx < y->tx; });
  struct K {
    uint64_t e;
    uint32_t a;
    const Value* v;
    bool operator<(const K& o) const {
      if (e != o.e) return e < o.e;
      if (a != o.a) return a < o.a;
      return *v < *o.v;
    }
  };
  std::map<K, const Datom*> state;
  for (const Datom* d : order) {
    K k{d->e.raw, d->a.id(), &d->v};
    if (d->added) {
      state.emplace(k, d);  // keep the first assertion's tx while it stays true
    } else {
      state.erase(k);
    }
  }
  std::vector<Datom> out;
  out.reserve(state.size());
  for (const auto& [k, d] : state) {
    if (view == View::kSince && d->tx <= t) continue;
    out.push_back(*d);
  }
  return std::make_shared<MemoryIndex>(std::move(schema), std::move(out), false);
}

void MemoryIndex::Range(const DatomPattern& p, Order* order, size_t* begin, size_t* end, unsigned* checks) const {
  Key k;
  unsigned all = (p.e ? 1u : 0u) | (p.a ? 2u : 0u) | (p.v ? 4u : 0u) | (p.tx ? 8u : 0u) | (p.added ? 16u : 0u);
  *checks = all;
  int (*cmp)(const Datom&, const Key&);
  if (p.e) {
    *order = kEavt;
    cmp = CmpEavt;
    k.e = &*p.e;
    if (p.a) {
      k.a = &*p.a;
      if (p.v) k.v = &*p.v;
    }
  } else if (p.a && p.v) {
    *order = kAvet;
    cmp = CmpAvet;
    k.a = &*p.a;
    k.v = &*p.v;
  } else if (p.v) {
    *order = kVaet;
    cmp = CmpVaet;
    k.v = &*p.v;
  } else if (p.a) {
    *order = kAevt;
    cmp = CmpAevt;
    k.a = &*p.a;
  } else {
    *order = kEavt;
    *begin = 0;
    *end = datoms_.size();
    return;
  }
  const auto& idx = idx_[*order];
  auto first = idx.begin(), last = idx.end();
  if (*order == kEavt) {
    // Narrow to the entity on the contiguous key array, then by a and v.
    auto r = std::equal_range(eavt_e_.begin(), eavt_e_.end(), k.e->raw);
    first = idx.begin() + (r.first - eavt_e_.begin());
    last = idx.begin() + (r.second - eavt_e_.begin());
    *checks &= ~1u;
    // An entity has few datoms: filtering them beats a second binary search.
    if (k.a == nullptr || first == last || last - first <= 32) {
      *begin = static_cast<size_t>(first - idx.begin());
      *end = static_cast<size_t>(last - idx.begin());
      return;
    }
  } else if (*order == kAevt || *order == kAvet) {
    auto it = attr_range_.find(k.a->id());
    if (it == attr_range_.end()) {
      *begin = *end = 0;
      return;
    }
    first = idx.begin() + it->second.first;
    last = idx.begin() + it->second.second;
    *checks &= ~2u;
    if (k.v == nullptr && k.e == nullptr) {
      *begin = it->second.first;
      *end = it->second.second;
      return;
    }
    if (*order == kAvet) {
      // Inside one attribute's range only the value decides.
      const Value& v = *k.v;
      auto lo = std::partition_point(first, last, [&](uint32_t i) { return datoms_[i].v.Compare(v) < 0; });
      auto hi = std::partition_point(lo, last, [&](uint32_t i) { return datoms_[i].v.Compare(v) <= 0; });
      *begin = static_cast<size_t>(lo - idx.begin());
      *end = static_cast<size_t>(hi - idx.begin());
      *checks &= ~4u;
      return;
    }
  }
  auto lo = std::partition_point(first, last, [&](uint32_t i) { return cmp(datoms_[i], k) < 0; });
  auto hi = std::partition_point(lo, last, [&](uint32_t i) { return cmp(datoms_[i], k) <= 0; });
  // Every key component used in the search is guaranteed by the range.
  if (k.e != nullptr) *checks &= ~1u;
  if (k.a != nullptr) *checks &= ~2u;
  if (k.v != nullptr) *checks &= ~4u;
  *begin = static_cast<size_t>(lo - idx.begin());
  *end = static_cast<size_t>(hi - idx.begin());
}

bool MemoryIndex::Matches(const Datom& d, const DatomPattern& p, unsigned checks) {
  if ((checks & 1u) && d.e != *p.e) return false;
  if ((checks & 2u) && d.a != *p.a) return false;
  if ((checks & 4u) && !(d.v == *p.v)) return false;
  if ((checks & 8u) && d.tx != *p.tx) return false;
  if ((checks & 16u) && d.added != *p.added) return false;
  return true;
}

Status MemoryIndex::Scan(const DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  ForEach(p, fn);
  return Status::OK();
}

uint64_t MemoryIndex::EstimateCount(const DatomPattern& p) const {
  Order order;
  size_t begin, end;
  unsigned checks;
  Range(p, &order, &begin, &end, &checks);
  return end - begin;
}

bool MemoryIndex::RangeRuns(const DatomPattern& p, const ValueRange& r, std::vector<Run>* runs) const {
  if (!p.a || p.e || p.v) return false;
  auto it = attr_range_.find(p.a->id());
  if (it == attr_range_.end()) return true;  // no datoms: no runs
  const std::vector<uint32_t>& idx = idx_[kAvet];
  auto below = [&](uint32_t i) {  // before the range's low end
    if (!r.lo) return false;
    ValueRange lo_only;
    lo_only.lo = r.lo;
    lo_only.lo_inclusive = r.lo_inclusive;
    return !lo_only.Contains(datoms_[i].v);
  };
  auto inside_hi = [&](uint32_t i) {
    if (!r.hi) return true;
    ValueRange hi_only;
    hi_only.hi = r.hi;
    hi_only.hi_inclusive = r.hi_inclusive;
    return hi_only.Contains(datoms_[i].v);
  };
  auto first = idx.begin() + it->second.first, last = idx.begin() + it->second.second;
  // AVET orders values by type, then value. Within one type the engine's
  // comparison with a bound is monotone, except for doubles (NaN) and refs
  // (compared as signed ids): those runs are filtered value by value.
  while (first != last) {
    ValueType t = datoms_[*first].v.type();
    auto run_end = std::partition_point(first, last, [&](uint32_t i) { return datoms_[i].v.type() <= t; });
    if (t == ValueType::kDouble || t == ValueType::kRef) {
      runs->push_back({static_cast<size_t>(first - idx.begin()), static_cast<size_t>(run_end - idx.begin()), true});
    } else {
      auto lo = std::partition_point(first, run_end, below);
      auto hi = std::partition_point(lo, run_end, inside_hi);
      if (lo != hi)
        runs->push_back({static_cast<size_t>(lo - idx.begin()), static_cast<size_t>(hi - idx.begin()), false});
    }
    first = run_end;
  }
  return true;
}

Status MemoryIndex::ScanRange(const DatomPattern& p, const ValueRange& r,
                              const std::function<bool(const Datom&)>& fn) const {
  ForEachRange(p, r, fn);
  return Status::OK();
}

uint64_t MemoryIndex::EstimateRange(const DatomPattern& p, const ValueRange& r) const {
  std::vector<Run> runs;
  if (!RangeRuns(p, r, &runs)) return IndexSource::EstimateRange(p, r);
  uint64_t n = 0;
  for (const Run& run : runs) n += run.end - run.begin;
  return n;
}

uint64_t MemoryIndex::EstimateDistinct(Keyword a, int position) const {
  auto it = stats_.find(a.id());
  if (it == stats_.end()) return 0;
  return position == 0 ? it->second.distinct_e : it->second.distinct_v;
}

}  // namespace cairn::datalog
