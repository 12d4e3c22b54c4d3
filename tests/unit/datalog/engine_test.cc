// Engine behaviours that are not rows: plans, cancellation, registries,
// the memory index contract.
#include <gtest/gtest.h>

#include "datalog/engine.h"
#include "datalog/memory_index.h"
#include "datalog/parser.h"
#include "test_db.h"

namespace cairn::datalog {
namespace {

std::shared_ptr<MemoryIndex> People(testing::TestDb& db, int n) {
  std::string tx = "[";
  for (int i = 0; i < n; ++i) {
    tx += "{:name \"" + std::string(i % 8 == 0 ? "Ivan" : "Petr") + "\" :age " + std::to_string(i % 100) + "}";
  }
  tx += "]";
  EXPECT_TRUE(db.Transact(tx).ok());
  return db.View();
}

Result<QueryResult> Q(const IndexSource* src, const std::string& q, const QueryOptions& opts = {},
                      Explain* ex = nullptr, std::vector<Edn> args = {}) {
  CAIRN_ASSIGN_OR_RETURN(Edn e, ReadEdn(q));
  CAIRN_ASSIGN_OR_RETURN(auto inputs, BindApiInputs(e, src, std::move(args)));
  return RunQuery(e, inputs, opts, ex);
}

TEST(DatalogPlanner, WrittenClauseOrderDoesNotChangeThePlan) {
  testing::TestDb db;
  auto src = People(db, 2000);
  Explain a, b;
  auto r1 = Q(src.get(), R"([:find ?e ?a :where [?e :name "Ivan"] [?e :age ?a]])", {}, &a);
  auto r2 = Q(src.get(), R"([:find ?e ?a :where [?e :age ?a] [?e :name "Ivan"]])", {}, &b);
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(r1->rows.size(), 250u);
  EXPECT_EQ(r2->rows.size(), 250u);
  ASSERT_EQ(a.steps.size(), 2u);
  ASSERT_EQ(b.steps.size(), 2u);
  // Both start with the selective AVET scan and probe :age per row.
  EXPECT_NE(a.steps[0].clause.find(":name"), std::string::npos);
  EXPECT_NE(b.steps[0].clause.find(":name"), std::string::npos);
  EXPECT_EQ(a.steps[0].strategy, "scan AVET");
  EXPECT_EQ(a.steps[1].strategy, b.steps[1].strategy);
  EXPECT_EQ(a.steps[0].actual_rows, 250u);
  EXPECT_EQ(a.steps[0].estimated_rows, 250u);
  EXPECT_NE(a.ToString().find("est=250 actual=250"), std::string::npos) << a.ToString();
}

TEST(DatalogPlanner, FiltersRunAsSoonAsTheirVariablesAreBound) {
  testing::TestDb db;
  auto src = People(db, 500);
  Explain ex;
  auto r = Q(src.get(), R"([:find ?e :where [(odd? ?a)] [?e :age ?a] [?e :name "Ivan"]])", {}, &ex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(ex.steps.size(), 3u);
  EXPECT_NE(ex.steps[0].clause.find(":name"), std::string::npos) << ex.ToString();
  EXPECT_NE(ex.steps[1].clause.find(":age"), std::string::npos) << ex.ToString();
  EXPECT_NE(ex.steps[2].clause.find("(odd? ?a)"), std::string::npos) << ex.ToString();
  EXPECT_EQ(ex.steps[2].strategy, "filter");
}

TEST(DatalogPlanner, ComparisonsNarrowTheScanToAValueRange) {
  testing::TestDb db;
  auto src = People(db, 1000);  // ages 0..99, ten of each
  Explain ex;
  auto r = Q(src.get(), R"([:find ?e ?a :where [?e :age ?a] [(> ?a 90)] [(<= ?a 95)]])", {}, &ex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows.size(), 50u);
  for (const auto& row : r->rows) {
    EXPECT_GT(row[1].as_long(), 90);
    EXPECT_LE(row[1].as_long(), 95);
  }
  // One step: the scan reads only the 50 datoms in (90, 95], estimated exactly.
  ASSERT_EQ(ex.steps.size(), 1u) << ex.ToString();
  EXPECT_EQ(ex.steps[0].strategy, "scan value range") << ex.ToString();
  EXPECT_EQ(ex.steps[0].estimated_rows, 50u) << ex.ToString();
  EXPECT_NE(ex.steps[0].clause.find("(> ?a 90)"), std::string::npos) << ex.ToString();
  EXPECT_NE(ex.steps[0].clause.find("(<= ?a 95)"), std::string::npos) << ex.ToString();

  // A constant on the left flips the comparison; a scalar input is a bound too.
  auto flipped = Q(src.get(), R"([:find ?e :in $ ?lo :where [?e :age ?a] [(< 97 ?a)] [(>= ?a ?lo)]])", {}, nullptr,
                   {*ReadEdn("98")});
  ASSERT_TRUE(flipped.ok()) << flipped.status().ToString();
  EXPECT_EQ(flipped->rows.size(), 20u);
  // The range estimate steers the join order: the narrow :age range first.
  Explain order;
  auto joined = Q(src.get(), R"([:find ?e :where [?e :name ?n] [?e :age ?a] [(< ?a 1)]])", {}, &order);
  ASSERT_TRUE(joined.ok());
  EXPECT_EQ(joined->rows.size(), 10u);
  ASSERT_GE(order.steps.size(), 1u);
  EXPECT_NE(order.steps[0].clause.find(":age"), std::string::npos) << order.ToString();
}

TEST(DatalogPlanner, EntitySortedRowsMergeJoinAnAttributeScan) {
  testing::TestDb db;
  auto src = People(db, 1000);
  Explain ex;
  // [?e :age ?a] scans AEVT (rows sorted by ?e); :name has as many datoms as
  // there are rows, so one merged pass beats a probe per row.
  auto r = Q(src.get(), R"([:find ?e ?a ?n :where [?e :age ?a] [?e :name ?n]])", {}, &ex);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows.size(), 1000u);
  ASSERT_EQ(ex.steps.size(), 2u) << ex.ToString();
  EXPECT_EQ(ex.steps[1].strategy, "merge join") << ex.ToString();
  EXPECT_EQ(ex.steps[1].actual_rows, 1000u) << ex.ToString();
  size_t ivans = 0;
  for (const auto& row : r->rows) ivans += row[2].as_string() == "Ivan" ? 1 : 0;
  EXPECT_EQ(ivans, 125u);
}

TEST(DatalogPlanner, ValueRangesAreExactAcrossValueTypes) {
  // Comparisons across types follow the engine's order (numbers across
  // long/double, then by type): the range scan must return exactly what the
  // filter would, for every bound and operator.
  testing::TestDb db;
  ASSERT_TRUE(db.InstallSchema(*ReadEdn("{:r {:db/valueType :db.type/ref}}")).ok());
  ASSERT_TRUE(db.Transact(R"([{:db/id 1 :x 1} {:db/id 2 :x 2.5} {:db/id 3 :x "b"} {:db/id 4 :x :k}
                              {:db/id 5 :x true} {:db/id 6 :x 3} {:db/id 7 :x -1.0} {:db/id 8 :x "a"}
                              {:db/id 9 :x [1 2]} {:db/id 10 :r 3} {:db/id 11 :r 7} {:db/id 12 :x 2}])")
                  .ok());
  auto src = db.View();
  QueryOptions reference;
  reference.reference = true;
  const char* bounds[] = {"2", "2.5", "-5", "\"a\"", "\"c\"", ":k", "true", "3.0", "[1 3]"};
  const char* ops[] = {"<", "<=", ">", ">="};
  int nonempty = 0;
  for (const char* attr : {":x", ":r"})
    for (const char* b : bounds)
      for (const char* op : ops)
        for (const char* op2 : ops) {
          std::string q = std::string("[:find ?e ?v :where [?e ") + attr + " ?v] [(" + op + " ?v " + b + ")] [(" +
                          op2 + " " + bounds[(b[0] + op2[0]) % 9] + " ?v)]]";
          auto fast = Q(src.get(), q);
          auto slow = Q(src.get(), q, reference);
          ASSERT_TRUE(fast.ok() && slow.ok()) << q;
          auto rows = [](const QueryResult& r) {
            std::vector<std::string> out;
            for (const auto& row : r.rows) out.push_back(row[0].ToString() + " " + row[1].ToString());
            std::sort(out.begin(), out.end());
            return out;
          };
          EXPECT_EQ(rows(*fast), rows(*slow)) << q;
          nonempty += fast->rows.empty() ? 0 : 1;
        }
  EXPECT_GT(nonempty, 50);
}

TEST(DatalogEngine, StepBudgetCancelsARunawayQuery) {
  testing::TestDb db;
  auto src = People(db, 300);
  QueryOptions opts;
  opts.step_budget = 10000;
  // A cartesian product of 300^3 rows.
  auto r = Q(src.get(), "[:find (count ?a) :where [?a :age] [?b :age] [?c :age]]", opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
}

TEST(DatalogEngine, CancellationCallbackStopsTheQuery) {
  testing::TestDb db;
  auto src = People(db, 300);
  QueryOptions opts;
  int polls = 0;
  opts.cancelled = [&polls]() { return ++polls > 2; };
  auto r = Q(src.get(), "[:find (count ?a) :where [?a :age] [?b :age] [?c :age]]", opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_GT(polls, 2);
}

TEST(DatalogEngine, CustomFunctionsAndAggregatesFromCpp) {
  testing::TestDb db;
  auto src = People(db, 16);
  FunctionRegistry reg;
  reg.RegisterFunction("my/twice", {[](const FnArgs& a, Value* out) {
                                      if (a.v[0].type() != ValueType::kLong)
                                        return Status::InvalidArgument("my/twice: not a long");
                                      *out = Value::Long(a.v[0].as_long() * 2);
                                      return Status::OK();
                                    },
                                    1, 1});
  reg.RegisterAggregate("my/span", {[](const std::vector<Value>&, std::vector<Value>& vs, Value* out) {
                          auto [lo, hi] = std::minmax_element(vs.begin(), vs.end());
                          *out = Value::Long(hi->as_long() - lo->as_long());
                          return Status::OK();
                        }});
  QueryOptions opts;
  opts.registry = &reg;
  auto r = Q(src.get(), "[:find (my/span ?t) . :where [_ :age ?a] [(my/twice ?a) ?t]]", opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->rows[0][0], Value::Long(30));
  auto bad = Q(src.get(), "[:find ?t :where [_ :name ?n] [(my/twice ?n) ?t]]", opts);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("my/twice: not a long in [(my/twice ?n) ?t] at 1:"), std::string::npos)
      << bad.status().ToString();
  // Without the registry the name is unknown.
  EXPECT_FALSE(Q(src.get(), "[:find ?t :where [_ :age ?a] [(my/twice ?a) ?t]]").ok());
}

TEST(DatalogEngine, ResultShapeColumnsAndKeys) {
  testing::TestDb db;
  auto src = People(db, 3);
  auto r = Q(src.get(), "[:find ?n (count ?e) :keys name n :where [?e :name ?n]]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->key_kind, QueryResult::KeyKind::kKeys);
  EXPECT_EQ(r->columns, (std::vector<std::string>{"name", "n"}));
  auto s = Q(src.get(), "[:find ?n . :where [?e :name ?n] [?e :age 0]]");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->shape, QueryResult::Shape::kScalar);
  EXPECT_EQ(s->columns, (std::vector<std::string>{"?n"}));
}

TEST(MemoryIndex, ScansFollowTheBoundComponentsAndEstimatesAreExactRanges) {
  testing::TestDb db;
  auto src = People(db, 100);
  DatomPattern p;
  p.a = Keyword::Intern("name");
  p.v = Value::String("Ivan");
  EXPECT_EQ(src->EstimateCount(p), 13u);
  int n = 0;
  ASSERT_TRUE(src->Scan(p, [&](const Datom& d) {
                   EXPECT_EQ(d.v, Value::String("Ivan"));
                   ++n;
                   return true;
                 }).ok());
  EXPECT_EQ(n, 13);
  DatomPattern by_e;
  by_e.e = EntityId{5};
  EXPECT_EQ(src->EstimateCount(by_e), 2u);
  EXPECT_EQ(src->EstimateDistinct(Keyword::Intern("age"), 0), 100u);
  EXPECT_EQ(src->EstimateDistinct(Keyword::Intern("name"), 2), 2u);
  DatomPattern none;
  none.a = Keyword::Intern("missing");
  EXPECT_EQ(src->EstimateCount(none), 0u);
}

TEST(MemoryIndex, ViewsReplayTheLog) {
  testing::TestDb db;
  ASSERT_TRUE(db.Transact("[{:db/id 1 :age 1}]").ok());
  ASSERT_TRUE(db.Transact("[[:db/add 1 :age 2]]").ok());
  ASSERT_TRUE(db.Transact("[[:db/retract 1 :age 2]]").ok());
  EXPECT_EQ(db.View()->size(), 0u);
  EXPECT_EQ(db.View(MemoryIndex::View::kAsOf, TxTime{1})->size(), 1u);
  EXPECT_EQ(db.View(MemoryIndex::View::kAsOf, TxTime{2})->datoms()[0].v, Value::Long(2));
  EXPECT_EQ(db.View(MemoryIndex::View::kHistory)->size(), 4u);  // assert 1, retract 1, assert 2, retract 2
}

TEST(DatalogParser, ErrorsNameTheClauseAndPosition) {
  auto r = ParseQuery("[:find ?x\n :where [?x :a]\n        (not-join ?x [?x :b])]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("3:19"), std::string::npos) << r.status().ToString();
  auto r2 = ParseQuery("[:find ?x :where [?x :a ?y ?z ?w ?extra]]");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("1:18: a data pattern has 1 to 5 elements"), std::string::npos)
      << r2.status().ToString();
}

}  // namespace
}  // namespace cairn::datalog

