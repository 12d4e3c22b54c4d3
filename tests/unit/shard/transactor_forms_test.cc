// Transactor: list forms, map forms, entity positions and the tx entity.
#include <gtest/gtest.h>

#include "memory_db.h"

namespace cairn::shard {
namespace {

using testing::DataDatoms;
using testing::FailsWith;
using testing::MemoryDb;

Value S(const char* s) { return Value::String(s); }

TEST(TransactorForms, ListAddCreatesEntityForTempid) {
  MemoryDb db;
  auto r = db.Transact(R"([[:db/add "a" :user/name "Ann"] [:db/add "a" :user/age 31]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tempids.count("a"), 1u);
  EntityId a = r->tempids.at("a");
  EXPECT_EQ(db.Value1(a, "user/name"), S("Ann"));
  EXPECT_EQ(db.Value1(a, "user/age"), Value::Long(31));
  auto data = DataDatoms(*r);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_TRUE(data[0].added);
  EXPECT_EQ(data[0].a, Keyword::Intern("user/name"));
  EXPECT_EQ(data[0].tx, r->t);
}

TEST(TransactorForms, EveryTransactionGetsTxInstantFirst) {
  MemoryDb db;
  auto r = db.Transact(R"([[:db/add "a" :user/name "Ann"]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_FALSE(r->datoms.empty());
  const Datom& d = r->datoms[0];
  EXPECT_EQ(d.e, EntityId::ForTx(r->t));
  EXPECT_EQ(d.a, Keyword::Intern("db/txInstant"));
  EXPECT_EQ(d.v, Value::Instant(static_cast<int64_t>(r->t.physical_ms())));
}

TEST(TransactorForms, TxInstantFromOptions) {
  TransactorOptions opts;
  opts.tx_instant_ms = 1234;
  MemoryDb db(opts);
  auto r = db.Transact(R"([{:user/name "x"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(EntityId::ForTx(r->t), "db/txInstant"), Value::Instant(1234));
}

TEST(TransactorForms, MetadataOnTransactionEntity) {
  MemoryDb db;
  auto r = db.Transact(
      R"([{:db/id "u" :user/name "Ann"} [:db/add "datomic.tx" :tx/source "import"] {:db/id :db/current-tx :tx/by "u"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId tx = EntityId::ForTx(r->t);
  EXPECT_EQ(db.Value1(tx, "tx/source"), S("import"));
  EXPECT_EQ(db.Value1(tx, "tx/by"), S("u"));  // untyped attribute: a plain string
  EXPECT_EQ(r->tempids.count("datomic.tx"), 0u);
}

TEST(TransactorForms, ExplicitTxInstantReplacesDefault) {
  MemoryDb db;
  auto r = db.Transact(R"([[:db/add "datomic.tx" :db/txInstant #inst "2020-01-01T00:00:00Z"] {:a/b 1}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Values(EntityId::ForTx(r->t), "db/txInstant"), std::vector<Value>{Value::Instant(1577836800000)});
}

TEST(TransactorForms, MapFormWithNestedRefAndComponent) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :order/lines :db/valueType :db.type/ref
                                :db/cardinality :db.cardinality/many :db/isComponent true}
                               {:db/ident :order/customer :db/valueType :db.type/ref}])")
                  .ok());
  auto r = db.Transact(R"([{:db/id "o" :order/id 7
                            :order/customer {:customer/name "Cy"}
                            :order/lines [{:line/sku "A" :line/qty 1} {:line/sku "B" :line/qty 2}]}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId o = r->tempids.at("o");
  auto cust = db.Value1(o, "order/customer");
  ASSERT_TRUE(cust && cust->type() == ValueType::kRef);
  EXPECT_EQ(db.Value1(cust->as_ref(), "customer/name"), S("Cy"));
  auto lines = db.Values(o, "order/lines");
  ASSERT_EQ(lines.size(), 2u);
  std::vector<Value> skus;
  for (const Value& l : lines) skus.push_back(*db.Value1(l.as_ref(), "line/sku"));
  std::sort(skus.begin(), skus.end());
  EXPECT_EQ(skus, (std::vector<Value>{S("A"), S("B")}));
  // Internal tempids of nested maps are not reported.
  EXPECT_EQ(r->tempids.size(), 1u);
}

TEST(TransactorForms, CardinalityManyAcceptsVectorsAndSets) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/tags :db/cardinality :db.cardinality/many
                               :db/valueType :db.type/keyword}])")
                  .ok());
  auto r = db.Transact(R"([{:db/id "a" :user/tags [:x :y]} {:db/id "b" :user/tags #{:z}} {:db/id "c" :user/tags :w}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Values(r->tempids.at("a"), "user/tags").size(), 2u);
  EXPECT_EQ(db.Values(r->tempids.at("b"), "user/tags"), std::vector<Value>{Value::Kw("z")});
  EXPECT_EQ(db.Values(r->tempids.at("c"), "user/tags"), std::vector<Value>{Value::Kw("w")});
}

