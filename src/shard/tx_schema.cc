#include "shard/tx_schema.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "shard/tx_value.h"

namespace cairn::shard {

bool SameDefinition(const Attribute& x, const Attribute& y) {
  return x.ident == y.ident && x.value_type == y.value_type && x.cardinality == y.cardinality && x.unique == y.unique &&
         x.indexed == y.indexed && x.is_component == y.is_component && x.declared == y.declared && x.doc == y.doc &&
         x.tuple_attrs == y.tuple_attrs && x.tuple_types == y.tuple_types && x.tuple_type == y.tuple_type;
}

namespace {

using datalog::DatomPattern;
using datalog::IndexSource;

struct Def {
  Keyword key;
  const Edn* value = nullptr;  // null for [:db/retract e key]
  bool added = true;
  const Edn* form = nullptr;
};

// The :db/ident of an existing entity, if any.
Result<std::optional<Keyword>> IdentOf(const IndexSource& db, EntityId e) {
  std::optional<Keyword> ident;
  DatomPattern p;
  p.e = e;
  p.a = Kws().db_ident;
  p.added = true;
  Status s = db.Scan(p, [&](const Datom& d) {
    if (d.v.type() == ValueType::kKeyword) ident = d.v.as_keyword();
    return false;
  });
  if (!s.ok()) return s;
  return ident;
}

std::string TypeName(const Attribute& a) {
  if (a.value_type == ValueType::kNil) return "untyped";
  return std::string(ValueTypeName(a.value_type));
}

class Planner {
 public:
  Planner(const Edn& tx, const IndexSource& db) : tx_(tx), db_(db), k_(Kws()) {}

  Result<TxSchemaPlan> Run() {
    TxSchemaPlan plan;
    if (!tx_.is(Edn::Kind::kVector) && !tx_.is(Edn::Kind::kList)) return plan;  // the expander reports it
    CollectTempidIdents();
    CAIRN_RETURN_IF_ERROR(CollectDefs());
    const Schema& base = db_.schema();
    // Documentation of an entity that is not (and does not become) an
    // attribute is plain data.
    for (auto it = defs_.begin(); it != defs_.end();) {
      bool doc_only = std::all_of(it->second.begin(), it->second.end(), [&](const Def& d) { return d.key == k_.doc; });
      const Attribute* existing = base.Find(it->first);
      if (doc_only && (existing == nullptr || Schema::IsBuiltin(it->first))) {
        it = defs_.erase(it);
      } else {
        ++it;
      }
    }
    if (defs_.empty()) return plan;
    auto schema = std::make_shared<Schema>(base);
    for (auto& [ident, defs] : defs_) {
      CAIRN_ASSIGN_OR_RETURN(Attribute attr, Build(ident, defs));
      const Attribute* old = base.Find(ident);
      CAIRN_RETURN_IF_ERROR(CheckAgainstData(old, attr, defs.front().form));
      if (old == nullptr || !SameDefinition(*old, attr)) {
        if (old != nullptr) attr.id = old->id;
        plan.changed[ident] = attr;
        schema->Put(attr);
      }
    }
    // Composite tuples refer to other attributes: check them against the
    // final schema.
    for (const auto& [ident, attr] : plan.changed) {
      const Edn* where = defs_[ident].front().form;
      for (Keyword c : attr.tuple_attrs) {
        if (c == ident) {
          return ErrorAt(StatusCode::kInvalidArgument, where,
                         ident.ToString() + " cannot be a component of its own :db/tupleAttrs");
        }
        Attribute ca = schema->Get(c);
        if (!ca.tuple_attrs.empty()) {
          return ErrorAt(
              StatusCode::kInvalidArgument, where,
              ident.ToString() + ": :db/tupleAttrs component " + c.ToString() + " is itself a composite tuple");
        }
        if (ca.is_many()) {
          return ErrorAt(
              StatusCode::kInvalidArgument, where,
              ident.ToString() + ": :db/tupleAttrs component " + c.ToString() + " must have cardinality one");
        }
      }
    }
    if (!plan.changed.empty()) plan.schema = std::move(schema);
    return plan;
  }

