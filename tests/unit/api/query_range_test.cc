// Value-range scans and value statistics of the embedded store's query source
// (StoreSource::ScanRange / EstimateRange / EstimateDistinct), through the
// public API on a real database file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "cairn/database.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

class QueryRangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn_qrange_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto r = Database::open((dir_ / "db.cairn").string());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    db_ = std::move(*r);
  }
  void TearDown() override {
    db_.reset();
    fs::remove_all(dir_);
  }
  TxReport Tx(std::string_view edn) {
    auto r = db_->transact(edn);
    EXPECT_TRUE(r.ok()) << edn << "\n" << r.status().ToString();
    return r.ok() ? *r : TxReport{};
  }
  static std::vector<std::string> Rows(const Db& db, const std::string& q) {
    auto r = db.q(q);
    EXPECT_TRUE(r.ok()) << q << ": " << r.status().ToString();
    std::vector<std::string> out;
    if (!r.ok()) return out;
    for (const auto& row : r->rows) {
      std::string s;
      for (const Value& v : row) s += v.ToString() + " ";
      out.push_back(s);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(QueryRangeTest, RangeScansMatchFilteringInEveryView) {
  Tx("[{:db/ident :r :db/valueType :db.type/ref}]");
  TxReport t1 = Tx(R"([{:db/id 1 :x 1} {:db/id 2 :x 2.5} {:db/id 3 :x "b"} {:db/id 4 :x :k}
                       {:db/id 5 :x true} {:db/id 6 :x 3} {:db/id 7 :x -1.0} {:db/id 8 :x "a"}])");
  TxReport t2 = Tx(R"([[:db/retract 6 :x 3] [:db/add 6 :x 4] {:db/id 9 :x 2} {:db/id 10 :r 3} {:db/id 11 :r 7}])");
  (void)t2;
  Db now = db_->db();
  std::vector<std::pair<std::string, Db>> views{
      {"current", now}, {"as-of", now.as_of(t1.t)}, {"since", now.since(t1.t)}, {"history", now.history()}};
  const char* bounds[] = {"2", "2.5", "-5", "\"a\"", "\"c\"", ":k", "true", "4.0"};
  const char* ops[] = {"<", "<=", ">", ">="};
  int nonempty = 0;
  for (const auto& [name, view] : views)
    for (const char* attr : {":x", ":r"})
      for (const char* b : bounds)
        for (const char* op : ops) {
          // The second form binds ?w through a function, so no range is pushed down: the oracle.
          std::string pushed = std::string("[:find ?e ?v :where [?e ") + attr + " ?v] [(" + op + " ?v " + b + ")]]";
          std::string filtered = std::string("[:find ?e ?v :where [?e ") + attr + " ?v] [(identity ?v) ?w] [(" + op +
                                 " ?w " + b + ")]]";
          std::vector<std::string> a = Rows(view, pushed), c = Rows(view, filtered);
          EXPECT_EQ(a, c) << name << ": " << pushed;
          nonempty += a.empty() ? 0 : 1;
        }
  EXPECT_GT(nonempty, 60);
  // The plan shows the range scan, with the predicate folded into it.
  auto plan = now.explain("[:find ?e :where [?e :x ?v] [(> ?v 1)]]");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_NE(plan->find("scan value range"), std::string::npos) << *plan;
  EXPECT_NE(plan->find("(> ?v 1)"), std::string::npos) << *plan;
}

TEST_F(QueryRangeTest, EstimatesUseValueStatistics) {
  // 100 people, ages 0..49 twice each: 50 distinct ages.
  std::string tx = "[";
  for (int i = 0; i < 100; ++i)
    tx += "{:name \"" + std::string(i < 10 ? "Ivan" : "Petr") + "\" :age " + std::to_string(i % 50) + "}";
  Tx(tx + "]");
  Db now = db_->db();
  // The range estimate is exact for a small attribute (its sample is every value).
  auto plan = now.explain("[:find ?e :where [?e :age ?a] [(>= ?a 45)]]");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_NE(plan->find("est=10 actual=10"), std::string::npos) << *plan;
  // Probing :age by value from 10 rows: 100 datoms / 50 distinct values = 2 per probe.
  plan = now.explain("[:find ?f :where [?e :name \"Ivan\"] [?e :age ?a] [?f :age ?a]]");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_NE(plan->find("est=20 actual=20"), std::string::npos) << *plan;
}

}  // namespace
}  // namespace cairn
