#include "datalog/engine.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "core/check.h"
#include "datalog/memory_index.h"
#include "datalog/parser.h"
#include "datalog/pull.h"
#include "datalog/relation.h"

namespace cairn::datalog {

std::string Explain::ToString() const {
  std::string out;
  for (const PlanStep& s : steps) {
    out += std::string(static_cast<size_t>(s.depth) * 2, ' ');
    out += s.clause + "  [" + s.strategy + "] est=" + std::to_string(s.estimated_rows) +
           " actual=" + std::to_string(s.actual_rows) + "\n";
  }
  return out;
}

namespace {

using VT = ValueType;

struct Source {
  const IndexSource* db = nullptr;
  const MemoryIndex* mem = nullptr;
  std::vector<std::vector<Value>> tuples;  // a collection used as a source
};

bool IsIntLike(const Value& v) { return v.type() == VT::kLong || v.type() == VT::kRef; }

// Equality used when matching constants: entity ids may be given as longs.
bool LooseEq(const Value& a, const Value& b) {
  if (a.type() != b.type() && IsIntLike(a) && IsIntLike(b)) {
    uint64_t x = a.type() == VT::kRef ? a.as_ref().raw : static_cast<uint64_t>(a.as_long());
    uint64_t y = b.type() == VT::kRef ? b.as_ref().raw : static_cast<uint64_t>(b.as_long());
    return x == y;
  }
  return a == b;
}

void AddUnique(std::vector<VarId>* vs, VarId v) {
  if (v != kNoVar && std::find(vs->begin(), vs->end(), v) == vs->end()) vs->push_back(v);
}

// Variables a clause mentions that are visible to the enclosing conjunction.
void ClauseVars(const Clause& c, std::vector<VarId>* out) {
  switch (c.kind) {
    case Clause::Kind::kPattern:
    case Clause::Kind::kRule:
    case Clause::Kind::kPredicate:
      for (const Term& t : c.terms)
        if (t.is_var()) AddUnique(out, t.var);
      break;
    case Clause::Kind::kFunction:
      for (const Term& t : c.terms)
        if (t.is_var()) AddUnique(out, t.var);
      for (VarId v : c.binding.vars) AddUnique(out, v);
      break;
    case Clause::Kind::kNotJoin:
    case Clause::Kind::kOrJoin:
      for (VarId v : c.join_vars) AddUnique(out, v);
      break;
    case Clause::Kind::kNot:
    case Clause::Kind::kOr:
    case Clause::Kind::kAnd:
      for (const auto& b : c.branches)
        for (const Clause& x : b) ClauseVars(x, out);
      break;
  }
}

// Variables a clause can bind when it runs.
void BindableVars(const Clause& c, std::vector<VarId>* out) {
  switch (c.kind) {
    case Clause::Kind::kPattern:
    case Clause::Kind::kRule:
      for (const Term& t : c.terms)
        if (t.is_var()) AddUnique(out, t.var);
      break;
    case Clause::Kind::kFunction:
      for (VarId v : c.binding.vars) AddUnique(out, v);
      break;
    case Clause::Kind::kOr:
    case Clause::Kind::kAnd:
      for (const auto& b : c.branches)
        for (const Clause& x : b) BindableVars(x, out);
      break;
    case Clause::Kind::kOrJoin:
      for (VarId v : c.join_vars) AddUnique(out, v);
      break;
    default:
      break;
  }
}

// Inside the engine (and in results) entity ids are longs, as in Datomic, so
// ids from datoms, inputs and functions join with one another.
Value IdValue(EntityId e) { return Value::Long(static_cast<int64_t>(e.raw)); }
Value ToEngine(const Value& v) { return v.type() == VT::kRef ? IdValue(v.as_ref()) : v; }

Value PosValue(const Datom& d, int pos) {
  switch (pos) {
    case 0: return IdValue(d.e);
    case 1: return Value::Kw(d.a);
    case 2: return ToEngine(d.v);
    case 3: return IdValue(EntityId::ForTx(d.tx));
    default: return Value::Bool(d.added);
  }
}

class Engine {
 public:
  Engine(Query q, const QueryOptions& options, Explain* explain)
      : q_(std::move(q)),
        options_(options),
        reg_(options.registry != nullptr ? *options.registry : FunctionRegistry::Default()),
        explain_(explain),
        regex_cache_(MakeRegexCache()) {}

  Result<QueryResult> Run(const std::vector<Input>& inputs) {
    Relation ctx = Relation::Unit();
    CAIRN_RETURN_IF_ERROR(BindInputs(inputs, &ctx));
    CAIRN_RETURN_IF_ERROR(Analyze(ctx));
    CAIRN_ASSIGN_OR_RETURN(Relation w, Solve(q_.where, std::move(ctx), 0));
    return Project(w);
  }

 private:
  // ---------------------------------------------------------------- inputs
  Status BindInputs(const std::vector<Input>& inputs, Relation* ctx) {
    if (inputs.size() != q_.in.size())
      return Status::InvalidArgument("query has " + std::to_string(q_.in.size()) + " :in elements but " +
                                     std::to_string(inputs.size()) + " inputs were given");
    for (size_t i = 0; i < inputs.size(); ++i) {
      const InElem& in = q_.in[i];
      const Input& input = inputs[i];
      std::string where = ":in element " + std::to_string(i + 1);
      if (in.kind == InElem::Kind::kSource) {
        Source s;
        if (input.db != nullptr) {
          s.db = input.db;
          s.mem = dynamic_cast<const MemoryIndex*>(input.db);
        } else {
          const Edn& e = input.edn;
          if (!e.is(Edn::Kind::kVector) && !e.is(Edn::Kind::kList) && !e.is(Edn::Kind::kSet))
            return Status::InvalidArgument(where + " (" + in.source + "): expected a database or a collection of tuples");
          for (const Edn& t : e.items) {
            CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(t));
            if (v.type() != VT::kTuple)
              return Status::InvalidArgument(t.Where() + ": source " + in.source + " must hold tuples");
            s.tuples.push_back(v.as_tuple());
          }
        }
        sources_[in.source] = std::move(s);
        continue;
      }
      if (in.kind == InElem::Kind::kRules) {
        if (input.db != nullptr) return Status::InvalidArgument(where + " (%): expected rules");
        CAIRN_ASSIGN_OR_RETURN(RuleSet rs, ParseRules(input.edn, q_));
        for (auto& [name, defs] : rs.rules)
          for (auto& d : defs) rules_.rules[name].push_back(std::move(d));
        continue;
      }
      if (input.db != nullptr) return Status::InvalidArgument(where + ": expected a value, got a database");
      const Binding& b = in.binding;
      Relation r;
      for (VarId v : b.vars) r.vars.push_back(v);
      std::vector<Value> row(b.vars.size());
      auto add_tuple = [&](const Value& t, const Edn& at) -> Status {
        if (t.type() != VT::kTuple || t.as_tuple().size() < b.vars.size())
          return Status::InvalidArgument(at.Where() + ": " + where + ": expected a tuple of " +
                                         std::to_string(b.vars.size()) + " values");
        for (size_t k = 0; k < b.vars.size(); ++k) row[k] = t.as_tuple()[k];
        r.AddRow(row.data());
        return Status::OK();
      };
      CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(input.edn));
      switch (b.kind) {
        case Binding::Kind::kScalar:
          row[0] = v;
          r.AddRow(row.data());
          if (b.vars[0] != kNoVar) pattern_edns_[b.vars[0]] = input.edn;
          break;
        case Binding::Kind::kTuple:
          CAIRN_RETURN_IF_ERROR(add_tuple(v, input.edn));
          break;
        case Binding::Kind::kCollection:
          if (v.type() != VT::kTuple) return Status::InvalidArgument(input.edn.Where() + ": " + where + ": expected a collection");
          for (const Value& x : v.as_tuple()) {
            row[0] = x;
            r.AddRow(row.data());
          }
          break;
        case Binding::Kind::kRelation:
          if (v.type() != VT::kTuple) return Status::InvalidArgument(input.edn.Where() + ": " + where + ": expected a relation");
          for (const Value& t : v.as_tuple()) CAIRN_RETURN_IF_ERROR(add_tuple(t, input.edn));
          break;
        case Binding::Kind::kNone:
          break;
      }
      // Drop `_` columns.
      Relation clean;
      std::vector<VarId> keep;
      for (VarId x : r.vars)
        if (x != kNoVar) AddUnique(&keep, x);
      *ctx = Join(*ctx, ProjectDistinct(r, keep, false));
    }
    return Status::OK();
  }

