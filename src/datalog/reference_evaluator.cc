#include "datalog/reference_evaluator.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "datalog/parser.h"
#include "datalog/pull.h"

namespace cairn::datalog {

namespace {

using Env = std::vector<std::optional<Value>>;
using Tuple = std::vector<Value>;
using VT = ValueType;

Status Unsupported(const std::string& what) {
  return Status::InvalidArgument("reference evaluator does not support " + what);
}

Value Engine(const Value& v) {
  return v.type() == VT::kRef ? Value::Long(static_cast<int64_t>(v.as_ref().raw)) : v;
}

class Reference {
 public:
  Reference(Query q, const FunctionRegistry& reg, uint64_t budget) : q_(std::move(q)), reg_(reg), budget_(budget) {}

  Result<QueryResult> Run(const std::vector<Input>& inputs) {
    if (q_.limit || q_.offset || !q_.order_by.empty()) return Unsupported(":limit/:offset/:order-by");
    if (inputs.size() != q_.in.size()) return Status::InvalidArgument("wrong number of inputs");
    std::vector<Env> envs{Env()};
    for (size_t i = 0; i < inputs.size(); ++i) {
      const InElem& in = q_.in[i];
      if (in.kind == InElem::Kind::kSource) {
        Src s;
        s.db = inputs[i].db;
        if (s.db == nullptr) {
          CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(inputs[i].edn));
          if (v.type() != VT::kTuple) return Status::InvalidArgument("source must be a collection");
          for (const Value& t : v.as_tuple()) {
            if (t.type() != VT::kTuple) return Status::InvalidArgument("source must hold tuples");
            s.tuples.push_back(t.as_tuple());
          }
        }
        srcs_[in.source] = std::move(s);
      } else if (in.kind == InElem::Kind::kRules) {
        CAIRN_ASSIGN_OR_RETURN(rules_, ParseRules(inputs[i].edn, q_));
      } else {
        CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(inputs[i].edn));
        if (in.binding.kind == Binding::Kind::kScalar && in.binding.vars[0] != kNoVar)
          patterns_[in.binding.vars[0]] = inputs[i].edn;
        std::vector<Env> next;
        for (const Env& e : envs) Bind(e, in.binding, v, &next);
        envs = std::move(next);
      }
    }
    CAIRN_ASSIGN_OR_RETURN(envs, Solve(q_.where, std::move(envs)));
    return Project(envs);
  }

 private:
  struct Src {
    const IndexSource* db = nullptr;
    std::vector<Tuple> tuples;
  };

  Env Fresh(const Env& e) {
    Env out = e;
    out.resize(q_.var_names.size());
    return out;
  }
  static bool Has(const Env& e, VarId v) { return v >= 0 && static_cast<size_t>(v) < e.size() && e[v].has_value(); }

  // Unifies a term with a value in env; false on mismatch.
  bool Unify(Env& e, const Term& t, const Value& v) {
    if (t.is_blank()) return true;
    if (t.is_const()) return t.value == v;
    if (Has(e, t.var)) return *e[t.var] == v;
    e[t.var] = v;
    return true;
  }

  // Binds the result of a function or an input to a binding form.
  void Bind(const Env& base, const Binding& b, const Value& v, std::vector<Env>* out) {
    auto bind_tuple = [&](const std::vector<Value>& t) {
      if (t.size() < b.vars.size()) return;
      Env e = Fresh(base);
      for (size_t i = 0; i < b.vars.size(); ++i) {
        if (b.vars[i] == kNoVar) continue;
        if (Has(e, b.vars[i]) && !(*e[b.vars[i]] == t[i])) return;
        e[b.vars[i]] = t[i];
      }
      out->push_back(std::move(e));
    };
    if (v.is_nil()) return;
    switch (b.kind) {
      case Binding::Kind::kScalar:
        bind_tuple({v});
        break;
      case Binding::Kind::kTuple:
        if (v.type() == VT::kTuple) bind_tuple(v.as_tuple());
        break;
      case Binding::Kind::kCollection:
        if (v.type() == VT::kTuple)
          for (const Value& x : v.as_tuple()) bind_tuple({x});
        break;
      case Binding::Kind::kRelation:
        if (v.type() == VT::kTuple)
          for (const Value& t : v.as_tuple())
            if (t.type() == VT::kTuple) bind_tuple(t.as_tuple());
        break;
      default:
        break;
    }
  }

