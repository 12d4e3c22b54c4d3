#include "shard/tx_value.h"

#include <cctype>
#include <string>

namespace cairn::shard {

const TxKeywords& Kws() {
  static const TxKeywords k = [] {
    TxKeywords x;
    auto kw = [](std::string_view s) { return Keyword::Intern(s); };
    x.db_id = kw("db/id");
    x.db_ident = kw("db/ident");
    x.value_type = kw("db/valueType");
    x.cardinality = kw("db/cardinality");
    x.unique = kw("db/unique");
    x.index = kw("db/index");
    x.is_component = kw("db/isComponent");
    x.doc = kw("db/doc");
    x.tuple_attrs = kw("db/tupleAttrs");
    x.tuple_types = kw("db/tupleTypes");
    x.tuple_type = kw("db/tupleType");
    x.tx_instant = kw("db/txInstant");
    x.partition = kw("db/partition");
    x.current_tx = kw("db/current-tx");
    x.add = kw("db/add");
    x.retract = kw("db/retract");
    x.cas = kw("db/cas");
    x.cas_fn = kw("db.fn/cas");
    x.retract_entity = kw("db/retractEntity");
    x.retract_entity_fn = kw("db.fn/retractEntity");
    x.card_one = kw("db.cardinality/one");
    x.card_many = kw("db.cardinality/many");
    x.unique_identity = kw("db.unique/identity");
    x.unique_value = kw("db.unique/value");
    return x;
  }();
  return k;
}

bool IsSchemaKey(Keyword k) {
  const TxKeywords& x = Kws();
  return k == x.value_type || k == x.cardinality || k == x.unique || k == x.index || k == x.is_component ||
         k == x.doc || k == x.tuple_attrs || k == x.tuple_types || k == x.tuple_type;
}

Status ErrorAt(StatusCode code, const Edn* where, std::string_view message) {
  std::string m;
  if (where != nullptr && where->line > 0) {
    m = where->Where();
    m += ": ";
  }
  m += message;
  return Status(code, std::move(m));
}

Status AddContext(const Status& status, std::string_view context) {
  const std::string& m = status.message();
  size_t i = 0;
  while (i < m.size() && std::isdigit(static_cast<unsigned char>(m[i]))) ++i;
  size_t prefix = 0;
  if (i > 0 && i < m.size() && m[i] == ':') {
    size_t j = i + 1;
    while (j < m.size() && std::isdigit(static_cast<unsigned char>(m[j]))) ++j;
    if (j > i + 1 && m.compare(j, 2, ": ") == 0) prefix = j + 2;
  }
  return Status(status.code(), m.substr(0, prefix) + std::string(context) + ": " + m.substr(prefix));
}

std::string Snippet(const Edn& node) {
  std::string s = WriteEdn(node);
  if (s.size() > 60) {
    s.resize(57);
    s += "...";
  }
  return s;
}

std::string_view EdnKindName(const Edn& node) { return cairn::EdnKindName(node.kind); }

namespace {

Status Mistyped(const Attribute& attr, const Edn& node, std::string_view expected) {
  return ErrorAt(StatusCode::kInvalidArgument, &node,
                 "value " + Snippet(node) + " for " + attr.ident.ToString() + " must be " + std::string(expected) +
                     ", got " + std::string(EdnKindName(node)));
}

// Converts a scalar of a declared type; nullopt-like error if mismatched.
Result<Value> ScalarOf(const Attribute& attr, ValueType t, const Edn& node) {
  using K = Edn::Kind;
  std::string expected = "a " + std::string(ValueTypeName(t));
  switch (t) {
    case ValueType::kBool:
      if (node.is(K::kBool)) return Value::Bool(node.b);
      expected = "a boolean";
      break;
    case ValueType::kLong:
      if (node.is(K::kInt)) return Value::Long(node.i);
      break;
    case ValueType::kDouble:
      if (node.is(K::kFloat)) return Value::Double(node.d);
      if (node.is(K::kInt)) return Value::Double(static_cast<double>(node.i));
      break;
    case ValueType::kInstant:
      if (node.is(K::kInst)) return Value::Instant(node.i);
      expected = "an instant (#inst \"...\")";
      break;
    case ValueType::kString:
      if (node.is(K::kString)) return Value::String(node.text);
      break;
    case ValueType::kKeyword:
      if (node.is(K::kKeyword)) return Value::Kw(Keyword::Intern(node.text));
      break;
    case ValueType::kUuid:
      if (node.is(K::kUuid)) return Value::UuidValue(node.uuid);
      expected = "a uuid (#uuid \"...\")";
      break;
    case ValueType::kBytes:
      if (node.is(K::kTagged) && node.text == "bytes") {
        Result<Value> v = EdnToValue(node);
        if (v.ok()) return v;
        return ErrorAt(StatusCode::kInvalidArgument, &node,
                       "value for " + attr.ident.ToString() + ": " + v.status().message());
      }
      expected = "bytes (#bytes \"base64\")";
      break;
    case ValueType::kRef:
      if (node.is(K::kInt) && node.i > 0) return Value::Ref(EntityId{static_cast<uint64_t>(node.i)});
      expected = "an entity id";
      break;
    default:
      expected = "a " + std::string(ValueTypeName(t));
      break;
  }
  return Mistyped(attr, node, expected);
}

Result<Value> TupleOf(const Attribute& attr, const Edn& node) {
  if (!attr.tuple_attrs.empty()) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   attr.ident.ToString() +
                       " is a composite tuple (:db/tupleAttrs); it is maintained automatically and cannot be asserted");
  }
  if (!node.is(Edn::Kind::kVector)) return Mistyped(attr, node, "a tuple (vector)");
  std::vector<Value> items;
  items.reserve(node.items.size());
  if (!attr.tuple_types.empty() && node.items.size() != attr.tuple_types.size()) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "value " + Snippet(node) + " for " + attr.ident.ToString() + " must be a tuple of " +
                       std::to_string(attr.tuple_types.size()) + " elements, got " + std::to_string(node.items.size()));
  }
  for (size_t i = 0; i < node.items.size(); ++i) {
    const Edn& item = node.items[i];
    if (item.is(Edn::Kind::kNil)) {
      items.emplace_back();
      continue;
    }
    ValueType t = !attr.tuple_types.empty() ? attr.tuple_types[i] : attr.tuple_type;
    if (t == ValueType::kNil) {
      Result<Value> v = EdnToValue(item);
      if (!v.ok()) return v.status();
      items.push_back(std::move(v).value());
      continue;
    }
    Result<Value> v = ScalarOf(attr, t, item);
    if (!v.ok()) return v.status();
    items.push_back(std::move(v).value());
  }
  return Value::Tuple(std::move(items));
}

}  // namespace

