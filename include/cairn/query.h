// QueryResult: the typed relation a Datalog query returns.
#pragma once

#include <string>
#include <vector>

#include "cairn/value.h"

namespace cairn {

struct QueryResult {
  // The :find spec's shape: [:find ?a ?b] relation, [:find [?a ...]]
  // collection, [:find [?a ?b]] tuple, [:find ?a .] scalar.
  enum class Shape { kRelation, kCollection, kTuple, kScalar };
  Shape shape = Shape::kRelation;
  // One name per column: "?a", or the :keys/:strs/:syms names.
  std::vector<std::string> columns;
  // :keys/:strs/:syms turn each row into a map keyed by the column names
  // (as keywords, strings or symbols) when printed.
  enum class KeyKind { kNone, kKeys, kStrs, kSyms };
  KeyKind key_kind = KeyKind::kNone;
  // Relation: one row per result (set semantics unless :with). Collection:
  // one single-column row per element. Tuple/scalar: zero or one row.
  // Pull cells are Value maps.
  std::vector<std::vector<Value>> rows;

  // EDN as Datomic prints it: #{[...] ...}, [...], [a b], a, or nil; with
  // :keys, a list of maps.
  std::string ToEdn() const;
};

}  // namespace cairn
