// The Datalog engine: parse -> analyze -> plan -> evaluate (docs/query.md).
//
//   auto r = datalog::RunQuery("[:find ?n :where [_ :name ?n]]", {Input::Db(&index)});
//
// Inputs bind the query's :in elements positionally ($ sources, % rules,
// scalars/tuples/collections/relations). A query without :in takes [$].
//
// Planning: clauses run in an order chosen from IndexSource statistics, not
// the written order: filters (predicates, functions, not) as soon as their
// variables are bound, then the data pattern / rule / or with the fewest
// estimated rows given what is already bound. A pattern sharing variables
// with the rows so far is either probed per row (index nested loop, bound
// values pushed into the scan: EAVT for a bound entity, AVET for a bound
// value) or scanned once and hash-joined, whichever the estimates favour.
// Rules are evaluated bottom-up, semi-naively, one strongly connected
// component at a time (negation must be stratified).
//
// The reference evaluator (QueryOptions::reference) runs the same language
// with no planner: clauses in written order (a clause whose inputs are not
// yet bound waits for the first point where they are), every pattern as a
// nested loop per row, rules by naive iteration. Differential tests check the
// two agree.
//
// Cancellation: the engine has no clock. `cancelled` is polled every few
// thousand steps; when it returns true the query fails with Timeout. A
// `step_budget` bounds the work deterministically.
//
// Thread-safety: RunQuery is reentrant; sources must allow concurrent reads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/query.h"
#include "cairn/status.h"
#include "core/edn.h"
#include "datalog/ast.h"
#include "datalog/functions.h"
#include "datalog/index_source.h"

namespace cairn::datalog {

struct Input {
  const IndexSource* db = nullptr;  // for a $ source bound to a database
  Edn edn;                          // anything else (collections as sources too)
  static Input Db(const IndexSource* s) {
    Input i;
    i.db = s;
    return i;
  }
  static Input Data(Edn e) {
    Input i;
    i.edn = std::move(e);
    return i;
  }
};

struct QueryOptions {
  const FunctionRegistry* registry = nullptr;  // nullptr: the built-ins
  std::function<bool()> cancelled;             // polled; true -> Timeout
  uint64_t step_budget = 0;                    // 0 = unlimited; exceeded -> Timeout
  bool reference = false;                      // the reference evaluator
};

// One step of the executed plan.
struct PlanStep {
  int depth = 0;          // nesting (inside or/not/rules)
  std::string clause;     // the clause text and position
  std::string strategy;   // "scan AVET", "probe EAVT per row", "hash join", "filter", ...
  uint64_t estimated_rows = 0;
  uint64_t actual_rows = 0;
};
struct Explain {
  std::vector<PlanStep> steps;
  std::string ToString() const;
};

Result<QueryResult> RunQuery(std::string_view query, const std::vector<Input>& inputs,
                             const QueryOptions& options = {}, Explain* explain = nullptr);
Result<QueryResult> RunQuery(const Edn& query, const std::vector<Input>& inputs, const QueryOptions& options = {},
                             Explain* explain = nullptr);

// The inputs for an API call q(query, args...): the default database bound to
// the leading `$` of :in (if :in starts with a source or is absent), then the args.
Result<std::vector<Input>> BindApiInputs(const Edn& query, const IndexSource* db, std::vector<Edn> args);

}  // namespace cairn::datalog