TEST(TransactorForms, SetForCardinalityOneIsRejected) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "a" :user/name #{"x" "y"}}])");
  EXPECT_TRUE(FailsWith(r, StatusCode::kInvalidArgument, {"1:", ":user/name", "cardinality-one"}));
}

TEST(TransactorForms, UntypedVectorIsATuple) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "a" :pos/xy [1 2]}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "pos/xy"), Value::Tuple({Value::Long(1), Value::Long(2)}));
}

TEST(TransactorForms, ReverseRefsInMaps) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :node/parent :db/valueType :db.type/ref}])").ok());
  auto r = db.Transact(R"([{:db/id "p" :node/name "root" :node/_parent ["c1" "c2"]}
                           {:db/id "c1" :node/name "one"} {:db/id "c2" :node/name "two"}
                           {:db/id "c3" :node/name "three" :node/_parent {:node/name "grandchild"}}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId p = r->tempids.at("p");
  EXPECT_EQ(db.Value1(r->tempids.at("c1"), "node/parent"), Value::Ref(p));
  EXPECT_EQ(db.Value1(r->tempids.at("c2"), "node/parent"), Value::Ref(p));
  auto gc = db.Entid("node/parent", Value::Ref(r->tempids.at("c3")));  // untyped lookup by scan
  ASSERT_TRUE(gc.has_value());
  EXPECT_EQ(db.Value1(*gc, "node/name"), S("grandchild"));
}

TEST(TransactorForms, ReverseRefNeedsRefAttribute) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "p" :node/_parent "c"} {:db/id "c" :node/name "x"}])");
  EXPECT_TRUE(FailsWith(r, StatusCode::kInvalidArgument, {"1:", ":node/_parent", ":node/parent", "ref"}));
}

TEST(TransactorForms, EntityPositionsIdsLookupRefsIdents) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/email :db/valueType :db.type/string
                               :db/unique :db.unique/identity}
                              {:db/ident :color/red}])")
                  .ok());
  auto r1 = db.Transact(R"([{:db/id "a" :user/email "a@x" :user/name "A"}])");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EntityId a = r1->tempids.at("a");
  // integer id
  auto r2 = db.Transact("[[:db/add " + std::to_string(a.raw) + " :user/age 5]]");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(db.Value1(a, "user/age"), Value::Long(5));
  // lookup ref
  ASSERT_TRUE(db.Transact(R"([[:db/add [:user/email "a@x"] :user/age 6]])").ok());
  EXPECT_EQ(db.Value1(a, "user/age"), Value::Long(6));
  // ident keyword as an entity
  auto red = db.Entid("db/ident", Value::Kw("color/red"));
  ASSERT_TRUE(red.has_value());
  ASSERT_TRUE(db.Transact(R"([[:db/add :color/red :color/hex "#f00"]])").ok());
  EXPECT_EQ(db.Value1(*red, "color/hex"), S("#f00"));
  // lookup ref in a map's :db/id
  ASSERT_TRUE(db.Transact(R"([{:db/id [:user/email "a@x"] :user/name "Ay"}])").ok());
  EXPECT_EQ(db.Value1(a, "user/name"), S("Ay"));
}

TEST(TransactorForms, RefValuesMayBeIdsTempidsLookupRefsOrIdents) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/email :db/valueType :db.type/string :db/unique :db.unique/identity}
                              {:db/ident :user/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}
                              {:db/ident :user/color :db/valueType :db.type/ref}
                              {:db/ident :color/blue}])")
                  .ok());
  auto r1 = db.Transact(R"([{:db/id "a" :user/email "a@x"} {:db/id "b" :user/email "b@x"}])");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EntityId a = r1->tempids.at("a"), b = r1->tempids.at("b");
  auto r2 = db.Transact("[{:db/id \"c\" :user/email \"c@x\" :user/friend [" + std::to_string(a.raw) +
                        " [:user/email \"b@x\"] \"d\"] :user/color :color/blue} {:db/id \"d\" :user/email \"d@x\"}]");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EntityId c = r2->tempids.at("c"), d = r2->tempids.at("d");
  auto friends = db.Values(c, "user/friend");
  std::sort(friends.begin(), friends.end());
  std::vector<Value> expected{Value::Ref(a), Value::Ref(b), Value::Ref(d)};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(friends, expected);
  EXPECT_EQ(db.Value1(c, "user/color"), Value::Ref(*db.Entid("db/ident", Value::Kw("color/blue"))));
}

