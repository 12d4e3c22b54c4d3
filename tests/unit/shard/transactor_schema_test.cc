// Transactor: schema as data, type validation, tuples.
#include <gtest/gtest.h>

#include "memory_db.h"

namespace cairn::shard {
namespace {

using testing::DataDatoms;
using testing::FailsWith;
using testing::MemoryDb;

TEST(TransactorSchema, InstallsAttributeWithAllKeys) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/ident :user/email :db/valueType :db.type/string
                            :db/cardinality :db.cardinality/one :db/unique :db.unique/identity
                            :db/index true :db/doc "login"}
                           {:db/ident :user/address :db/valueType :db.type/ref :db/isComponent true}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->schema_changes.size(), 2u);
  const Attribute* email = db.schema().Find(Keyword::Intern("user/email"));
  ASSERT_NE(email, nullptr);
  EXPECT_EQ(email->value_type, ValueType::kString);
  EXPECT_EQ(email->cardinality, Cardinality::kOne);
  EXPECT_EQ(email->unique, Uniqueness::kIdentity);
  EXPECT_TRUE(email->indexed);
  EXPECT_TRUE(email->declared);
  EXPECT_EQ(email->doc, "login");
  EXPECT_TRUE(email->id.valid());
  EXPECT_EQ(email->id.partition(), EntityId::kSystemPartition);
  EXPECT_EQ(db.Value1(email->id, "db/ident"), Value::Kw("user/email"));
  EXPECT_EQ(db.Value1(email->id, "db/valueType"), Value::Kw("db.type/string"));
  const Attribute* addr = db.schema().Find(Keyword::Intern("user/address"));
  ASSERT_NE(addr, nullptr);
  EXPECT_TRUE(addr->is_component);
  EXPECT_TRUE(addr->is_ref());
}

TEST(TransactorSchema, ReinstallingSameDefinitionIsRedundant) {
  MemoryDb db;
  const char* def = R"([{:db/ident :user/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}])";
  ASSERT_TRUE(db.Transact(def).ok());
  auto r = db.Transact(def);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(DataDatoms(*r).empty());
  EXPECT_TRUE(r->schema_changes.empty());
}

TEST(TransactorSchema, ChangesAttributeByIdentOrListForm) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/tag :db/valueType :db.type/string}])").ok());
  auto r =
      db.Transact(R"([[:db/add :user/tag :db/cardinality :db.cardinality/many] [:db/add :user/tag :db/doc "tags"]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->schema_changes.size(), 1u);
  EXPECT_TRUE(db.schema().IsMany(Keyword::Intern("user/tag")));
  EXPECT_EQ(db.schema().Find(Keyword::Intern("user/tag"))->doc, "tags");
  // Cardinality one -> many replaced the old value in the same transaction.
  EXPECT_EQ(db.Values(db.schema().Find(Keyword::Intern("user/tag"))->id, "db/cardinality"),
            std::vector<Value>{Value::Kw("db.cardinality/many")});
}

TEST(TransactorSchema, DeclareAndUseInOneTransaction) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/ident :user/age :db/valueType :db.type/long} {:db/id "a" :user/age 4}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "user/age"), Value::Long(4));
  EXPECT_NE(r->tempids.at("a").partition(), EntityId::kSystemPartition);
  auto bad = db.Transact(R"([{:db/ident :user/height :db/valueType :db.type/long} {:db/id "a" :user/height "tall"}])");
  EXPECT_TRUE(FailsWith(bad, StatusCode::kInvalidArgument, {"1:", ":user/height", "\"tall\"", "long"}));
}

TEST(TransactorSchema, UndeclaredAttributesAreUntypedCardinalityOne) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "a" :thing/x 1} {:db/id "b" :thing/x "one"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "thing/x"), Value::Long(1));
  EXPECT_EQ(db.Value1(r->tempids.at("b"), "thing/x"), Value::String("one"));
  // cardinality one: a second value replaces the first
  auto r2 = db.Transact("[[:db/add " + std::to_string(r->tempids.at("a").raw) + " :thing/x 2]]");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(db.Values(r->tempids.at("a"), "thing/x"), std::vector<Value>{Value::Long(2)});
}

