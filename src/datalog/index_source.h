// IndexSource: the only way the Datalog engine reads datoms (STYLE 3).
//
// A shard, the embedded store, the in-memory index and tests implement it. An
// IndexSource is a *database value*: a fixed view (current, as-of T, since T,
// or history) that never changes while a query runs.
//
// Views:
//  - current / as_of / since: only datoms that are true in the view
//    (added == true), each once, with the tx at which it was asserted.
//  - history: every assertion and retraction (added true or false).
//
// Thread-safety: implementations must allow concurrent const calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "core/schema.h"

namespace cairn::datalog {

// Bound components of a data pattern; nullopt = unbound.
struct DatomPattern {
  std::optional<EntityId> e;
  std::optional<Keyword> a;
  std::optional<Value> v;
  std::optional<TxTime> tx;
  std::optional<bool> added;
};

// A range of values in the engine's comparison order (CompareValues: numbers
// compare across long/double/ref, other values by type then value), as a
// [(< ?v hi)] / [(> ?v lo)] predicate sees them. Unset ends are open.
struct ValueRange {
  std::optional<Value> lo, hi;
  bool lo_inclusive = true;
  bool hi_inclusive = true;

  // Whether `v` (a datom's value; refs compare as their entity id) is inside.
  bool Contains(const Value& v) const;
  // Narrows this range by `v op bound`, e.g. Tighten(">", 5) for (> ?v 5);
  // `op` is one of < <= > >=. Returns false (and changes nothing) if `bound`
  // cannot be combined with the bounds already set: comparisons across
  // types are not transitive, so all bounds must be numbers or all of one
  // type.
  bool Tighten(std::string_view op, const Value& bound);
};

class IndexSource {
 public:
  virtual ~IndexSource() = default;

  virtual const Schema& schema() const = 0;
  virtual bool is_history() const = 0;

  // Calls `fn` for each datom in the view matching `p` until it returns false.
  // Order: EAVT when e is bound, AVET when a and v are bound (and the
  // attribute is indexed or unique), VAET for a bound ref value, else AEVT.
  // Errors: IOError/Corruption from storage; Cancelled if cancelled.
  virtual Status Scan(const DatomPattern& p, const std::function<bool(const Datom&)>& fn) const = 0;

  // An estimate of how many datoms Scan(p) would yield, cheap to compute
  // (used by the planner). Need not be exact; must be 0 only if none match.
  virtual uint64_t EstimateCount(const DatomPattern& p) const = 0;

  // Like Scan(p) but only the datoms whose value is inside `r`: exactly those
  // (callers drop the predicates `r` came from). Used with p.a bound and p.v
  // unbound. The default scans and filters; sources with a value order
  // should walk only the range. Order: as Scan, or AVET for the range.
  virtual Status ScanRange(const DatomPattern& p, const ValueRange& r,
                           const std::function<bool(const Datom&)>& fn) const {
    return Scan(p, [&](const Datom& d) { return !r.Contains(d.v) || fn(d); });
  }

  // An estimate of how many datoms ScanRange(p, r) yields; 0 only if none
  // match. The default guesses a third of EstimateCount(p).
  virtual uint64_t EstimateRange(const DatomPattern& p, const ValueRange& r) const {
    (void)r;
    uint64_t n = EstimateCount(p);
    return n == 0 ? 0 : std::max<uint64_t>(1, n / 3);
  }

  // Statistics for the planner: the number of distinct entities (position 0)
  // or distinct values (position 2) among the datoms of attribute `a`; 0 if
  // unknown (the planner then guesses).
  virtual uint64_t EstimateDistinct(Keyword a, int position) const { return 0; }

  // Resolves a lookup ref [attr value] on a unique attribute; nullopt if no
  // entity has it. The default scans.
  virtual std::optional<EntityId> Lookup(Keyword attr, const Value& v) const {
    std::optional<EntityId> found;
    DatomPattern p;
    p.a = attr;
    p.v = v;
    p.added = true;
    (void)Scan(p, [&](const Datom& d) {
      found = d.e;
      return false;
    });
    return found;
  }
};

}  // namespace cairn::datalog
