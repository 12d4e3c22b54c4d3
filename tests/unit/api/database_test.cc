// End-to-end tests of the embedded Database: schema, transact, time views,
// datoms per index, diff, reopen, bad input.
#include "cairn/database.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace cairn {
namespace {

namespace fs = std::filesystem;

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn_api_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "db.cairn").string();
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    db_.reset();
    auto r = Database::open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    db_ = std::move(*r);
  }
  TxReport Tx(std::string_view edn) {
    auto r = db_->transact(edn);
    EXPECT_TRUE(r.ok()) << edn << "\n" << r.status().ToString();
    return r.ok() ? *r : TxReport{};
  }
  static std::vector<Datom> Datoms(const Db& db, IndexType index, std::vector<Value> comps = {}) {
    auto r = db.datoms(index, comps);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::vector<Datom>{};
  }
  static std::set<std::string> Strings(const std::vector<Datom>& ds) {
    std::set<std::string> out;
    for (const Datom& d : ds) out.insert(d.v.type() == ValueType::kString ? d.v.as_string() : d.v.ToString());
    return out;
  }
  void InstallSchema() {
    Tx(R"([{:db/ident :user/email :db/valueType :db.type/string :db/unique :db.unique/identity}
           {:db/ident :user/name :db/valueType :db.type/string :db/index true}
           {:db/ident :user/age :db/valueType :db.type/long}
           {:db/ident :user/tags :db/valueType :db.type/keyword :db/cardinality :db.cardinality/many}
           {:db/ident :user/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}])");
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Database> db_;
};

TEST_F(DatabaseTest, TransactsAndReadsBackThroughEveryIndex) {
  InstallSchema();
  TxReport r = Tx(R"([{:db/id "ann" :user/email "ann@x" :user/name "Ann" :user/age 30 :user/tags [:a :b]}
                      {:db/id "bob" :user/email "bob@x" :user/name "Bob" :user/friend "ann"}])");
  ASSERT_TRUE(r.t.valid());
  ASSERT_EQ(r.tempids.count("ann"), 1u);
  EntityId ann = r.tempids.at("ann"), bob = r.tempids.at("bob");
  EXPECT_EQ(db_->latest_t(), r.t);
  Db db = db_->db();

  auto ann_datoms = Datoms(db, IndexType::kEavt, {Value::Ref(ann)});
  EXPECT_EQ(ann_datoms.size(), 5u);
  for (const Datom& d : ann_datoms) EXPECT_EQ(d.tx, r.t);
  EXPECT_EQ(Strings(Datoms(db, IndexType::kEavt, {Value::Ref(ann), Value::Kw("user/tags")})),
            (std::set<std::string>{":a", ":b"}));
  EXPECT_EQ(Strings(Datoms(db, IndexType::kAevt, {Value::Kw("user/name")})), (std::set<std::string>{"Ann", "Bob"}));
  auto by_name = Datoms(db, IndexType::kAvet, {Value::Kw("user/name"), Value::String("Bob")});
  ASSERT_EQ(by_name.size(), 1u);
  EXPECT_EQ(by_name[0].e, bob);
  auto refs = Datoms(db, IndexType::kVaet, {Value::Ref(ann)});
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].e, bob);
  EXPECT_EQ(refs[0].a.str(), "user/friend");
  // AVET holds only indexed/unique attributes.
  EXPECT_EQ(db.datoms(IndexType::kAvet, {Value::Kw("user/age")}).status().code(), StatusCode::kInvalidArgument);
  std::set<std::string> avet_attrs;
  for (const Datom& d : Datoms(db, IndexType::kAvet)) avet_attrs.insert(std::string(d.a.str()));
  EXPECT_TRUE(avet_attrs.count("user/name"));
  EXPECT_TRUE(avet_attrs.count("user/email"));
  EXPECT_FALSE(avet_attrs.count("user/age"));
  EXPECT_FALSE(avet_attrs.count("user/tags"));
  // Index order: AEVT sorted by entity within an attribute.
  auto names = Datoms(db, IndexType::kAevt, {Value::Kw("user/name")});
  ASSERT_EQ(names.size(), 2u);
  EXPECT_LT(names[0].e, names[1].e);

  auto e = db.entid("user/email", Value::String("bob@x"));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, bob);
  EXPECT_EQ(db.entid(":user/email", Value::String("nobody")).status().code(), StatusCode::kNotFound);

  // The transaction entity carries :db/txInstant.
  auto tx = Datoms(db, IndexType::kEavt, {Value::Ref(EntityId::ForTx(r.t)), Value::Kw("db/txInstant")});
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(tx[0].v.type(), ValueType::kInstant);
}