TEST(TransactorForms, IdentDefinedInSameTransactionResolves) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :item/color :db/valueType :db.type/ref}])").ok());
  auto r = db.Transact(R"([{:db/ident :color/green} {:db/id "i" :item/color :color/green}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto green = db.Entid("db/ident", Value::Kw("color/green"));
  ASSERT_TRUE(green.has_value());
  EXPECT_EQ(db.Value1(r->tempids.at("i"), "item/color"), Value::Ref(*green));
}

TEST(TransactorForms, RetractValueAndAllValues) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/tags :db/cardinality :db.cardinality/many}])").ok());
  auto r = db.Transact(R"([{:db/id "a" :user/tags ["x" "y" "z"] :user/name "A"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string a = std::to_string(r->tempids.at("a").raw);
  auto r2 = db.Transact("[[:db/retract " + a + " :user/tags \"x\"]]");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(DataDatoms(*r2).size(), 1u);
  EXPECT_FALSE(DataDatoms(*r2)[0].added);
  EXPECT_EQ(db.Values(r->tempids.at("a"), "user/tags").size(), 2u);
  auto r3 = db.Transact("[[:db/retract " + a + " :user/tags]]");
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(DataDatoms(*r3).size(), 2u);
  EXPECT_TRUE(db.Values(r->tempids.at("a"), "user/tags").empty());
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "user/name"), S("A"));
}

TEST(TransactorForms, RetractingAbsentValueProducesNothing) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "a" :user/name "A"}])");
  ASSERT_TRUE(r.ok());
  auto r2 = db.Transact("[[:db/retract " + std::to_string(r->tempids.at("a").raw) + " :user/name \"B\"]]");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_TRUE(DataDatoms(*r2).empty());
}

TEST(TransactorForms, FnAliasesAndListSyntax) {
  MemoryDb db;
  auto r = db.Transact(R"([(:db/add "a" :user/name "A")])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::string a = std::to_string(r->tempids.at("a").raw);
  ASSERT_TRUE(db.Transact("[[:db.fn/cas " + a + " :user/name \"A\" \"B\"]]").ok());
  EXPECT_EQ(db.Value1(r->tempids.at("a"), "user/name"), S("B"));
  ASSERT_TRUE(db.Transact("[[:db.fn/retractEntity " + a + "]]").ok());
  EXPECT_EQ(db.EntityDatomCount(r->tempids.at("a")), 0u);
}

// ---- bad input -------------------------------------------------------------

TEST(TransactorFormErrors, TxDataMustBeVector) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"({:a 1})"), StatusCode::kInvalidArgument, {"1:1", "vector"}));
}

TEST(TransactorFormErrors, UnknownOperation) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact("[\n  [:db/frob 1 :a 2]]"), StatusCode::kInvalidArgument,
                        {"2:4", "unknown transaction operation :db/frob"}));
}

TEST(TransactorFormErrors, WrongArity) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "a" :x]])"), StatusCode::kInvalidArgument,
                        {"1:2", "malformed :db/add", "[:db/add e a v]"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/cas 1 :x 2]])"), StatusCode::kInvalidArgument, {"1:2", ":db/cas"}));
  EXPECT_TRUE(
      FailsWith(db.Transact(R"([[:db/retractEntity]])"), StatusCode::kInvalidArgument, {"1:2", ":db/retractEntity"}));
}

TEST(TransactorFormErrors, FormNotListOrMap) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([42])"), StatusCode::kInvalidArgument, {"1:2", "integer"}));
}

TEST(TransactorFormErrors, BadEntityPositions) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add -5 :x 1]])"), StatusCode::kInvalidArgument, {"1:11", "positive"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "" :x 1]])"), StatusCode::kInvalidArgument, {"1:11", "empty"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add 1.5 :x 1]])"), StatusCode::kInvalidArgument, {"1:11", "float"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add [:x 1] :x 1]])"), StatusCode::kInvalidArgument,
                        {"1:11", ":x", "not a unique attribute"}));
}

TEST(TransactorFormErrors, AttributeMustBeKeyword) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "a" "name" 1]])"), StatusCode::kInvalidArgument,
                        {"1:15", "attribute keyword"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" 5 1}])"), StatusCode::kInvalidArgument, {"1:14"}));
}

TEST(TransactorFormErrors, UnknownDbAttribute) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :db/valuetype :db.type/string}])"), StatusCode::kInvalidArgument,
                        {"1:14", "unknown attribute :db/valuetype"}));
}