struct TypeCase {
  const char* type;
  const char* good;
  const char* bad;
  Value expected;
};

TEST(TransactorSchema, ValidatesEveryValueType) {
  std::vector<TypeCase> cases = {
      {"string", R"("s")", "1", Value::String("s")},
      {"long", "42", R"("42")", Value::Long(42)},
      {"double", "1.5", R"("1.5")", Value::Double(1.5)},
      {"boolean", "true", "1", Value::Bool(true)},
      {"instant", R"(#inst "2024-01-02T03:04:05Z")", "1", Value::Instant(1704164645000)},
      {"keyword", ":k/w", R"("k")", Value::Kw("k/w")},
      {"uuid", R"(#uuid "00000000-0000-0000-0000-000000000001")", R"("x")", Value::UuidValue(Uuid{0, 1})},
  };
  for (const TypeCase& c : cases) {
    MemoryDb db;
    std::string attr = std::string(":v/") + c.type;
    ASSERT_TRUE(db.Transact("[{:db/ident " + attr + " :db/valueType :db.type/" + c.type + "}]").ok()) << c.type;
    auto r = db.Transact("[{:db/id \"a\" " + attr + " " + c.good + "}]");
    ASSERT_TRUE(r.ok()) << c.type << ": " << r.status().ToString();
    EXPECT_EQ(db.Value1(r->tempids.at("a"), attr.substr(1)), c.expected) << c.type;
    auto bad = db.Transact("[\n [:db/add \"a\" " + attr + " " + c.bad + "]]");
    EXPECT_TRUE(FailsWith(bad, StatusCode::kInvalidArgument, {"2:", attr, c.bad})) << c.type;
  }
}

TEST(TransactorSchema, DoubleAcceptsIntegerLiteral) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :v/d :db/valueType :db.type/double}])").ok());
  auto r = db.Transact(R"([{:db/id "a" :v/d 2}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "v/d"), Value::Double(2.0));
}

TEST(TransactorSchema, RejectsMalformedDefinitions) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/valueType :db.type/strin}])"), StatusCode::kInvalidArgument,
                        {"1:32", ":db/valueType", ":db.type/strin"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/cardinality :many}])"), StatusCode::kInvalidArgument,
                        {":db/cardinality", ":db.cardinality/one"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/unique true}])"), StatusCode::kInvalidArgument,
                        {":db/unique", ":db.unique/identity"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/valueType :db.type/string :db/isComponent true}])"),
                        StatusCode::kInvalidArgument, {":db/isComponent", ":a/b"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/index "yes"}])"), StatusCode::kInvalidArgument,
                        {":db/index", "true or false"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "x" :db/valueType :db.type/string}])"), StatusCode::kInvalidArgument,
                        {"1:10", ":db/valueType", ":db/ident"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :db/mine :db/valueType :db.type/string}])"),
                        StatusCode::kInvalidArgument, {":db/mine", "reserved"}));
  EXPECT_TRUE(db.schema().Find(Keyword::Intern("a/b")) == nullptr);
}

TEST(TransactorSchema, RefusesValueTypeChangeOfAttributeInUse) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/age :db/valueType :db.type/long}])").ok());
  // Unused: a change is fine.
  ASSERT_TRUE(db.Transact(R"([[:db/add :user/age :db/valueType :db.type/string]])").ok());
  ASSERT_TRUE(db.Transact(R"([{:db/id "a" :user/age "old"}])").ok());
  auto r = db.Transact(R"([[:db/add :user/age :db/valueType :db.type/long]])");
  EXPECT_TRUE(FailsWith(r, StatusCode::kConflict, {"1:", ":user/age", "in use", "string", "long"}));
  EXPECT_EQ(db.schema().Find(Keyword::Intern("user/age"))->value_type, ValueType::kString);
}

TEST(TransactorSchema, TypingAnUntypedAttributeChecksStoredValues) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/id "a" :item/n 1} {:db/id "b" :item/s "x"}])").ok());
  ASSERT_TRUE(db.Transact(R"([{:db/ident :item/n :db/valueType :db.type/long}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :item/s :db/valueType :db.type/long}])"), StatusCode::kConflict,
                        {":item/s", "\"x\""}));
}