  // ---------------------------------------------------------------- analysis
  Status CheckClauses(const std::vector<Clause>& clauses, std::vector<VarId>* defined) {
    for (const Clause& c : clauses) {
      switch (c.kind) {
        case Clause::Kind::kPattern: {
          auto it = sources_.find(c.source);
          if (it == sources_.end())
            return Status::InvalidArgument("unknown source " + c.source + " in " + c.Describe());
          if (it->second.db != nullptr && !c.terms.empty() && c.terms.size() > 1 && c.terms[1].is_const() &&
              c.terms[1].value.type() != VT::kKeyword)
            return Status::InvalidArgument("attribute must be a keyword in " + c.Describe());
          break;
        }
        case Clause::Kind::kPredicate:
        case Clause::Kind::kFunction: {
          const FunctionDef* f = reg_.FindFunction(c.name);
          if (f == nullptr) return Status::InvalidArgument("unknown function '" + c.name + "' in " + c.Describe());
          int n = 0;
          for (const Term& t : c.terms) {
            if (t.kind == Term::Kind::kSource) {
              if (!f->takes_source)
                return Status::InvalidArgument(c.name + " does not take a source in " + c.Describe());
              if (sources_.find(t.source) == sources_.end() || sources_[t.source].db == nullptr)
                return Status::InvalidArgument("unknown database " + t.source + " in " + c.Describe());
            } else {
              ++n;
            }
          }
          if (f->takes_source && (c.terms.empty() || c.terms[0].kind != Term::Kind::kSource))
            return Status::InvalidArgument(c.name + " takes a source ($) first in " + c.Describe());
          if (n < f->min_args || (f->max_args >= 0 && n > f->max_args))
            return Status::InvalidArgument("wrong number of arguments (" + std::to_string(n) + ") to " + c.name +
                                           " in " + c.Describe());
          break;
        }
        case Clause::Kind::kRule:
          if (rules_.rules.find(c.name) == rules_.rules.end())
            return Status::InvalidArgument("unknown rule or function '" + c.name + "' in " + c.Describe());
          if (rules_.rules[c.name][0].head.size() != c.terms.size())
            return Status::InvalidArgument("rule " + c.name + " takes " +
                                           std::to_string(rules_.rules[c.name][0].head.size()) +
                                           " arguments, called with " + std::to_string(c.terms.size()) + " in " +
                                           c.Describe());
          break;
        case Clause::Kind::kOr:
        case Clause::Kind::kOrJoin:
        case Clause::Kind::kNot:
        case Clause::Kind::kNotJoin:
        case Clause::Kind::kAnd: {
          for (const auto& b : c.branches) {
            std::vector<VarId> inner;
            CAIRN_RETURN_IF_ERROR(CheckClauses(b, &inner));
          }
          if (c.kind == Clause::Kind::kOr && c.branches.size() > 1) {
            std::vector<VarId> first;
            for (const Clause& x : c.branches[0]) ClauseVars(x, &first);
            std::sort(first.begin(), first.end());
            for (size_t i = 1; i < c.branches.size(); ++i) {
              std::vector<VarId> vs;
              for (const Clause& x : c.branches[i]) ClauseVars(x, &vs);
              std::sort(vs.begin(), vs.end());
              if (vs != first)
                return Status::InvalidArgument("all branches of 'or' must use the same variables (use or-join) in " +
                                               c.Describe());
            }
          }
          break;
        }
      }
      BindableVars(c, defined);
    }
    return Status::OK();
  }

  Status Analyze(const Relation& ctx) {
    std::vector<VarId> defined = ctx.vars;
    CAIRN_RETURN_IF_ERROR(CheckClauses(q_.where, &defined));
    for (const auto& [name, defs] : rules_.rules) {
      for (const RuleDef& d : defs) {
        std::vector<VarId> inner;
        CAIRN_RETURN_IF_ERROR(CheckClauses(d.body, &inner));
        for (VarId h : d.head)
          if (std::find(inner.begin(), inner.end(), h) == inner.end())
            return Status::InvalidArgument("rule head variable " + q_.VarName(h) + " is not bound by the body of " +
                                           d.text);
      }
    }
    auto need = [&](VarId v, const std::string& what) -> Status {
      if (std::find(defined.begin(), defined.end(), v) == defined.end())
        return Status::InvalidArgument(what + " uses " + q_.VarName(v) + ", which no :where clause or :in binds");
      return Status::OK();
    };
    for (const FindElem& f : q_.find) {
      CAIRN_RETURN_IF_ERROR(need(f.var, ":find " + f.text));
      if (f.kind == FindElem::Kind::kAggregate) {
        const AggregateDef* a = reg_.FindAggregate(f.fn);
        if (a == nullptr) return Status::InvalidArgument("unknown aggregate '" + f.fn + "' in :find " + f.text);
        if (f.const_args.size() < a->params)
          return Status::InvalidArgument("aggregate " + f.fn + " needs " + std::to_string(a->params) +
                                         " leading argument(s) in :find " + f.text);
      }
      if (f.kind == FindElem::Kind::kPull) {
        auto it = sources_.find(f.source);
        if (it == sources_.end() || it->second.db == nullptr)
          return Status::InvalidArgument("pull needs a database source " + f.source + " in :find " + f.text);
        if (f.pattern_var != kNoVar && pattern_edns_.find(f.pattern_var) == pattern_edns_.end())
          return Status::InvalidArgument("pull pattern " + q_.VarName(f.pattern_var) +
                                         " must be a scalar :in input in :find " + f.text);
      }
    }
    for (VarId v : q_.with) CAIRN_RETURN_IF_ERROR(need(v, ":with"));
    return Stratify();
  }

  // ---------------------------------------------------------------- rules: SCCs
  void RuleDeps(const std::vector<Clause>& body, bool negative, std::vector<std::pair<std::string, bool>>* out) {
    for (const Clause& c : body) {
      if (c.kind == Clause::Kind::kRule) out->push_back({c.name, negative});
      bool neg = negative || c.kind == Clause::Kind::kNot || c.kind == Clause::Kind::kNotJoin;
      for (const auto& b : c.branches) RuleDeps(b, neg, out);
    }
  }

