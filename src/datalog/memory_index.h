// MemoryIndex: a pure, in-memory IndexSource over a fixed set of datoms.
//
// The datoms are stored once; four permutation arrays of 32-bit positions
// sort them in EAVT, AEVT, AVET and VAET order (AVET and VAET are kept for
// every attribute: memory is cheap here and it makes every bound-value probe
// a binary search). Per-attribute statistics (datoms, distinct entities,
// distinct values) feed the planner.
//
// FromLog() builds a view (current, as-of T, since T, history) from a log of
// every assertion and retraction, which is how the test loader, the
// benchmarks and (later) a store's memory cache use it.
//
// Memory: sizeof(Datom) (~64 bytes) plus 16 bytes of permutations per datom,
// plus any heap payload of string values.
//
// Thread-safety: immutable after construction; all const methods may run
// concurrently.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "datalog/index_source.h"

namespace cairn::datalog {

class MemoryIndex : public IndexSource {
 public:
  enum class View { kCurrent, kAsOf, kSince, kHistory };

  // `datoms` are the datoms of the view: for a non-history view each true
  // datom once (added == true); for history every assertion and retraction.
  MemoryIndex(std::shared_ptr<const Schema> schema, std::vector<Datom> datoms, bool history);

  // Builds a view from `log` (every datom ever written, in any order).
  // kAsOf keeps transactions with tx <= t, kSince those with tx > t (applied
  // over the state at t, as Datomic's since), kCurrent all of them.
  static std::shared_ptr<MemoryIndex> FromLog(std::shared_ptr<const Schema> schema, const std::vector<Datom>& log,
                                              View view, TxTime t = TxTime{});

  const Schema& schema() const override { return *schema_; }
  bool is_history() const override { return history_; }
  Status Scan(const DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  uint64_t EstimateCount(const DatomPattern& p) const override;
  uint64_t EstimateDistinct(Keyword a, int position) const override;
  // With the attribute bound (and e, v not): binary searches the value range
  // in the attribute's AVET, one run of each value type at a time.
  Status ScanRange(const DatomPattern& p, const ValueRange& r,
                   const std::function<bool(const Datom&)>& fn) const override;
  uint64_t EstimateRange(const DatomPattern& p, const ValueRange& r) const override;

  size_t size() const { return datoms_.size(); }
  const std::vector<Datom>& datoms() const { return datoms_; }

  // Calls fn(const Datom&) for each datom matching `p`; returns false if fn
  // stopped early. Faster than Scan (no std::function).
  template <typename Fn>
  bool ForEach(const DatomPattern& p, Fn&& fn) const;
  // ForEach restricted to values inside `r` (see ScanRange).
  template <typename Fn>
  bool ForEachRange(const DatomPattern& p, const ValueRange& r, Fn&& fn) const;

 private:
  // A stretch of AVET positions; `filter`: check each value against the range.
  struct Run {
    size_t begin, end;
    bool filter;
  };
  // The AVET runs holding the values of `p` (attribute bound, e and v not)
  // inside `r`; false if the pattern does not have that shape.
  bool RangeRuns(const DatomPattern& p, const ValueRange& r, std::vector<Run>* runs) const;
  struct AttrStats {
    uint64_t count = 0;
    uint64_t distinct_e = 0;
    uint64_t distinct_v = 0;
  };
  enum Order { kEavt, kAevt, kAvet, kVaet };
  // The index and [begin, end) range of positions best serving `p`.
  // `checks` gets the components the range does not already guarantee
  // (bits: 1 e, 2 a, 4 v, 8 tx, 16 added).
  void Range(const DatomPattern& p, Order* order, size_t* begin, size_t* end, unsigned* checks) const;
  static bool Matches(const Datom& d, const DatomPattern& p, unsigned checks);

  std::shared_ptr<const Schema> schema_;
  bool history_;
  std::vector<Datom> datoms_;  // physically in EAVT order
  std::vector<uint32_t> idx_[4];
  // Contiguous copies of sort keys so the hot binary searches do not chase
  // pointers: the entity of each EAVT position, and each attribute's
  // [begin, end) in AEVT/AVET (both sort by attribute first).
  std::vector<uint64_t> eavt_e_;
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> attr_range_;
  std::unordered_map<uint32_t, AttrStats> stats_;  // by Keyword::id()
};

template <typename Fn>
bool MemoryIndex::ForEach(const DatomPattern& p, Fn&& fn) const {
  Order order;
  size_t begin, end;
  unsigned checks;
  Range(p, &order, &begin, &end, &checks);
  const std::vector<uint32_t>& idx = idx_[order];
  if (order == kEavt) {  // physically in EAVT order: no indirection
    for (size_t i = begin; i < end; ++i) {
      const Datom& d = datoms_[i];
      if (checks != 0 && !Matches(d, p, checks)) continue;
      if (!fn(d)) return false;
    }
    return true;
  }
  for (size_t i = begin; i < end; ++i) {
    const Datom& d = datoms_[idx[i]];
    if (checks != 0 && !Matches(d, p, checks)) continue;
    if (!fn(d)) return false;
  }
  return true;
}

template <typename Fn>
bool MemoryIndex::ForEachRange(const DatomPattern& p, const ValueRange& r, Fn&& fn) const {
  std::vector<Run> runs;
  if (!RangeRuns(p, r, &runs)) return ForEach(p, [&](const Datom& d) { return !r.Contains(d.v) || fn(d); });
  unsigned checks = (p.tx ? 8u : 0u) | (p.added ? 16u : 0u);
  const std::vector<uint32_t>& idx = idx_[kAvet];
  for (const Run& run : runs) {
    for (size_t i = run.begin; i < run.end; ++i) {
      const Datom& d = datoms_[idx[i]];
      if (checks != 0 && !Matches(d, p, checks)) continue;
      if (run.filter && !r.Contains(d.v)) continue;
      if (!fn(d)) return false;
    }
  }
  return true;
}

}  // namespace cairn::datalog