 private:
  void CollectTempidIdents() {
    for (const Edn& form : tx_.items) {
      if (form.is(Edn::Kind::kMap)) {
        const Edn* id = nullptr;
        const Edn* ident = nullptr;
        for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
          if (form.items[i].IsKeyword("db/id")) id = &form.items[i + 1];
          if (form.items[i].IsKeyword("db/ident")) ident = &form.items[i + 1];
        }
        if (id != nullptr && ident != nullptr && id->is(Edn::Kind::kString) && ident->is(Edn::Kind::kKeyword)) {
          tempid_ident_.emplace(id->text, Keyword::Intern(ident->text));
        }
      } else if ((form.is(Edn::Kind::kVector) || form.is(Edn::Kind::kList)) && form.items.size() == 4 &&
                 form.items[0].IsKeyword("db/add") && form.items[1].is(Edn::Kind::kString) &&
                 form.items[2].IsKeyword("db/ident") && form.items[3].is(Edn::Kind::kKeyword)) {
        tempid_ident_.emplace(form.items[1].text, Keyword::Intern(form.items[3].text));
      }
    }
  }

  // The ident of the entity written at `node` (an entity position).
  Result<Keyword> IdentAt(const Edn& node, Keyword key) {
    auto missing = [&](const std::string& what) {
      return ErrorAt(StatusCode::kInvalidArgument, &node,
                     key.ToString() + " is asserted on " + what +
                         ", which has no :db/ident; an attribute is an entity with a :db/ident");
    };
    switch (node.kind) {
      case Edn::Kind::kKeyword:
        if (node.text == "db/current-tx") return missing("the transaction entity");
        return Keyword::Intern(node.text);
      case Edn::Kind::kString: {
        auto it = tempid_ident_.find(node.text);
        if (it == tempid_ident_.end()) return missing("tempid " + Snippet(node));
        return it->second;
      }
      case Edn::Kind::kInt: {
        if (node.i <= 0) return missing("entity " + Snippet(node));
        CAIRN_ASSIGN_OR_RETURN(auto ident, IdentOf(db_, EntityId{static_cast<uint64_t>(node.i)}));
        if (!ident) return missing("entity " + Snippet(node));
        return *ident;
      }
      case Edn::Kind::kVector:
      case Edn::Kind::kList:
        if (node.items.size() == 2 && node.items[0].IsKeyword("db/ident") && node.items[1].is(Edn::Kind::kKeyword)) {
          return Keyword::Intern(node.items[1].text);
        }
        if (node.items.size() == 2 && node.items[0].is(Edn::Kind::kKeyword)) {
          Attribute la = db_.schema().Get(Keyword::Intern(node.items[0].text));
          Result<Value> v = ConvertValue(la, node.items[1]);
          if (v.ok()) {
            if (auto e = db_.Lookup(la.ident, *v)) {
              CAIRN_ASSIGN_OR_RETURN(auto ident, IdentOf(db_, *e));
              if (ident) return *ident;
            }
          }
        }
        return missing("lookup ref " + Snippet(node));
      default:
        return missing(Snippet(node));
    }
  }

  Status CollectDefs() {
    for (const Edn& form : tx_.items) {
      if (form.is(Edn::Kind::kMap)) {
        const Edn* id = nullptr;
        const Edn* ident = nullptr;
        std::vector<Def> found;
        for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
          const Edn& key = form.items[i];
          if (!key.is(Edn::Kind::kKeyword)) continue;  // the expander reports it
          if (!key.text.starts_with("db/")) continue;  // schema keys are all :db/*
          if (key.text == "db/id") id = &form.items[i + 1];
          if (key.text == "db/ident") ident = &form.items[i + 1];
          Keyword kw = Keyword::Intern(key.text);
          if (IsSchemaKey(kw)) found.push_back(Def{kw, &form.items[i + 1], true, &form.items[i + 1]});
        }
        if (found.empty()) continue;
        // :db/doc alone documents any entity (the transaction, an enum
        // ident...); it makes nothing an attribute.
        bool doc_only = std::all_of(found.begin(), found.end(), [&](const Def& d) { return d.key == k_.doc; });
        Keyword attr;
        if (ident != nullptr && ident->is(Edn::Kind::kKeyword)) {
          attr = Keyword::Intern(ident->text);
        } else if (id != nullptr) {
          Result<Keyword> r = IdentAt(*id, found.front().key);
          if (!r.ok() && doc_only) continue;
          if (!r.ok()) return r.status();
          attr = *r;
        } else if (doc_only) {
          continue;
        } else {
          return ErrorAt(StatusCode::kInvalidArgument, &form,
                         found.front().key.ToString() +
                             " is given in a map without :db/ident or :db/id; an attribute needs a :db/ident");
        }
        for (Def& d : found) defs_[attr].push_back(d);
      } else if (form.is(Edn::Kind::kVector) || form.is(Edn::Kind::kList)) {
        const auto& it = form.items;
        if (it.size() < 3 || !it[2].is(Edn::Kind::kKeyword) || !it[2].text.starts_with("db/")) continue;
        Keyword key = Keyword::Intern(it[2].text);
        if (!IsSchemaKey(key)) continue;
        bool add = it[0].IsKeyword("db/add");
        bool retract = it[0].IsKeyword("db/retract");
        if (it[0].IsKeyword("db/cas") || it[0].IsKeyword("db.fn/cas")) {
          return ErrorAt(StatusCode::kInvalidArgument, &form,
                         ":db/cas is not supported on schema attribute " + key.ToString());
        }
        if (!add && !retract) continue;
        if ((add && it.size() != 4) || (retract && it.size() != 3 && it.size() != 4)) continue;  // expander reports
        Result<Keyword> r = IdentAt(it[1], key);
        if (!r.ok() && key == k_.doc) continue;
        if (!r.ok()) return r.status();
        Keyword attr = *r;
        defs_[attr].push_back(Def{key, it.size() == 4 ? &it[3] : nullptr, add, &form});
      }
    }
    return Status::OK();
  }

