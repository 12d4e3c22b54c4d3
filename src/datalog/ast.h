// The parsed form of a Datalog query and its rules (the parser's output, the
// planner's and evaluators' input). Variables are interned to dense VarIds so
// relations address columns by number; every clause keeps its EDN text and
// position so errors can name it.
//
// Thread-safety: plain data; immutable after parsing.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/query.h"
#include "cairn/value.h"
#include "core/edn.h"

namespace cairn::datalog {

using VarId = int32_t;
constexpr VarId kNoVar = -1;

// One position of a data pattern, a function argument or a rule argument.
struct Term {
  enum class Kind : uint8_t { kBlank, kVar, kConst, kSource };
  Kind kind = Kind::kBlank;
  VarId var = kNoVar;  // kVar
  Value value;         // kConst
  std::string source;  // kSource: "$", "$1", "$db"

  bool is_var() const { return kind == Kind::kVar; }
  bool is_const() const { return kind == Kind::kConst; }
  bool is_blank() const { return kind == Kind::kBlank; }
};

// The binding form of a function expression or an :in element.
struct Binding {
  enum class Kind : uint8_t { kNone, kScalar, kTuple, kCollection, kRelation };
  Kind kind = Kind::kNone;
  std::vector<VarId> vars;  // kNoVar for `_`
};

struct Clause {
  enum class Kind : uint8_t {
    kPattern,    // [$src e a v tx added]
    kPredicate,  // [(pred args...)]
    kFunction,   // [(fn args...) binding]
    kNot,        // (not clauses...)
    kNotJoin,    // (not-join [vars] clauses...)
    kOr,         // (or clauses...)
    kOrJoin,     // (or-join [vars] clauses...)
    kAnd,        // (and clauses...) — only inside or
    kRule,       // (rule-name args...)
  };
  Kind kind = Kind::kPattern;
  std::string source = "$";
  std::vector<Term> terms;  // pattern positions, function args, rule args
  std::string name;         // function or rule name
  Binding binding;          // kFunction
  std::vector<VarId> join_vars;      // not-join, or-join (all declared vars)
  std::vector<VarId> required_vars;  // or-join [[?a] ?b]: the bracketed ones
  // kNot/kNotJoin/kAnd: branches[0] is the body. kOr/kOrJoin: one per branch.
  std::vector<std::vector<Clause>> branches;
  std::string text;  // EDN of the clause, for messages
  int line = 0;
  int column = 0;

  // "[?e :name ?n] at 3:10"
  std::string Describe() const;
};

struct RuleDef {
  std::string name;
  std::vector<VarId> head;
  size_t required_count = 0;  // leading head vars given as [?a ?b]
  std::vector<Clause> body;
  std::string text;
  int line = 0;
  int column = 0;
};

struct FindElem {
  enum class Kind : uint8_t { kVar, kAggregate, kPull };
  Kind kind = Kind::kVar;
  VarId var = kNoVar;  // the variable (aggregated/pulled)
  std::string fn;      // aggregate name
  std::vector<Value> const_args;  // (max 3 ?x): {3}
  std::string source = "$";       // pull source
  Edn pattern;                    // pull pattern (when constant)
  VarId pattern_var = kNoVar;     // pull pattern bound from :in
  std::string text;               // column name: "?x", "(count ?x)"
};

struct InElem {
  enum class Kind : uint8_t { kSource, kRules, kBinding };
  Kind kind = Kind::kBinding;
  std::string source;  // kSource
  Binding binding;     // kBinding
};

struct OrderKey {
  VarId var = kNoVar;
  int find_index = -1;  // column in the result
  bool descending = false;
};

struct Query {
  std::vector<std::string> var_names;  // VarId -> "?x"
  QueryResult::Shape shape = QueryResult::Shape::kRelation;
  std::vector<FindElem> find;
  QueryResult::KeyKind key_kind = QueryResult::KeyKind::kNone;
  std::vector<std::string> keys;
  std::vector<VarId> with;
  std::vector<InElem> in;  // defaults to [$]
  std::vector<Clause> where;
  std::optional<int64_t> limit;
  std::optional<int64_t> offset;
  std::optional<int64_t> timeout_ms;
  std::vector<OrderKey> order_by;
  bool has_aggregates = false;

  const std::string& VarName(VarId v) const { return var_names[static_cast<size_t>(v)]; }
};

// Rules are parsed into the same variable space as the query they run with.
struct RuleSet {
  std::map<std::string, std::vector<RuleDef>> rules;
};

}  // namespace cairn::datalog
