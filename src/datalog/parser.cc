#include "datalog/parser.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace cairn::datalog {

std::string Clause::Describe() const {
  return text + " at " + std::to_string(line) + ":" + std::to_string(column);
}

namespace {

Status Err(const Edn& at, const std::string& what) {
  return Status::InvalidArgument(at.Where() + ": " + what + " in " + WriteEdn(at));
}

bool IsVarSym(const Edn& e) { return e.is(Edn::Kind::kSymbol) && !e.text.empty() && e.text[0] == '?'; }
bool IsSrcSym(const Edn& e) { return e.is(Edn::Kind::kSymbol) && !e.text.empty() && e.text[0] == '$'; }

class Parser {
 public:
  explicit Parser(Query& q) : q_(q) {
    for (size_t i = 0; i < q_.var_names.size(); ++i) scope_[q_.var_names[i]] = static_cast<VarId>(i);
  }

  VarId Var(const std::string& name) {
    auto it = scope_.find(name);
    if (it != scope_.end()) return it->second;
    VarId id = static_cast<VarId>(q_.var_names.size());
    q_.var_names.push_back(name);
    scope_[name] = id;
    return id;
  }
  void NewScope() { scope_.clear(); }

  Result<Term> ParseTerm(const Edn& e, bool allow_src) {
    Term t;
    if (IsVarSym(e)) {
      t.kind = Term::Kind::kVar;
      t.var = Var(e.text);
    } else if (e.is(Edn::Kind::kSymbol) && e.text == "_") {
      t.kind = Term::Kind::kBlank;
    } else if (IsSrcSym(e)) {
      if (!allow_src) return Err(e, "unexpected source " + e.text);
      t.kind = Term::Kind::kSource;
      t.source = e.text;
    } else if (e.is(Edn::Kind::kSymbol)) {
      return Err(e, "unexpected symbol " + e.text);
    } else {
      auto v = ConstantToValue(e);
      if (!v.ok()) return v.status();
      t.kind = Term::Kind::kConst;
      t.value = std::move(*v);
    }
    return t;
  }

  Result<Binding> ParseBinding(const Edn& e) {
    Binding b;
    auto var_or_blank = [&](const Edn& x) -> Result<VarId> {
      if (IsVarSym(x)) return Var(x.text);
      if (x.is(Edn::Kind::kSymbol) && x.text == "_") return kNoVar;
      return Err(x, "expected a variable or _ in binding");
    };
    if (IsVarSym(e) || (e.is(Edn::Kind::kSymbol) && e.text == "_")) {
      b.kind = Binding::Kind::kScalar;
      CAIRN_ASSIGN_OR_RETURN(VarId v, var_or_blank(e));
      b.vars.push_back(v);
      return b;
    }
    if (!e.is(Edn::Kind::kVector) || e.items.empty()) return Err(e, "malformed binding");
    if (e.items.size() == 2 && e.items[1].IsSymbol("...")) {
      b.kind = Binding::Kind::kCollection;
      CAIRN_ASSIGN_OR_RETURN(VarId v, var_or_blank(e.items[0]));
      b.vars.push_back(v);
      return b;
    }
    if (e.items.size() == 1 && e.items[0].is(Edn::Kind::kVector)) {
      b.kind = Binding::Kind::kRelation;
      for (const Edn& x : e.items[0].items) {
        CAIRN_ASSIGN_OR_RETURN(VarId v, var_or_blank(x));
        b.vars.push_back(v);
      }
      if (b.vars.empty()) return Err(e, "empty relation binding");
      return b;
    }
    b.kind = Binding::Kind::kTuple;
    for (const Edn& x : e.items) {
      CAIRN_ASSIGN_OR_RETURN(VarId v, var_or_blank(x));
      b.vars.push_back(v);
    }
    return b;
  }

  Result<std::vector<VarId>> ParseVarVector(const Edn& e, std::vector<VarId>* required) {
    std::vector<VarId> out;
    if (!e.is(Edn::Kind::kVector)) return Err(e, "expected a vector of variables");
    for (size_t i = 0; i < e.items.size(); ++i) {
      const Edn& x = e.items[i];
      if (i == 0 && x.is(Edn::Kind::kVector) && required != nullptr) {
        for (const Edn& y : x.items) {
          if (!IsVarSym(y)) return Err(y, "expected a variable");
          out.push_back(Var(y.text));
          required->push_back(out.back());
        }
        continue;
      }
      if (!IsVarSym(x)) return Err(x, "expected a variable");
      out.push_back(Var(x.text));
    }
    return out;
  }

