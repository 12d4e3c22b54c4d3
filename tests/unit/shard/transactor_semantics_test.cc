// Transactor: upserts, uniqueness, :db/cas, :db/retractEntity, cardinality-one
// replacement, redundancy and placement.
#include <gtest/gtest.h>

#include "memory_db.h"
#include "shard/tx_placement.h"

namespace cairn::shard {
namespace {

using testing::DataDatoms;
using testing::FailsWith;
using testing::MemoryDb;

Value S(const char* s) { return Value::String(s); }
std::string N(EntityId e) { return std::to_string(e.raw); }

class UserDb : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.Transact(R"([{:db/ident :user/email :db/valueType :db.type/string :db/unique :db.unique/identity}
                                 {:db/ident :user/handle :db/valueType :db.type/string :db/unique :db.unique/identity}
                                 {:db/ident :user/ssn :db/valueType :db.type/string :db/unique :db.unique/value}
                                 {:db/ident :user/name :db/valueType :db.type/string}
                                 {:db/ident :user/tags :db/valueType :db.type/string
                                  :db/cardinality :db.cardinality/many}
                                 {:db/ident :user/friend :db/valueType :db.type/ref
                                  :db/cardinality :db.cardinality/many}
                                 {:db/ident :user/address :db/valueType :db.type/ref :db/isComponent true}
                                 {:db/ident :addr/geo :db/valueType :db.type/ref :db/isComponent true}])")
                    .ok());
    auto r = db_.Transact(R"([{:db/id "ann" :user/email "ann@x" :user/name "Ann" :user/ssn "1"}])");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ann_ = r->tempids.at("ann");
  }
  MemoryDb db_;
  EntityId ann_;
};

// ---- upserts ---------------------------------------------------------------

TEST_F(UserDb, TempidWithExistingIdentityValueUpserts) {
  uint64_t before = db_.allocations();
  auto r = db_.Transact(R"([{:db/id "x" :user/email "ann@x" :user/name "Annie"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("x"), ann_);
  EXPECT_EQ(db_.allocations(), before);
  EXPECT_EQ(db_.Value1(ann_, "user/name"), S("Annie"));
  // the identity value itself was already there: not re-asserted
  for (const Datom& d : DataDatoms(*r)) EXPECT_NE(d.a, Keyword::Intern("user/email"));
}

TEST_F(UserDb, MapWithoutDbIdUpserts) {
  auto r = db_.Transact(R"([{:user/email "ann@x" :user/tags ["a"]}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db_.Values(ann_, "user/tags"), std::vector<Value>{S("a")});
}

TEST_F(UserDb, TwoTempidsUpsertingToOneEntityUnify) {
  auto r = db_.Transact(R"([{:db/id "a" :user/email "ann@x"} {:db/id "b" :user/email "ann@x" :user/tags "t"}
                            [:db/add "a" :user/tags "u"]])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("a"), ann_);
  EXPECT_EQ(r->tempids.at("b"), ann_);
  EXPECT_EQ(db_.Values(ann_, "user/tags").size(), 2u);
}

