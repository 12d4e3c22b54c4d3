#include "core/schema.h"

#include <algorithm>
#include <array>

#include "core/check.h"

namespace cairn {

namespace {

struct BuiltinSpec {
  const char* ident;
  ValueType type;
  Uniqueness unique;
  bool indexed;
  ValueType tuple_type;
  const char* doc;
};

// The built-in attributes, in the order that fixes their entity ids: the
// i-th (0-based) is EntityId::Make(kSystemPartition, i + 1). Never reorder;
// append only (stored datoms name attributes by these ids).
constexpr std::array<BuiltinSpec, 12> kBuiltins = {{
    {"db/ident", ValueType::kKeyword, Uniqueness::kIdentity, true, ValueType::kNil,
     "The unique keyword name of an entity (attributes, enum values)."},
    {"db/valueType", ValueType::kKeyword, Uniqueness::kNone, false, ValueType::kNil,
     "The type of an attribute's values, a :db.type/* keyword."},
    {"db/cardinality", ValueType::kKeyword, Uniqueness::kNone, false, ValueType::kNil,
     ":db.cardinality/one or :db.cardinality/many."},
    {"db/unique", ValueType::kKeyword, Uniqueness::kNone, false, ValueType::kNil,
     ":db.unique/identity (upsert) or :db.unique/value."},
    {"db/index", ValueType::kBool, Uniqueness::kNone, false, ValueType::kNil, "Keep an AVET index for the attribute."},
    {"db/isComponent", ValueType::kBool, Uniqueness::kNone, false, ValueType::kNil,
     "The referenced entity is part of this one (retracted with it)."},
    {"db/doc", ValueType::kString, Uniqueness::kNone, false, ValueType::kNil, "Documentation string."},
    {"db/txInstant", ValueType::kInstant, Uniqueness::kNone, true, ValueType::kNil,
     "The wall-clock time of a transaction."},
    {"db/tupleAttrs", ValueType::kTuple, Uniqueness::kNone, false, ValueType::kKeyword,
     "The attributes whose values make up a composite tuple attribute."},
    {"db/tupleTypes", ValueType::kTuple, Uniqueness::kNone, false, ValueType::kKeyword,
     "The value types of a fixed-length heterogeneous tuple attribute."},
    {"db/tupleType", ValueType::kKeyword, Uniqueness::kNone, false, ValueType::kNil,
     "The value type of a variable-length homogeneous tuple attribute."},
    {"db/noHistory", ValueType::kBool, Uniqueness::kNone, false, ValueType::kNil,
     "Do not keep the history of the attribute's values."},
}};

struct Builtins {
  std::array<Keyword, kBuiltins.size()> idents;
  Builtins() {
    for (size_t i = 0; i < kBuiltins.size(); ++i) idents[i] = Keyword::Intern(kBuiltins[i].ident);
  }
};

const Builtins& GetBuiltins() {
  static const Builtins* b = new Builtins;
  return *b;
}

}  // namespace

Schema::Schema() {
  const Builtins& b = GetBuiltins();
  for (size_t i = 0; i < kBuiltins.size(); ++i) {
    const BuiltinSpec& s = kBuiltins[i];
    Attribute a;
    a.ident = b.idents[i];
    a.id = EntityId::Make(EntityId::kSystemPartition, i + 1);
    a.value_type = s.type;
    a.cardinality = Cardinality::kOne;
    a.unique = s.unique;
    a.indexed = s.indexed;
    a.declared = true;
    a.doc = s.doc;
    a.tuple_type = s.tuple_type;
    attrs_.emplace(a.ident, std::move(a));
  }
}

const Attribute* Schema::Find(Keyword ident) const {
  auto it = attrs_.find(ident);
  return it == attrs_.end() ? nullptr : &it->second;
}

Attribute Schema::Get(Keyword ident) const {
  if (const Attribute* a = Find(ident)) return *a;
  Attribute a;
  a.ident = ident;
  return a;  // untyped, cardinality one, not declared
}

bool Schema::IsRef(Keyword ident) const {
  const Attribute* a = Find(ident);
  return a != nullptr && a->is_ref();
}

bool Schema::IsMany(Keyword ident) const {
  const Attribute* a = Find(ident);
  return a != nullptr && a->is_many();
}

bool Schema::IsComponent(Keyword ident) const {
  const Attribute* a = Find(ident);
  return a != nullptr && a->is_component;
}

std::vector<const Attribute*> Schema::CompositesContaining(Keyword ident) const {
  std::vector<const Attribute*> out;
  for (const auto& [k, a] : attrs_) {
    if (std::find(a.tuple_attrs.begin(), a.tuple_attrs.end(), ident) != a.tuple_attrs.end()) out.push_back(&a);
  }
  return out;
}

void Schema::Put(Attribute attr) {
  CAIRN_CHECK_MSG(attr.ident.valid(), "Schema::Put of an attribute without :db/ident");
  attr.declared = true;
  Keyword k = attr.ident;
  attrs_.insert_or_assign(k, std::move(attr));
  ++version_;
}

bool Schema::IsBuiltin(Keyword ident) {
  if (ident.ns() != "db") return false;
  for (Keyword k : GetBuiltins().idents) {
    if (k == ident) return true;
  }
  return false;
}

Result<ValueType> Schema::ParseValueType(Keyword k) {
  static const struct {
    const char* name;
    ValueType type;
  } kTypes[] = {
      {"string", ValueType::kString},   {"long", ValueType::kLong},    {"double", ValueType::kDouble},
      {"float", ValueType::kDouble},    {"boolean", ValueType::kBool}, {"instant", ValueType::kInstant},
      {"keyword", ValueType::kKeyword}, {"ref", ValueType::kRef},      {"uuid", ValueType::kUuid},
      {"bytes", ValueType::kBytes},     {"tuple", ValueType::kTuple},
  };
  if (k.ns() == "db.type") {
    for (const auto& t : kTypes) {
      if (k.name() == t.name) return t.type;
    }
    std::string_view n = k.name();
    if (n == "bigint" || n == "bigdec" || n == "uri" || n == "symbol") {
      return Status::InvalidArgument("unsupported value type " + k.ToString() +
                                     ": Cairn stores :db.type/string, long, double (or float), boolean, instant, "
                                     "keyword, ref, uuid, bytes and tuple");
    }
  }
  return Status::InvalidArgument("unknown value type " + (k.valid() ? k.ToString() : std::string("(none)")) +
                                 " (expected one of :db.type/string, :db.type/long, :db.type/double, "
                                 ":db.type/boolean, :db.type/instant, :db.type/keyword, :db.type/ref, "
                                 ":db.type/uuid, :db.type/bytes, :db.type/tuple)");
}

Keyword Schema::ValueTypeKeyword(ValueType t) {
  switch (t) {
    case ValueType::kString:
      return Keyword::Intern("db.type/string");
    case ValueType::kLong:
      return Keyword::Intern("db.type/long");
    case ValueType::kDouble:
      return Keyword::Intern("db.type/double");
    case ValueType::kBool:
      return Keyword::Intern("db.type/boolean");
    case ValueType::kInstant:
      return Keyword::Intern("db.type/instant");
    case ValueType::kKeyword:
      return Keyword::Intern("db.type/keyword");
    case ValueType::kRef:
      return Keyword::Intern("db.type/ref");
    case ValueType::kUuid:
      return Keyword::Intern("db.type/uuid");
    case ValueType::kBytes:
      return Keyword::Intern("db.type/bytes");
    case ValueType::kTuple:
      return Keyword::Intern("db.type/tuple");
    case ValueType::kNil:
    case ValueType::kMap:
      break;
  }
  return Keyword();
}

Status Schema::CheckValue(const Attribute& attr, const Value& v) {
  auto mismatch = [&](std::string_view expected) {
    return Status::InvalidArgument("attribute " + attr.ident.ToString() + " expects " + std::string(expected) +
                                   ", got " + v.ToString() + " (" + std::string(ValueTypeName(v.type())) + ")");
  };
  if (v.is_nil() || v.type() == ValueType::kMap) {
    return Status::InvalidArgument("attribute " + attr.ident.ToString() + " cannot hold " +
                                   std::string(v.is_nil() ? "nil" : "a map") + " (" + v.ToString() + ")");
  }
  if (attr.value_type == ValueType::kNil) return Status::OK();  // untyped
  if (v.type() != attr.value_type) return mismatch("a " + std::string(ValueTypeName(attr.value_type)));
  if (attr.value_type != ValueType::kTuple) return Status::OK();
  const auto& items = v.as_tuple();
  if (!attr.tuple_attrs.empty()) {
    if (items.size() != attr.tuple_attrs.size()) {
      return mismatch("a tuple of " + std::to_string(attr.tuple_attrs.size()) + " values");
    }
    return Status::OK();
  }
  if (!attr.tuple_types.empty()) {
    if (items.size() != attr.tuple_types.size()) {
      return mismatch("a tuple of " + std::to_string(attr.tuple_types.size()) + " values");
    }
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_nil() && items[i].type() != attr.tuple_types[i]) {
        return mismatch("a " + std::string(ValueTypeName(attr.tuple_types[i])) + " at tuple position " +
                        std::to_string(i));
      }
    }
    return Status::OK();
  }
  if (attr.tuple_type != ValueType::kNil) {
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_nil() && items[i].type() != attr.tuple_type) {
        return mismatch("a tuple of " + std::string(ValueTypeName(attr.tuple_type)) + " values");
      }
    }
  }
  return Status::OK();
}

}  // namespace cairn