  // Resolves a constant in an entity position (ids, lookup refs, idents).
  std::optional<Value> EntityConst(const IndexSource& db, const Value& v) {
    if (v.type() == VT::kLong) return v;
    if (v.type() == VT::kRef) return Engine(v);
    std::optional<EntityId> e;
    if (v.type() == VT::kKeyword) e = db.Lookup(Keyword::Intern("db/ident"), v);
    if (v.type() == VT::kTuple && v.as_tuple().size() == 2 && v.as_tuple()[0].type() == VT::kKeyword)
      e = db.Lookup(v.as_tuple()[0].as_keyword(), v.as_tuple()[1]);
    if (!e) return std::nullopt;
    return Value::Long(static_cast<int64_t>(e->raw));
  }

  static void Vars(const Clause& c, std::set<VarId>* out) {
    for (const Term& t : c.terms)
      if (t.is_var()) out->insert(t.var);
    for (VarId v : c.binding.vars)
      if (v != kNoVar) out->insert(v);
    if (c.kind == Clause::Kind::kNotJoin || c.kind == Clause::Kind::kOrJoin) {
      out->insert(c.join_vars.begin(), c.join_vars.end());
      return;
    }
    for (const auto& b : c.branches)
      for (const Clause& x : b) Vars(x, out);
  }

  bool Ready(const std::vector<Clause>& cs, const std::vector<bool>& done, size_t i, const Env& probe) {
    const Clause& c = cs[i];
    auto all_bound = [&](const std::vector<VarId>& vs) {
      for (VarId v : vs)
        if (!Has(probe, v)) return false;
      return true;
    };
    switch (c.kind) {
      case Clause::Kind::kPredicate:
      case Clause::Kind::kFunction: {
        std::vector<VarId> vs;
        for (const Term& t : c.terms)
          if (t.is_var()) vs.push_back(t.var);
        return all_bound(vs);
      }
      case Clause::Kind::kNotJoin:
        return all_bound(c.join_vars);
      case Clause::Kind::kOrJoin:
        return all_bound(c.required_vars);
      case Clause::Kind::kNot: {
        std::set<VarId> body, others;
        for (const Clause& x : c.branches[0]) Vars(x, &body);
        for (size_t j = 0; j < cs.size(); ++j)
          if (!done[j] && j != i && cs[j].kind != Clause::Kind::kNot && cs[j].kind != Clause::Kind::kPredicate &&
              cs[j].kind != Clause::Kind::kNotJoin)
            Vars(cs[j], &others);
        for (VarId v : body)
          if (!Has(probe, v) && others.count(v)) return false;
        return true;
      }
      default:
        return true;
    }
  }

  Result<std::vector<Env>> Solve(const std::vector<Clause>& cs, std::vector<Env> envs) {
    for (Env& e : envs) e.resize(q_.var_names.size());
    std::vector<bool> done(cs.size(), false);
    for (size_t n = 0; n < cs.size(); ++n) {
      if (envs.empty()) return envs;
      // The bound set is the same in every environment of a conjunction.
      int pick = -1;
      for (size_t i = 0; i < cs.size() && pick < 0; ++i)
        if (!done[i] && Ready(cs, done, i, envs[0])) pick = static_cast<int>(i);
      if (pick < 0) {
        for (size_t i = 0; i < cs.size(); ++i)
          if (!done[i]) return Status::InvalidArgument("insufficient bindings in " + cs[i].Describe());
      }
      done[static_cast<size_t>(pick)] = true;
      CAIRN_ASSIGN_OR_RETURN(envs, Step(cs[static_cast<size_t>(pick)], std::move(envs)));
    }
    return envs;
  }

  Status Tick() {
    if (budget_ != 0 && ++steps_ > budget_) return Status::Timeout("reference: step budget exceeded");
    return Status::OK();
  }

