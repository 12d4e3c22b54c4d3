// Internal: what a cairn::Db value holds. Shared by database.cc (storage side)
// and query.cc (the Datalog side).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "cairn/database.h"
#include "datalog/index_source.h"

namespace cairn::internal {

struct DbImpl {
  // The view this Db reads (current, as-of, since or history).
  std::shared_ptr<const datalog::IndexSource> source;
  // Builds a sibling view of the same database (for as_of/since/history).
  // kind: 0 current, 1 as_of(t), 2 since(t), 3 history.
  std::function<std::shared_ptr<const datalog::IndexSource>(int kind, TxTime t)> make_view;
  // The datoms asserted and retracted with t1 < t <= t2, in t order (diff).
  // Empty for a database that cannot compute it.
  std::function<Result<std::vector<Datom>>(TxTime t1, TxTime t2)> diff;
};

}  // namespace cairn::internal
