// FunctionRegistry: the functions and predicates callable in :where
// ([(f ?a ?b) ?out], [(pred ?a)]) and the aggregates callable in :find
// ((count ?x), (max 3 ?x)). The built-ins follow DataScript; applications add
// their own from C++:
//
//   FunctionRegistry reg;   // starts with the built-ins
//   reg.RegisterFunction("my/double", {[](const FnArgs& a, Value* out) {
//       *out = Value::Long(a.v[0].as_long() * 2); return Status::OK(); }, 1, 1});
//   RunQuery(..., options with .registry = &reg);
//
// Functions are pure: the same arguments give the same result (rand/sample
// draw from a generator seeded by the data, not from the clock). A function
// signals a bad argument by returning InvalidArgument; the evaluator adds the
// clause to the message.
//
// Thread-safety: a registry is immutable while queries use it; lookups are
// const and safe to run concurrently.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn::datalog {

class IndexSource;
struct RegexCache;

struct FnArgs {
  const Value* v = nullptr;  // the arguments (sources excluded)
  size_t n = 0;
  const IndexSource* source = nullptr;  // the `$` argument, when the function takes one
  RegexCache* regex_cache = nullptr;    // per-query cache of compiled patterns
};

using FunctionImpl = std::function<Status(const FnArgs& args, Value* out)>;

struct FunctionDef {
  FunctionImpl fn;
  int min_args = 0;
  int max_args = -1;  // -1: variadic
  bool takes_source = false;  // first argument is a database ($)
};

// `params` are the constant arguments before the variable ((max 3 ?x): {3});
// `values` is the bag of the variable's values in one group (may be reordered).
using AggregateImpl = std::function<Status(const std::vector<Value>& params, std::vector<Value>& values, Value* out)>;

struct AggregateDef {
  AggregateImpl fn;
  size_t params = 0;  // number of constant arguments required
};

class FunctionRegistry {
 public:
  FunctionRegistry();  // with every built-in
  static const FunctionRegistry& Default();

  void RegisterFunction(const std::string& name, FunctionDef def) { fns_[name] = std::move(def); }
  void RegisterAggregate(const std::string& name, AggregateDef def) { aggs_[name] = std::move(def); }
  const FunctionDef* FindFunction(const std::string& name) const;
  const AggregateDef* FindAggregate(const std::string& name) const;

 private:
  std::map<std::string, FunctionDef> fns_;
  std::map<std::string, AggregateDef> aggs_;
};

// Truthiness as in Clojure: everything but nil and false.
inline bool Truthy(const Value& v) {
  return !(v.is_nil() || (v.type() == ValueType::kBool && !v.as_bool()));
}

// The comparison of <, >, <=, >=: numbers numerically across long/double,
// everything else by Value's total order.
int CompareValues(const Value& a, const Value& b);

// Creates/destroys the opaque regex cache (owned by the caller).
std::unique_ptr<RegexCache, void (*)(RegexCache*)> MakeRegexCache();

}  // namespace cairn::datalog