Result<Value> ConvertValue(const Attribute& attr, const Edn& node) {
  if (IsSchemaKey(attr.ident)) return ConvertSchemaValue(attr.ident, node);
  if (node.is(Edn::Kind::kNil)) {
    return ErrorAt(StatusCode::kInvalidArgument, &node, "nil is not a valid value for " + attr.ident.ToString());
  }
  if (attr.value_type == ValueType::kTuple) return TupleOf(attr, node);
  if (attr.value_type != ValueType::kNil) return ScalarOf(attr, attr.value_type, node);
  // Untyped: anything a datom can hold.
  if (node.is(Edn::Kind::kMap)) {
    return ErrorAt(
        StatusCode::kInvalidArgument, &node,
        "a map is not a valid value for " + attr.ident.ToString() + " (nested maps need a :db.type/ref attribute)");
  }
  Result<Value> v = EdnToValue(node);
  if (!v.ok()) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "value " + Snippet(node) + " for " + attr.ident.ToString() + " is not a valid datom value (" +
                       v.status().message() + ")");
  }
  if (v->type() == ValueType::kMap || v->is_nil()) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "value " + Snippet(node) + " for " + attr.ident.ToString() + " is not a valid datom value");
  }
  return v;
}

Result<Value> ConvertSchemaValue(Keyword key, const Edn& node) {
  const TxKeywords& k = Kws();
  auto bad = [&](std::string_view expected) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "value " + Snippet(node) + " for " + key.ToString() + " must be " + std::string(expected));
  };
  auto type_kw = [&](const Edn& n) -> Result<Value> {
    if (!n.is(Edn::Kind::kKeyword)) return ErrorAt(StatusCode::kInvalidArgument, &n, "");
    Keyword t = Keyword::Intern(n.text);
    Result<ValueType> vt = Schema::ParseValueType(t);
    if (!vt.ok()) return vt.status();
    return Value::Kw(t);
  };
  if (key == k.value_type || key == k.tuple_type) {
    Result<Value> v = type_kw(node);
    if (!v.ok()) return bad("a value type keyword such as :db.type/string, :db.type/long or :db.type/ref");
    if (key == k.tuple_type && Schema::ParseValueType(v->as_keyword()).value() == ValueType::kTuple) {
      return bad("a scalar value type (tuples do not nest)");
    }
    return v;
  }
  if (key == k.cardinality) {
    if (node.IsKeyword("db.cardinality/one") || node.IsKeyword("db.cardinality/many")) {
      return Value::Kw(Keyword::Intern(node.text));
    }
    return bad(":db.cardinality/one or :db.cardinality/many");
  }
  if (key == k.unique) {
    if (node.IsKeyword("db.unique/identity") || node.IsKeyword("db.unique/value")) {
      return Value::Kw(Keyword::Intern(node.text));
    }
    return bad(":db.unique/identity or :db.unique/value");
  }
  if (key == k.index || key == k.is_component) {
    if (node.is(Edn::Kind::kBool)) return Value::Bool(node.b);
    return bad("true or false");
  }
  if (key == k.doc) {
    if (node.is(Edn::Kind::kString)) return Value::String(node.text);
    return bad("a string");
  }
  if (key == k.tuple_attrs || key == k.tuple_types) {
    if (!node.is(Edn::Kind::kVector) || node.items.empty()) {
      return bad(key == k.tuple_attrs ? "a vector of attribute keywords" : "a vector of value type keywords");
    }
    std::vector<Value> items;
    for (const Edn& item : node.items) {
      if (key == k.tuple_attrs) {
        if (!item.is(Edn::Kind::kKeyword)) return bad("a vector of attribute keywords");
        items.push_back(Value::Kw(Keyword::Intern(item.text)));
      } else {
        Result<Value> v = type_kw(item);
        if (!v.ok() || Schema::ParseValueType(v->as_keyword()).value() == ValueType::kTuple) {
          return bad("a vector of scalar value type keywords");
        }
        items.push_back(std::move(v).value());
      }
    }
    return Value::Tuple(std::move(items));
  }
  return bad("a schema value");
}