  Result<std::vector<Env>> Step(const Clause& c, std::vector<Env> envs) {
    std::vector<Env> out;
    switch (c.kind) {
      case Clause::Kind::kPattern: {
        auto it = srcs_.find(c.source);
        if (it == srcs_.end()) return Status::InvalidArgument("unknown source " + c.source);
        std::vector<Tuple> all;  // every fact of the source, as values
        if (it->second.db != nullptr) {
          const IndexSource& db = *it->second.db;
          CAIRN_RETURN_IF_ERROR(db.Scan(DatomPattern{}, [&](const Datom& d) {
            all.push_back({Value::Long(static_cast<int64_t>(d.e.raw)), Value::Kw(d.a), Engine(d.v),
                           Value::Long(static_cast<int64_t>(EntityId::ForTx(d.tx).raw)), Value::Bool(d.added)});
            return true;
          }));
        } else {
          all = it->second.tuples;
        }
        // Constants as the engine reads them (entity ids, lookup refs, idents).
        std::vector<Term> terms = c.terms;
        if (it->second.db != nullptr) {
          const IndexSource& db = *it->second.db;
          bool ref_attr = terms.size() > 1 && terms[1].is_const() && terms[1].value.type() == VT::kKeyword &&
                          db.schema().IsRef(terms[1].value.as_keyword());
          for (size_t p = 0; p < terms.size(); ++p) {
            if (!terms[p].is_const()) continue;
            if (p == 0 || (p == 2 && ref_attr) || p == 3) {
              auto e = EntityConst(db, terms[p].value);
              if (!e) return out;
              terms[p].value = *e;
            }
          }
        }
        const IndexSource* db = it->second.db;
        bool ref_attr = db != nullptr && terms.size() > 1 && terms[1].is_const() &&
                        terms[1].value.type() == VT::kKeyword && db->schema().IsRef(terms[1].value.as_keyword());
        for (const Env& e : envs) {
          // Bound values in entity positions may be lookup refs or idents.
          std::vector<std::optional<Value>> eff(terms.size());
          bool usable = true;
          for (size_t p = 0; p < terms.size() && db != nullptr; ++p) {
            if (!terms[p].is_var() || !Has(e, terms[p].var)) continue;
            if (p == 0 || p == 3 || (p == 2 && ref_attr)) {
              eff[p] = EntityConst(*db, *e[terms[p].var]);
              usable = usable && eff[p].has_value();
            }
          }
          if (!usable) continue;
          for (const Tuple& t : all) {
            CAIRN_RETURN_IF_ERROR(Tick());
            if (t.size() < terms.size()) continue;
            Env n = e;
            bool ok = true;
            for (size_t p = 0; p < terms.size() && ok; ++p) ok = eff[p] ? *eff[p] == t[p] : Unify(n, terms[p], t[p]);
            if (ok) out.push_back(std::move(n));
          }
        }
        return out;
      }
      case Clause::Kind::kPredicate:
      case Clause::Kind::kFunction: {
        const FunctionDef* f = reg_.FindFunction(c.name);
        if (f == nullptr) return Status::InvalidArgument("unknown function '" + c.name + "' in " + c.Describe());
        int n_args = 0;
        for (const Term& t : c.terms) n_args += t.kind == Term::Kind::kSource ? 0 : 1;
        if (n_args < f->min_args || (f->max_args >= 0 && n_args > f->max_args))
          return Status::InvalidArgument("wrong number of arguments to " + c.name + " in " + c.Describe());
        auto cache = MakeRegexCache();
        for (const Env& e : envs) {
          CAIRN_RETURN_IF_ERROR(Tick());
          std::vector<Value> args;
          const IndexSource* src = nullptr;
          for (const Term& t : c.terms) {
            if (t.kind == Term::Kind::kSource) {
              src = srcs_[t.source].db;
            } else if (t.is_blank()) {
              return Status::InvalidArgument("_ is not allowed as a function argument in " + c.Describe());
            } else {
              args.push_back(t.is_const() ? t.value : *e[t.var]);
            }
          }
          if (f->takes_source && src == nullptr) return Status::InvalidArgument(c.name + " takes a source");
          Value r;
          Status st = f->fn(FnArgs{args.data(), args.size(), src, cache.get()}, &r);
          if (!st.ok()) return Status(st.code(), st.message() + " in " + c.Describe());
          if (c.kind == Clause::Kind::kPredicate) {
            if (Truthy(r)) out.push_back(e);
          } else {
            Bind(e, c.binding, r, &out);
          }
        }
        return out;
      }
      case Clause::Kind::kNot:
      case Clause::Kind::kNotJoin: {
        for (const Env& e : envs) {
          Env seed = e;
          if (c.kind == Clause::Kind::kNotJoin) {
            seed.assign(e.size(), std::nullopt);
            for (VarId v : c.join_vars) seed[v] = e[v];
          }
          CAIRN_ASSIGN_OR_RETURN(auto r, Solve(c.branches[0], {seed}));
          if (r.empty()) out.push_back(e);
        }
        return out;
      }
      case Clause::Kind::kOr:
      case Clause::Kind::kOrJoin: {
        std::set<VarId> join;
        if (c.kind == Clause::Kind::kOrJoin) {
          join.insert(c.join_vars.begin(), c.join_vars.end());
        } else {
          for (const auto& b : c.branches)
            for (const Clause& x : b) Vars(x, &join);
        }
        for (const Env& e : envs) {
          Env seed(e.size());
          for (VarId v : join)
            if (Has(e, v)) seed[v] = e[v];
          for (const auto& branch : c.branches) {
            CAIRN_ASSIGN_OR_RETURN(auto r, Solve(branch, {seed}));
            for (const Env& x : r) {
              Env n = e;
              for (VarId v : join) {
                if (!Has(x, v)) return Status::InvalidArgument("insufficient bindings: branch of " + c.Describe());
                n[v] = x[v];
              }
              out.push_back(std::move(n));
            }
          }
        }
        return out;
      }
      case Clause::Kind::kAnd:
        return Solve(c.branches[0], std::move(envs));
      case Clause::Kind::kRule: {
        CAIRN_ASSIGN_OR_RETURN(std::set<Tuple> rel, RuleTuples(c.name));
        for (const Env& e : envs) {
          for (const Tuple& t : rel) {
            CAIRN_RETURN_IF_ERROR(Tick());
            if (t.size() != c.terms.size()) return Status::InvalidArgument("rule arity mismatch in " + c.Describe());
            Env n = e;
            bool ok = true;
            for (size_t p = 0; p < t.size() && ok; ++p) ok = Unify(n, c.terms[p], t[p]);
            if (ok) out.push_back(std::move(n));
          }
        }
        return out;
      }
    }
    return out;
  }

