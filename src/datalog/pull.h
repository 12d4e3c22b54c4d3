// Pull: the entity-shaped read of Datomic's pull API over an IndexSource.
//
// Pattern grammar (EDN):
//   [spec ...]   spec = :attr | :ns/_attr (reverse) | * | :db/id
//                     | [:attr :limit n :default v :as name]
//                     | (limit :attr n) | (default :attr v)
//                     | {spec pattern} | {spec ...} | {spec depth}
// Result: a Value map from attribute keywords (or :as names) to values;
// cardinality-many attributes give a vector (at most 1000 unless :limit,
// `:limit nil` for all); refs give {:db/id n} unless a sub-pattern is given;
// component refs are pulled whole by `*`. An entity with nothing to show
// gives nil. Recursion stops at the given depth or on a cycle.
//
// Thread-safety: stateless functions over a const source.
#pragma once

#include "cairn/status.h"
#include "cairn/value.h"
#include "core/edn.h"
#include "datalog/index_source.h"

namespace cairn::datalog {

Result<Value> Pull(const IndexSource& src, const Edn& pattern, EntityId e);

}  // namespace cairn::datalog
