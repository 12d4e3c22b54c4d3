#include "test_db.h"

#include <algorithm>

#include "datalog/parser.h"

namespace cairn::datalog::testing {

namespace {
Status Err(const Edn& at, const std::string& what) {
  return Status::InvalidArgument(at.Where() + ": " + what + ": " + WriteEdn(at));
}
const Edn* MapGet(const Edn& m, std::string_view key) {
  for (size_t i = 0; i + 1 < m.items.size(); i += 2)
    if (m.items[i].IsKeyword(key)) return &m.items[i + 1];
  return nullptr;
}
}  // namespace

Status TestDb::InstallAttr(Keyword ident, const Edn& props) {
  Attribute a = schema_->Get(ident);
  a.ident = ident;
  a.declared = true;
  for (size_t i = 0; i + 1 < props.items.size(); i += 2) {
    const Edn& k = props.items[i];
    const Edn& v = props.items[i + 1];
    if (k.IsKeyword("db/valueType")) {
      if (!v.is(Edn::Kind::kKeyword)) return Err(v, "bad :db/valueType");
      CAIRN_ASSIGN_OR_RETURN(a.value_type, Schema::ParseValueType(Keyword::Intern(v.text)));
    } else if (k.IsKeyword("db/cardinality")) {
      a.cardinality = v.IsKeyword("db.cardinality/many") ? Cardinality::kMany : Cardinality::kOne;
    } else if (k.IsKeyword("db/unique")) {
      a.unique = v.IsKeyword("db.unique/identity") ? Uniqueness::kIdentity : Uniqueness::kValue;
    } else if (k.IsKeyword("db/index")) {
      a.indexed = v.is(Edn::Kind::kBool) && v.b;
    } else if (k.IsKeyword("db/isComponent")) {
      a.is_component = v.is(Edn::Kind::kBool) && v.b;
    }
  }
  schema_->Put(a);
  return Status::OK();
}

Status TestDb::InstallSchema(const Edn& m) {
  if (!m.is(Edn::Kind::kMap)) return Err(m, "schema must be a map");
  for (size_t i = 0; i + 1 < m.items.size(); i += 2) {
    if (!m.items[i].is(Edn::Kind::kKeyword)) return Err(m.items[i], "schema keys are attribute keywords");
    CAIRN_RETURN_IF_ERROR(InstallAttr(Keyword::Intern(m.items[i].text), m.items[i + 1]));
  }
  return Status::OK();
}

void TestDb::Assert(EntityId e, Keyword a, Value v) {
  auto& cur = Current(e, a);
  if (std::find(cur.begin(), cur.end(), v) != cur.end()) return;  // redundant
  if (!schema_->IsMany(a)) {
    for (const Value& old : cur) log_.push_back(Datom{e, a, old, TxTime{tx_}, false});
    cur.clear();
  }
  cur.push_back(v);
  log_.push_back(Datom{e, a, std::move(v), TxTime{tx_}, true});
}

void TestDb::Retract(EntityId e, Keyword a, const Value& v) {
  auto& cur = Current(e, a);
  auto it = std::find(cur.begin(), cur.end(), v);
  if (it == cur.end()) return;
  cur.erase(it);
  log_.push_back(Datom{e, a, v, TxTime{tx_}, false});
}

Result<EntityId> TestDb::ResolveEntity(const Edn& e, bool allow_new) {
  if (e.is(Edn::Kind::kString) || (e.is(Edn::Kind::kInt) && e.i < 0)) {
    std::string key = e.is(Edn::Kind::kString) ? e.text : std::to_string(e.i);
    auto it = tempids_.find(key);
    if (it != tempids_.end()) return it->second;
    if (!allow_new) return Err(e, "unknown tempid");
    EntityId id{next_entity_++};
    tempids_[key] = id;
    return id;
  }
  if (e.is(Edn::Kind::kInt)) {
    next_entity_ = std::max(next_entity_, static_cast<uint64_t>(e.i) + 1);
    return EntityId{static_cast<uint64_t>(e.i)};
  }
  if (e.is(Edn::Kind::kVector) && e.items.size() == 2 && e.items[0].is(Edn::Kind::kKeyword)) {
    CAIRN_ASSIGN_OR_RETURN(Value v, ConstantToValue(e.items[1]));
    Keyword a = Keyword::Intern(e.items[0].text);
    for (const auto& [key, vals] : current_)
      if (key.second == a && std::find(vals.begin(), vals.end(), v) != vals.end()) return EntityId{key.first};
    return Err(e, "lookup ref not found");
  }
  if (e.is(Edn::Kind::kKeyword)) {
    Value v = Value::Kw(e.text);
    Keyword a = Keyword::Intern("db/ident");
    for (const auto& [key, vals] : current_)
      if (key.second == a && std::find(vals.begin(), vals.end(), v) != vals.end()) return EntityId{key.first};
    return Err(e, "unknown ident");
  }
  return Err(e, "not an entity reference");
}

Status TestDb::AddValue(EntityId e, Keyword a, const Edn& v) {
  bool many = schema_->IsMany(a);
  bool ref = schema_->IsRef(a);
  if (many && (v.is(Edn::Kind::kVector) || v.is(Edn::Kind::kSet) || v.is(Edn::Kind::kList)) &&
      !(ref && v.is(Edn::Kind::kVector) && v.items.size() == 2 && v.items[0].is(Edn::Kind::kKeyword))) {
    for (const Edn& x : v.items) CAIRN_RETURN_IF_ERROR(AddValue(e, a, x));
    return Status::OK();
  }
  if (ref) {
    EntityId target;
    if (v.is(Edn::Kind::kMap)) {
      CAIRN_ASSIGN_OR_RETURN(target, AddMap(v));
    } else {
      CAIRN_ASSIGN_OR_RETURN(target, ResolveEntity(v, true));
    }
    Assert(e, a, Value::Ref(target));
    return Status::OK();
  }
  CAIRN_ASSIGN_OR_RETURN(Value val, ConstantToValue(v));
  Assert(e, a, std::move(val));
  return Status::OK();
}

Result<EntityId> TestDb::AddMap(const Edn& m) {
  const Edn* id = MapGet(m, "db/id");
  const Edn* ident = MapGet(m, "db/ident");
  if (ident != nullptr && (MapGet(m, "db/valueType") || MapGet(m, "db/cardinality") || MapGet(m, "db/unique")))
    CAIRN_RETURN_IF_ERROR(InstallAttr(Keyword::Intern(ident->text), m));
  // Upsert: a :db.unique/identity value names an existing entity.
  std::optional<EntityId> found;
  for (size_t i = 0; i + 1 < m.items.size(); i += 2) {
    const Edn& k = m.items[i];
    if (!k.is(Edn::Kind::kKeyword)) return Err(k, "map keys are attributes");
    const Attribute* at = schema_->Find(Keyword::Intern(k.text));
    if (at == nullptr || at->unique != Uniqueness::kIdentity) continue;
    auto v = ConstantToValue(m.items[i + 1]);
    if (!v.ok()) continue;
    for (const auto& [key, vals] : current_)
      if (key.second == at->ident && std::find(vals.begin(), vals.end(), *v) != vals.end()) found = EntityId{key.first};
  }
  EntityId e;
  if (found) {
    e = *found;
    if (id != nullptr && (id->is(Edn::Kind::kString) || (id->is(Edn::Kind::kInt) && id->i < 0)))
      tempids_[id->is(Edn::Kind::kString) ? id->text : std::to_string(id->i)] = e;
  } else if (id != nullptr) {
    CAIRN_ASSIGN_OR_RETURN(e, ResolveEntity(*id, true));
  } else {
    e = EntityId{next_entity_++};
  }
  for (size_t i = 0; i + 1 < m.items.size(); i += 2) {
    const Edn& k = m.items[i];
    if (k.IsKeyword("db/id")) continue;
    std::string attr = k.text;
    Keyword kw = Keyword::Intern(attr);
    std::string_view name = kw.name();
    if (!name.empty() && name[0] == '_') {  // reverse ref: {:person/_parent child}
      Keyword fwd = Keyword::Intern(std::string(kw.ns()) + (kw.ns().empty() ? "" : "/") + std::string(name.substr(1)));
      const Edn& v = m.items[i + 1];
      std::vector<const Edn*> targets;
      if (v.is(Edn::Kind::kVector) && !(v.items.size() == 2 && v.items[0].is(Edn::Kind::kKeyword))) {
        for (const Edn& x : v.items) targets.push_back(&x);
      } else {
        targets.push_back(&v);
      }
      for (const Edn* t : targets) {
        EntityId src;
        if (t->is(Edn::Kind::kMap)) {
          CAIRN_ASSIGN_OR_RETURN(src, AddMap(*t));
        } else {
          CAIRN_ASSIGN_OR_RETURN(src, ResolveEntity(*t, true));
        }
        Assert(src, fwd, Value::Ref(e));
      }
      continue;
    }
    CAIRN_RETURN_IF_ERROR(AddValue(e, kw, m.items[i + 1]));
  }
  return e;
}

Status TestDb::Transact(const Edn& tx) {
  if (!tx.is(Edn::Kind::kVector) && !tx.is(Edn::Kind::kList)) return Err(tx, "tx-data must be a vector");
  ++tx_;
  for (const Edn& form : tx.items) {
    if (form.is(Edn::Kind::kMap)) {
      CAIRN_RETURN_IF_ERROR(AddMap(form).status());
      continue;
    }
    if (!(form.is(Edn::Kind::kVector) || form.is(Edn::Kind::kList)) || form.items.empty() ||
        !form.items[0].is(Edn::Kind::kKeyword))
      return Err(form, "unknown tx form");
    const std::string& op = form.items[0].text;
    if (op == "db/add" || op == "db/retract") {
      if (form.items.size() != 4) return Err(form, op + " takes e a v");
      CAIRN_ASSIGN_OR_RETURN(EntityId e, ResolveEntity(form.items[1], op == "db/add"));
      if (!form.items[2].is(Edn::Kind::kKeyword)) return Err(form.items[2], "attribute must be a keyword");
      Keyword a = Keyword::Intern(form.items[2].text);
      if (op == "db/add") {
        CAIRN_RETURN_IF_ERROR(AddValue(e, a, form.items[3]));
      } else {
        Value v;
        if (schema_->IsRef(a)) {
          CAIRN_ASSIGN_OR_RETURN(EntityId t, ResolveEntity(form.items[3], false));
          v = Value::Ref(t);
        } else {
          CAIRN_ASSIGN_OR_RETURN(v, ConstantToValue(form.items[3]));
        }
        Retract(e, a, v);
      }
    } else if (op == "db/retractEntity") {
      if (form.items.size() != 2) return Err(form, "retractEntity takes e");
      CAIRN_ASSIGN_OR_RETURN(EntityId e, ResolveEntity(form.items[1], false));
      std::vector<std::pair<std::pair<uint64_t, Keyword>, Value>> doomed;
      for (const auto& [key, vals] : current_) {
        for (const Value& v : vals) {
          if (key.first == e.raw || (v.type() == ValueType::kRef && v.as_ref() == e)) doomed.push_back({key, v});
        }
      }
      for (const auto& [key, v] : doomed) Retract(EntityId{key.first}, key.second, v);
    } else {
      return Err(form, "unknown operation");
    }
  }
  return Status::OK();
}

Status TestDb::Transact(std::string_view tx_edn) {
  CAIRN_ASSIGN_OR_RETURN(Edn e, ReadEdn(tx_edn));
  return Transact(e);
}

std::shared_ptr<MemoryIndex> TestDb::View(MemoryIndex::View view, TxTime t) const {
  return MemoryIndex::FromLog(schema_, log_, view, t);
}

}  // namespace cairn::datalog::testing