  Status ParseClauses(const std::vector<Edn>& items, size_t from, std::vector<Clause>* out) {
    for (size_t i = from; i < items.size(); ++i) {
      auto c = ParseClause(items[i]);
      if (!c.ok()) return c.status();
      out->push_back(std::move(*c));
    }
    return Status::OK();
  }

  Result<Clause> ParseClause(const Edn& e) {
    Clause c;
    c.text = WriteEdn(e);
    c.line = e.line;
    c.column = e.column;
    if (e.is(Edn::Kind::kVector)) {
      if (e.items.empty()) return Err(e, "empty clause");
      if (e.items[0].is(Edn::Kind::kList)) {
        const Edn& call = e.items[0];
        if (call.items.empty() || !call.items[0].is(Edn::Kind::kSymbol))
          return Err(e, "function expression must start with a symbol");
        c.name = call.items[0].text;
        for (size_t i = 1; i < call.items.size(); ++i) {
          CAIRN_ASSIGN_OR_RETURN(Term t, ParseTerm(call.items[i], true));
          c.terms.push_back(std::move(t));
        }
        if (e.items.size() == 1) {
          c.kind = Clause::Kind::kPredicate;
        } else if (e.items.size() == 2) {
          c.kind = Clause::Kind::kFunction;
          CAIRN_ASSIGN_OR_RETURN(c.binding, ParseBinding(e.items[1]));
        } else {
          return Err(e, "function expression takes one binding");
        }
        return c;
      }
      c.kind = Clause::Kind::kPattern;
      size_t start = 0;
      if (IsSrcSym(e.items[0])) {
        c.source = e.items[0].text;
        start = 1;
      }
      if (e.items.size() - start > 5 || e.items.size() == start) return Err(e, "a data pattern has 1 to 5 elements");
      for (size_t i = start; i < e.items.size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(Term t, ParseTerm(e.items[i], false));
        c.terms.push_back(std::move(t));
      }
      return c;
    }
    if (e.is(Edn::Kind::kList)) {
      if (e.items.empty()) return Err(e, "empty clause");
      size_t start = 0;
      if (IsSrcSym(e.items[0])) {
        c.source = e.items[0].text;
        start = 1;
      }
      if (e.items.size() <= start || !e.items[start].is(Edn::Kind::kSymbol)) return Err(e, "malformed clause");
      const std::string& head = e.items[start].text;
      if (head == "not" || head == "and") {
        c.kind = head == "not" ? Clause::Kind::kNot : Clause::Kind::kAnd;
        c.branches.emplace_back();
        CAIRN_RETURN_IF_ERROR(ParseClauses(e.items, start + 1, &c.branches[0]));
        if (c.branches[0].empty()) return Err(e, "(" + head + ") needs at least one clause");
        return c;
      }
      if (head == "not-join") {
        c.kind = Clause::Kind::kNotJoin;
        if (e.items.size() < start + 3) return Err(e, "not-join needs [vars] and clauses");
        CAIRN_ASSIGN_OR_RETURN(c.join_vars, ParseVarVector(e.items[start + 1], nullptr));
        c.branches.emplace_back();
        CAIRN_RETURN_IF_ERROR(ParseClauses(e.items, start + 2, &c.branches[0]));
        return c;
      }
      if (head == "or" || head == "or-join") {
        size_t first = start + 1;
        if (head == "or-join") {
          c.kind = Clause::Kind::kOrJoin;
          if (e.items.size() < start + 3) return Err(e, "or-join needs [vars] and clauses");
          CAIRN_ASSIGN_OR_RETURN(c.join_vars, ParseVarVector(e.items[start + 1], &c.required_vars));
          first = start + 2;
        } else {
          c.kind = Clause::Kind::kOr;
          if (e.items.size() < start + 2) return Err(e, "or needs clauses");
        }
        for (size_t i = first; i < e.items.size(); ++i) {
          CAIRN_ASSIGN_OR_RETURN(Clause b, ParseClause(e.items[i]));
          if (b.kind == Clause::Kind::kAnd) {
            c.branches.push_back(std::move(b.branches[0]));
          } else {
            c.branches.push_back({});
            c.branches.back().push_back(std::move(b));
          }
        }
        return c;
      }
      c.kind = Clause::Kind::kRule;
      c.name = head;
      for (size_t i = start + 1; i < e.items.size(); ++i) {
        CAIRN_ASSIGN_OR_RETURN(Term t, ParseTerm(e.items[i], false));
        c.terms.push_back(std::move(t));
      }
      return c;
    }
    return Err(e, "a clause must be a vector or a list");
  }