TEST_F(DatabaseTest, TimeViewsSeeTheRightDatoms) {
  InstallSchema();
  TxReport r1 = Tx(R"([{:db/id "a" :user/email "a@x" :user/age 1}])");
  EntityId a = r1.tempids.at("a");
  TxReport r2 = Tx(R"([[:db/add [:user/email "a@x"] :user/age 2]])");
  TxReport r3 = Tx(R"([[:db/retract [:user/email "a@x"] :user/age 2]])");
  ASSERT_LT(r1.t, r2.t);
  ASSERT_LT(r2.t, r3.t);
  Db now = db_->db();
  auto ages = [&](const Db& db) {
    std::vector<int64_t> out;
    for (const Datom& d : Datoms(db, IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")})) out.push_back(d.v.as_long());
    return out;
  };
  EXPECT_EQ(ages(now), std::vector<int64_t>{});
  EXPECT_EQ(ages(now.as_of(r1.t)), std::vector<int64_t>{1});
  EXPECT_EQ(ages(now.as_of(r2.t)), std::vector<int64_t>{2});
  EXPECT_EQ(ages(now.as_of(TxTime{r2.t.raw - 1})), std::vector<int64_t>{1});
  EXPECT_EQ(ages(now.as_of(TxTime{r1.t.raw - 1})), std::vector<int64_t>{});
  // as_of keeps the tx of the assertion.
  auto at2 = Datoms(now.as_of(r2.t), IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")});
  ASSERT_EQ(at2.size(), 1u);
  EXPECT_EQ(at2[0].tx, r2.t);
  // since: datoms asserted after t that are still true.
  auto since = Datoms(now.since(r1.t), IndexType::kEavt, {Value::Ref(a)});
  EXPECT_TRUE(since.empty());
  EXPECT_EQ(Datoms(now.since(TxTime{r1.t.raw - 1}), IndexType::kEavt, {Value::Ref(a)}).size(), 1u);  // email
  // history: every assertion and retraction.
  auto hist = Datoms(now.history(), IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")});
  ASSERT_EQ(hist.size(), 4u);  // +1 @r1, -1 @r2, +2 @r2, -2 @r3
  int added = 0, retracted = 0;
  for (const Datom& d : hist) (d.added ? added : retracted)++;
  EXPECT_EQ(added, 2);
  EXPECT_EQ(retracted, 2);
  // A Db value is a snapshot: later transactions do not change it.
  Db before = db_->db();
  Tx(R"([[:db/add [:user/email "a@x"] :user/age 9]])");
  EXPECT_EQ(ages(before), std::vector<int64_t>{});
  EXPECT_EQ(ages(db_->db()), std::vector<int64_t>{9});
  // History views built before a commit still stop at their snapshot.
  EXPECT_EQ(Datoms(before.history(), IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")}).size(), 4u);
  EXPECT_EQ(Datoms(db_->db().history(), IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")}).size(), 5u);
}

TEST_F(DatabaseTest, DiffReturnsChangesBetweenTimesInOrder) {
  InstallSchema();
  TxReport r1 = Tx(R"([{:db/id "a" :user/email "a@x" :user/age 1}])");
  TxReport r2 = Tx(R"([[:db/add [:user/email "a@x"] :user/age 2]])");
  TxReport r3 = Tx(R"([{:user/email "b@x"}])");
  auto d = diff(*db_, r1.t, r3.t);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  size_t expect = r2.datoms.size() + r3.datoms.size();
  ASSERT_EQ(d->size(), expect);
  for (size_t i = 1; i < d->size(); ++i) EXPECT_LE((*d)[i - 1].tx, (*d)[i].tx);
  bool saw_retraction = false;
  for (const Datom& x : *d) saw_retraction |= !x.added && x.a.str() == "user/age";
  EXPECT_TRUE(saw_retraction);
  auto empty = diff(*db_, r3.t, r3.t);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto only2 = diff(*db_, r1.t, r2.t);
  ASSERT_TRUE(only2.ok());
  EXPECT_EQ(only2->size(), r2.datoms.size());
}

TEST_F(DatabaseTest, EverythingSurvivesReopen) {
  InstallSchema();
  TxReport r1 = Tx(R"([{:db/id "a" :user/email "a@x" :user/name "A" :user/age 1}])");
  TxReport r2 = Tx(R"([[:db/add [:user/email "a@x"] :user/age 2]])");
  EntityId a = r1.tempids.at("a");
  Reopen();
  EXPECT_EQ(db_->latest_t(), r2.t);
  Db db = db_->db();
  auto ages = Datoms(db, IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")});
  ASSERT_EQ(ages.size(), 1u);
  EXPECT_EQ(ages[0].v.as_long(), 2);
  EXPECT_EQ(Datoms(db.as_of(r1.t), IndexType::kEavt, {Value::Ref(a), Value::Kw("user/age")})[0].v.as_long(), 1);
  // The schema came back: the unique identity upserts instead of creating.
  TxReport r3 = Tx(R"([{:db/id "again" :user/email "a@x" :user/age 3}])");
  EXPECT_EQ(r3.tempids.at("again"), a);
  // Types are enforced after reopen.
  auto bad = db_->transact(R"([[:db/add [:user/email "a@x"] :user/age "old"]])");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  // New entities do not reuse ids.
  TxReport r4 = Tx(R"([{:db/id "n" :user/email "n@x"}])");
  EXPECT_NE(r4.tempids.at("n"), a);
  EXPECT_GT(r4.t, r3.t);
  auto schema_attr = db_->db().datoms(IndexType::kAvet, {Value::Kw("user/name"), Value::String("A")});
  ASSERT_TRUE(schema_attr.ok()) << schema_attr.status().ToString();
  EXPECT_EQ(schema_attr->size(), 1u);
}

TEST_F(DatabaseTest, DatomCountCountsHistoryAndSurvivesReopen) {
  EXPECT_EQ(db_->datom_count(), 0u);
  // 2 datoms + :db/txInstant.
  TxReport r1 = Tx(R"([{:db/id "a" :item/name "A" :item/n 1}])");
  EXPECT_EQ(db_->datom_count(), 3u);
  // Cardinality one: a retraction and an assertion + :db/txInstant.
  Tx("[[:db/add " + std::to_string(r1.tempids.at("a").raw) + " :item/n 2]]");
  EXPECT_EQ(db_->datom_count(), 6u);
  EXPECT_EQ(db_->datom_count(), Datoms(db_->db().history(), IndexType::kEavt).size());
  // A rejected transaction stores nothing.
  EXPECT_FALSE(db_->transact("[[:db/add 1]]").ok());
  EXPECT_EQ(db_->datom_count(), 6u);
  Reopen();
  EXPECT_EQ(db_->datom_count(), 6u);
}

TEST_F(DatabaseTest, BadInputWritesNothing) {
  InstallSchema();
  Tx(R"([{:user/email "a@x" :user/age 1}])");
  TxTime before = db_->latest_t();
  size_t datoms_before = Datoms(db_->db().history(), IndexType::kEavt).size();
  struct Case {
    const char* edn;
    StatusCode code;
    const char* mention;
  };
  const Case cases[] = {
      {"[[:db/add 1 :user/age]", StatusCode::kInvalidArgument, "1:"},
      {"{:not :a-vector}", StatusCode::kInvalidArgument, "1:1"},
      {R"([{:user/email "b@x" :user/age "x"}])", StatusCode::kInvalidArgument, "user/age"},
      {R"([[:db/add [:user/email "nobody"] :user/age 1]])", StatusCode::kNotFound, "nobody"},
      {R"([[:db/cas [:user/email "a@x"] :user/age 5 6]])", StatusCode::kConflict, "user/age"},
  };
  for (const Case& c : cases) {
    auto r = db_->transact(c.edn);
    ASSERT_FALSE(r.ok()) << c.edn;
    EXPECT_EQ(r.status().code(), c.code) << c.edn << " -> " << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.mention), std::string::npos) << c.edn << " -> " << r.status().ToString();
  }
  EXPECT_EQ(db_->latest_t(), before);
  EXPECT_EQ(Datoms(db_->db().history(), IndexType::kEavt).size(), datoms_before);
  Reopen();
  EXPECT_EQ(db_->latest_t(), before);
  EXPECT_EQ(Datoms(db_->db().history(), IndexType::kEavt).size(), datoms_before);
}

TEST_F(DatabaseTest, BuilderProducesEquivalentTransactions) {
  InstallSchema();
  TxBuilder b;
  b.Add(TxBuilder::Ref::Temp("x"), "user/email", Value::String("x@x"))
      .Add(TxBuilder::Ref::Temp("x"), ":user/name", Value::String("quote \" and \\ backslash"))
      .Add(TxBuilder::Ref::Temp("y"), "user/email", Value::String("y@x"))
      .Add(TxBuilder::Ref::Temp("y"), "user/friend", TxBuilder::Ref::Temp("x"));
  auto r = db_->transact(b);
  ASSERT_TRUE(r.ok()) << b.ToEdn() << "\n" << r.status().ToString();
  EntityId x = r->tempids.at("x");
  TxBuilder c;
  c.Cas(TxBuilder::Ref::Lookup("user/email", Value::String("x@x")), "user/name",
        Value::String("quote \" and \\ backslash"), Value::String("X"))
      .Retract(TxBuilder::Ref::Id(r->tempids.at("y")), "user/friend", Value::Ref(x));
  auto r2 = db_->transact(c);
  ASSERT_TRUE(r2.ok()) << c.ToEdn() << "\n" << r2.status().ToString();
  auto names = Datoms(db_->db(), IndexType::kEavt, {Value::Ref(x), Value::Kw("user/name")});
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].v.as_string(), "X");
  TxBuilder d;
  d.RetractEntity(TxBuilder::Ref::Id(x));
  ASSERT_TRUE(db_->transact(d).ok());
  EXPECT_TRUE(Datoms(db_->db(), IndexType::kEavt, {Value::Ref(x)}).empty());
}

TEST_F(DatabaseTest, ReportPrintsAsEdn) {
  TxReport r = Tx(R"([{:db/id "a" :thing/name "n"}])");
  std::string edn = r.ToEdn();
  EXPECT_NE(edn.find(":t " + std::to_string(r.t.raw)), std::string::npos) << edn;
  EXPECT_NE(edn.find("\"a\" " + std::to_string(r.tempids.at("a").raw)), std::string::npos) << edn;
  EXPECT_NE(edn.find(":thing/name \"n\""), std::string::npos) << edn;
  EXPECT_NE(edn.find(":tx-data ["), std::string::npos) << edn;
}

TEST_F(DatabaseTest, UndeclaredAttributesWorkWithoutSchema) {
  TxReport r = Tx(R"([{:db/id "a" :note/text "hello"}])");
  auto notes = Datoms(db_->db(), IndexType::kAevt, {Value::Kw("note/text")});
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].e, r.tempids.at("a"));
}

TEST_F(DatabaseTest, ConcurrentTransactionsAreSerialized) {
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 20; ++i) {
        auto r = db_->transact("[{:w/n " + std::to_string(w * 100 + i) + "}]");
        EXPECT_TRUE(r.ok()) << r.status().ToString();
        (void)Datoms(db_->db(), IndexType::kAevt, {Value::Kw("w/n")});
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Datoms(db_->db(), IndexType::kAevt, {Value::Kw("w/n")}).size(), 80u);
  Reopen();
  EXPECT_EQ(Datoms(db_->db(), IndexType::kAevt, {Value::Kw("w/n")}).size(), 80u);
}

TEST_F(DatabaseTest, OpenReportsCorruptFilesWithThePath) {
  Tx(R"([{:note/text "hello"}])");
  db_.reset();
  std::string text = (dir_ / "notes.txt").string();
  std::ofstream(text) << "just some text\n" << std::string(4096, 'q');
  auto r = Database::open(text);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(text), std::string::npos);
  Options no_create;
  no_create.create_if_missing = false;
  auto missing = Database::open((dir_ / "missing.db").string(), no_create);
  EXPECT_EQ(missing.status().code(), StatusCode::kIOError);
}

TEST_F(DatabaseTest, DbValuesOutliveTheDatabase) {
  Tx(R"([{:note/text "kept"}])");
  Db db = db_->db();
  db_.reset();
  EXPECT_EQ(Datoms(db, IndexType::kAevt, {Value::Kw("note/text")}).size(), 1u);
  EXPECT_EQ(db.as_of(TxTime::Max()).datoms(IndexType::kEavt, {}).status().code(), StatusCode::kUnavailable);
  Reopen();
}

}  // namespace
}  // namespace cairn