TEST_F(UserDb, TwoTempidsWithSameNewIdentityValueBecomeOneEntity) {
  auto r = db_.Transact(
      R"([{:db/id "a" :user/email "new@x" :user/name "N"} {:db/id "b" :user/email "new@x" :user/tags "t"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("a"), r->tempids.at("b"));
  EXPECT_EQ(db_.Value1(r->tempids.at("a"), "user/tags"), S("t"));
}

TEST_F(UserDb, UpsertThroughRefToUpsertedTempid) {
  // "f" upserts to ann; "g" references "f" as a friend.
  auto r = db_.Transact(R"([{:db/id "g" :user/email "g@x" :user/friend "f"} {:db/id "f" :user/email "ann@x"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db_.Values(r->tempids.at("g"), "user/friend"), std::vector<Value>{Value::Ref(ann_)});
}

TEST_F(UserDb, ConflictingUpsertsForOneTempidFail) {
  ASSERT_TRUE(db_.Transact(R"([{:db/id "bob" :user/email "bob@x" :user/handle "bob"}])").ok());
  auto r = db_.Transact(R"([{:db/id "x" :user/email "ann@x" :user/handle "bob"}])");
  EXPECT_TRUE(
      FailsWith(r, StatusCode::kConflict, {"tempid \"x\"", "two different entities", ":user/email", ":user/handle"}));
}

TEST_F(UserDb, UniqueValueViolationIsConflict) {
  auto r = db_.Transact(R"([{:db/id "x" :user/email "x@x" :user/ssn "1"}])");
  EXPECT_TRUE(FailsWith(r, StatusCode::kConflict, {"1:", ":user/ssn", "\"1\"", N(ann_)}));
  auto r2 = db_.Transact(R"([{:db/id "x" :user/ssn "9"} {:db/id "y" :user/ssn "9"}])");
  EXPECT_TRUE(FailsWith(r2, StatusCode::kConflict, {":user/ssn", "\"9\"", "two entities"}));
}

TEST_F(UserDb, UniqueValueMayMoveWhenRetractedInSameTx) {
  auto r = db_.Transact("[[:db/retract " + N(ann_) +
                        " :user/ssn \"1\"] {:db/id \"x\" :user/email \"x@x\" :user/ssn \"1\"}]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db_.Entid("user/ssn", S("1")), r->tempids.at("x"));
}

TEST_F(UserDb, IdentityValueOnExistingEntityHeldElsewhereIsConflict) {
  auto r = db_.Transact(R"([{:db/id "b" :user/email "b@x"}])");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(FailsWith(db_.Transact("[[:db/add " + N(r->tempids.at("b")) + " :user/email \"ann@x\"]]"),
                        StatusCode::kConflict, {":user/email", "\"ann@x\"", N(ann_)}));
}

// ---- cardinality and redundancy ---------------------------------------------

TEST_F(UserDb, CardinalityOneReplacesOldValue) {
  auto r = db_.Transact("[[:db/add " + N(ann_) + " :user/name \"Anna\"]]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto data = DataDatoms(*r);
  ASSERT_EQ(data.size(), 2u);
  EXPECT_FALSE(data[0].added);
  EXPECT_EQ(data[0].v, S("Ann"));
  EXPECT_TRUE(data[1].added);
  EXPECT_EQ(data[1].v, S("Anna"));
  EXPECT_EQ(db_.Values(ann_, "user/name"), std::vector<Value>{S("Anna")});
}

TEST_F(UserDb, RedundantAssertionProducesNoDatom) {
  auto r = db_.Transact("[[:db/add " + N(ann_) + " :user/name \"Ann\"] {:db/id " + N(ann_) + " :user/ssn \"1\"}]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(DataDatoms(*r).empty());
}

TEST_F(UserDb, DuplicateAssertionsInOneTxAreDeduplicated) {
  auto r = db_.Transact(R"([[:db/add "x" :user/tags "a"] [:db/add "x" :user/tags "a"] {:db/id "x" :user/tags ["a"]}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(DataDatoms(*r).size(), 1u);
}

TEST_F(UserDb, TwoValuesForCardinalityOneInOneTxIsError) {
  auto r = db_.Transact("[[:db/add " + N(ann_) + " :user/name \"A\"]\n [:db/add " + N(ann_) + " :user/name \"B\"]]");
  EXPECT_TRUE(FailsWith(r, StatusCode::kInvalidArgument, {"2:", ":user/name", "\"A\"", "\"B\"", "cardinality-one"}));
}

TEST_F(UserDb, AssertAndRetractSameDatomIsError) {
  auto r = db_.Transact("[[:db/add " + N(ann_) + " :user/tags \"z\"] [:db/retract " + N(ann_) + " :user/tags \"z\"]]");
  EXPECT_TRUE(FailsWith(r, StatusCode::kInvalidArgument, {"1:", "both asserted and retracted", ":user/tags", "\"z\""}));
}

// ---- :db/cas ---------------------------------------------------------------

TEST_F(UserDb, CasSwapsWhenCurrentMatches) {
  auto r = db_.Transact("[[:db/cas " + N(ann_) + " :user/name \"Ann\" \"Anne\"]]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(db_.Values(ann_, "user/name"), std::vector<Value>{S("Anne")});
}

TEST_F(UserDb, CasMismatchIsConflictNamingExpectedAndActual) {
  auto r = db_.Transact("[[:db/cas " + N(ann_) + " :user/name \"Bob\" \"Anne\"]]");
  EXPECT_TRUE(FailsWith(r, StatusCode::kConflict, {"1:2", N(ann_), ":user/name", "expected \"Bob\"", "found \"Ann\""}));
  EXPECT_EQ(db_.Value1(ann_, "user/name"), S("Ann"));
}

TEST_F(UserDb, CasWithNilRequiresAbsence) {
  ASSERT_TRUE(db_.Transact("[[:db/cas " + N(ann_) + " :user/handle nil \"ann\"]]").ok());
  EXPECT_EQ(db_.Value1(ann_, "user/handle"), S("ann"));
  EXPECT_TRUE(FailsWith(db_.Transact("[[:db/cas " + N(ann_) + " :user/handle nil \"ann2\"]]"), StatusCode::kConflict,
                        {"expected no value", "found \"ann\""}));
  EXPECT_TRUE(FailsWith(db_.Transact("[[:db/cas " + N(ann_) + " :user/email \"zzz\" \"q\"]]"), StatusCode::kConflict,
                        {"expected \"zzz\"", "found \"ann@x\""}));
}

TEST_F(UserDb, CasOnLookupRefAndRefValues) {
  auto r = db_.Transact(R"([{:db/id "b" :user/email "b@x"}])");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(
      db_.Transact(R"([[:db/cas [:user/email "ann@x"] :user/address nil "addr"] {:db/id "addr" :addr/city "X"}])")
          .ok());
  auto addr = db_.Value1(ann_, "user/address");
  ASSERT_TRUE(addr.has_value());
  EXPECT_TRUE(FailsWith(
      db_.Transact(
          R"([[:db/cas [:user/email "ann@x"] :user/address [:user/email "b@x"] "n"] {:db/id "n" :addr/city "Y"}])"),
      StatusCode::kConflict, {":user/address", "expected " + N(r->tempids.at("b"))}));
}

// ---- :db/retractEntity -------------------------------------------------------

TEST_F(UserDb, RetractEntityRemovesDatomsRefsAndComponents) {
  auto r = db_.Transact(R"([{:db/id "b" :user/email "b@x" :user/friend [[:user/email "ann@x"]]
                             :user/address {:addr/city "Oslo" :addr/geo {:geo/lat 59.9}}}
                            {:db/id [:user/email "ann@x"] :user/friend "b"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EntityId b = r->tempids.at("b");
  EntityId addr = db_.Value1(b, "user/address")->as_ref();
  EntityId geo = db_.Value1(addr, "addr/geo")->as_ref();
  auto r2 = db_.Transact(R"([[:db/retractEntity [:user/email "b@x"]]])");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(db_.EntityDatomCount(b), 0u);
  EXPECT_EQ(db_.EntityDatomCount(addr), 0u);             // component, cascaded
  EXPECT_EQ(db_.EntityDatomCount(geo), 0u);              // component of component
  EXPECT_TRUE(db_.Values(ann_, "user/friend").empty());  // ref to b retracted (VAET)
  EXPECT_EQ(db_.Value1(ann_, "user/name"), S("Ann"));
  for (const Datom& d : DataDatoms(*r2)) EXPECT_FALSE(d.added);
}

TEST_F(UserDb, RetractEntityThenReassertIsError) {
  auto r = db_.Transact("[[:db/retractEntity " + N(ann_) + "] [:db/add " + N(ann_) + " :user/name \"Ann\"]]");
  EXPECT_TRUE(FailsWith(r, StatusCode::kInvalidArgument, {"both asserted and retracted"}));
}

// ---- placement ---------------------------------------------------------------

TEST(TransactorPlacement, UniqueIdentityValuePlacesByHash) {
  MemoryDb db;
  ASSERT_TRUE(
      db.Transact(R"([{:db/ident :user/email :db/valueType :db.type/string :db/unique :db.unique/identity}])").ok());
  auto r = db.Transact(R"([{:db/id "a" :user/name "A" :user/email "a@b"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  uint32_t expected = UniqueIdentityPartition(Keyword::Intern("user/email"), Value::String("a@b"), 256);
  EXPECT_EQ(r->tempids.at("a").partition(), expected);
  EXPECT_EQ(expected, 1 + StableHashOf(Keyword::Intern("user/email"), Value::String("a@b")) % 255);
}

TEST(TransactorPlacement, AttributesGoToSystemPartition) {
  MemoryDb db;
  auto r =
      db.Transact(R"([{:db/id "attr" :db/ident :x/y :db/valueType :db.type/long} {:db/id "e" :db/ident :color/red}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("attr").partition(), EntityId::kSystemPartition);
  EXPECT_EQ(r->tempids.at("e").partition(), EntityId::kSystemPartition);
}

TEST(TransactorPlacement, PartitionHint) {
  MemoryDb db;
  auto r =
      db.Transact(R"([{:db/id "a" :db/partition 17 :user/name "A"} {:db/id "b" :db/partition "a" :user/name "B"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("a").partition(), 17u);
  EXPECT_EQ(r->tempids.at("b").partition(), 17u);
  for (const Datom& d : r->datoms) EXPECT_NE(d.a, Keyword::Intern("db/partition"));
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/id "a" :db/partition 999 :user/name "A"}])"), StatusCode::kInvalidArgument,
                        {"1:28", ":db/partition", "999", "256"}));
}

TEST(TransactorPlacement, NewEntitiesFollowFirstExistingEntity) {
  MemoryDb db;
  auto r1 = db.Transact(R"([{:db/id "a" :db/partition 42 :user/name "A"}])");
  ASSERT_TRUE(r1.ok());
  EntityId a = r1->tempids.at("a");
  auto r2 = db.Transact("[{:db/id \"n\" :post/title \"T\"} [:db/add " + N(a) + " :user/post \"n\"]]");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->tempids.at("n").partition(), 42u);
}

TEST(TransactorPlacement, NewEntitiesFollowFirstPlacedNewEntity) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :user/email :db/unique :db.unique/identity}])").ok());
  auto r = db.Transact(R"([{:db/id "u" :user/email "u@x"} {:db/id "p" :post/title "T"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("p").partition(), r->tempids.at("u").partition());
}

TEST(TransactorPlacement, OtherwiseTempidHash) {
  MemoryDb db;
  auto r = db.Transact(R"([{:db/id "lonely" :x/y 1}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("lonely").partition(), TempidPartition("lonely", 256));
  EXPECT_NE(r->tempids.at("lonely").partition(), EntityId::kSystemPartition);
}

TEST(TransactorPlacement, NewEntitiesWithoutPlacementShareTheFirstOnesPartition) {
  MemoryDb db;
  // Many new entities known only by tempids: one partition (so one shard in a
  // cluster), the first tempid's, whatever the others' hashes say.
  std::string tx = "[";
  for (int i = 0; i < 50; ++i) tx += "{:db/id \"t" + std::to_string(i) + "\" :x/y " + std::to_string(i) + "}";
  tx += "]";
  auto r = db.Transact(tx);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  uint32_t first = TempidPartition("t0", 256);
  bool some_hash_elsewhere = false;
  for (int i = 0; i < 50; ++i) {
    std::string name = "t" + std::to_string(i);
    EXPECT_EQ(r->tempids.at(name).partition(), first) << name;
    some_hash_elsewhere = some_hash_elsewhere || TempidPartition(name, 256) != first;
  }
  EXPECT_TRUE(some_hash_elsewhere);  // the test would prove nothing otherwise
}

TEST(TransactorPlacement, SinglePartitionUsesPartitionZero) {
  TransactorOptions opts;
  opts.partitions = 1;
  MemoryDb db(opts);
  auto r = db.Transact(R"([{:db/id "a" :x/y 1}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("a").partition(), 0u);
}

TEST(TransactorPlacement, UserPartitionNeverSystem) {
  for (uint64_t h = 0; h < 1000; ++h) {
    uint32_t p = UserPartition(h * 0x9E3779B97F4A7C15ull, 256);
    EXPECT_GE(p, 1u);
    EXPECT_LT(p, 256u);
  }
}

// ---- multi-transaction scenario ----------------------------------------------

TEST(TransactorScenario, BuildsAndEditsAGraph) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :country/code :db/valueType :db.type/string :db/unique :db.unique/identity}
                              {:db/ident :country/name :db/valueType :db.type/string}
                              {:db/ident :sub/code :db/valueType :db.type/string :db/unique :db.unique/identity}
                              {:db/ident :sub/country :db/valueType :db.type/ref}])")
                  .ok());
  // Lookup refs resolve against the database before the transaction, so a
  // country created in this transaction is named by tempid or by a nested
  // map that upserts onto it.
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:country/code "NO"} {:sub/code "NO-03" :sub/country [:country/code "NO"]}])"),
                        StatusCode::kNotFound, {"[:country/code \"NO\"]"}));
  ASSERT_TRUE(db.Transact(R"([{:db/id "no" :country/code "NO" :country/name "Norway"}
                              {:sub/code "NO-03" :sub/country "no"}
                              {:sub/code "NO-50" :sub/country {:country/code "NO"}}])")
                  .ok());
  ASSERT_TRUE(db.Transact(R"([{:sub/code "NO-11" :sub/country [:country/code "NO"]}])").ok());
  auto no = db.Entid("country/code", Value::String("NO"));
  ASSERT_TRUE(no.has_value());
  EXPECT_EQ(db.Value1(*db.Entid("sub/code", Value::String("NO-50")), "sub/country"), Value::Ref(*no));
  // Upsert the country and rename it; the subdivisions keep their refs.
  auto r = db.Transact(R"([{:country/code "NO" :country/name "Kingdom of Norway"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(DataDatoms(*r).size(), 2u);  // retract old name + assert new
  EXPECT_EQ(db.Value1(*no, "country/name"), Value::String("Kingdom of Norway"));
  ASSERT_TRUE(db.Transact(R"([[:db/retractEntity [:country/code "NO"]]])").ok());
  EXPECT_TRUE(db.Values(*db.Entid("sub/code", Value::String("NO-03")), "sub/country").empty());
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

using testing::DataDatoms;
using testing::FailsWith;
using testing::MemoryDb;

TEST_F(UserDb, TempidJoinsExistingEntityAssertingSameIdentityValue) {
  auto r = db_.Transact("[[:db/add " + N(ann_) +
                        " :user/handle \"annie\"] {:db/id \"t\" :user/handle \"annie\" :user/tags \"q\"}]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("t"), ann_);
  EXPECT_EQ(db_.Values(ann_, "user/tags"), std::vector<Value>{S("q")});
}

TEST_F(UserDb, CasOnCardinalityManyChecksMembership) {
  ASSERT_TRUE(db_.Transact("[{:db/id " + N(ann_) + " :user/tags [\"a\" \"b\"]}]").ok());
  ASSERT_TRUE(db_.Transact("[[:db/cas " + N(ann_) + " :user/tags \"b\" \"c\"]]").ok());
  EXPECT_EQ(db_.Values(ann_, "user/tags").size(), 3u);  // many: cas adds, it does not replace
  EXPECT_TRUE(FailsWith(db_.Transact("[[:db/cas " + N(ann_) + " :user/tags \"zz\" \"d\"]]"), StatusCode::kConflict,
                        {"expected \"zz\"", "\"a\""}));
}

TEST_F(UserDb, RetractThroughLookupRefAndIdent) {
  ASSERT_TRUE(db_.Transact(R"([[:db/retract [:user/email "ann@x"] :user/name "Ann"]])").ok());
  EXPECT_TRUE(db_.Values(ann_, "user/name").empty());
}

TEST_F(UserDb, RetractEntityStopsOnComponentCycles) {
  auto r = db_.Transact(
      R"([{:db/id "a" :user/email "cyc@x" :user/address "b"} {:db/id "b" :addr/city "C" :user/address "a"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto r2 = db_.Transact(R"([[:db/retractEntity [:user/email "cyc@x"]]])");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(db_.EntityDatomCount(r->tempids.at("a")), 0u);
  EXPECT_EQ(db_.EntityDatomCount(r->tempids.at("b")), 0u);
}

TEST_F(UserDb, PartitionHintByLookupRef) {
  auto r = db_.Transact(R"([{:db/id "n" :db/partition [:user/email "ann@x"] :note/text "hi"}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tempids.at("n").partition(), ann_.partition());
}

TEST(TransactorSchema, ConflictingDefinitionsInOneTransaction) {
  MemoryDb db;
  EXPECT_TRUE(FailsWith(db.Transact(R"([{:db/ident :a/b :db/valueType :db.type/long}
                                        {:db/ident :a/b :db/valueType :db.type/string}])"),
                        StatusCode::kInvalidArgument, {"2:", ":db/valueType", "cardinality-one"}));
}

TEST(TransactorSchema, SchemaChangesCarryIdsOfExistingAttributes) {
  MemoryDb db;
  ASSERT_TRUE(db.Transact(R"([{:db/ident :a/b :db/valueType :db.type/long}])").ok());
  EntityId id = db.schema().Find(Keyword::Intern("a/b"))->id;
  auto r = db.Transact(R"([{:db/ident :a/b :db/index true}])");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->schema_changes.size(), 1u);
  EXPECT_EQ(r->schema_changes[0].id, id);
  EXPECT_TRUE(r->schema_changes[0].indexed);
  EXPECT_EQ(r->schema_changes[0].value_type, ValueType::kLong);
}

// ---- cross-shard refs (TransactorOptions::owns_partition) -------------------

TEST(CrossShardRefs, ForeignValueIdAcceptedOwnedMissingAndEntityPositionRefused) {
  TransactorOptions opts;
  opts.partitions = 16;
  opts.owns_partition = [](uint32_t p) { return p != 7; };  // partition 7 lives on another shard
  MemoryDb db(opts);
  ASSERT_TRUE(db.Transact(R"([{:db/ident :sub/name :db/valueType :db.type/string}
                               {:db/ident :sub/country :db/valueType :db.type/ref}])")
                  .ok());
  EntityId foreign = EntityId::Make(7, 5);  // exists only on the shard owning partition 7
  EntityId owned_missing = EntityId::Make(3, 99);

  // A ref VALUE in a foreign partition: resolved by the coordinator, accepted.
  auto ok = db.Transact(R"([{:db/id "s" :db/partition 3 :sub/name "Bavaria" :sub/country )" + N(foreign) + "}]");
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EntityId s = ok->tempids.at("s");
  EXPECT_EQ(s.partition(), 3u);
  EXPECT_EQ(db.Values(s, "sub/country"), std::vector<Value>{Value::Ref(foreign)});

  // A ref value in an owned partition must still exist here.
  EXPECT_TRUE(FailsWith(db.Transact("[[:db/add " + N(s) + " :sub/country " + N(owned_missing) + "]]"),
                        StatusCode::kNotFound, {"entity " + N(owned_missing) + " does not exist"}));
  // A foreign id in ENTITY position is never accepted by the transactor
  // (`foreign` itself now counts as existing here: a datom refers to it).
  EntityId foreign2 = EntityId::Make(7, 6);
  EXPECT_TRUE(FailsWith(db.Transact("[[:db/add " + N(foreign2) + R"( :sub/name "x"]])"), StatusCode::kNotFound,
                        {"entity " + N(foreign2) + " does not exist"}));
  // Without owns_partition (embedded store) the foreign id is refused too.
  MemoryDb all;
  ASSERT_TRUE(all.Transact(R"([{:db/ident :sub/country :db/valueType :db.type/ref}])").ok());
  EXPECT_TRUE(FailsWith(all.Transact(R"([{:db/id "s" :sub/country )" + N(foreign) + "}]"), StatusCode::kNotFound,
                        {"entity " + N(foreign) + " does not exist"}));
}

}  // namespace
}  // namespace cairn::shard
