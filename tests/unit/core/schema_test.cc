#include "core/schema.h"

#include <gtest/gtest.h>

#include <set>

namespace cairn {
namespace {

Keyword K(std::string_view s) { return Keyword::Intern(s); }

TEST(Schema, HasBuiltinAttributes) {
  Schema s;
  const Attribute* ident = s.Find(K("db/ident"));
  ASSERT_NE(ident, nullptr);
  EXPECT_EQ(ident->value_type, ValueType::kKeyword);
  EXPECT_EQ(ident->unique, Uniqueness::kIdentity);
  EXPECT_TRUE(ident->in_avet());
  EXPECT_TRUE(ident->declared);
  EXPECT_EQ(ident->id, EntityId::Make(EntityId::kSystemPartition, 1));
  struct Want {
    const char* kw;
    ValueType type;
  } wants[] = {{"db/valueType", ValueType::kKeyword}, {"db/cardinality", ValueType::kKeyword},
               {"db/unique", ValueType::kKeyword},    {"db/index", ValueType::kBool},
               {"db/isComponent", ValueType::kBool},  {"db/doc", ValueType::kString},
               {"db/txInstant", ValueType::kInstant}, {"db/tupleAttrs", ValueType::kTuple},
               {"db/tupleTypes", ValueType::kTuple},  {"db/tupleType", ValueType::kKeyword},
               {"db/noHistory", ValueType::kBool}};
  for (const Want& w : wants) {
    const Attribute* a = s.Find(K(w.kw));
    ASSERT_NE(a, nullptr) << w.kw;
    EXPECT_EQ(a->value_type, w.type) << w.kw;
    EXPECT_EQ(a->cardinality, Cardinality::kOne) << w.kw;
    EXPECT_TRUE(Schema::IsBuiltin(K(w.kw))) << w.kw;
    EXPECT_EQ(a->id.partition(), EntityId::kSystemPartition);
    EXPECT_LT(a->id.seq(), Schema::kFirstUserSeq);
  }
  EXPECT_TRUE(s.Find(K("db/txInstant"))->indexed);
  EXPECT_EQ(s.attributes().size(), 12u);
  EXPECT_EQ(s.version(), 0u);
}

TEST(Schema, BuiltinIdsAreDistinctAndStable) {
  Schema s;
  std::set<uint64_t> ids;
  for (const auto& [k, a] : s.attributes()) ids.insert(a.id.raw);
  EXPECT_EQ(ids.size(), s.attributes().size());
  EXPECT_EQ(s.Find(K("db/noHistory"))->id, EntityId::Make(0, 12));
  EXPECT_EQ(s.Find(K("db/txInstant"))->id, EntityId::Make(0, 8));
}

TEST(Schema, IsBuiltinOnlyForDbAttributes) {
  EXPECT_TRUE(Schema::IsBuiltin(K("db/ident")));
  EXPECT_FALSE(Schema::IsBuiltin(K("db/other")));
  EXPECT_FALSE(Schema::IsBuiltin(K("user/ident")));
  EXPECT_FALSE(Schema::IsBuiltin(K("ident")));
  EXPECT_FALSE(Schema::IsBuiltin(Keyword()));
}

TEST(Schema, UndeclaredAttributeIsImplicitUntypedCardinalityOne) {
  Schema s;
  EXPECT_EQ(s.Find(K("user/nick")), nullptr);
  Attribute a = s.Get(K("user/nick"));
  EXPECT_EQ(a.ident, K("user/nick"));
  EXPECT_FALSE(a.declared);
  EXPECT_EQ(a.value_type, ValueType::kNil);
  EXPECT_EQ(a.cardinality, Cardinality::kOne);
  EXPECT_FALSE(s.IsRef(K("user/nick")));
  EXPECT_FALSE(s.IsMany(K("user/nick")));
  EXPECT_FALSE(s.IsComponent(K("user/nick")));
  EXPECT_TRUE(Schema::CheckValue(a, Value::String("x")).ok());
  EXPECT_TRUE(Schema::CheckValue(a, Value::Long(1)).ok());
}

TEST(Schema, PutDeclaresAndBumpsVersion) {
  Schema s;
  Attribute a;
  a.ident = K("person/friend");
  a.id = EntityId::Make(0, 100);
  a.value_type = ValueType::kRef;
  a.cardinality = Cardinality::kMany;
  s.Put(a);
  EXPECT_EQ(s.version(), 1u);
  EXPECT_TRUE(s.IsRef(K("person/friend")));
  EXPECT_TRUE(s.IsMany(K("person/friend")));
  EXPECT_FALSE(s.IsComponent(K("person/friend")));
  EXPECT_TRUE(s.Find(K("person/friend"))->declared);
  Attribute b;
  b.ident = K("order/lines");
  b.value_type = ValueType::kRef;
  b.is_component = true;
  s.Put(b);
  EXPECT_TRUE(s.IsComponent(K("order/lines")));
  // Replacing keeps one entry.
  a.doc = "friends";
  s.Put(a);
  EXPECT_EQ(s.Find(K("person/friend"))->doc, "friends");
  EXPECT_EQ(s.version(), 3u);
  EXPECT_EQ(s.attributes().size(), 14u);
  // Copies are independent (copy-on-write by the owner).
  Schema copy = s;
  Attribute c;
  c.ident = K("x/y");
  copy.Put(c);
  EXPECT_EQ(s.Find(K("x/y")), nullptr);
  EXPECT_NE(copy.Find(K("x/y")), nullptr);
}

TEST(Schema, CompositesContaining) {
  Schema s;
  Attribute ab;
  ab.ident = K("reg/course+semester");
  ab.value_type = ValueType::kTuple;
  ab.tuple_attrs = {K("reg/course"), K("reg/semester")};
  ab.unique = Uniqueness::kIdentity;
  s.Put(ab);
  Attribute bc;
  bc.ident = K("reg/semester+student");
  bc.value_type = ValueType::kTuple;
  bc.tuple_attrs = {K("reg/semester"), K("reg/student")};
  s.Put(bc);
  auto c = s.CompositesContaining(K("reg/course"));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0]->ident, K("reg/course+semester"));
  EXPECT_EQ(s.CompositesContaining(K("reg/semester")).size(), 2u);
  EXPECT_TRUE(s.CompositesContaining(K("reg/other")).empty());
}