  Result<FindElem> ParseFindElem(const Edn& e) {
    FindElem f;
    f.text = WriteEdn(e);
    if (IsVarSym(e)) {
      f.kind = FindElem::Kind::kVar;
      f.var = Var(e.text);
      return f;
    }
    if (!e.is(Edn::Kind::kList) || e.items.empty() || !e.items[0].is(Edn::Kind::kSymbol))
      return Err(e, "a :find element is a variable, an aggregate or a pull");
    const std::string& head = e.items[0].text;
    if (head == "pull") {
      f.kind = FindElem::Kind::kPull;
      size_t i = 1;
      if (e.items.size() == 4) {
        if (!IsSrcSym(e.items[1])) return Err(e, "pull: expected a source");
        f.source = e.items[1].text;
        i = 2;
      }
      if (e.items.size() - i != 2 || !IsVarSym(e.items[i])) return Err(e, "expected (pull ?e pattern)");
      f.var = Var(e.items[i].text);
      const Edn& pat = e.items[i + 1];
      if (IsVarSym(pat)) {
        f.pattern_var = Var(pat.text);
      } else {
        f.pattern = pat;
      }
      return f;
    }
    f.kind = FindElem::Kind::kAggregate;
    f.fn = head;
    q_.has_aggregates = true;
    bool seen_var = false;
    for (size_t i = 1; i < e.items.size(); ++i) {
      const Edn& x = e.items[i];
      if (IsVarSym(x)) {
        if (seen_var) return Err(e, "an aggregate takes one variable");
        f.var = Var(x.text);
        seen_var = true;
      } else {
        if (seen_var) return Err(e, "an aggregate's variable comes last");
        CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(x));
        f.const_args.push_back(std::move(v));
      }
    }
    if (!seen_var) return Err(e, "an aggregate needs a variable");
    return f;
  }

  Status ParseFind(const std::vector<Edn>& items, const Edn& where) {
    if (items.empty()) return Err(where, ":find needs at least one element");
    if (items.size() == 2 && items[1].IsSymbol(".")) {
      q_.shape = QueryResult::Shape::kScalar;
      CAIRN_ASSIGN_OR_RETURN(FindElem f, ParseFindElem(items[0]));
      q_.find.push_back(std::move(f));
      return Status::OK();
    }
    if (items.size() == 1 && items[0].is(Edn::Kind::kVector)) {
      const auto& v = items[0].items;
      if (v.size() == 2 && v[1].IsSymbol("...")) {
        q_.shape = QueryResult::Shape::kCollection;
        CAIRN_ASSIGN_OR_RETURN(FindElem f, ParseFindElem(v[0]));
        q_.find.push_back(std::move(f));
        return Status::OK();
      }
      if (v.empty()) return Err(items[0], "empty :find tuple");
      q_.shape = QueryResult::Shape::kTuple;
      for (const Edn& x : v) {
        CAIRN_ASSIGN_OR_RETURN(FindElem f, ParseFindElem(x));
        q_.find.push_back(std::move(f));
      }
      return Status::OK();
    }
    q_.shape = QueryResult::Shape::kRelation;
    for (const Edn& x : items) {
      CAIRN_ASSIGN_OR_RETURN(FindElem f, ParseFindElem(x));
      q_.find.push_back(std::move(f));
    }
    return Status::OK();
  }

  Status ParseIn(const std::vector<Edn>& items) {
    for (const Edn& x : items) {
      InElem in;
      if (IsSrcSym(x)) {
        in.kind = InElem::Kind::kSource;
        in.source = x.text;
      } else if (x.IsSymbol("%")) {
        in.kind = InElem::Kind::kRules;
      } else {
        in.kind = InElem::Kind::kBinding;
        CAIRN_ASSIGN_OR_RETURN(in.binding, ParseBinding(x));
      }
      q_.in.push_back(std::move(in));
    }
    return Status::OK();
  }

  Result<int64_t> OneInt(const std::vector<Edn>& items, const Edn& at, const char* what) {
    if (items.size() != 1 || !items[0].is(Edn::Kind::kInt) || items[0].i < 0)
      return Err(at, std::string(what) + " takes one non-negative integer");
    return items[0].i;
  }