bool ValueConforms(const Attribute& attr, const Value& v) {
  if (attr.value_type == ValueType::kNil) return true;
  if (v.type() != attr.value_type) return false;
  if (attr.value_type != ValueType::kTuple) return true;
  const auto& items = v.as_tuple();
  if (!attr.tuple_types.empty()) {
    if (items.size() != attr.tuple_types.size()) return false;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_nil() && items[i].type() != attr.tuple_types[i]) return false;
    }
    return true;
  }
  if (attr.tuple_type != ValueType::kNil) {
    for (const Value& x : items) {
      if (!x.is_nil() && x.type() != attr.tuple_type) return false;
    }
  }
  return true;
}

TxSchemaView::TxSchemaView(const Schema& schema) : schema_(schema) {
  for (const auto& [ident, attr] : schema.attributes()) has_composites_ = has_composites_ || !attr.tuple_attrs.empty();
}

TxSchemaView::Entry& TxSchemaView::LookupSlow(Keyword k) {
  auto [it, inserted] = cache_.try_emplace(k);
  if (inserted) {
    it->second.declared = schema_.Find(k);
    it->second.implicit.ident = k;
  }
  return it->second;
}

const Attribute& TxSchemaView::Get(Keyword k) {
  Entry& e = Lookup(k);
  return e.declared != nullptr ? *e.declared : e.implicit;
}

const std::vector<const Attribute*>& TxSchemaView::CompositesContaining(Keyword k) {
  Entry& e = Lookup(k);
  if (!e.composites_known) {
    if (has_composites_) e.composites = schema_.CompositesContaining(k);
    e.composites_known = true;
  }
  return e.composites;
}

}  // namespace cairn::shard