  Result<Attribute> Build(Keyword ident, const std::vector<Def>& defs) {
    const Edn* where = defs.front().form;
    if (Schema::IsBuiltin(ident) || ident.ns() == "db" || ident.ns().starts_with("db.")) {
      return ErrorAt(StatusCode::kInvalidArgument, where,
                     "attribute " + ident.ToString() +
                         " is built in (or in the reserved :db namespace) and cannot be defined or changed");
    }
    const Attribute* old = db_.schema().Find(ident);
    Attribute a = old != nullptr ? *old : Attribute{};
    a.ident = ident;
    a.declared = true;
    for (const Def& d : defs) {
      if (!d.added) {
        if (d.key == k_.unique) {
          a.unique = Uniqueness::kNone;
        } else if (d.key == k_.index) {
          a.indexed = false;
        } else if (d.key == k_.is_component) {
          a.is_component = false;
        } else if (d.key == k_.doc) {
          a.doc.clear();
        } else {
          return ErrorAt(StatusCode::kInvalidArgument, d.form,
                         "cannot retract " + d.key.ToString() + " of attribute " + ident.ToString() +
                             " (only :db/unique, :db/index, :db/isComponent and :db/doc can be retracted)");
        }
        continue;
      }
      CAIRN_ASSIGN_OR_RETURN(Value v, ConvertSchemaValue(d.key, *d.value));
      if (d.key == k_.value_type) {
        a.value_type = Schema::ParseValueType(v.as_keyword()).value();
      } else if (d.key == k_.cardinality) {
        a.cardinality = v.as_keyword() == k_.card_many ? Cardinality::kMany : Cardinality::kOne;
      } else if (d.key == k_.unique) {
        a.unique = v.as_keyword() == k_.unique_identity ? Uniqueness::kIdentity : Uniqueness::kValue;
      } else if (d.key == k_.index) {
        a.indexed = v.as_bool();
      } else if (d.key == k_.is_component) {
        a.is_component = v.as_bool();
      } else if (d.key == k_.doc) {
        a.doc = v.as_string();
      } else if (d.key == k_.tuple_attrs) {
        std::vector<Keyword> ks;
        for (const Value& x : v.as_tuple()) ks.push_back(x.as_keyword());
        if (old != nullptr && !old->tuple_attrs.empty() && old->tuple_attrs != ks) {
          return ErrorAt(StatusCode::kInvalidArgument, d.value,
                         "cannot change :db/tupleAttrs of " + ident.ToString() + " once installed");
        }
        a.tuple_attrs = std::move(ks);
      } else if (d.key == k_.tuple_types) {
        std::vector<ValueType> ts;
        for (const Value& x : v.as_tuple()) ts.push_back(Schema::ParseValueType(x.as_keyword()).value());
        a.tuple_types = std::move(ts);
      } else if (d.key == k_.tuple_type) {
        a.tuple_type = Schema::ParseValueType(v.as_keyword()).value();
      }
    }
    // Definitions that cannot hold whatever the data.
    if (a.is_component && a.value_type != ValueType::kRef) {
      return ErrorAt(
          StatusCode::kInvalidArgument, where,
          ":db/isComponent true requires :db/valueType :db.type/ref, but " + ident.ToString() + " is " + TypeName(a));
    }
    int tuple_kinds =
        (a.tuple_attrs.empty() ? 0 : 1) + (a.tuple_types.empty() ? 0 : 1) + (a.tuple_type == ValueType::kNil ? 0 : 1);
    if (a.value_type == ValueType::kTuple) {
      if (tuple_kinds != 1) {
        return ErrorAt(StatusCode::kInvalidArgument, where,
                       ident.ToString() +
                           " has :db/valueType :db.type/tuple and needs exactly one of :db/tupleAttrs, "
                           ":db/tupleTypes or :db/tupleType");
      }
      if (!a.tuple_attrs.empty() && a.tuple_attrs.size() < 2) {
        return ErrorAt(StatusCode::kInvalidArgument, where,
                       ident.ToString() + ": :db/tupleAttrs needs at least two attributes");
      }
    } else if (tuple_kinds != 0) {
      return ErrorAt(StatusCode::kInvalidArgument, where,
                     ident.ToString() +
                         ": :db/tupleAttrs, :db/tupleTypes and :db/tupleType require :db/valueType "
                         ":db.type/tuple");
    }
    if (!a.tuple_attrs.empty() && a.is_many()) {
      return ErrorAt(StatusCode::kInvalidArgument, where,
                     ident.ToString() + ": a composite tuple must have cardinality one");
    }
    return a;
  }