  // Naive fixpoint. A rule that read another rule still being computed is not
  // cached: it is recomputed on the next request, so it sees the final value.
  Result<std::set<Tuple>> RuleTuples(const std::string& name) {
    if (auto d = done_.find(name); d != done_.end()) return d->second;
    if (in_progress_.count(name)) {
      read_in_progress_.insert(name);
      return partial_[name];
    }
    auto defs = rules_.rules.find(name);
    if (defs == rules_.rules.end()) return Status::InvalidArgument("unknown rule '" + name + "'");
    in_progress_.insert(name);
    partial_[name].clear();
    std::set<std::string> saved = std::move(read_in_progress_);
    read_in_progress_.clear();
    for (bool changed = true; changed;) {
      changed = false;
      for (const RuleDef& d : defs->second) {
        auto r = Solve(d.body, {Env()});
        if (!r.ok()) {
          in_progress_.erase(name);
          return r.status();
        }
        for (const Env& e : *r) {
          Tuple t;
          for (VarId h : d.head) {
            if (!Has(e, h)) {
              in_progress_.erase(name);
              return Status::InvalidArgument("rule head variable " + q_.VarName(h) + " is not bound");
            }
            t.push_back(*e[h]);
          }
          changed = partial_[name].insert(std::move(t)).second || changed;
        }
      }
    }
    in_progress_.erase(name);
    read_in_progress_.erase(name);
    std::set<Tuple> result = partial_[name];
    if (read_in_progress_.empty()) done_[name] = result;
    read_in_progress_.insert(saved.begin(), saved.end());
    return result;
  }