  Status ParseQueryForm(const Edn& edn) {
    std::vector<std::pair<std::string, std::vector<Edn>>> sections;
    std::vector<const Edn*> section_at;
    if (edn.is(Edn::Kind::kVector)) {
      for (const Edn& x : edn.items) {
        bool order_dir = !sections.empty() && sections.back().first == "order-by" && (x.text == "asc" || x.text == "desc");
        if (x.is(Edn::Kind::kKeyword) && !order_dir) {
          sections.push_back({x.text, {}});
          section_at.push_back(&x);
        } else {
          if (sections.empty()) return Err(x, "query must start with a keyword like :find");
          sections.back().second.push_back(x);
        }
      }
    } else if (edn.is(Edn::Kind::kMap)) {
      for (size_t i = 0; i + 1 < edn.items.size(); i += 2) {
        const Edn& k = edn.items[i];
        const Edn& v = edn.items[i + 1];
        if (!k.is(Edn::Kind::kKeyword)) return Err(k, "query map keys must be keywords");
        std::vector<Edn> items;
        if (v.is(Edn::Kind::kVector) && k.text != "limit" && k.text != "offset" && k.text != "timeout" &&
            k.text != "order-by") {
          items = v.items;
        } else {
          items.push_back(v);
        }
        if (k.text == "order-by" && v.is(Edn::Kind::kVector)) items = v.items;
        sections.push_back({k.text, std::move(items)});
        section_at.push_back(&k);
      }
    } else {
      return Status::InvalidArgument(edn.Where() + ": a query is a vector or a map");
    }
    bool have_find = false, have_where = false, have_in = false;
    std::set<std::string> seen;
    // :find is parsed after :in/:where so that pull pattern vars resolve in scope; order does
    // not matter for the var table.
    for (size_t s = 0; s < sections.size(); ++s) {
      const auto& [name, items] = sections[s];
      const Edn& at = *section_at[s];
      if (!seen.insert(name).second) return Err(at, "duplicate :" + name);
      if (name == "find") {
        CAIRN_RETURN_IF_ERROR(ParseFind(items, at));
        have_find = true;
      } else if (name == "in") {
        CAIRN_RETURN_IF_ERROR(ParseIn(items));
        have_in = true;
      } else if (name == "where") {
        CAIRN_RETURN_IF_ERROR(ParseClauses(items, 0, &q_.where));
        have_where = true;
      } else if (name == "with") {
        for (const Edn& x : items) {
          if (!IsVarSym(x)) return Err(x, ":with takes variables");
          q_.with.push_back(Var(x.text));
        }
      } else if (name == "keys" || name == "strs" || name == "syms") {
        q_.key_kind = name == "keys"   ? QueryResult::KeyKind::kKeys
                      : name == "strs" ? QueryResult::KeyKind::kStrs
                                       : QueryResult::KeyKind::kSyms;
        for (const Edn& x : items) {
          if (!x.is(Edn::Kind::kSymbol) && !x.is(Edn::Kind::kKeyword) && !x.is(Edn::Kind::kString))
            return Err(x, ":" + name + " takes names");
          q_.keys.push_back(x.text);
        }
      } else if (name == "limit") {
        CAIRN_ASSIGN_OR_RETURN(q_.limit, OneInt(items, at, ":limit"));
      } else if (name == "offset") {
        CAIRN_ASSIGN_OR_RETURN(q_.offset, OneInt(items, at, ":offset"));
      } else if (name == "timeout") {
        CAIRN_ASSIGN_OR_RETURN(q_.timeout_ms, OneInt(items, at, ":timeout"));
      } else if (name == "order-by") {
        for (size_t i = 0; i < items.size(); ++i) {
          if (!IsVarSym(items[i])) return Err(items[i], ":order-by takes variables, each optionally :asc/:desc");
          OrderKey k;
          k.var = Var(items[i].text);
          if (i + 1 < items.size() && items[i + 1].is(Edn::Kind::kKeyword)) {
            if (items[i + 1].text == "desc") {
              k.descending = true;
            } else if (items[i + 1].text != "asc") {
              return Err(items[i + 1], ":order-by direction is :asc or :desc");
            }
            ++i;
          }
          q_.order_by.push_back(k);
        }
      } else {
        return Err(at, "unknown query section :" + name);
      }
    }
    if (!have_find) return Status::InvalidArgument(edn.Where() + ": query has no :find");
    (void)have_where;
    if (!have_in) {
      InElem in;
      in.kind = InElem::Kind::kSource;
      in.source = "$";
      q_.in.push_back(in);
    }
    if (!q_.keys.empty() && q_.keys.size() != q_.find.size())
      return Status::InvalidArgument(edn.Where() + ": :" +
                                     std::string(q_.key_kind == QueryResult::KeyKind::kKeys   ? "keys"
                                                 : q_.key_kind == QueryResult::KeyKind::kStrs ? "strs"
                                                                                              : "syms") +
                                     " has " + std::to_string(q_.keys.size()) + " names but :find has " +
                                     std::to_string(q_.find.size()) + " elements");
    for (OrderKey& k : q_.order_by) {
      for (size_t i = 0; i < q_.find.size(); ++i) {
        if (q_.find[i].kind == FindElem::Kind::kVar && q_.find[i].var == k.var) k.find_index = static_cast<int>(i);
      }
      if (k.find_index < 0)
        return Status::InvalidArgument(edn.Where() + ": :order-by variable " + q_.VarName(k.var) +
                                       " is not in :find");
    }
    return Status::OK();
  }