TEST(Schema, ParseValueType) {
  struct {
    const char* kw;
    ValueType t;
  } cases[] = {{"db.type/string", ValueType::kString},   {"db.type/long", ValueType::kLong},
               {"db.type/double", ValueType::kDouble},   {"db.type/float", ValueType::kDouble},
               {"db.type/boolean", ValueType::kBool},    {"db.type/instant", ValueType::kInstant},
               {"db.type/keyword", ValueType::kKeyword}, {"db.type/ref", ValueType::kRef},
               {"db.type/uuid", ValueType::kUuid},       {"db.type/bytes", ValueType::kBytes},
               {"db.type/tuple", ValueType::kTuple}};
  for (const auto& c : cases) {
    auto r = Schema::ParseValueType(K(c.kw));
    ASSERT_TRUE(r.ok()) << c.kw;
    EXPECT_EQ(*r, c.t) << c.kw;
    if (std::string_view(c.kw) != "db.type/float") {
      EXPECT_EQ(Schema::ValueTypeKeyword(c.t), K(c.kw));
    }
  }
  auto big = Schema::ParseValueType(K("db.type/bigint"));
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find("unsupported value type :db.type/bigint"), std::string::npos);
  auto bad = Schema::ParseValueType(K("db.type/strin"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown value type :db.type/strin"), std::string::npos);
  EXPECT_FALSE(Schema::ParseValueType(K("string")).ok());
  EXPECT_FALSE(Schema::ParseValueType(Keyword()).ok());
}

TEST(Schema, CheckValueEnforcesDeclaredTypes) {
  Attribute age;
  age.ident = K("person/age");
  age.value_type = ValueType::kLong;
  age.declared = true;
  EXPECT_TRUE(Schema::CheckValue(age, Value::Long(3)).ok());
  Status st = Schema::CheckValue(age, Value::String("x"));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "attribute :person/age expects a long, got \"x\" (string)");
  EXPECT_FALSE(Schema::CheckValue(age, Value()).ok());
  EXPECT_FALSE(Schema::CheckValue(age, Value::Map({})).ok());

  Attribute pair;
  pair.ident = K("geo/point");
  pair.value_type = ValueType::kTuple;
  pair.tuple_types = {ValueType::kDouble, ValueType::kDouble};
  EXPECT_TRUE(Schema::CheckValue(pair, Value::Tuple({Value::Double(1), Value::Double(2)})).ok());
  EXPECT_FALSE(Schema::CheckValue(pair, Value::Tuple({Value::Double(1)})).ok());
  Status st2 = Schema::CheckValue(pair, Value::Tuple({Value::Double(1), Value::Long(2)}));
  EXPECT_NE(st2.message().find("a double at tuple position 1"), std::string::npos) << st2.message();

  Attribute tags;
  tags.ident = K("doc/tags");
  tags.value_type = ValueType::kTuple;
  tags.tuple_type = ValueType::kKeyword;
  EXPECT_TRUE(Schema::CheckValue(tags, Value::Tuple({Value::Kw("a"), Value::Kw("b"), Value::Kw("c")})).ok());
  EXPECT_FALSE(Schema::CheckValue(tags, Value::Tuple({Value::Kw("a"), Value::String("b")})).ok());

  Attribute comp;
  comp.ident = K("reg/a+b");
  comp.value_type = ValueType::kTuple;
  comp.tuple_attrs = {K("reg/a"), K("reg/b")};
  EXPECT_TRUE(Schema::CheckValue(comp, Value::Tuple({Value::Long(1), Value()})).ok());
  EXPECT_FALSE(Schema::CheckValue(comp, Value::Tuple({Value::Long(1)})).ok());
}

}  // namespace
}  // namespace cairn