  Result<QueryResult> Project(const std::vector<Env>& envs) {
    QueryResult res;
    res.shape = q_.shape;
    res.key_kind = q_.key_kind;
    for (size_t i = 0; i < q_.find.size(); ++i) res.columns.push_back(q_.keys.empty() ? q_.find[i].text : q_.keys[i]);
    std::vector<VarId> vars;
    for (const FindElem& f : q_.find) vars.push_back(f.var);
    for (VarId v : q_.with) vars.push_back(v);
    std::set<Tuple> set;
    for (const Env& e : envs) {
      Tuple t;
      for (VarId v : vars) {
        if (!Has(e, v)) return Status::InvalidArgument("variable " + q_.VarName(v) + " in :find is never bound");
        t.push_back(*e[v]);
      }
      set.insert(std::move(t));
    }
    auto cell = [&](const FindElem& f, const Value& v) -> Result<Value> {
      if (f.kind != FindElem::Kind::kPull) return v;
      const Src& s = srcs_[f.source];
      if (s.db == nullptr || v.type() != VT::kLong) return Value();
      const Edn& pattern = f.pattern_var != kNoVar ? patterns_[f.pattern_var] : f.pattern;
      return Pull(*s.db, pattern, EntityId{static_cast<uint64_t>(v.as_long())});
    };
    if (!q_.has_aggregates) {
      for (const Tuple& t : set) {
        std::vector<Value> row;
        for (size_t i = 0; i < q_.find.size(); ++i) {
          CAIRN_ASSIGN_OR_RETURN(Value v, cell(q_.find[i], t[i]));
          row.push_back(std::move(v));
        }
        res.rows.push_back(std::move(row));
      }
    } else {
      std::map<Tuple, std::vector<const Tuple*>> groups;
      for (const Tuple& t : set) {
        Tuple key;
        for (size_t i = 0; i < q_.find.size(); ++i)
          if (q_.find[i].kind != FindElem::Kind::kAggregate) key.push_back(t[i]);
        groups[key].push_back(&t);
      }
      for (const auto& [key, members] : groups) {
        std::vector<Value> row;
        size_t k = 0;
        for (size_t i = 0; i < q_.find.size(); ++i) {
          const FindElem& f = q_.find[i];
          if (f.kind != FindElem::Kind::kAggregate) {
            CAIRN_ASSIGN_OR_RETURN(Value v, cell(f, key[k++]));
            row.push_back(std::move(v));
            continue;
          }
          const AggregateDef* a = reg_.FindAggregate(f.fn);
          if (a == nullptr) return Status::InvalidArgument("unknown aggregate '" + f.fn + "'");
          if (f.const_args.size() < a->params) return Status::InvalidArgument("aggregate " + f.fn + " needs arguments");
          std::vector<Value> bag;
          for (const Tuple* t : members) bag.push_back((*t)[i]);
          Value v;
          CAIRN_RETURN_IF_ERROR(a->fn(f.const_args, bag, &v));
          row.push_back(std::move(v));
        }
        res.rows.push_back(std::move(row));
      }
    }
    if ((q_.shape == QueryResult::Shape::kScalar || q_.shape == QueryResult::Shape::kTuple) && res.rows.size() > 1)
      res.rows.resize(1);
    return res;
  }

  Query q_;
  const FunctionRegistry& reg_;
  uint64_t budget_;
  uint64_t steps_ = 0;
  std::map<std::string, Src> srcs_;
  std::map<VarId, Edn> patterns_;
  RuleSet rules_;
  std::map<std::string, std::set<Tuple>> done_, partial_;
  std::set<std::string> in_progress_, read_in_progress_;
};

}  // namespace

Result<QueryResult> RunReferenceQuery(const Edn& query, const std::vector<Input>& inputs,
                                      const FunctionRegistry* registry, uint64_t step_budget) {
  CAIRN_ASSIGN_OR_RETURN(Query q, ParseQuery(query));
  Reference r(std::move(q), registry != nullptr ? *registry : FunctionRegistry::Default(), step_budget);
  return r.Run(inputs);
}

}  // namespace cairn::datalog