  // Refuses changes that the stored datoms of the attribute forbid.
  Status CheckAgainstData(const Attribute* old, const Attribute& a, const Edn* where) {
    Attribute before = old != nullptr ? *old : db_.schema().Get(a.ident);
    bool type_changed = before.value_type != a.value_type || before.tuple_types != a.tuple_types ||
                        before.tuple_type != a.tuple_type || before.tuple_attrs != a.tuple_attrs;
    bool to_one = before.is_many() && !a.is_many();
    bool to_unique = before.unique == Uniqueness::kNone && a.unique != Uniqueness::kNone;
    if (!type_changed && !to_one && !to_unique) return Status::OK();

    DatomPattern p;
    p.a = a.ident;
    p.added = true;
    Status problem;
    std::optional<EntityId> prev_e;
    std::map<Value, EntityId> seen;
    Status s = db_.Scan(p, [&](const Datom& d) {
      if (type_changed) {
        if (before.value_type != ValueType::kNil || !a.tuple_attrs.empty()) {
          problem = ErrorAt(StatusCode::kConflict, where,
                            "cannot change :db/valueType of " + a.ident.ToString() + " from " + TypeName(before) +
                                " to " + TypeName(a) + ": the attribute is in use (entity " + std::to_string(d.e.raw) +
                                " has value " + d.v.ToString() + ")");
          return false;
        }
        if (!ValueConforms(a, d.v)) {
          problem = ErrorAt(StatusCode::kConflict, where,
                            "cannot declare " + a.ident.ToString() + " as " + TypeName(a) + ": entity " +
                                std::to_string(d.e.raw) + " already has value " + d.v.ToString() + " of type " +
                                std::string(ValueTypeName(d.v.type())));
          return false;
        }
      }
      if (to_one) {
        if (prev_e && *prev_e == d.e) {
          problem = ErrorAt(StatusCode::kConflict, where,
                            "cannot change " + a.ident.ToString() + " to :db.cardinality/one: entity " +
                                std::to_string(d.e.raw) + " has more than one value");
          return false;
        }
        prev_e = d.e;
      }
      if (to_unique) {
        auto [it, inserted] = seen.emplace(d.v, d.e);
        if (!inserted && it->second != d.e) {
          problem =
              ErrorAt(StatusCode::kConflict, where,
                      "cannot make " + a.ident.ToString() + " unique: value " + d.v.ToString() +
                          " is held by entities " + std::to_string(it->second.raw) + " and " + std::to_string(d.e.raw));
          return false;
        }
      }
      return true;
    });
    if (!s.ok()) return s;
    return problem;
  }

  const Edn& tx_;
  const IndexSource& db_;
  const TxKeywords& k_;
  std::map<std::string, Keyword> tempid_ident_;
  std::map<Keyword, std::vector<Def>> defs_;
};

}  // namespace

Result<TxSchemaPlan> TxSchemaPlanner::Plan(const Edn& tx_data, const datalog::IndexSource& db) {
  return Planner(tx_data, db).Run();
}

}  // namespace cairn::shard
