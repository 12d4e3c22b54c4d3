// cairn_bench_datalog: DataScript's query benchmarks (bench/datascript/bench in
// tonsky/datascript) on Cairn's Datalog engine over the in-memory index.
//
// Data: 20,000 people from a seeded generator (:name from 8 first names,
// :last-name from 6, :sex :male/:female, :age 0-99, :salary 0-99,999), ids
// 1..20000; the `follows` graphs of the rules benchmarks are DataScript's
// wide (tree) and long (chains) shapes.
//
//   build-datalog/bench/datalog/cairn_bench_datalog --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/edn.h"
#include "datalog/engine.h"
#include "datalog/memory_index.h"

namespace cairn::datalog {
namespace {

std::shared_ptr<Schema> BenchSchema() {
  auto s = std::make_shared<Schema>();
  Attribute follows;
  follows.ident = Keyword::Intern("follows");
  follows.value_type = ValueType::kRef;
  follows.cardinality = Cardinality::kMany;
  follows.declared = true;
  s->Put(follows);
  return s;
}

const MemoryIndex& People() {
  static const MemoryIndex* db = [] {
    const char* names[] = {"Ivan", "Petr", "Sergei", "Oleg", "Yuri", "Dmitry", "Fedor", "Denis"};
    const char* last[] = {"Ivanov", "Petrov", "Sidorov", "Kovalev", "Kuznetsov", "Voronoi"};
    std::mt19937_64 rng(42);  // seeded: the same data every run
    auto pick = [&](uint64_t n) { return rng() % n; };
    std::vector<Datom> datoms;
    TxTime t{1};
    Keyword name = Keyword::Intern("name"), last_name = Keyword::Intern("last-name"), sex = Keyword::Intern("sex"),
            age = Keyword::Intern("age"), salary = Keyword::Intern("salary");
    for (uint64_t i = 1; i <= 20000; ++i) {
      EntityId e{i};
      datoms.push_back({e, name, Value::String(names[pick(8)]), t, true});
      datoms.push_back({e, last_name, Value::String(last[pick(6)]), t, true});
      datoms.push_back({e, sex, Value::Kw(pick(2) ? "male" : "female"), t, true});
      datoms.push_back({e, age, Value::Long(static_cast<int64_t>(pick(100))), t, true});
      datoms.push_back({e, salary, Value::Long(static_cast<int64_t>(pick(100000))), t, true});
    }
    return new MemoryIndex(BenchSchema(), std::move(datoms), false);
  }();
  return *db;
}

void RunQuery(benchmark::State& state, const MemoryIndex& db, const std::string& query, std::vector<Edn> args = {}) {
  auto qedn = ReadEdn(query);
  if (!qedn.ok()) {
    state.SkipWithError(qedn.status().ToString().c_str());
    return;
  }
  auto inputs = BindApiInputs(*qedn, &db, std::move(args));
  if (!inputs.ok()) {
    state.SkipWithError(inputs.status().ToString().c_str());
    return;
  }
  size_t rows = 0;
  for (auto _ : state) {
    auto r = datalog::RunQuery(*qedn, *inputs);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      return;
    }
    rows = r->rows.size();
    benchmark::DoNotOptimize(r->rows.data());
  }
  state.counters["rows"] = static_cast<double>(rows);
}

void BM_q1(benchmark::State& s) { RunQuery(s, People(), R"([:find ?e :where [?e :name "Ivan"]])"); }
void BM_q2(benchmark::State& s) {
  RunQuery(s, People(), R"([:find ?e ?a :where [?e :name "Ivan"] [?e :age ?a]])");
}
void BM_q2_swapped(benchmark::State& s) {
  RunQuery(s, People(), R"([:find ?e ?a :where [?e :age ?a] [?e :name "Ivan"]])");
}
void BM_q3(benchmark::State& s) {
  RunQuery(s, People(), R"([:find ?e ?a :where [?e :name "Ivan"] [?e :age ?a] [?e :sex :male]])");
}
void BM_q4(benchmark::State& s) {
  RunQuery(s, People(),
           R"([:find ?e ?l ?a :where [?e :name "Ivan"] [?e :last-name ?l] [?e :age ?a] [?e :sex :male]])");
}
void BM_qpred1(benchmark::State& s) {
  RunQuery(s, People(), R"([:find ?e ?s :where [?e :salary ?s] [(> ?s 50000)]])");
}
void BM_qpred2(benchmark::State& s) {
  std::vector<Edn> args;
  args.push_back(Edn::Int(50000));
  RunQuery(s, People(), R"([:find ?e ?s :in $ ?min_s :where [?e :salary ?s] [(> ?s ?min_s)]])", std::move(args));
}

// DataScript's wide-db: node id follows id*width + k for k < width, to `depth`.
std::unique_ptr<MemoryIndex> WideDb(int depth, int width) {
  std::vector<Datom> datoms;
  Keyword follows = Keyword::Intern("follows"), name = Keyword::Intern("name");
  std::vector<std::pair<uint64_t, int>> stack{{1, depth}};
  while (!stack.empty()) {
    auto [id, d] = stack.back();
    stack.pop_back();
    datoms.push_back({EntityId{id}, name, Value::String("Ivan"), TxTime{1}, true});
    if (d <= 0) continue;
    for (int k = 0; k < width; ++k) {
      uint64_t child = id * static_cast<uint64_t>(width) + static_cast<uint64_t>(k);
      datoms.push_back({EntityId{id}, follows, Value::Ref(EntityId{child}), TxTime{1}, true});
      stack.push_back({child, d - 1});
    }
  }
  return std::make_unique<MemoryIndex>(BenchSchema(), std::move(datoms), false);
}

// DataScript's long-db: `width` chains of `depth` follows edges each.
std::unique_ptr<MemoryIndex> LongDb(int depth, int width) {
  std::vector<Datom> datoms;
  Keyword follows = Keyword::Intern("follows"), name = Keyword::Intern("name");
  for (int x = 0; x < width; ++x) {
    for (int y = 0; y < depth; ++y) {
      uint64_t from = static_cast<uint64_t>(x * (depth + 1) + y) + 1, to = from + 1;
      datoms.push_back({EntityId{from}, name, Value::String("Ivan"), TxTime{1}, true});
      datoms.push_back({EntityId{from}, follows, Value::Ref(EntityId{to}), TxTime{1}, true});
      if (y == depth - 1) datoms.push_back({EntityId{to}, name, Value::String("Ivan"), TxTime{1}, true});
    }
  }
  return std::make_unique<MemoryIndex>(BenchSchema(), std::move(datoms), false);
}

const char* kRulesQuery = "[:find ?e ?e2 :in $ % :where (follows ?e ?e2)]";
const char* kRules = "[[(follows ?x ?y) [?x :follows ?y]] [(follows ?x ?y) [?x :follows ?t] (follows ?t ?y)]]";

void Rules(benchmark::State& s, const MemoryIndex& db) {
  std::vector<Edn> args;
  args.push_back(*ReadEdn(kRules));
  RunQuery(s, db, kRulesQuery, std::move(args));
}
void BM_rules_wide(benchmark::State& s) {
  auto db = WideDb(static_cast<int>(s.range(0)), static_cast<int>(s.range(1)));
  Rules(s, *db);
}
void BM_rules_long(benchmark::State& s) {
  auto db = LongDb(static_cast<int>(s.range(0)), static_cast<int>(s.range(1)));
  Rules(s, *db);
}

// A 100k-edge chain queried from a bound start: magic sets derive only the
// 1,000 reachable tuples instead of the 5e9-tuple closure.
void BM_rules_chain100k_bound(benchmark::State& s) {
  static const MemoryIndex* db = LongDb(100000, 1).release();
  std::vector<Edn> args;
  args.push_back(*ReadEdn(kRules));
  RunQuery(s, *db, "[:find ?y :in $ % :where (follows 99001 ?y)]", std::move(args));
}

BENCHMARK(BM_q1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_q2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_q2_swapped)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_q3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_q4)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_qpred1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_qpred2)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_rules_wide)->Args({3, 3})->Args({5, 3})->Args({7, 3})->Args({4, 6})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_rules_long)->Args({10, 3})->Args({30, 3})->Args({30, 5})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_rules_chain100k_bound)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cairn::datalog

BENCHMARK_MAIN();