  Result<RuleSet> ParseRuleSet(const Edn& edn) {
    RuleSet rs;
    if (!edn.is(Edn::Kind::kVector) && !edn.is(Edn::Kind::kList)) return Err(edn, "rules must be a vector");
    for (const Edn& r : edn.items) {
      if (!r.is(Edn::Kind::kVector) || r.items.empty() || !r.items[0].is(Edn::Kind::kList))
        return Err(r, "a rule is [(name ?args...) clauses...]");
      NewScope();
      RuleDef def;
      def.text = WriteEdn(r);
      def.line = r.line;
      def.column = r.column;
      const Edn& head = r.items[0];
      if (head.items.empty() || !head.items[0].is(Edn::Kind::kSymbol)) return Err(head, "rule head needs a name");
      def.name = head.items[0].text;
      for (size_t i = 1; i < head.items.size(); ++i) {
        const Edn& x = head.items[i];
        if (i == 1 && x.is(Edn::Kind::kVector)) {
          for (const Edn& y : x.items) {
            if (!IsVarSym(y)) return Err(y, "rule arguments must be variables");
            def.head.push_back(Var(y.text));
          }
          def.required_count = def.head.size();
          continue;
        }
        if (!IsVarSym(x)) return Err(x, "rule arguments must be variables");
        def.head.push_back(Var(x.text));
      }
      if (def.head.empty()) return Err(head, "a rule needs at least one argument");
      CAIRN_RETURN_IF_ERROR(ParseClauses(r.items, 1, &def.body));
      auto& defs = rs.rules[def.name];
      if (!defs.empty() && defs[0].head.size() != def.head.size())
        return Err(r, "rule " + def.name + " defined with " + std::to_string(def.head.size()) +
                          " arguments, elsewhere with " + std::to_string(defs[0].head.size()));
      defs.push_back(std::move(def));
    }
    return rs;
  }

 private:
  Query& q_;
  std::unordered_map<std::string, VarId> scope_;
};

}  // namespace

Result<Value> ConstantToValue(const Edn& e) {
  switch (e.kind) {
    case Edn::Kind::kList:
    case Edn::Kind::kVector:
    case Edn::Kind::kSet: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const Edn& x : e.items) {
        CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(x));
        items.push_back(std::move(v));
      }
      if (e.is(Edn::Kind::kSet)) std::sort(items.begin(), items.end());
      return Value::Tuple(std::move(items));
    }
    case Edn::Kind::kMap: {
      std::vector<std::pair<Value, Value>> entries;
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        CAIRN_ASSIGN_OR_RETURN(Value k, ConstantToValue(e.items[i]));
        CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(e.items[i + 1]));
        entries.emplace_back(std::move(k), std::move(v));
      }
      return Value::Map(std::move(entries));
    }
    case Edn::Kind::kChar: {
      std::string s;
      char32_t c = e.ch;
      if (c < 0x80) {
        s.push_back(static_cast<char>(c));
      } else if (c < 0x800) {
        s.push_back(static_cast<char>(0xC0 | (c >> 6)));
        s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      } else {
        s.push_back(static_cast<char>(0xE0 | (c >> 12)));
        s.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
        s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
      return Value::String(s);
    }
    case Edn::Kind::kSymbol:
      return Status::InvalidArgument(e.Where() + ": unexpected symbol " + e.text);
    default:
      return EdnToValue(e);
  }
}

Result<Query> ParseQuery(const Edn& edn) {
  Query q;
  Parser p(q);
  CAIRN_RETURN_IF_ERROR(p.ParseQueryForm(edn));
  return q;
}

Result<Query> ParseQuery(std::string_view text) {
  CAIRN_ASSIGN_OR_RETURN(Edn edn, ReadEdn(text));
  return ParseQuery(edn);
}

Result<RuleSet> ParseRules(const Edn& edn, Query& query) {
  Parser p(query);
  return p.ParseRuleSet(edn);
}

}  // namespace cairn::datalog