namespace cairn::datalog {
namespace {

TEST(DatalogRules, BoundArgumentsSeedTheEvaluation) {
  testing::TestDb db;
  ASSERT_TRUE(db.InstallSchema(*ReadEdn("{:next {:db/valueType :db.type/ref}}")).ok());
  std::string tx = "[";
  for (int i = 1; i < 200; ++i) tx += "[:db/add " + std::to_string(i) + " :next " + std::to_string(i + 1) + "]";
  ASSERT_TRUE(db.Transact(tx + "]").ok());
  auto src = db.View();
  const std::string rules = "[[(reach ?a ?b) [?a :next ?b]] [(reach ?a ?b) [?a :next ?m] (reach ?m ?b)]]";
  for (bool reference : {false, true}) {
    Explain ex;
    QueryOptions opts;
    opts.reference = reference;
    std::vector<Edn> args{*ReadEdn(rules)};
    auto r = Q(src.get(), "[:find ?y :in $ % :where (reach 150 ?y)]", opts, &ex, args);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->rows.size(), 50u);
    std::string plan = ex.ToString();
    // Seeded: only the closure below node 150 (50+49+...+1 tuples) instead of all 19900.
    if (!reference) {
      EXPECT_NE(plan.find("rule (1275 tuples)"), std::string::npos) << plan;
    } else {
      EXPECT_NE(plan.find("rule (19900 tuples)"), std::string::npos) << plan;
    }
  }
  // Bound through a variable from an earlier clause, and both positions bound.
  std::vector<Edn> args{*ReadEdn(rules)};
  auto r2 = Q(src.get(), "[:find ?x :in $ % :where [?x :next 191] (reach ?x ?y) [(= ?y 200)]]", {}, nullptr, args);
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  ASSERT_EQ(r2->rows.size(), 1u);
  EXPECT_EQ(r2->rows[0][0], Value::Long(190));
  auto r3 = Q(src.get(), "[:find ?x . :in $ % ?t :where (reach 3 ?t) [(ground :yes) ?x]]", {}, nullptr,
              {*ReadEdn(rules), Edn::Int(7)});
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  ASSERT_EQ(r3->rows.size(), 1u);
}

}  // namespace
}  // namespace cairn::datalog