TEST(TransactorFormErrors, NilValue) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/name nil}])"), StatusCode::kInvalidArgument,
                        {"1:25", "nil", ":user/name"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "a" :user/name nil]])"), StatusCode::kInvalidArgument,
                        {"1:26", "nil", ":user/name"}));
}

TEST(TransactorFormErrors, NestedMapForNonRefAttribute) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/addr {:addr/city "X"}}])"), StatusCode::kInvalidArgument,
                        {"1:25", ":user/addr", "ref"}));
}

TEST(TransactorFormErrors, LookupRefMatchingNothingIsNotFound) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/email :db/unique :db.unique/identity}])").ok());
  uint64_t before = db.allocations();
  auto r = db.Transact(R"([{:db/id "x" :user/name "x"} [:db/add [:user/email "nobody@x"] :user/name "N"]])");
  EXPECT_TRUE(FailsWith(r, StatusCode::kNotFound, {"1:39", "[:user/email \"nobody@x\"]", "matches no entity"}));
  EXPECT_EQ(db.allocations(), before);  // a failed transaction consumes no ids
}

TEST(TransactorFormErrors, UnknownIdentIsNotFound) {
  MemoryDb db;
  EXPECT_TRUE(
      FailsWith(db.Transact(R"([[:db/add :no/such :user/name "N"]])"), StatusCode::kNotFound, {"1:11", ":no/such"}));
}

TEST(TransactorFormErrors, TempidUsedOnlyAsValue) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/friend :db/valueType :db.type/ref}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/name "A" :user/friend "ghost"}])"),
                        StatusCode::kInvalidArgument, {"1:42", "tempid \"ghost\"", "only as a value"}));
}

TEST(TransactorFormErrors, MistypedRefValue) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/friend :db/valueType :db.type/ref}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/friend 1.5}])"), StatusCode::kInvalidArgument,
                        {"1:27", ":user/friend", "1.5"}));
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "a" :user/friend {:x 1}]])"), StatusCode::kInvalidArgument,
                        {"1:28", "nested map", ":user/friend"}));
}

TEST(TransactorFormErrors, ReverseAttributeInListForm) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([[:db/add "a" :node/_parent 1]])"), StatusCode::kInvalidArgument,
                        {"1:15", "reverse attribute"}));
}

TEST(TransactorFormErrors, EmptyNestedMap) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/friend :db/valueType :db.type/ref}])").ok());
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :user/friend {}}])"), StatusCode::kInvalidArgument,
                        {"1:27", "no attributes"}));
}

TEST(TransactorFormErrors, ErrorsWriteNothing) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/id "a" :user/name "A"}])").ok());
  size_t before = db.datoms().size();
  auto r = db.Transact(R"([{:db/id "b" :user/name "B"} [:db/bogus]])");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(db.datoms().size(), before);
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

TEST(TransactorFormErrors, IntegerIdMustNameExistingEntity) {
  testing::MemoryDb db;
  EXPECT_TRUE(testing::FailsWith(db.Transact(R"([[:db/add 123456 :user/name "x"]])"), StatusCode::kNotFound,
                                 {"1:11", "entity 123456 does not exist"}));
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/friend :db/valueType :db.type/ref}])").ok());
  EXPECT_TRUE(testing::FailsWith(db.Transact(R"([{:db/id "a" :user/friend 99}])"), StatusCode::kNotFound,
                                 {"1:27", "entity 99"}));
  // Retracting from an unknown id is simply a no-op.
  auto r = db.Transact(R"([[:db/retract 123456 :user/name "x"]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(testing::DataDatoms(*r).empty());
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

TEST(TransactorFormErrors, UnknownIdentAsRefValueIsNotFound) {
  testing::MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :item/color :db/valueType :db.type/ref} {:db/ident :color/red}])").ok());
  EXPECT_TRUE(testing::FailsWith(db.Transact(R"([{:db/id "i" :item/color :color/purple}])"), StatusCode::kNotFound,
                                 {"1:26", ":color/purple"}));
  EXPECT_TRUE(db.Transact(R"([{:db/id "i" :item/color :color/red}])").ok());
}

TEST(TransactorFormErrors, ErrorPositionsOnLaterLines) {
  testing::MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/age :db/valueType :db.type/long}])").ok());
  auto r = db.Transact("[{:db/id \"a\" :user/age 1}\n {:db/id \"b\"\n  :user/age \"ten\"}]");
  EXPECT_TRUE(testing::FailsWith(r, StatusCode::kInvalidArgument, {"3:13", ":user/age", "\"ten\"", "long", "string"}));
}

}  // namespace
}  // namespace cairn::shard