TEST(TransactorSchema, CardinalityManyToOneNeedsSingleValues) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/tag :db/cardinality :db.cardinality/many}])").ok());
  ASSERT_TRUE(db.Transact(R"([{:db/id "a" :user/tag ["x" "y"]}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add :user/tag :db/cardinality :db.cardinality/one]])"),
                        StatusCode::kConflict, {":user/tag", "more than one value"}));
}

TEST(TransactorSchema, AddingUniqueNeedsDistinctValues) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/id "a" :user/email "same"} {:db/id "b" :user/email "same"}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :user/email :db/unique :db.unique/value}])"), StatusCode::kConflict,
                        {":user/email", "\"same\""}));
}

TEST(TransactorSchema, RetractingUniqueRemovesIt) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/email :db/unique :db.unique/value}])").ok());
  auto r = db.Transact(R"([[:db/retract :user/email :db/unique :db.unique/value]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.schema().Find(Keyword::Intern("user/email"))->unique, Uniqueness::kNone);
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/retract :user/email :db/valueType :db.type/string]])"),
                        StatusCode::kInvalidArgument, {"cannot retract :db/valueType"}));
}

TEST(TransactorSchema, RefusesRenameAndRetractionOfAttributes) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/name :db/valueType :db.type/string}])").ok());
  EntityId id = db.schema().Find(Keyword::Intern("user/name"))->id;
  EXPECT_TRUE(FailsWith(db.Transact("[[:db/add " + std::to_string(id.raw) + " :db/ident :user/nom]]"),
                        StatusCode::kInvalidArgument, {"rename"}));
  EXPECT_TRUE(FailsWith(db.Transact("[[:db/retractEntity " + std::to_string(id.raw) + "]]"),
                        StatusCode::kInvalidArgument, {"attribute :user/name"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/retract :user/name :db/ident :user/name]])"), StatusCode::kInvalidArgument,
                        {":user/name"}));
}

TEST(TransactorSchema, TupleTypesValidated) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :geo/point :db/valueType :db.type/tuple
                               :db/tupleTypes [:db.type/double :db.type/double]}
                              {:db/ident :user/scores :db/valueType :db.type/tuple :db/tupleType :db.type/long}])")
                  .ok());
  auto r = db.Transact(R"([{:db/id "a" :geo/point [1.5 2.5] :user/scores [1 2 3]}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "geo/point"), Value::Tuple({Value::Double(1.5), Value::Double(2.5)}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :geo/point [1.5]}])"), StatusCode::kInvalidArgument,
                        {"1:25", ":geo/point", "2 elements"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :geo/point [1.5 "x"]}])"), StatusCode::kInvalidArgument,
                        {"1:30", ":geo/point", "\"x\""}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/scores [1 :two]}])"), StatusCode::kInvalidArgument,
                        {"1:30", ":user/scores", ":two"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/scores 5}])"), StatusCode::kInvalidArgument,
                        {":user/scores", "tuple"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :bad/t :db/valueType :db.type/tuple}])"),
                        StatusCode::kInvalidArgument, {":bad/t", "exactly one of"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :bad/t :db/tupleType :db.type/long}])"),
                        StatusCode::kInvalidArgument, {":bad/t", "require"}));
}

class CompositeTupleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.Transact(R"([{:db/ident :reg/course :db/valueType :db.type/string}
                                 {:db/ident :reg/semester :db/valueType :db.type/long}
                                 {:db/ident :reg/course+semester :db/valueType :db.type/tuple
                                  :db/tupleAttrs [:reg/course :reg/semester]
                                  :db/unique :db.unique/value}])")
                    .ok());
  }
  MemoryDb db_;
};