  Status Stratify() {
    scc_of_.clear();
    sccs_.clear();
    if (rules_.rules.empty()) return Status::OK();
    std::map<std::string, std::vector<std::pair<std::string, bool>>> deps;
    for (const auto& [name, defs] : rules_.rules)
      for (const RuleDef& d : defs) RuleDeps(d.body, false, &deps[name]);
    // Tarjan's algorithm; SCCs come out dependencies-first.
    std::map<std::string, int> index, low;
    std::vector<std::string> stack;
    std::set<std::string> on_stack;
    int counter = 0;
    std::function<void(const std::string&)> visit = [&](const std::string& v) {
      index[v] = low[v] = counter++;
      stack.push_back(v);
      on_stack.insert(v);
      for (const auto& [w, neg] : deps[v]) {
        if (rules_.rules.find(w) == rules_.rules.end()) continue;
        if (index.find(w) == index.end()) {
          visit(w);
          low[v] = std::min(low[v], low[w]);
        } else if (on_stack.count(w)) {
          low[v] = std::min(low[v], index[w]);
        }
      }
      if (low[v] == index[v]) {
        std::vector<std::string> scc;
        std::string w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack.erase(w);
          scc_of_[w] = static_cast<int>(sccs_.size());
          scc.push_back(w);
        } while (w != v);
        sccs_.push_back(std::move(scc));
      }
    };
    for (const auto& [name, defs] : rules_.rules)
      if (index.find(name) == index.end()) visit(name);
    for (const auto& [name, ds] : deps)
      for (const auto& [w, neg] : ds)
        if (neg && scc_of_.count(w) && scc_of_[w] == scc_of_[name])
          return Status::InvalidArgument("negation cannot be stratified: rule " + name + " depends on rule " + w +
                                         " through not, and " + w + " depends on " + name);
    return Status::OK();
  }

  // ---------------------------------------------------------------- steps
  bool Tick(uint64_t n = 1) {
    steps_ += n;
    if (steps_ >= next_check_) {
      next_check_ = steps_ + 4096;
      if (options_.step_budget != 0 && steps_ > options_.step_budget) cancelled_ = true;
      if (options_.cancelled && options_.cancelled()) cancelled_ = true;
    }
    return !cancelled_;
  }
  Status CancelStatus() const { return Status::Timeout("query cancelled: timeout or step budget exceeded"); }

  // ---------------------------------------------------------------- relational helpers
  static Relation ProjectDistinct(const Relation& r, const std::vector<VarId>& vars, bool distinct = true) {
    Relation out;
    out.vars = vars;
    std::vector<int> cols;
    for (VarId v : vars) cols.push_back(r.Col(v));
    std::vector<Value> row(vars.size());
    if (!distinct) {
      out.data.reserve(r.rows() * vars.size());
      for (size_t i = 0; i < r.rows(); ++i) {
        const Value* src = r.Row(i);
        for (size_t k = 0; k < cols.size(); ++k) out.data.push_back(src[cols[k]]);
      }
      out.count = r.rows();
      return out;
    }
    if (r.distinct && cols.size() == r.arity() && std::find(cols.begin(), cols.end(), -1) == cols.end()) {
      // Every column of a set, reordered: still a set.
      std::vector<bool> seen(r.arity(), false);
      bool permutation = true;
      for (int c : cols) {
        permutation = permutation && !seen[static_cast<size_t>(c)];
        seen[static_cast<size_t>(c)] = true;
      }
      if (permutation) {
        out = ProjectDistinct(r, vars, false);
        out.distinct = true;
        return out;
      }
    }
    RowSet set(&out, r.rows());
    for (size_t i = 0; i < r.rows(); ++i) {
      const Value* src = r.Row(i);
      for (size_t k = 0; k < cols.size(); ++k) row[k] = src[cols[k]];
      set.Insert(row.data());
    }
    return out;
  }

  // Natural join on shared variables (a cartesian product if none).
  Relation Join(const Relation& a, const Relation& b) {
    Relation out;
    out.vars = a.vars;
    std::vector<int> a_cols, b_cols, b_extra;
    for (size_t j = 0; j < b.vars.size(); ++j) {
      int c = a.Col(b.vars[j]);
      if (c >= 0) {
        a_cols.push_back(c);
        b_cols.push_back(static_cast<int>(j));
      } else {
        out.vars.push_back(b.vars[j]);
        b_extra.push_back(static_cast<int>(j));
      }
    }
    if (a.arity() == 0 && a.rows() == 1) return b;
    if (b.arity() == 0) {
      if (b.rows() > 0) return a;
      out.vars = a.vars;
      return out;
    }
    RowIndex idx(b, b_cols);
    for (size_t i = 0; i < a.rows(); ++i) {
      const Value* ar = a.Row(i);
      size_t before = out.count;
      idx.ForEachMatch(ar, a_cols.data(), [&](size_t j) {
        const Value* br = b.Row(j);
        out.data.insert(out.data.end(), ar, ar + a.arity());
        for (int c : b_extra) out.data.push_back(br[c]);
        ++out.count;
      });
      if (!Tick(1 + out.count - before)) break;
    }
    return out;
  }

  // Rows of `a` with no match in `b` on b's variables (all of which `a` has).
  static Relation AntiJoin(const Relation& a, const Relation& b) {
    Relation out;
    out.vars = a.vars;
    if (b.empty()) return a;
    std::vector<int> a_cols, b_cols;
    for (size_t j = 0; j < b.vars.size(); ++j) {
      a_cols.push_back(a.Col(b.vars[j]));
      b_cols.push_back(static_cast<int>(j));
    }
    RowIndex idx(b, b_cols);
    for (size_t i = 0; i < a.rows(); ++i) {
      if (!idx.Contains(a.Row(i), a_cols.data())) out.AddRow(a.Row(i));
    }
    out.sorted_col = a.sorted_col;  // rows keep their order
    return out;
  }

  // ---------------------------------------------------------------- the conjunction planner
  struct Choice {
    double cost = 0;
    std::string strategy;
  };

  bool AllBound(const std::vector<VarId>& vs, const Relation& ctx) {
    for (VarId v : vs)
      if (v != kNoVar && !ctx.Has(v)) return false;
    return true;
  }

  std::vector<VarId> TermVars(const Clause& c) {
    std::vector<VarId> vs;
    for (const Term& t : c.terms)
      if (t.is_var()) AddUnique(&vs, t.var);
    return vs;
  }

  // Variables that must be bound before clause i can run; empty if always ready.
  std::vector<VarId> Needed(const std::vector<Clause>& clauses, const std::vector<bool>& done, size_t i,
                            const Relation& ctx) {
    const Clause& c = clauses[i];
    switch (c.kind) {
      case Clause::Kind::kPredicate:
      case Clause::Kind::kFunction:
        return TermVars(c);
      case Clause::Kind::kNotJoin:
        return c.join_vars;
      case Clause::Kind::kOrJoin:
        return c.required_vars;
      case Clause::Kind::kNot: {
        std::vector<VarId> body, others, out;
        for (const Clause& x : c.branches[0]) ClauseVars(x, &body);
        for (size_t j = 0; j < clauses.size(); ++j)
          if (!done[j] && j != i) BindableVars(clauses[j], &others);
        for (VarId v : body)
          if (ctx.Has(v) || std::find(others.begin(), others.end(), v) != others.end()) out.push_back(v);
        return out;
      }
      default:
        return {};
    }
  }

  bool IsFilter(const Clause& c) {
    return c.kind == Clause::Kind::kPredicate || c.kind == Clause::Kind::kFunction ||
           c.kind == Clause::Kind::kNot || c.kind == Clause::Kind::kNotJoin;
  }

  // Comparison predicates [(< ?v x)] (<, <=, >, >=; x a constant or a
  // variable with one value so far) on the value variable ?v that pattern
  // clause i binds, folded into one value range for its scan. `absorbed`
  // gets the predicates the range replaces. False if there are none.
  bool FindRange(const std::vector<Clause>& clauses, const std::vector<bool>& done, size_t i, const Relation& ctx,
                 ValueRange* range, std::vector<size_t>* absorbed) {
    const Clause& c = clauses[i];
    if (options_.reference || options_.registry != nullptr || c.kind != Clause::Kind::kPattern) return false;
    if (c.terms.size() < 3 || !c.terms[1].is_const() || c.terms[1].value.type() != VT::kKeyword ||
        !c.terms[2].is_var() || ctx.Has(c.terms[2].var))
      return false;
    VarId v = c.terms[2].var;
    for (size_t k = 0; k < c.terms.size(); ++k)
      if (k != 2 && c.terms[k].is_var() && c.terms[k].var == v) return false;
    auto it = sources_.find(c.source);
    if (it == sources_.end() || it->second.db == nullptr) return false;
    for (size_t j = 0; j < clauses.size(); ++j) {
      const Clause& f = clauses[j];
      if (done[j] || j == i || f.kind != Clause::Kind::kPredicate || f.terms.size() != 2) continue;
      if (f.name != "<" && f.name != ">" && f.name != "<=" && f.name != ">=") continue;
      const Term& x = f.terms[0];
      const Term& y = f.terms[1];
      bool left = x.is_var() && x.var == v;
      bool right = y.is_var() && y.var == v;
      if (left == right) continue;
      const Term& other = left ? y : x;
      const Value* bound = nullptr;
      if (other.is_const()) {
        bound = &other.value;
      } else if (other.is_var() && ctx.rows() == 1 && ctx.Has(other.var)) {
        bound = &ctx.Row(0)[ctx.Col(other.var)];
      }
      if (bound == nullptr) continue;
      std::string op = f.name;
      if (!left) op = op == "<" ? ">" : op == ">" ? "<" : op == "<=" ? ">=" : "<=";  // (< x ?v) is ?v > x
      if (range->Tighten(op, *bound)) absorbed->push_back(j);
    }
    return !absorbed->empty();
  }

  // Estimated rows after joining clause c into ctx (scanning only `range`).
  double Estimate(const Clause& c, const Relation& ctx, const ValueRange* range = nullptr) {
    double n = static_cast<double>(std::max<size_t>(ctx.rows(), 1));
    std::vector<VarId> vs;
    ClauseVars(c, &vs);
    bool connected = false;
    for (VarId v : vs) connected = connected || ctx.Has(v);
    switch (c.kind) {
      case Clause::Kind::kPattern: {
        PatternInfo pi;
        if (!Classify(c, ctx, &pi, range).ok()) return 1;
        if (pi.impossible) return 0;
        double s = static_cast<double>(pi.scan_estimate);
        if (pi.bound.empty()) return s * n;
        return std::min(s * n, n * PerProbe(pi));
      }
      case Clause::Kind::kRule: {
        const Relation* known = nullptr;
        if (auto o = overrides_.find(&c); o != overrides_.end()) {
          known = o->second;
        } else if (auto p = in_progress_.find(c.name); p != in_progress_.end()) {
          known = p->second;
        } else if (auto k = computed_rules_.find(c.name); k != computed_rules_.end()) {
          known = &k->second;
        }
        if (known != nullptr) {
          double s = static_cast<double>(known->rows());
          return connected ? std::min(s * n, n * std::max(1.0, s / 10)) : s * n;
        }
        return connected ? n * 10 : 1e12;
      }
      case Clause::Kind::kOr:
      case Clause::Kind::kOrJoin:
        return connected ? n * 2 : 1e12;
      default:
        return n;
    }
  }

  Result<Relation> Solve(const std::vector<Clause>& clauses, Relation ctx, int depth) {
    std::vector<bool> done(clauses.size(), false);
    size_t remaining = clauses.size();
    while (remaining > 0) {
      if (cancelled_) return CancelStatus();
      int pick = -1;
      double best = 0;
      ValueRange best_range;
      std::vector<size_t> best_absorbed;
      for (size_t i = 0; i < clauses.size(); ++i) {
        if (done[i]) continue;
        if (!AllBound(Needed(clauses, done, i, ctx), ctx)) continue;
        if (options_.reference) {
          pick = static_cast<int>(i);
          break;
        }
        if (IsFilter(clauses[i])) {
          pick = static_cast<int>(i);
          best_absorbed.clear();
          break;
        }
        ValueRange range;
        std::vector<size_t> absorbed;
        bool ranged = FindRange(clauses, done, i, ctx, &range, &absorbed);
        double cost = Estimate(clauses[i], ctx, ranged ? &range : nullptr);
        if (pick < 0 || cost < best) {
          pick = static_cast<int>(i);
          best = cost;
          best_range = std::move(range);
          best_absorbed = std::move(absorbed);
        }
      }
      if (pick < 0) {
        for (size_t i = 0; i < clauses.size(); ++i) {
          if (done[i]) continue;
          std::string missing;
          for (VarId v : Needed(clauses, done, i, ctx))
            if (!ctx.Has(v)) missing += (missing.empty() ? "" : " ") + q_.VarName(v);
          return Status::InvalidArgument("insufficient bindings: " + missing + " not bound in " +
                                         clauses[i].Describe());
        }
      }
      const Clause& c = clauses[static_cast<size_t>(pick)];
      done[static_cast<size_t>(pick)] = true;
      --remaining;
      const ValueRange* range = best_absorbed.empty() ? nullptr : &best_range;
      double est = explain_ != nullptr ? Estimate(c, ctx, range) : 0;
      strategy_.clear();
      size_t step_index = 0;
      if (explain_ != nullptr) {
        step_index = explain_->steps.size();
        std::string text = c.Describe();
        for (size_t j : best_absorbed) text += " + " + clauses[j].Describe();
        explain_->steps.push_back({depth, text, "", static_cast<uint64_t>(est), 0});
      }
      for (size_t j : best_absorbed) {
        done[j] = true;
        --remaining;
      }
      CAIRN_ASSIGN_OR_RETURN(ctx, range != nullptr ? ApplyPattern(c, std::move(ctx), range) : Apply(c, std::move(ctx), depth));
      if (cancelled_) return CancelStatus();
      if (explain_ != nullptr) {
        explain_->steps[step_index].strategy = strategy_;
        explain_->steps[step_index].actual_rows = ctx.rows();
      }
      if (ctx.empty()) {
        // Nothing can come back; still expose every variable the rest would bind.
        for (size_t i = 0; i < clauses.size(); ++i)
          if (!done[i]) {
            std::vector<VarId> vs;
            BindableVars(clauses[i], &vs);
            for (VarId v : vs) AddUnique(&ctx.vars, v);
          }
        ctx.data.clear();
        return ctx;
      }
    }
    return ctx;
  }

  Result<Relation> Apply(const Clause& c, Relation ctx, int depth) {
    switch (c.kind) {
      case Clause::Kind::kPattern: return ApplyPattern(c, std::move(ctx));
      case Clause::Kind::kPredicate:
      case Clause::Kind::kFunction: return ApplyFunction(c, std::move(ctx));
      case Clause::Kind::kNot:
      case Clause::Kind::kNotJoin: return ApplyNot(c, std::move(ctx), depth);
      case Clause::Kind::kOr:
      case Clause::Kind::kOrJoin: return ApplyOr(c, std::move(ctx), depth);
      case Clause::Kind::kAnd: return Solve(c.branches[0], std::move(ctx), depth + 1);
      case Clause::Kind::kRule: return ApplyRule(c, std::move(ctx), depth);
    }
    return ctx;
  }

  // ---------------------------------------------------------------- data patterns
  enum class PosKind : uint8_t { kBlank, kConst, kBound, kFree, kRepeat };
  struct PatternInfo {
    const Source* src = nullptr;
    DatomPattern base;
    PosKind kind[5] = {PosKind::kBlank, PosKind::kBlank, PosKind::kBlank, PosKind::kBlank, PosKind::kBlank};
    int arg[5] = {-1, -1, -1, -1, -1};  // kBound: ctx column; kFree: output index; kRepeat: earlier position
    std::vector<int> bound;             // positions bound from ctx
    std::vector<int> free;              // positions producing new variables (in output order)
    std::vector<VarId> free_vars;
    bool impossible = false;
    bool ref_attr = false;
    uint64_t scan_estimate = 0;
    const ValueRange* range = nullptr;  // values the scan is restricted to
  };

  double PerProbe(const PatternInfo& pi) {
    const IndexSource* db = pi.src->db;
    double s = static_cast<double>(pi.scan_estimate);
    bool e_bound = pi.kind[0] == PosKind::kBound;
    bool v_bound = pi.kind[2] == PosKind::kBound;
    if (e_bound) {
      if (pi.base.a) {
        uint64_t d = db->EstimateDistinct(*pi.base.a, 0);
        return d > 0 ? std::max(1.0, s / static_cast<double>(d)) : 1.0;
      }
      return 8;
    }
    if (v_bound && pi.base.a) {
      uint64_t d = db->EstimateDistinct(*pi.base.a, 2);
      return d > 0 ? std::max(1.0, s / static_cast<double>(d)) : std::max(1.0, s / 10);
    }
    return std::max(1.0, s / 10);
  }

  // Normalizes a value for position `pos` of a datom; false if it cannot match.
  bool Normalize(int pos, const Value& v, const PatternInfo& pi, Value* out) {
    switch (pos) {
      case 0: {
        EntityId e;
        if (!ToEntity(v, *pi.src->db, &e)) return false;
        *out = Value::Ref(e);
        return true;
      }
      case 1:
        if (v.type() != VT::kKeyword) return false;
        *out = v;
        return true;
      case 2:
        if (pi.ref_attr) {
          EntityId e;
          if (!ToEntity(v, *pi.src->db, &e)) return false;
          *out = Value::Ref(e);
          return true;
        }
        *out = v;
        return true;
      case 3: {
        TxTime t;
        if (!ToTx(v, &t)) return false;
        *out = Value::Ref(EntityId::ForTx(t));
        return true;
      }
      default:
        if (v.type() != VT::kBool) return false;
        *out = v;
        return true;
    }
  }

  static bool ToTx(const Value& v, TxTime* t) {
    if (v.type() == VT::kRef) {
      EntityId e = v.as_ref();
      *t = e.is_tx() ? e.tx_time() : TxTime{e.raw};
      return true;
    }
    if (v.type() == VT::kLong && v.as_long() != 0) {
      EntityId e{static_cast<uint64_t>(v.as_long())};
      *t = e.is_tx() ? e.tx_time() : TxTime{e.raw};
      return true;
    }
    return false;
  }

  static bool ToEntity(const Value& v, const IndexSource& db, EntityId* out) {
    switch (v.type()) {
      case VT::kRef:
        *out = v.as_ref();
        return true;
      case VT::kLong:
        if (v.as_long() == 0) return false;
        *out = EntityId{static_cast<uint64_t>(v.as_long())};
        return true;
      case VT::kKeyword: {
        auto e = db.Lookup(Keyword::Intern("db/ident"), v);
        if (!e) return false;
        *out = *e;
        return true;
      }
      case VT::kTuple: {
        const auto& t = v.as_tuple();
        if (t.size() != 2 || t[0].type() != VT::kKeyword) return false;
        auto e = db.Lookup(t[0].as_keyword(), t[1]);
        if (!e) return false;
        *out = *e;
        return true;
      }
      default:
        return false;
    }
  }

  void SetBase(DatomPattern* p, int pos, const Value& v) {
    switch (pos) {
      case 0: p->e = v.as_ref(); break;
      case 1: p->a = v.as_keyword(); break;
      case 2: p->v = v; break;
      case 3: p->tx = v.as_ref().tx_time(); break;
      default: p->added = v.as_bool(); break;
    }
  }

  Status Classify(const Clause& c, const Relation& ctx, PatternInfo* pi, const ValueRange* range = nullptr) {
    auto it = sources_.find(c.source);
    if (it == sources_.end()) return Status::InvalidArgument("unknown source " + c.source + " in " + c.Describe());
    pi->src = &it->second;
    if (pi->src->db == nullptr) return Status::OK();
    // The attribute decides how values are read.
    if (c.terms.size() > 1 && c.terms[1].is_const()) {
      if (c.terms[1].value.type() != VT::kKeyword) {
        pi->impossible = true;
        return Status::OK();
      }
      pi->ref_attr = pi->src->db->schema().IsRef(c.terms[1].value.as_keyword());
    }
    std::vector<std::pair<VarId, int>> seen;
    for (size_t pos = 0; pos < c.terms.size(); ++pos) {
      const Term& t = c.terms[pos];
      int p = static_cast<int>(pos);
      if (t.is_const()) {
        Value v;
        if (!Normalize(p, t.value, *pi, &v)) {
          pi->impossible = true;
          continue;
        }
        pi->kind[p] = PosKind::kConst;
        SetBase(&pi->base, p, v);
      } else if (t.is_var()) {
        int col = ctx.Col(t.var);
        auto prev = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == t.var; });
        if (col >= 0) {
          pi->kind[p] = PosKind::kBound;
          pi->arg[p] = col;
          pi->bound.push_back(p);
        } else if (prev != seen.end()) {
          pi->kind[p] = PosKind::kRepeat;
          pi->arg[p] = prev->second;
        } else {
          pi->kind[p] = PosKind::kFree;
          pi->arg[p] = static_cast<int>(pi->free.size());
          pi->free.push_back(p);
          pi->free_vars.push_back(t.var);
          seen.push_back({t.var, p});
        }
      }
    }
    if (!pi->src->db->is_history() && !pi->base.added) {
      // Current views hold only assertions.
    }
    pi->range = range;
    if (!pi->impossible)
      pi->scan_estimate = range != nullptr ? pi->src->db->EstimateRange(pi->base, *range)
                                           : pi->src->db->EstimateCount(pi->base);
    return Status::OK();
  }

  template <typename Fn>
  Status ScanDb(const Source& s, const DatomPattern& p, Fn&& fn, const ValueRange* range = nullptr) {
    if (range != nullptr) {
      if (s.mem != nullptr) {
        s.mem->ForEachRange(p, *range, fn);
        return Status::OK();
      }
      return s.db->ScanRange(p, *range, [&](const Datom& d) { return fn(d); });
    }
    if (s.mem != nullptr) {
      s.mem->ForEach(p, fn);
      return Status::OK();
    }
    return s.db->Scan(p, [&](const Datom& d) { return fn(d); });
  }

  // Scans `probe`; a long in the value position of a pattern whose attribute is
  // not a known constant may be an entity id, so refs with that id match too.
  template <typename Fn>
  Status ScanPattern(const PatternInfo& pi, DatomPattern& probe, Fn&& fn) {
    if (!pi.ref_attr && probe.v && probe.v->type() == VT::kLong && probe.v->as_long() != 0) {
      if (probe.a) {
        if (pi.src->db->schema().IsRef(*probe.a)) probe.v = Value::Ref(EntityId{static_cast<uint64_t>(probe.v->as_long())});
        return ScanDb(*pi.src, probe, fn, pi.range);
      }
      Value as_long = *probe.v;
      CAIRN_RETURN_IF_ERROR(ScanDb(*pi.src, probe, fn, pi.range));
      probe.v = Value::Ref(EntityId{static_cast<uint64_t>(as_long.as_long())});
      Status st = ScanDb(*pi.src, probe, fn, pi.range);
      probe.v = as_long;
      return st;
    }
    return ScanDb(*pi.src, probe, fn, pi.range);
  }

  static bool RepeatsOk(const Datom& d, const PatternInfo& pi) {
    for (int p = 0; p < 5; ++p) {
      if (pi.kind[p] == PosKind::kRepeat && !(PosValue(d, p) == PosValue(d, pi.arg[p]))) return false;
    }
    return true;
  }

  Result<Relation> ApplyPattern(const Clause& c, Relation ctx, const ValueRange* range = nullptr) {
    PatternInfo pi;
    CAIRN_RETURN_IF_ERROR(Classify(c, ctx, &pi, range));
    if (pi.src->db == nullptr) return ApplyCollectionPattern(c, std::move(ctx), *pi.src);
    Relation out;
    out.vars = ctx.vars;
    for (VarId v : pi.free_vars) out.vars.push_back(v);
    // Every strategy below emits in ctx row order (the merge join in the
    // same order too), so a sorted column stays sorted.
    out.sorted_col = ctx.sorted_col;
    if (pi.impossible) {
      strategy_ = "no match (constant cannot match)";
      return out;
    }
    const size_t arity = ctx.arity();
    auto emit = [&](const Value* row, const Datom& d) {
      out.data.insert(out.data.end(), row, row + arity);
      for (int p : pi.free) out.data.push_back(PosValue(d, p));
      ++out.count;
    };
    const char* index_name = pi.base.e ? "EAVT" : (pi.base.a && pi.base.v) ? "AVET" : pi.base.v ? "VAET" : pi.base.a ? "AEVT" : "full";
    if (pi.bound.empty()) {
      out.data.reserve(std::min<uint64_t>(pi.scan_estimate * ctx.rows(), 1u << 20) * out.vars.size());
      // Scan once; a cartesian product with ctx if it has several rows.
      strategy_ = std::string("scan ") + (pi.range != nullptr ? "value range" : index_name);
      DatomPattern probe = pi.base;
      // One context row and an AEVT (or AVET with a constant value) scan:
      // the rows come out in entity order.
      out.sorted_col = -1;
      if (ctx.rows() == 1 && pi.kind[0] == PosKind::kFree && pi.base.a && !pi.base.e && pi.range == nullptr &&
          (!pi.base.v || pi.base.v->type() != VT::kLong || pi.ref_attr))
        out.sorted_col = static_cast<int>(arity) + pi.arg[0];
      CAIRN_RETURN_IF_ERROR(ScanPattern(pi, probe, [&](const Datom& d) {
        if (!RepeatsOk(d, pi)) return true;
        for (size_t r = 0; r < ctx.rows(); ++r) emit(ctx.Row(r), d);
        return Tick(ctx.rows());
      }));
      return out;
    }
    // Merge join: ctx sorted by the entity the pattern's AEVT/AVET scan is
    // ordered by; one pass over both instead of a probe per row. Measured on
    // the store (bench/datascript q3/q4): a probe costs only about two
    // scanned datoms there (each scanned datom is built and passed through
    // the IndexSource callback), so merging only pays for scans of at most
    // twice the rows; at 4x (q3/q4's [?e :sex "male"]) it was slower.
    constexpr double kProbeCost = 2;
    if (!options_.reference && pi.bound.size() == 1 && pi.bound[0] == 0 && ctx.sorted_col == pi.arg[0] &&
        pi.base.a && !pi.base.e && pi.range == nullptr && static_cast<double>(pi.scan_estimate) <= kProbeCost * static_cast<double>(ctx.rows())) {
      bool merged = false;
      CAIRN_RETURN_IF_ERROR(MergeJoin(pi, ctx, &out, &merged));
      if (merged) return out;
      out.Clear();
      out.sorted_col = ctx.sorted_col;
    }
    bool inl = options_.reference || static_cast<double>(ctx.rows()) <= static_cast<double>(pi.scan_estimate);
    std::vector<Value> key(pi.bound.size());
    if (inl) {
      DatomPattern probe = pi.base;
      std::string idx = "EAVT";
      if (!probe.e && pi.kind[0] != PosKind::kBound) {
        bool a = probe.a || pi.kind[1] == PosKind::kBound;
        bool v = probe.v || pi.kind[2] == PosKind::kBound;
        idx = a && v ? "AVET" : v ? "VAET" : a ? "AEVT" : "full";
      }
      strategy_ = "probe " + idx + " per row";
      for (size_t r = 0; r < ctx.rows(); ++r) {
        const Value* row = ctx.Row(r);
        bool ok = true;
        for (size_t k = 0; k < pi.bound.size() && ok; ++k) {
          int p = pi.bound[k];
          ok = Normalize(p, row[pi.arg[p]], pi, &key[k]);
          if (ok) SetBase(&probe, p, key[k]);
        }
        if (!ok) continue;
        if (pi.kind[1] == PosKind::kBound) probe.v.reset();  // re-normalized below per attribute
        for (size_t k = 0; k < pi.bound.size(); ++k)
          if (pi.bound[k] == 2) probe.v = key[k];
        if (pi.kind[2] == PosKind::kConst) probe.v = pi.base.v;
        CAIRN_RETURN_IF_ERROR(ScanPattern(pi, probe, [&](const Datom& d) {
          if (!RepeatsOk(d, pi)) return true;
          emit(row, d);
          return Tick();
        }));
        if (!Tick()) break;
      }
      return out;
    }
    // Hash join: scan once with the constants, index on the bound positions.
    strategy_ = std::string("scan ") + index_name + " + hash join";
    Relation scanned;
    for (size_t k = 0; k < pi.bound.size() + pi.free.size(); ++k) scanned.vars.push_back(static_cast<VarId>(k));
    DatomPattern base = pi.base;
    CAIRN_RETURN_IF_ERROR(ScanPattern(pi, base, [&](const Datom& d) {
      if (!RepeatsOk(d, pi)) return true;
      for (int p : pi.bound) scanned.data.push_back(PosValue(d, p));
      for (int p : pi.free) scanned.data.push_back(PosValue(d, p));
      ++scanned.count;
      return Tick();
    }));
    std::vector<int> key_cols(pi.bound.size());
    for (size_t k = 0; k < key_cols.size(); ++k) key_cols[k] = static_cast<int>(k);
    RowIndex idx(scanned, key_cols);
    for (size_t r = 0; r < ctx.rows(); ++r) {
      const Value* row = ctx.Row(r);
      bool ok = true;
      for (size_t k = 0; k < pi.bound.size() && ok; ++k) {
        ok = Normalize(pi.bound[k], row[pi.arg[pi.bound[k]]], pi, &key[k]);
        if (ok) key[k] = ToEngine(key[k]);
      }
      if (!ok) continue;
      idx.ForEachMatch(key.data(), key_cols.data(), [&](size_t j) {
        const Value* sr = scanned.Row(j);
        out.data.insert(out.data.end(), row, row + arity);
        for (size_t k = 0; k < pi.free.size(); ++k) out.data.push_back(sr[pi.bound.size() + k]);
        ++out.count;
        Tick();
      });
      if (!Tick()) break;
    }
    return out;
  }

  // Joins the pattern (entity bound from ctx column pi.arg[0], attribute
  // constant) with ctx, which is sorted by that column, by walking the scan
  // and ctx together. Relies on IndexSource::Scan's documented order (AEVT
  // for a bound attribute, AVET for a bound attribute and value: entity
  // order either way); value-range scans may be in AVET order and never
  // come here. Sets *merged = false, with `out`
  // partly filled, if the scan turns out not to be in entity order.
  Status MergeJoin(const PatternInfo& pi, const Relation& ctx, Relation* out, bool* merged) {
    strategy_ = "merge join";
    const size_t arity = ctx.arity();
    const int col = pi.arg[0];
    auto key = [&](size_t r) { return static_cast<uint64_t>(ctx.Row(r)[col].as_long()); };
    const size_t n = ctx.rows();
    size_t r = 0;
    uint64_t last_e = 0;
    bool in_order = true;
    DatomPattern probe = pi.base;
    CAIRN_RETURN_IF_ERROR(ScanPattern(pi, probe, [&](const Datom& d) {
      uint64_t e = d.e.raw;
      if (e < last_e) {
        in_order = false;
        return false;
      }
      last_e = e;
      while (r < n && key(r) < e) ++r;
      if (r == n) return false;  // past the last row: nothing more can join
      if (key(r) != e || !RepeatsOk(d, pi)) return Tick();
      for (size_t k = r; k < n && key(k) == e; ++k) {
        const Value* row = ctx.Row(k);
        out->data.insert(out->data.end(), row, row + arity);
        for (int p : pi.free) out->data.push_back(PosValue(d, p));
        ++out->count;
      }
      return Tick();
    }));
    *merged = in_order;
    return Status::OK();
  }

  Result<Relation> ApplyCollectionPattern(const Clause& c, Relation ctx, const Source& src) {
    strategy_ = "collection scan + hash join";
    Relation p;
    std::vector<int> var_pos;  // first position of each var
    for (size_t i = 0; i < c.terms.size(); ++i) {
      const Term& t = c.terms[i];
      if (t.is_var() && p.Col(t.var) < 0) {
        p.vars.push_back(t.var);
        var_pos.push_back(static_cast<int>(i));
      }
    }
    for (const auto& tuple : src.tuples) {
      if (tuple.size() < c.terms.size()) continue;
      bool ok = true;
      for (size_t i = 0; i < c.terms.size() && ok; ++i) {
        const Term& t = c.terms[i];
        if (t.is_const()) ok = LooseEq(tuple[i], t.value);
        if (t.is_var()) ok = tuple[i] == tuple[static_cast<size_t>(var_pos[static_cast<size_t>(p.Col(t.var))])];
      }
      if (!ok) continue;
      for (int pos : var_pos) p.data.push_back(tuple[static_cast<size_t>(pos)]);
      ++p.count;
    }
    return Join(ctx, p);
  }

  // ---------------------------------------------------------------- functions and predicates
  Result<Relation> ApplyFunction(const Clause& c, Relation ctx) {
    const FunctionDef* f = reg_.FindFunction(c.name);
    CAIRN_CHECK(f != nullptr);
    std::vector<Value> args;
    std::vector<int> cols;  // ctx column per arg, or -1 for a constant
    const IndexSource* source = nullptr;
    for (const Term& t : c.terms) {
      if (t.kind == Term::Kind::kSource) {
        source = sources_[t.source].db;
        continue;
      }
      if (t.is_blank()) return Status::InvalidArgument("_ is not allowed as a function argument in " + c.Describe());
      args.push_back(t.is_const() ? t.value : Value());
      cols.push_back(t.is_var() ? ctx.Col(t.var) : -1);
    }
    FnArgs fa{args.data(), args.size(), source, regex_cache_.get()};
    Value result;
    const Binding& b = c.binding;
    Relation out;
    out.vars = ctx.vars;
    out.sorted_col = ctx.sorted_col;  // rows keep their order, columns are appended
    // Binding columns: new variables appended; already-bound ones unify.
    std::vector<int> bind_col(b.vars.size(), -1), bind_out(b.vars.size(), -1);
    for (size_t k = 0; k < b.vars.size(); ++k) {
      if (b.vars[k] == kNoVar) continue;
      bind_col[k] = ctx.Col(b.vars[k]);
      if (bind_col[k] < 0) {
        int existing = -1;
        for (size_t j = ctx.arity(); j < out.vars.size(); ++j)
          if (out.vars[j] == b.vars[k]) existing = static_cast<int>(j);
        if (existing < 0) {
          out.vars.push_back(b.vars[k]);
          bind_out[k] = static_cast<int>(out.vars.size()) - 1;
        } else {
          bind_out[k] = existing;
        }
      }
    }
    strategy_ = c.kind == Clause::Kind::kPredicate ? "filter" : "function";
    if (c.kind == Clause::Kind::kPredicate && args.size() == 2 && source == nullptr &&
        (c.name == "<" || c.name == ">" || c.name == "<=" || c.name == ">=") &&
        options_.registry == nullptr) {
      // Fast path for the common range filters: no function call, no argument copies.
      int op = c.name == "<" ? 0 : c.name == ">" ? 1 : c.name == "<=" ? 2 : 3;
      out.data.reserve(ctx.data.size() / 2);
      for (size_t r = 0; r < ctx.rows(); ++r) {
        const Value* row = ctx.Row(r);
        const Value& x = cols[0] >= 0 ? row[cols[0]] : args[0];
        const Value& y = cols[1] >= 0 ? row[cols[1]] : args[1];
        int cmp = CompareValues(x, y);
        bool keep = op == 0 ? cmp < 0 : op == 1 ? cmp > 0 : op == 2 ? cmp <= 0 : cmp >= 0;
        if (keep) out.AddRow(row);
        if (!Tick()) break;
      }
      return out;
    }
    const size_t arity = ctx.arity();
    std::vector<Value> extra(out.vars.size() - arity);
    auto emit = [&](const Value* row, const std::vector<Value>& vals) {
      // vals: one value per binding var (kNoVar skipped).
      for (size_t k = 0; k < b.vars.size(); ++k) {
        if (b.vars[k] == kNoVar) continue;
        if (bind_col[k] >= 0) {
          if (!(row[bind_col[k]] == vals[k])) return;
        } else {
          size_t slot = static_cast<size_t>(bind_out[k]) - arity;
          // Repeated new variable inside one binding: must agree.
          bool first = true;
          for (size_t j = 0; j < k; ++j)
            if (b.vars[j] == b.vars[k]) first = false;
          if (!first && !(extra[slot] == vals[k])) return;
          extra[slot] = vals[k];
        }
      }
      out.data.insert(out.data.end(), row, row + arity);
      out.data.insert(out.data.end(), extra.begin(), extra.end());
      ++out.count;
    };
    std::vector<Value> vals(b.vars.size());
    for (size_t r = 0; r < ctx.rows(); ++r) {
      const Value* row = ctx.Row(r);
      for (size_t k = 0; k < cols.size(); ++k)
        if (cols[k] >= 0) args[k] = row[cols[k]];
      Status st = f->fn(fa, &result);
      if (!st.ok()) return Status(st.code(), st.message() + " in " + c.Describe());
      if (!Tick()) break;
      if (c.kind == Clause::Kind::kPredicate) {
        if (Truthy(result)) out.AddRow(row);
        continue;
      }
      switch (b.kind) {
        case Binding::Kind::kScalar:
          if (result.is_nil()) break;
          vals[0] = result;
          emit(row, vals);
          break;
        case Binding::Kind::kTuple: {
          if (result.type() != VT::kTuple) {
            if (result.is_nil()) break;
            return Status::InvalidArgument("cannot bind " + result.ToString() + " to a tuple in " + c.Describe());
          }
          const auto& t = result.as_tuple();
          if (t.size() < b.vars.size()) break;
          for (size_t k = 0; k < b.vars.size(); ++k) vals[k] = t[k];
          emit(row, vals);
          break;
        }
        case Binding::Kind::kCollection: {
          if (result.is_nil()) break;
          if (result.type() != VT::kTuple)
            return Status::InvalidArgument("cannot bind " + result.ToString() + " to a collection in " + c.Describe());
          for (const Value& x : result.as_tuple()) {
            vals[0] = x;
            emit(row, vals);
          }
          break;
        }
        case Binding::Kind::kRelation: {
          if (result.is_nil()) break;
          if (result.type() != VT::kTuple)
            return Status::InvalidArgument("cannot bind " + result.ToString() + " to a relation in " + c.Describe());
          for (const Value& t : result.as_tuple()) {
            if (t.type() != VT::kTuple || t.as_tuple().size() < b.vars.size()) continue;
            for (size_t k = 0; k < b.vars.size(); ++k) vals[k] = t.as_tuple()[k];
            emit(row, vals);
          }
          break;
        }
        case Binding::Kind::kNone:
          break;
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- not / or
  Result<Relation> ApplyNot(const Clause& c, Relation ctx, int depth) {
    std::vector<VarId> join;
    if (c.kind == Clause::Kind::kNotJoin) {
      join = c.join_vars;
    } else {
      std::vector<VarId> body;
      for (const Clause& x : c.branches[0]) ClauseVars(x, &body);
      for (VarId v : body)
        if (ctx.Has(v)) join.push_back(v);
    }
    strategy_ = "anti-join";
    Relation seed = ProjectDistinct(ctx, join);
    CAIRN_ASSIGN_OR_RETURN(Relation matched, Solve(c.branches[0], seed, depth + 1));
    Relation m = ProjectDistinct(matched, join);
    if (join.empty()) {
      if (matched.empty()) return ctx;
      ctx.Clear();
      return ctx;
    }
    return AntiJoin(ctx, m);
  }

  Result<Relation> ApplyOr(const Clause& c, Relation ctx, int depth) {
    std::vector<VarId> join;
    if (c.kind == Clause::Kind::kOrJoin) {
      join = c.join_vars;
    } else {
      for (const auto& b : c.branches)
        for (const Clause& x : b) ClauseVars(x, &join);
    }
    std::vector<VarId> bound;
    for (VarId v : join)
      if (ctx.Has(v)) bound.push_back(v);
    strategy_ = "union of branches + hash join";
    Relation seed = ProjectDistinct(ctx, bound);
    Relation all;
    all.vars = join;
    RowSet set(&all);
    for (const auto& branch : c.branches) {
      CAIRN_ASSIGN_OR_RETURN(Relation r, Solve(branch, seed, depth + 1));
      for (VarId v : join)
        if (!r.Has(v))
          return Status::InvalidArgument("insufficient bindings: " + q_.VarName(v) + " is not bound by every branch of " +
                                         c.Describe());
      Relation p = ProjectDistinct(r, join, false);
      for (size_t i = 0; i < p.rows(); ++i) set.Insert(p.Row(i));
    }
    return Join(ctx, all);
  }

  // ---------------------------------------------------------------- rules
  Result<const Relation*> RuleRelation(const Clause& call) {
    auto o = overrides_.find(&call);
    if (o != overrides_.end()) return o->second;
    auto p = in_progress_.find(call.name);
    if (p != in_progress_.end()) return p->second;
    auto it = computed_rules_.find(call.name);
    if (it == computed_rules_.end()) {
      CAIRN_RETURN_IF_ERROR(ComputeScc(scc_of_.at(call.name)));
      it = computed_rules_.find(call.name);
    }
    return &it->second;
  }

  // ---------------------------------------------------------------- magic sets
  // When the query calls a rule with some arguments bound (constants or
  // variables bound by earlier clauses), the rules reachable from the call are
  // rewritten with the magic-sets transformation so that bottom-up evaluation
  // only derives tuples relevant to those bindings: each adorned rule
  // p__bf(H) :- magic__p__bf(Hb), body' and, for each call q in a body with
  // bound arguments, magic__q__β(args) :- magic__p__bf(Hb), prefix. The seed is
  // the distinct bound argument values of the current rows. Information passes
  // sideways in written order; calls inside not/or keep their full relation.
  static std::string Adornment(const std::vector<bool>& b) {
    std::string s;
    for (bool x : b) s += x ? 'b' : 'f';
    return s;
  }

  VarId FreshVar() {
    q_.var_names.push_back("?__m" + std::to_string(q_.var_names.size()));
    return static_cast<VarId>(q_.var_names.size() - 1);
  }

  Clause CallClause(const std::string& name, std::vector<Term> terms, const RuleDef& at) {
    Clause c;
    c.kind = Clause::Kind::kRule;
    c.name = name;
    c.terms = std::move(terms);
    c.text = "(" + name + " ...)";
    c.line = at.line;
    c.column = at.column;
    return c;
  }

  Result<std::string> MagicRewrite(const Clause& call, const std::vector<bool>& bound_pos, const Relation& ctx) {
    std::string suffix = "#" + std::to_string(++magic_counter_);
    auto adorned = [&](const std::string& n, const std::vector<bool>& a) { return n + "__" + Adornment(a) + suffix; };
    auto magic = [&](const std::string& n, const std::vector<bool>& a) {
      return "magic__" + n + "__" + Adornment(a) + suffix;
    };
    std::map<std::string, std::vector<RuleDef>> out;
    std::set<std::string> done;
    std::vector<std::pair<std::string, std::vector<bool>>> work{{call.name, bound_pos}};
    while (!work.empty()) {
      auto [name, adorn] = work.back();
      work.pop_back();
      if (!done.insert(adorned(name, adorn)).second) continue;
      for (const RuleDef& def : rules_.rules.at(name)) {
        RuleDef nd;
        nd.name = adorned(name, adorn);
        nd.head = def.head;
        nd.text = def.text;
        nd.line = def.line;
        nd.column = def.column;
        std::vector<Term> hb;
        std::vector<VarId> bound;
        for (size_t i = 0; i < def.head.size(); ++i) {
          if (!adorn[i]) continue;
          Term t;
          t.kind = Term::Kind::kVar;
          t.var = def.head[i];
          hb.push_back(t);
          AddUnique(&bound, def.head[i]);
        }
        std::vector<Clause> prefix{CallClause(magic(name, adorn), hb, def)};
        nd.body = prefix;
        for (const Clause& cl : def.body) {
          Clause ncl = cl;
          if (cl.kind == Clause::Kind::kRule && rules_.rules.count(cl.name)) {
            std::vector<bool> beta;
            bool any = false;
            for (const Term& t : cl.terms) {
              bool b = t.is_const() || (t.is_var() && std::find(bound.begin(), bound.end(), t.var) != bound.end());
              beta.push_back(b);
              any = any || b;
            }
            if (any) {
              ncl.name = adorned(cl.name, beta);
              work.push_back({cl.name, beta});
              RuleDef md;
              md.name = magic(cl.name, beta);
              md.text = def.text;
              md.line = def.line;
              md.column = def.column;
              md.body = prefix;
              for (size_t i = 0; i < cl.terms.size(); ++i) {
                if (!beta[i]) continue;
                const Term& t = cl.terms[i];
                if (t.is_var()) {
                  md.head.push_back(t.var);
                } else {
                  VarId v = FreshVar();
                  Clause g;
                  g.kind = Clause::Kind::kFunction;
                  g.name = "ground";
                  g.terms.push_back(t);
                  g.binding.kind = Binding::Kind::kScalar;
                  g.binding.vars.push_back(v);
                  g.text = "[(ground " + t.value.ToString() + ") ...]";
                  md.body.push_back(g);
                  md.head.push_back(v);
                }
              }
              out[md.name].push_back(std::move(md));
            }
          }
          nd.body.push_back(ncl);
          // Extend the sideways prefix with what this clause binds.
          std::vector<VarId> needs;
          bool filter = cl.kind == Clause::Kind::kPredicate || cl.kind == Clause::Kind::kNot ||
                        cl.kind == Clause::Kind::kNotJoin || cl.kind == Clause::Kind::kFunction;
          if (cl.kind == Clause::Kind::kNot || cl.kind == Clause::Kind::kNotJoin) {
            ClauseVars(cl, &needs);
          } else if (filter) {
            needs = TermVars(cl);
          }
          bool ready = true;
          for (VarId v : needs) ready = ready && std::find(bound.begin(), bound.end(), v) != bound.end();
          if (filter && !ready) continue;  // a magic set may be larger than needed, never smaller
          prefix.push_back(ncl);
          BindableVars(cl, &bound);
        }
        out[nd.name].push_back(std::move(nd));
      }
    }
    // The seed: the bound argument values of the current rows.
    std::string seed_name = "seed" + suffix;
    Relation seed;
    std::vector<int> cols;
    std::vector<const Value*> consts;
    for (size_t i = 0; i < call.terms.size(); ++i) {
      if (!bound_pos[i]) continue;
      seed.vars.push_back(static_cast<VarId>(seed.vars.size()));
      const Term& t = call.terms[i];
      cols.push_back(t.is_var() ? ctx.Col(t.var) : -1);
      consts.push_back(t.is_const() ? &t.value : nullptr);
    }
    {
      RowSet set(&seed);
      std::vector<Value> row(cols.size());
      for (size_t r = 0; r < ctx.rows(); ++r) {
        for (size_t k = 0; k < cols.size(); ++k) row[k] = cols[k] >= 0 ? ctx.Row(r)[cols[k]] : *consts[k];
        set.Insert(row.data());
      }
    }
    computed_rules_[seed_name] = std::move(seed);
    RuleDef sd;
    sd.name = magic(call.name, bound_pos);
    sd.text = "seed";
    std::vector<Term> seed_terms;
    for (size_t k = 0; k < cols.size(); ++k) {
      Term t;
      t.kind = Term::Kind::kVar;
      t.var = FreshVar();
      sd.head.push_back(t.var);
      seed_terms.push_back(t);
    }
    sd.body.push_back(CallClause(seed_name, seed_terms, sd));
    out[sd.name].push_back(std::move(sd));
    for (auto& [name, defs] : out) rules_.rules[name] = std::move(defs);
    CAIRN_RETURN_IF_ERROR(Stratify());
    return adorned(call.name, bound_pos);
  }

  Result<Relation> ApplyRule(const Clause& c, Relation ctx, int depth) {
    if (!options_.reference && in_progress_.empty() && overrides_.empty() &&
        computed_rules_.find(c.name) == computed_rules_.end()) {
      std::vector<bool> bound_pos;
      bool any = false;
      for (const Term& t : c.terms) {
        bool b = t.is_const() || (t.is_var() && ctx.Has(t.var));
        bound_pos.push_back(b);
        any = any || b;
      }
      if (any) {
        CAIRN_ASSIGN_OR_RETURN(std::string name, MagicRewrite(c, bound_pos, ctx));
        Clause seeded = c;
        seeded.name = name;
        magic_calls_.push_back(std::make_unique<Clause>(std::move(seeded)));
        return ApplyRuleFull(*magic_calls_.back(), std::move(ctx), depth);
      }
    }
    return ApplyRuleFull(c, std::move(ctx), depth);
  }

  Result<Relation> ApplyRuleFull(const Clause& c, Relation ctx, int depth) {
    CAIRN_ASSIGN_OR_RETURN(const Relation* rel, RuleRelation(c));
    strategy_ = "rule (" + std::to_string(rel->rows()) + " tuples) + hash join";
    Relation p;
    std::vector<int> var_pos;
    for (size_t i = 0; i < c.terms.size(); ++i) {
      const Term& t = c.terms[i];
      if (t.is_var() && p.Col(t.var) < 0) {
        p.vars.push_back(t.var);
        var_pos.push_back(static_cast<int>(i));
      }
    }
    // Few rows against a big (full) rule relation: probe a hash index on the
    // shared positions that is kept across fixpoint rounds, instead of
    // copying and re-hashing the whole relation every round.
    std::vector<int> key_pos, key_ctx;
    for (size_t k = 0; k < p.vars.size(); ++k) {
      int col = ctx.Col(p.vars[k]);
      if (col >= 0) {
        key_pos.push_back(var_pos[k]);
        key_ctx.push_back(col);
      }
    }
    bool is_delta = overrides_.count(&c) > 0;
    if (!options_.reference && !is_delta && !key_pos.empty() && ctx.rows() * 4 < rel->rows()) {
      strategy_ = "rule (" + std::to_string(rel->rows()) + " tuples) probed by index";
      auto& slot = rule_indexes_[{rel, key_pos}];
      if (slot == nullptr) slot = std::make_unique<RowIndex>(*rel, key_pos);
      slot->Sync();
      Relation out;
      out.vars = ctx.vars;
      std::vector<int> extra;  // positions of variables new to ctx
      for (size_t k = 0; k < p.vars.size(); ++k)
        if (ctx.Col(p.vars[k]) < 0) {
          out.vars.push_back(p.vars[k]);
          extra.push_back(var_pos[k]);
        }
      for (size_t r = 0; r < ctx.rows(); ++r) {
        const Value* row = ctx.Row(r);
        slot->ForEachMatch(row, key_ctx.data(), [&](size_t j) {
          const Value* tuple = rel->Row(j);
          for (size_t i = 0; i < c.terms.size(); ++i) {
            const Term& t = c.terms[i];
            if (t.is_const() && !LooseEq(tuple[i], t.value)) return;
            if (t.is_var() && !(tuple[i] == tuple[var_pos[static_cast<size_t>(p.Col(t.var))]])) return;
          }
          out.data.insert(out.data.end(), row, row + ctx.arity());
          for (int pos : extra) out.data.push_back(tuple[pos]);
          ++out.count;
          Tick();
        });
        if (!Tick()) break;
      }
      return out;
    }
    for (size_t r = 0; r < rel->rows(); ++r) {
      const Value* tuple = rel->Row(r);
      bool ok = true;
      for (size_t i = 0; i < c.terms.size() && ok; ++i) {
        const Term& t = c.terms[i];
        if (t.is_const()) ok = LooseEq(tuple[i], t.value);
        if (t.is_var()) ok = tuple[i] == tuple[var_pos[static_cast<size_t>(p.Col(t.var))]];
      }
      if (!ok) continue;
      for (int pos : var_pos) p.data.push_back(tuple[pos]);
      ++p.count;
    }
    // A rule relation is a set; a selection of it keeping every position is too.
    p.distinct = var_pos.size() == c.terms.size();
    return Join(ctx, p);
  }

  // Evaluates one rule body and appends the head tuples to `out`.
  Result<Relation> EvalBody(const RuleDef& d, int depth) {
    CAIRN_ASSIGN_OR_RETURN(Relation r, Solve(d.body, Relation::Unit(), depth + 1));
    for (VarId h : d.head)
      if (!r.Has(h))
        return Status::InvalidArgument("rule head variable " + q_.VarName(h) + " is not bound by the body of " + d.text);
    Relation p = ProjectDistinct(r, d.head, false);
    // Positional columns.
    for (size_t i = 0; i < p.vars.size(); ++i) p.vars[i] = static_cast<VarId>(i);
    return p;
  }

  static void TopLevelCalls(const RuleDef& d, const std::set<std::string>& scc, std::vector<const Clause*>* top,
                            bool* nested) {
    std::function<void(const std::vector<Clause>&, bool)> walk = [&](const std::vector<Clause>& cs, bool inside) {
      for (const Clause& c : cs) {
        if (c.kind == Clause::Kind::kRule && scc.count(c.name)) {
          if (inside) {
            *nested = true;
          } else {
            top->push_back(&c);
          }
        }
        for (const auto& b : c.branches) walk(b, true);
      }
    };
    walk(d.body, false);
  }

  Status ComputeScc(int scc_index) {
    const std::vector<std::string>& members = sccs_[static_cast<size_t>(scc_index)];
    std::set<std::string> scc(members.begin(), members.end());
    // Dependencies outside the component first.
    for (const std::string& name : members) {
      std::vector<std::pair<std::string, bool>> deps;
      for (const RuleDef& d : rules_.rules[name]) RuleDeps(d.body, false, &deps);
      for (const auto& [dep, neg] : deps)
        if (!scc.count(dep) && !computed_rules_.count(dep)) CAIRN_RETURN_IF_ERROR(ComputeScc(scc_of_.at(dep)));
    }
    std::map<std::string, Relation> full, delta;
    std::map<std::string, std::unique_ptr<RowSet>> full_set;
    for (const std::string& name : members) {
      Relation& f = full[name];
      for (size_t i = 0; i < rules_.rules[name][0].head.size(); ++i) f.vars.push_back(static_cast<VarId>(i));
      full_set[name] = std::make_unique<RowSet>(&f);
      in_progress_[name] = &f;
    }
    auto cleanup = [&]() {
      for (const std::string& name : members) in_progress_.erase(name);
      rule_indexes_.clear();
    };
    auto add_new = [&](const std::string& name, const Relation& cand, std::map<std::string, Relation>* next,
                       std::map<std::string, std::unique_ptr<RowSet>>* next_set) {
      // New tuples go into the full relation at once (later evaluations in
      // this round may use them: still a correct, monotone fixpoint) and into
      // the next round's delta.
      (void)next_set;
      Relation& n = (*next)[name];
      if (n.vars.empty()) n.vars = full[name].vars;
      for (size_t i = 0; i < cand.rows(); ++i)
        if (full_set[name]->Insert(cand.Row(i))) n.AddRow(cand.Row(i));
    };
    bool recursive = members.size() > 1;
    for (const RuleDef& d : rules_.rules[members[0]]) {
      std::vector<const Clause*> top;
      bool nested = false;
      TopLevelCalls(d, scc, &top, &nested);
      recursive = recursive || !top.empty() || nested;
    }
    // Round 0 (and the only round for non-recursive rules).
    {
      std::map<std::string, std::unique_ptr<RowSet>> next_set;
      for (const std::string& name : members)
        for (const RuleDef& d : rules_.rules[name]) {
          auto r = EvalBody(d, 1);
          if (!r.ok()) {
            cleanup();
            return r.status();
          }
          add_new(name, *r, &delta, &next_set);
        }
    }
    while (recursive) {
      bool any = false;
      for (auto& [name, rel] : delta) any = any || !rel.empty();
      if (!any) break;
      if (cancelled_) {
        cleanup();
        return CancelStatus();
      }
      std::map<std::string, Relation> next;
      std::map<std::string, std::unique_ptr<RowSet>> next_set;
      for (const std::string& name : members) {
        for (const RuleDef& d : rules_.rules[name]) {
          std::vector<const Clause*> top;
          bool nested = false;
          TopLevelCalls(d, scc, &top, &nested);
          if (options_.reference || nested) {
            if (top.empty() && !nested) continue;
            auto r = EvalBody(d, 1);  // naive: every call sees the full relation
            if (!r.ok()) {
              cleanup();
              return r.status();
            }
            add_new(name, *r, &next, &next_set);
            continue;
          }
          // Semi-naive: one call reads the last round's delta, the others the full relation.
          for (const Clause* occ : top) {
            Relation empty;
            auto dit = delta.find(occ->name);
            if (dit == delta.end() || dit->second.empty()) continue;
            overrides_[occ] = &dit->second;
            auto r = EvalBody(d, 1);
            overrides_.erase(occ);
            if (!r.ok()) {
              cleanup();
              return r.status();
            }
            add_new(name, *r, &next, &next_set);
          }
        }
      }
      delta = std::move(next);
    }
    cleanup();
    rule_indexes_.clear();  // they point into `full`, which goes away
    for (const std::string& name : members) computed_rules_[name] = std::move(full[name]);
    return Status::OK();
  }

  // ---------------------------------------------------------------- :find
  Result<QueryResult> Project(const Relation& w) {
    QueryResult res;
    res.shape = q_.shape;
    res.key_kind = q_.key_kind;
    for (size_t i = 0; i < q_.find.size(); ++i) res.columns.push_back(q_.keys.empty() ? q_.find[i].text : q_.keys[i]);
    std::vector<VarId> vars;
    for (const FindElem& f : q_.find) AddUnique(&vars, f.var);
    for (VarId v : q_.with) AddUnique(&vars, v);
    for (VarId v : vars)
      if (!w.Has(v)) return Status::InvalidArgument("variable " + q_.VarName(v) + " in :find is never bound");
    auto col_of = [&](VarId v) {
      return static_cast<size_t>(std::find(vars.begin(), vars.end(), v) - vars.begin());
    };
    Relation set = ProjectDistinct(w, vars);  // set semantics over find + with vars
    if (!q_.has_aggregates) {
      res.rows.reserve(set.rows());
      for (size_t i = 0; i < set.rows(); ++i) {
        const Value* row = set.Row(i);
        std::vector<Value> out;
        out.reserve(q_.find.size());
        for (const FindElem& f : q_.find) {
          if (f.kind == FindElem::Kind::kPull) {
            CAIRN_ASSIGN_OR_RETURN(Value v, PullCell(f, row[col_of(f.var)]));
            out.push_back(std::move(v));
          } else {
            out.push_back(row[col_of(f.var)]);
          }
        }
        res.rows.push_back(std::move(out));
        if (!Tick()) return CancelStatus();
      }
    } else {
      // Group by the non-aggregate elements; aggregate over the bag of each group.
      std::vector<VarId> group_vars;
      for (const FindElem& f : q_.find)
        if (f.kind != FindElem::Kind::kAggregate) AddUnique(&group_vars, f.var);
      Relation groups;
      groups.vars = group_vars;
      RowSet group_set(&groups);
      std::vector<size_t> group_of(set.rows());
      std::vector<Value> key(group_vars.size());
      for (size_t i = 0; i < set.rows(); ++i) {
        for (size_t k = 0; k < group_vars.size(); ++k) key[k] = set.Row(i)[col_of(group_vars[k])];
        group_of[i] = group_set.FindOrInsert(key.data());
      }
      if (set.rows() == 0 && group_vars.empty()) groups.count = 0;
      for (size_t g = 0; g < groups.rows(); ++g) {
        std::vector<Value> out;
        for (const FindElem& f : q_.find) {
          if (f.kind == FindElem::Kind::kAggregate) {
            std::vector<Value> bag;
            for (size_t i = 0; i < set.rows(); ++i)
              if (group_of[i] == g) bag.push_back(set.Row(i)[col_of(f.var)]);
            const AggregateDef* a = reg_.FindAggregate(f.fn);
            Value v;
            Status st = a->fn(f.const_args, bag, &v);
            if (!st.ok()) return Status(st.code(), st.message() + " in :find " + f.text);
            out.push_back(std::move(v));
          } else if (f.kind == FindElem::Kind::kPull) {
            CAIRN_ASSIGN_OR_RETURN(Value v, PullCell(f, groups.Row(g)[groups.Col(f.var)]));
            out.push_back(std::move(v));
          } else {
            out.push_back(groups.Row(g)[groups.Col(f.var)]);
          }
        }
        res.rows.push_back(std::move(out));
      }
    }
    if (!q_.order_by.empty()) {
      std::stable_sort(res.rows.begin(), res.rows.end(), [&](const auto& a, const auto& b) {
        for (const OrderKey& k : q_.order_by) {
          int c = a[static_cast<size_t>(k.find_index)].Compare(b[static_cast<size_t>(k.find_index)]);
          if (c != 0) return k.descending ? c > 0 : c < 0;
        }
        return false;
      });
    }
    if (q_.offset) {
      size_t off = std::min(res.rows.size(), static_cast<size_t>(*q_.offset));
      res.rows.erase(res.rows.begin(), res.rows.begin() + static_cast<std::ptrdiff_t>(off));
    }
    if (q_.limit && res.rows.size() > static_cast<size_t>(*q_.limit)) res.rows.resize(static_cast<size_t>(*q_.limit));
    if ((q_.shape == QueryResult::Shape::kScalar || q_.shape == QueryResult::Shape::kTuple) && res.rows.size() > 1)
      res.rows.resize(1);
    return res;
  }

  Result<Value> PullCell(const FindElem& f, const Value& e) {
    const Source& s = sources_[f.source];
    EntityId id;
    if (!ToEntity(e, *s.db, &id)) return Value();
    const Edn& pattern = f.pattern_var != kNoVar ? pattern_edns_[f.pattern_var] : f.pattern;
    return Pull(*s.db, pattern, id);
  }

  Query q_;
  const QueryOptions& options_;
  const FunctionRegistry& reg_;
  Explain* explain_;
  std::unique_ptr<RegexCache, void (*)(RegexCache*)> regex_cache_;
  std::map<std::string, Source> sources_;
  std::map<VarId, Edn> pattern_edns_;
  RuleSet rules_;
  std::map<std::string, int> scc_of_;
  std::vector<std::vector<std::string>> sccs_;
  std::map<std::string, Relation> computed_rules_;
  std::map<std::string, Relation*> in_progress_;
  std::map<const Clause*, const Relation*> overrides_;
  std::vector<std::unique_ptr<Clause>> magic_calls_;
  std::map<std::pair<const Relation*, std::vector<int>>, std::unique_ptr<RowIndex>> rule_indexes_;
  int magic_counter_ = 0;
  std::string strategy_;
  uint64_t steps_ = 0;
  uint64_t next_check_ = 4096;
  bool cancelled_ = false;
};

}  // namespace

Result<QueryResult> RunQuery(const Edn& query, const std::vector<Input>& inputs, const QueryOptions& options,
                             Explain* explain) {
  CAIRN_ASSIGN_OR_RETURN(Query q, ParseQuery(query));
  Engine engine(std::move(q), options, explain);
  return engine.Run(inputs);
}

Result<QueryResult> RunQuery(std::string_view query, const std::vector<Input>& inputs, const QueryOptions& options,
                             Explain* explain) {
  CAIRN_ASSIGN_OR_RETURN(Edn edn, ReadEdn(query));
  return RunQuery(edn, inputs, options, explain);
}

Result<std::vector<Input>> BindApiInputs(const Edn& query, const IndexSource* db, std::vector<Edn> args) {
  CAIRN_ASSIGN_OR_RETURN(Query q, ParseQuery(query));
  std::vector<Input> inputs;
  size_t next = 0;
  bool db_used = false;
  for (const InElem& in : q.in) {
    // The database goes to `$`, or to the first :in element if that is a source ($db).
    if (in.kind == InElem::Kind::kSource && !db_used && (in.source == "$" || &in == &q.in.front())) {
      inputs.push_back(Input::Db(db));
      db_used = true;
      continue;
    }
    if (next >= args.size())
      return Status::InvalidArgument("query expects " + std::to_string(q.in.size()) + " inputs (:in) but got " +
                                     std::to_string(args.size()) + " arguments");
    inputs.push_back(Input::Data(std::move(args[next++])));
  }
  if (next != args.size())
    return Status::InvalidArgument("query takes " + std::to_string(next) + " arguments but got " +
                                   std::to_string(args.size()));
  return inputs;
}

}  // namespace cairn::datalog
