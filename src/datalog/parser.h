// Parser: EDN text -> Query / RuleSet (ast.h).
//
// Accepts the vector form [:find ... :in ... :where ...] and the map form
// {:find [...] :where [...]}, plus the options :with, :keys/:strs/:syms,
// :limit, :offset, :order-by [?x :desc ?y] and :timeout (ms). Only syntax is
// checked here; variable safety and stratification are the analyzer's job.
// Every error is InvalidArgument naming the clause and its line:column.
//
// Thread-safety: stateless functions.
#pragma once

#include <string_view>

#include "cairn/status.h"
#include "core/edn.h"
#include "datalog/ast.h"

namespace cairn::datalog {

Result<Query> ParseQuery(std::string_view text);
Result<Query> ParseQuery(const Edn& edn);

// Parses a rules vector [[(name ?a ?b) clause...] ...] into `query`'s
// variable space (each rule definition gets fresh variables).
Result<RuleSet> ParseRules(const Edn& edn, Query& query);

// EDN constant -> Value, more lenient than EdnToValue: lists and sets become
// tuples (sets sorted), symbols are rejected with their position.
Result<Value> ConstantToValue(const Edn& edn);

}  // namespace cairn::datalog