TEST_F(CompositeTupleTest, MaintainedOnAssertAndChange) {
  auto r = db_.Transact(R"([{:db/id "r" :reg/course "math" :reg/semester 1}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId e = r->tempids.at("r");
  EXPECT_EQ(db_.Value1(e, "reg/course+semester"), Value::Tuple({Value::String("math"), Value::Long(1)}));
  ASSERT_TRUE(db_.Transact("[[:db/add " + std::to_string(e.raw) + " :reg/semester 2]]").ok());
  EXPECT_EQ(db_.Values(e, "reg/course+semester"),
            std::vector<Value>{Value::Tuple({Value::String("math"), Value::Long(2)})});
}

TEST_F(CompositeTupleTest, MissingComponentIsNilAndAllMissingRetracts) {
  auto r = db_.Transact(R"([{:db/id "r" :reg/course "art"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId e = r->tempids.at("r");
  EXPECT_EQ(db_.Value1(e, "reg/course+semester"), Value::Tuple({Value::String("art"), Value()}));
  ASSERT_TRUE(db_.Transact("[[:db/retract " + std::to_string(e.raw) + " :reg/course \"art\"]]").ok());
  EXPECT_TRUE(db_.Values(e, "reg/course+semester").empty());
}

TEST_F(CompositeTupleTest, CannotBeAssertedDirectly) {
  EXPECT_TRUE(FailsWith(db_.Transact(R"([{:db/id "r" :reg/course+semester ["x" 1]}])"), StatusCode::kInvalidArgument,
                        {"1:35", ":reg/course+semester", "composite"}));
}

TEST_F(CompositeTupleTest, UniqueCompositeConflicts) {
  ASSERT_TRUE(db_.Transact(R"([{:db/id "r" :reg/course "math" :reg/semester 1}])").ok());
  EXPECT_TRUE(FailsWith(db_.Transact(R"([{:db/id "q" :reg/course "math" :reg/semester 1}])"), StatusCode::kConflict,
                        {":reg/course+semester", "\"math\""}));
}

TEST_F(CompositeTupleTest, TupleAttrsCannotChange) {
  EXPECT_TRUE(FailsWith(db_.Transact(R"([[:db/add :reg/course+semester :db/tupleAttrs [:reg/semester :reg/course]]])"),
                        StatusCode::kInvalidArgument, {"cannot change :db/tupleAttrs"}));
}

TEST(TransactorSchema, CompositeComponentsMustBeCardinalityOne) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/many :db/cardinality :db.cardinality/many}
                                        {:db/ident :a/t :db/valueType :db.type/tuple :db/tupleAttrs [:a/many :a/x]}])"),
                        StatusCode::kInvalidArgument, {":a/many", "cardinality one"}));
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

TEST(TransactorSchema, DocOnAnyEntityIsPlainData) {
  testing::MemoryDb db;
  auto r = db.Transact(R"([{:db/ident :color/red :db/doc "Red"} [:db/add "datomic.tx" :db/doc "why"]
                           {:db/id "x" :db/doc "an entity" :item/n 1}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->schema_changes.empty());
  EXPECT_EQ(db.schema().Find(Keyword::Intern("color/red")), nullptr);
  EXPECT_EQ(db.Value1(EntityId::ForTx(r->t), "db/doc"), Value::String("why"));
  EXPECT_EQ(db.Value1(r->tempids.at("x"), "db/doc"), Value::String("an entity"));
  // ...but documents an attribute once it is one.
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/name :db/valueType :db.type/string}])").ok());
  auto r2 = db.Transact(R"([[:db/add :user/name :db/doc "The name"]])");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->schema_changes.size(), 1u);
  EXPECT_EQ(db.schema().Find(Keyword::Intern("user/name"))->doc, "The name");
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

TEST(TransactorSchema, AcceptsLegacyDatomicSchemaMaps) {
  testing::MemoryDb db;
  auto r = db.Transact(R"([{:db/id #db/id[:db.part/db] :db/ident :legacy/name :db/valueType :db.type/string
                            :db/cardinality :db.cardinality/one :db.install/_attribute :db.part/db}
                           {:db/id #db/id[:db.part/user -1] :legacy/name "x"}
                           [:db/add #db/id[:db.part/user -1] :legacy/n 2]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_NE(db.schema().Find(Keyword::Intern("legacy/name")), nullptr);
  EntityId e = r->tempids.at("#db/id -1");
  EXPECT_EQ(db.Value1(e, "legacy/name"), Value::String("x"));
  EXPECT_EQ(db.Value1(e, "legacy/n"), Value::Long(2));
}

}  // namespace
}  // namespace cairn::shard
