#include "shard/replica_source.h"

#include <optional>
#include <vector>

namespace cairn::shard {

bool ReplicaSource::ToBounds(const datalog::DatomPattern& p, storage::IndexBounds* b) const {
  if (p.added && !*p.added) return false;  // the current view holds assertions only
  if (p.e) b->e = *p.e;
  if (p.a) {
    std::optional<uint32_t> aid = attrs_->Find(*p.a);
    if (!aid) return false;
    b->aid = *aid;
  }
  if (p.v) b->v = &*p.v;
  return true;
}

Status ReplicaSource::Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  storage::IndexBounds b;
  if (!ToBounds(p, &b)) return Status::OK();
  index_->Scan(storage::CurrentIndex::BestOrder(b), b, [&](const storage::IndexEntry& x) {
    if (p.tx && x.tx != *p.tx) return true;
    return fn(Datom{x.e, attrs_->Name(x.aid), x.v, x.tx, true});
  });
  return Status::OK();
}

uint64_t ReplicaSource::EstimateCount(const datalog::DatomPattern& p) const {
  storage::IndexBounds b;
  if (!ToBounds(p, &b)) return 0;
  return index_->CountRange(storage::CurrentIndex::BestOrder(b), b);
}

// The attribute definitions are datoms of entities with :db/ident (in the
// system partition); this mirrors how the embedded Database rebuilds them.
std::shared_ptr<const Schema> LoadSchemaFromIndex(const storage::CurrentIndex& index,
                                                  const storage::AttrTable& attrs) {
  auto schema = std::make_shared<Schema>();
  std::optional<uint32_t> ident_aid = attrs.Find(Keyword::Intern("db/ident"));
  if (!ident_aid) return schema;
  auto keyword_of = [&](const Value& v) -> std::optional<Keyword> {
    if (v.type() == ValueType::kKeyword) return v.as_keyword();
    if (v.type() == ValueType::kRef) {
      storage::IndexBounds b;
      b.e = v.as_ref();
      b.aid = ident_aid;
      std::optional<Keyword> k;
      index.Scan(storage::IndexOrder::kEavt, b, [&](const storage::IndexEntry& x) {
        if (x.v.type() == ValueType::kKeyword) k = x.v.as_keyword();
        return false;
      });
      return k;
    }
    return std::nullopt;
  };
  auto type_of = [&](const Value& v) -> std::optional<ValueType> {
    std::optional<Keyword> k = keyword_of(v);
    if (!k) return std::nullopt;
    auto t = Schema::ParseValueType(*k);
    if (!t.ok()) return std::nullopt;
    return *t;
  };
  std::vector<std::pair<EntityId, Keyword>> idents;
  storage::IndexBounds by_attr;
  by_attr.aid = ident_aid;
  index.Scan(storage::IndexOrder::kAevt, by_attr, [&](const storage::IndexEntry& x) {
    if (x.v.type() == ValueType::kKeyword) idents.emplace_back(x.e, x.v.as_keyword());
    return true;
  });
  for (const auto& [e, ident] : idents) {
    if (Schema::IsBuiltin(ident)) continue;
    Attribute a;
    a.ident = ident;
    a.id = e;
    bool any = false;
    storage::IndexBounds b;
    b.e = e;
    index.Scan(storage::IndexOrder::kEavt, b, [&](const storage::IndexEntry& x) {
      std::string_view name = attrs.Name(x.aid).str();
      const Value& v = x.v;
      if (name == "db/valueType") {
        if (auto t = type_of(v)) a.value_type = *t, any = true;
      } else if (name == "db/cardinality") {
        auto k = keyword_of(v);
        a.cardinality = k && k->str() == "db.cardinality/many" ? Cardinality::kMany : Cardinality::kOne;
        any = true;
      } else if (name == "db/unique") {
        auto k = keyword_of(v);
        a.unique = k && k->str() == "db.unique/identity" ? Uniqueness::kIdentity : Uniqueness::kValue;
        any = true;
      } else if (name == "db/index" && v.type() == ValueType::kBool) {
        a.indexed = v.as_bool(), any = true;
      } else if (name == "db/isComponent" && v.type() == ValueType::kBool) {
        a.is_component = v.as_bool(), any = true;
      } else if (name == "db/doc" && v.type() == ValueType::kString) {
        a.doc = v.as_string(), any = true;
      } else if (name == "db/tupleAttrs" && v.type() == ValueType::kTuple) {
        for (const Value& item : v.as_tuple())
          if (auto k = keyword_of(item)) a.tuple_attrs.push_back(*k);
        any = true;
      } else if (name == "db/tupleTypes" && v.type() == ValueType::kTuple) {
        for (const Value& item : v.as_tuple())
          if (auto t = type_of(item)) a.tuple_types.push_back(*t);
        any = true;
      } else if (name == "db/tupleType") {
        if (auto t = type_of(v)) a.tuple_type = *t, any = true;
      }
      return true;
    });
    if (!any) continue;
    a.declared = true;
    schema->Put(std::move(a));
  }
  return schema;
}

}  // namespace cairn::shard
