// Differential test: random schemas, data and queries; the planner and the
// reference evaluator (written order, nested loops, naive rule iteration)
// must return the same rows, or fail the same way. Seeded; a failure prints
// the seed and the case so it replays:
//   CAIRN_DIFF_SEED=1234 CAIRN_DIFF_CASES=1 ./cairn_unit_datalog --gtest_filter='*Differential*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>

#include "datalog/engine.h"
#include "datalog/reference_evaluator.h"
#include "test_db.h"

namespace cairn::datalog {
namespace {

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  int Int(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  bool Chance(int percent) { return Int(100) < percent; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) { return v[static_cast<size_t>(Int(static_cast<int>(v.size())))]; }

  // Attributes: l0..l2 longs (small domain), s0 strings, r0/r1 refs (r1 many).
  std::string Schema() {
    return "{:r0 {:db/valueType :db.type/ref} :r1 {:db/valueType :db.type/ref :db/cardinality :db.cardinality/many}"
           " :l2 {:db/cardinality :db.cardinality/many}}";
  }

  std::string Data(int entities) {
    std::ostringstream tx;
    tx << "[";
    for (int e = 1; e <= entities; ++e) {
      tx << "{:db/id " << e;
      if (Chance(80)) tx << " :l0 " << Int(5);
      if (Chance(60)) tx << " :l1 " << Int(4) << (Chance(20) ? ".5" : "");
      if (Chance(50)) tx << " :l2 [" << Int(4) << " " << Int(4) << "]";
      if (Chance(60)) tx << " :s0 \"" << Pick(strings_) << "\"";
      if (Chance(50)) tx << " :r0 " << 1 + Int(entities);
      if (Chance(40)) tx << " :r1 [" << 1 + Int(entities) << " " << 1 + Int(entities) << "]";
      tx << "}";
    }
    tx << "]";
    return tx.str();
  }

  std::string Const(const std::string& attr) {
    if (attr == "s0") return "\"" + Pick(strings_) + "\"";
    if (attr == "r0" || attr == "r1") return std::to_string(1 + Int(entities_));
    return std::to_string(Int(5));
  }

  std::string Pattern(std::vector<std::string>* bound, bool allow_new = true) {
    std::string attr = Pick(attrs_);
    auto term = [&](bool entity) -> std::string {
      if (!bound->empty() && Chance(allow_new ? 55 : 100)) return Pick(*bound);
      if (Chance(15)) return entity ? std::to_string(1 + Int(entities_)) : Const(attr);
      if (Chance(10)) return "_";
      std::string v = "?v" + std::to_string(next_var_++);
      bound->push_back(v);
      return v;
    };
    std::string e = term(true);
    std::string a = Chance(8) ? "?a" + std::to_string(Int(2)) : ":" + attr;
    if (a[0] == '?') bound->push_back(a);
    std::string v = Chance(20) ? Const(attr) : term(false);
    return "[" + e + " " + a + " " + v + "]";
  }

  std::string Clause(std::vector<std::string>* bound, int depth) {
    int k = Int(100);
    if (k < 45 || bound->empty()) return Pattern(bound);
    if (k < 57) {
      // Comparisons against constants of several types (and on either side)
      // are folded into value-range scans by the planner.
      const char* ops[] = {"<", ">", "<=", ">=", "=", "not="};
      int r = Int(10);
      std::string rhs = r < 4   ? Pick(*bound)
                        : r < 8 ? std::to_string(Int(5))
                        : r < 9 ? std::to_string(Int(5)) + ".5"
                                : "\"" + Pick(strings_) + "\"";
      std::string lhs = Pick(*bound);
      if (Chance(25)) std::swap(lhs, rhs);
      std::string c = "[(" + std::string(ops[Int(6)]) + " " + lhs + " " + rhs + ")]";
      // Two-sided ranges.
      if (Chance(20)) c += " [(" + std::string(ops[Int(4)]) + " " + lhs + " " + std::to_string(Int(5)) + ")]";
      return c;
    }
    if (k < 64) {
      std::string out = "?f" + std::to_string(next_var_++);
      std::string c = "[(" + std::string(Chance(50) ? "str" : "vector") + " " + Pick(*bound) + ") " + out + "]";
      bound->push_back(out);
      return c;
    }
    if (k < 74 && depth < 2) {
      std::vector<std::string> inner = *bound;
      std::string body = Pattern(&inner, false);
      if (Chance(30)) body += " " + Pattern(&inner, false);
      return "(not " + body + ")";
    }
    if (k < 82 && depth < 2) {
      std::string v = Pick(*bound);
      std::string var = "?j" + std::to_string(next_var_++);
      std::string a1 = Pick(attrs_), a2 = Pick(attrs_);
      return "(not-join [" + v + "] [" + v + " :" + a1 + " " + var + "] [(> " + var + " " +
             std::to_string(Int(3)) + ")])";
    }
    if (k < 92 && depth < 2) {
      // or-join over one bound variable, each branch with its own locals.
      std::string v = Pick(*bound);
      std::string b1 = "[" + v + " :" + Pick(attrs_) + " " + Const("l0") + "]";
      std::string b2 = "(and [" + v + " :" + (Chance(50) ? "l0" : "l2") + " ?o" + std::to_string(next_var_) + "] [(odd? ?o" +
                       std::to_string(next_var_) + ")])";
      ++next_var_;
      return "(or-join [" + v + "] " + b1 + " " + b2 + ")";
    }
    if (k < 95 && depth < 2) {
      std::string v = Pick(*bound);
      return "(or [" + v + " :l0 " + Const("l0") + "] [" + v + " :l1 " + Const("l1") + "] [" + v + " :r1 _])";
    }
    if (k < 97) {
      std::string out = "?c" + std::to_string(next_var_++);
      bound->push_back(out);
      return "[(vector " + Pick(*bound) + " 1) [" + out + " ...]]";
    }
    if (k < 98) {
      used_rules_ = true;
      std::string x = Pick(*bound);
      return Chance(50) ? "(not (reach " + x + " " + x + "))" : "(not (odd-hop " + x + " _))";
    }
    // Recursive rules over refs (reach; mutually recursive odd-hop/even-hop).
    std::string x = Pick(*bound);
    if (Chance(30)) {
      std::string y = "?h" + std::to_string(next_var_++);
      bound->push_back(y);
      used_rules_ = true;
      return "(" + std::string(Chance(50) ? "odd-hop " : "even-hop ") + x + " " + y + ")";
    }
    std::string y = "?t" + std::to_string(next_var_++);
    bound->push_back(y);
    used_rules_ = true;
    return Chance(50) ? "(reach " + x + " " + y + ")" : "(reach " + y + " " + x + ")";
  }

  struct Case {
    std::string data, query, rules;
  };

  Case Make() {
    entities_ = 3 + Int(10);
    next_var_ = 0;
    used_rules_ = false;
    Case c;
    c.data = Data(entities_);
    std::vector<std::string> bound;
    std::vector<std::string> clauses;
    int n = 1 + Int(4);
    for (int i = 0; i < n; ++i) clauses.push_back(Clause(&bound, 0));
    if (Chance(30)) std::shuffle(clauses.begin(), clauses.end(), rng_);
    std::vector<std::string> find;
    for (const std::string& v : bound)
      if (Chance(60) && std::find(find.begin(), find.end(), v) == find.end()) find.push_back(v);
    if (find.empty()) find.push_back(bound.empty() ? "?v0" : bound[0]);
    std::string f;
    bool agg = Chance(20);
    const char* aggs[] = {"count", "count-distinct", "min", "max", "distinct"};
    std::string agg_fn = aggs[Int(5)];
    for (size_t i = 0; i < find.size(); ++i) {
      if (agg && i == 0) {
        f += "(" + agg_fn + " " + find[i] + ")";
      } else {
        f += (f.empty() ? "" : " ") + find[i];
      }
    }
    std::string with;
    if (agg && bound.size() > find.size() && Chance(50)) {
      for (const std::string& v : bound)
        if (std::find(find.begin(), find.end(), v) == find.end()) {
          with = " :with " + v;
          break;
        }
    }
    std::string where;
    for (const auto& cl : clauses) where += " " + cl;
    c.query = "[:find " + f + with + (used_rules_ ? " :in $ %" : "") + " :where" + where + "]";
    if (used_rules_)
      c.rules = "[[(reach ?a ?b) [?a :r0 ?b]] [(reach ?a ?b) [?a :r1 ?b]] [(reach ?a ?b) [?a :r0 ?m] (reach ?m ?b)]"
                " [(odd-hop ?a ?b) [?a :r0 ?b]] [(odd-hop ?a ?b) [?a :r1 ?m] (even-hop ?m ?b)]"
                " [(even-hop ?a ?b) [?a :r0 ?m] (odd-hop ?m ?b)]]";
    return c;
  }

 private:
  std::mt19937_64 rng_;
  std::vector<std::string> strings_{"a", "b", "c", "ab"};
  std::vector<std::string> attrs_{"l0", "l1", "l2", "s0", "r0", "r1"};
  int entities_ = 5;
  int next_var_ = 0;
  bool used_rules_ = false;
};

std::vector<std::vector<std::string>> Rows(const QueryResult& r) {
  std::vector<std::vector<std::string>> out;
  for (const auto& row : r.rows) {
    std::vector<std::string> s;
    for (const Value& v : row) s.push_back(v.ToString());
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DatalogDifferential, PlannerMatchesReferenceOnRandomQueries) {
  uint64_t base = std::getenv("CAIRN_DIFF_SEED") ? std::strtoull(std::getenv("CAIRN_DIFF_SEED"), nullptr, 10) : 20261122;
  int cases = std::getenv("CAIRN_DIFF_CASES") ? std::atoi(std::getenv("CAIRN_DIFF_CASES")) : 20000;
  int ok_cases = 0, error_cases = 0, nonempty = 0;
  for (int i = 0; i < cases; ++i) {
    uint64_t seed = base + static_cast<uint64_t>(i);
    Gen g(seed);
    Gen::Case c = g.Make();
    testing::TestDb db;
    ASSERT_TRUE(db.InstallSchema(*ReadEdn(g.Schema())).ok());
    Status st = db.Transact(c.data);
    ASSERT_TRUE(st.ok()) << st.ToString() << "\n" << c.data;
    auto view = db.View();
    auto q = ReadEdn(c.query);
    ASSERT_TRUE(q.ok()) << q.status().ToString() << "\n" << c.query;
    std::vector<Edn> args;
    if (!c.rules.empty()) args.push_back(*ReadEdn(c.rules));
    auto inputs = BindApiInputs(*q, view.get(), args);
    ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
    QueryOptions planner_opts, reference_opts;
    reference_opts.reference = true;
    planner_opts.step_budget = reference_opts.step_budget = 5'000'000;
    auto a = RunQuery(*q, *inputs, planner_opts);
    auto b = RunQuery(*q, *inputs, reference_opts);
    std::string replay = "seed " + std::to_string(seed) + " (CAIRN_DIFF_SEED=" + std::to_string(seed) +
                         " CAIRN_DIFF_CASES=1)\n  data:  " + c.data + "\n  query: " + c.query +
                         "\n  rules: " + c.rules;
    if (a.ok() != b.ok()) {
      ADD_FAILURE() << "planner " << (a.ok() ? "ok" : a.status().ToString()) << " vs reference "
                    << (b.ok() ? "ok" : b.status().ToString()) << "\n" << replay;
      return;
    }
    if (!a.ok()) {
      // Both failed: the same class of error (messages may name different clauses).
      if (a.status().code() != b.status().code())
        ADD_FAILURE() << a.status().ToString() << " vs " << b.status().ToString() << "\n" << replay;
      ++error_cases;
      continue;
    }
    auto ra = Rows(*a), rb = Rows(*b);
    if (ra != rb) {
      ADD_FAILURE() << "planner returned " << ra.size() << " rows, reference mode " << rb.size() << "\n" << replay;
      return;
    }
    // The independent reference evaluator (reference_evaluator.h).
    auto c2 = RunReferenceQuery(*q, *inputs, nullptr, 5'000'000);
    if (!c2.ok()) {
      ADD_FAILURE() << "planner ok, independent reference: " << c2.status().ToString() << "\n" << replay;
      return;
    }
    auto rc = Rows(*c2);
    if (ra != rc) {
      ADD_FAILURE() << "planner returned " << ra.size() << " rows, independent reference " << rc.size() << "\n"
                    << replay;
      return;
    }
    ++ok_cases;
    if (!ra.empty()) ++nonempty;
  }
  std::cout << "[differential] " << ok_cases << " agreeing (" << nonempty << " non-empty), " << error_cases
            << " both rejected\n";
  // The generator must mostly produce valid, non-trivial queries to be worth anything.
  EXPECT_GT(ok_cases, cases * 6 / 10);
  EXPECT_GT(nonempty, cases / 4);
}

}  // namespace
}  // namespace cairn::datalog

namespace cairn::datalog {
namespace {

// Malformed queries (random character deletions and duplications of valid
// ones) must fail with an error or run; never crash or hang.
TEST(DatalogRobustness, MangledQueriesNeverCrash) {
  testing::TestDb db;
  ASSERT_TRUE(db.InstallSchema(*ReadEdn("{:r0 {:db/valueType :db.type/ref}}")).ok());
  ASSERT_TRUE(db.Transact("[{:db/id 1 :l0 1 :s0 \"a\" :r0 2} {:db/id 2 :l0 2 :r0 1}]").ok());
  auto view = db.View();
  std::mt19937_64 rng(99);
  int errors = 0, ran = 0;
  for (int i = 0; i < 4000; ++i) {
    Gen g(static_cast<uint64_t>(i) * 7919);
    std::string q = g.Make().query;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits && !q.empty(); ++k) {
      size_t at = rng() % q.size();
      if (rng() % 2) {
        q.erase(at, 1);
      } else {
        q.insert(at, 1, q[rng() % q.size()]);
      }
    }
    std::vector<Edn> args{*ReadEdn("[[(reach ?a ?b) [?a :r0 ?b]] [(reach ?a ?b) [?a :r0 ?m] (reach ?m ?b)]]")};
    auto e = ReadEdn(q);
    if (!e.ok()) {
      ++errors;
      continue;
    }
    auto inputs = BindApiInputs(*e, view.get(), args);
    if (!inputs.ok()) inputs = BindApiInputs(*e, view.get(), {});
    if (!inputs.ok()) {
      ++errors;
      continue;
    }
    QueryOptions opts;
    opts.step_budget = 1'000'000;
    auto r = RunQuery(*e, *inputs, opts);
    if (r.ok()) {
      ++ran;
    } else {
      ++errors;
      EXPECT_FALSE(r.status().message().empty());
    }
  }
  std::cout << "[robustness] " << ran << " ran, " << errors << " rejected\n";
}

}  // namespace
}  // namespace cairn::datalog
