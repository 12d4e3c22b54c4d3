// Core micro-benchmarks: EDN parse/write throughput on realistic tx-data and
// the Value hot paths (Compare, Hash, StableHash, Keyword::Intern).
//
//   ninja -C build cairn_bench_core && build/bench/core/cairn_bench_core
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/value.h"
#include "core/edn.h"

namespace cairn {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// ~1 MB of transaction data: maps with strings, ints, doubles, keywords,
// instants, nested vectors and a nested component map, like a bulk import.
const std::string& TxDocument() {
  static const std::string doc = [] {
    static const char* kFirst[] = {"Ada", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Leslie"};
    static const char* kCity[] = {"Zürich", "Lisbon", "Kraków", "Osaka", "Nairobi", "Montréal", "Oslo", "Quito"};
    std::string s = "[";
    for (uint64_t i = 0; s.size() < (1u << 20); ++i) {
      uint64_t r = Mix(i);
      s += "{:db/id \"person-" + std::to_string(i) + "\"\n";
      s += "  :person/name \"" + std::string(kFirst[r % 8]) + " " + std::to_string(r % 100000) + "\"\n";
      s += "  :person/email \"user" + std::to_string(i) + "@example.com\"\n";
      s += "  :person/age " + std::to_string(18 + r % 70) + "\n";
      s += "  :person/score " + std::to_string(static_cast<double>(r % 100000) / 100.0) + "\n";
      s += "  :person/status :status/" + std::string((r >> 8) % 2 ? "active" : "inactive") + "\n";
      s += "  :person/joined #inst \"2024-0" + std::to_string(1 + (r >> 12) % 9) + "-1" +
           std::to_string((r >> 16) % 10) + "T10:20:30.123Z\"\n";
      s += "  :person/tags [:tag/a :tag/b \"free text, with \\\"quotes\\\"\" " + std::to_string(r % 1000) + "]\n";
      s += "  :person/address {:address/city \"" + std::string(kCity[(r >> 20) % 8]) + "\" :address/zip " +
           std::to_string(10000 + (r >> 24) % 89999) + " :address/lines [\"line one\" \"line two\"]}}\n";
    }
    s += "]";
    return s;
  }();
  return doc;
}

void BM_EdnParseTxData(benchmark::State& state) {
  const std::string& doc = TxDocument();
  for (auto _ : state) {
    auto r = ReadEdn(doc);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(doc.size()));
  state.counters["doc_bytes"] = static_cast<double>(doc.size());
}
BENCHMARK(BM_EdnParseTxData)->Unit(benchmark::kMillisecond);

void BM_EdnWriteTxData(benchmark::State& state) {
  auto edn = ReadEdn(TxDocument());
  size_t bytes = 0;
  for (auto _ : state) {
    std::string s = WriteEdn(*edn);
    bytes = s.size();
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_EdnWriteTxData)->Unit(benchmark::kMillisecond);

void BM_EdnToValueTxData(benchmark::State& state) {
  auto edn = ReadEdn(TxDocument());
  for (auto _ : state) {
    auto v = EdnToValue(*edn);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(TxDocument().size()));
}
BENCHMARK(BM_EdnToValueTxData)->Unit(benchmark::kMillisecond);

// A mix like an index column: longs, strings with shared prefixes, keywords, refs.
std::vector<Value> MixedValues(size_t n) {
  std::vector<Value> vs;
  vs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t r = Mix(i);
    switch (r % 5) {
      case 0:
        vs.push_back(Value::Long(static_cast<int64_t>(r >> 20)));
        break;
      case 1:
        vs.push_back(Value::String("user" + std::to_string(r % 5000) + "@example.com"));
        break;
      case 2:
        vs.push_back(Value::Kw("attr/k" + std::to_string(r % 64)));
        break;
      case 3:
        vs.push_back(Value::Ref(EntityId{r >> 16}));
        break;
      default:
        vs.push_back(Value::Double(static_cast<double>(r % 100000) / 7.0));
        break;
    }
  }
  return vs;
}

void BM_ValueCompareMixed(benchmark::State& state) {
  std::vector<Value> vs = MixedValues(4096);
  size_t i = 0;
  int64_t acc = 0;
  for (auto _ : state) {
    acc += vs[i & 4095].Compare(vs[(i * 7 + 1) & 4095]);
    ++i;
  }
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ValueCompareMixed);

void BM_ValueCompareSameType(benchmark::State& state) {
  std::vector<Value> vs;
  const int kind = static_cast<int>(state.range(0));
  for (uint64_t i = 0; i < 4096; ++i) {
    uint64_t r = Mix(i);
    if (kind == 0) vs.push_back(Value::Long(static_cast<int64_t>(r)));
    if (kind == 1) vs.push_back(Value::String("user" + std::to_string(r % 5000) + "@example.com"));
    if (kind == 2) vs.push_back(Value::Kw("attr/k" + std::to_string(r % 64)));
  }
  size_t i = 0;
  int64_t acc = 0;
  for (auto _ : state) {
    acc += vs[i & 4095].Compare(vs[(i * 7 + 1) & 4095]);
    ++i;
  }
  benchmark::DoNotOptimize(acc);
  state.SetLabel(kind == 0 ? "long" : kind == 1 ? "string" : "keyword");
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ValueCompareSameType)->Arg(0)->Arg(1)->Arg(2);

void BM_ValueSort(benchmark::State& state) {
  std::vector<Value> base = MixedValues(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Value> vs = base;
    state.ResumeTiming();
    std::sort(vs.begin(), vs.end());
    benchmark::DoNotOptimize(vs);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_ValueSort)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_ValueHash(benchmark::State& state) {
  std::vector<Value> vs = MixedValues(4096);
  size_t i = 0;
  size_t acc = 0;
  for (auto _ : state) acc += vs[i++ & 4095].Hash();
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ValueHash);

void BM_ValueStableHash(benchmark::State& state) {
  std::vector<Value> vs = MixedValues(4096);
  size_t i = 0;
  uint64_t acc = 0;
  for (auto _ : state) acc += vs[i++ & 4095].StableHash();
  benchmark::DoNotOptimize(acc);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ValueStableHash);

void BM_ValueCopy(benchmark::State& state) {
  std::vector<Value> vs = MixedValues(4096);
  size_t i = 0;
  for (auto _ : state) {
    Value c = vs[i++ & 4095];
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ValueCopy);

void BM_KeywordInternExisting(benchmark::State& state) {
  std::vector<std::string> names;
  for (int i = 0; i < 256; ++i) names.push_back("person/attribute-" + std::to_string(i));
  for (const auto& n : names) Keyword::Intern(n);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(Keyword::Intern(names[i++ & 255]));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_KeywordInternExisting)->ThreadRange(1, 2);

}  // namespace
}  // namespace cairn

BENCHMARK_MAIN();
