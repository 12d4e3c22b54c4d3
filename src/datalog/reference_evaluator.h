// ReferenceEvaluator: a deliberately simple second implementation of the
// query language, written to be obviously right rather than fast, and sharing
// nothing with the planner but the parser, the built-in functions and pull.
//
//  - bindings are one environment (VarId -> optional Value) per solution;
//  - clauses run in written order; a clause whose inputs are not yet bound
//    waits for the first point at which they are;
//  - every data pattern is a full scan of the source, unified in C++ with
//    each environment (no index choice, no pushed-down values);
//  - rules are computed by naive iteration to a fixpoint (a rule that reads
//    another rule still being computed is recomputed, not cached).
//
// It supports everything the differential test generates and most of the
// language (patterns, predicates, functions, not/not-join/or/or-join/and,
// rules, :in bindings, :with, aggregates, pull in :find). :order-by, :limit
// and :offset fail with "reference evaluator does not support ...".
//
// Thread-safety: stateless function.
#pragma once

#include <vector>

#include "cairn/query.h"
#include "cairn/status.h"
#include "core/edn.h"
#include "datalog/engine.h"

namespace cairn::datalog {

Result<QueryResult> RunReferenceQuery(const Edn& query, const std::vector<Input>& inputs,
                                      const FunctionRegistry* registry = nullptr, uint64_t step_budget = 0);

}  // namespace cairn::datalog
