// cairn_bench_storage: the storage floor and Cairn's durable write path.
//
//   RawSqlite/BulkInsert      prepared INSERTs of (e, a, v, tx) rows into one
//                             plain unindexed table; WAL, synchronous=FULL,
//                             1,000 rows per transaction (the floor)
//   Cairn/TransactBulk        Database::transact(EDN) of 1,000 datoms per
//                             transaction (250 new entities x 4 attributes),
//                             durable; datoms/s
//   Cairn/StoreCommitBulk     the storage layer alone: DatomStore::Commit of
//                             1,000 prepared datoms + memory index update
//   Cairn/TransactSingleDatom one datom per transaction, durable; tx/s
//   RawSqlite/SingleRowTx     one row per SQLite transaction, same settings
//   MemoryIndex/CommitWhileSnapshotHeld/N  a two-datom commit while a reader holds
//                             the previous snapshot (copy-on-write), N datoms indexed
//   Cairn/Open/200000         Database::open of a 200k-datom file (reads the
//                             log, builds the memory index); datoms/s
//
// Files live in $CAIRN_BENCH_DIR (default: the current directory) so that
// fsync hits a real disk, not tmpfs. At the end the Cairn/raw ratio is
// printed (goal: Cairn bulk >= 50% of the raw row rate).
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cairn/database.h"
#include "storage/datom_store.h"
#include "storage/memory_index.h"

namespace {

namespace fs = std::filesystem;

constexpr int kBatch = 1000;
constexpr int kEntitiesPerBatch = 250;  // x 4 attributes = 1,000 datoms

std::string BenchPath(const char* name) {
  const char* dir = std::getenv("CAIRN_BENCH_DIR");
  fs::path p = fs::path(dir != nullptr ? dir : ".") / ("cairn_bench_" + std::to_string(getpid()) + "_" + name + ".db");
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(p.string() + suffix);
  return p.string();
}
void RemoveDb(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
}

// The same logical rows for every contender: entity i gets name, n, group, email.
std::string Name(int64_t i) { return "item number " + std::to_string(i); }

void OpenRaw(const std::string& path, sqlite3** db, sqlite3_stmt** insert) {
  sqlite3_open(path.c_str(), db);
  sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                    "CREATE TABLE datoms (e INTEGER, a INTEGER, v, tx INTEGER)", nullptr, nullptr, nullptr);
  sqlite3_prepare_v2(*db, "INSERT INTO datoms (e, a, v, tx) VALUES (?, ?, ?, ?)", -1, insert, nullptr);
}

void InsertRow(sqlite3_stmt* ins, int64_t e, int a, int64_t i, int64_t tx) {
  sqlite3_bind_int64(ins, 1, e);
  sqlite3_bind_int(ins, 2, a);
  switch (a) {
    case 1: {
      std::string s = Name(i);
      sqlite3_bind_text(ins, 3, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
      break;
    }
    case 2: sqlite3_bind_int64(ins, 3, i); break;
    case 3: sqlite3_bind_int64(ins, 3, i % 97); break;
    default: {
      std::string s = "user" + std::to_string(i) + "@example.com";
      sqlite3_bind_text(ins, 3, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  sqlite3_bind_int64(ins, 4, tx);
  sqlite3_step(ins);
  sqlite3_reset(ins);
}

void BM_RawSqliteBulkInsert(benchmark::State& state) {
  std::string path = BenchPath("raw");
  sqlite3* db;
  sqlite3_stmt* ins;
  OpenRaw(path, &db, &ins);
  int64_t next = 0, tx = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    ++tx;
    for (int k = 0; k < kEntitiesPerBatch; ++k, ++next)
      for (int a = 1; a <= 4; ++a) InsertRow(ins, next, a, next, tx);
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  sqlite3_finalize(ins);
  sqlite3_close(db);
  RemoveDb(path);
}
BENCHMARK(BM_RawSqliteBulkInsert)->Name("RawSqlite/BulkInsert")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_RawSqliteSingleRowTx(benchmark::State& state) {
  std::string path = BenchPath("raw1");
  sqlite3* db;
  sqlite3_stmt* ins;
  OpenRaw(path, &db, &ins);
  int64_t next = 0;
  for (auto _ : state) {
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    InsertRow(ins, next, 2, next, next);
    ++next;
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  }
  state.SetItemsProcessed(state.iterations());
  sqlite3_finalize(ins);
  sqlite3_close(db);
  RemoveDb(path);
}
BENCHMARK(BM_RawSqliteSingleRowTx)->Name("RawSqlite/SingleRowTx")->Unit(benchmark::kMicrosecond)->UseRealTime();

std::string BulkEdn(int64_t first) {
  std::string edn = "[";
  for (int64_t i = first; i < first + kEntitiesPerBatch; ++i) {
    std::string n = std::to_string(i);
    edn += "{:db/id \"e" + n + "\" :item/name \"" + Name(i) + "\" :item/n " + n + " :item/group " +
           std::to_string(i % 97) + " :item/email \"user" + n + "@example.com\"}\n";
  }
  edn += "]";
  return edn;
}

void BM_CairnTransactBulk(benchmark::State& state) {
  std::string path = BenchPath("cairn");
  auto db = cairn::Database::open(path);
  if (!db.ok()) {
    state.SkipWithError(db.status().ToString().c_str());
    return;
  }
  int64_t next = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::string edn = BulkEdn(next);
    next += kEntitiesPerBatch;
    state.ResumeTiming();
    auto r = (*db)->transact(edn);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  db->reset();
  RemoveDb(path);
}
BENCHMARK(BM_CairnTransactBulk)->Name("Cairn/TransactBulk")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CairnStoreCommitBulk(benchmark::State& state) {
  using namespace cairn;
  std::string path = BenchPath("store");
  auto store = storage::DatomStore::Open(path, {});
  if (!store.ok()) {
    state.SkipWithError(store.status().ToString().c_str());
    return;
  }
  auto index = std::make_shared<storage::CurrentIndex>();
  Keyword attrs[4] = {Keyword::Intern("item/name"), Keyword::Intern("item/n"), Keyword::Intern("item/group"),
                      Keyword::Intern("item/email")};
  int64_t next = 1;
  std::vector<Datom> datoms;
  for (auto _ : state) {
    state.PauseTiming();
    datoms.clear();
    TxTime t{(*store)->last_t().raw + 1};
    for (int k = 0; k < kEntitiesPerBatch; ++k, ++next) {
      EntityId e = EntityId::Make(1, static_cast<uint64_t>(next));
      datoms.push_back({e, attrs[0], Value::String(Name(next)), t, true});
      datoms.push_back({e, attrs[1], Value::Long(next), t, true});
      datoms.push_back({e, attrs[2], Value::Long(next % 97), t, true});
      datoms.push_back({e, attrs[3], Value::String("user" + std::to_string(next) + "@example.com"), t, true});
    }
    state.ResumeTiming();
    storage::CommitBatch batch;
    batch.t = t;
    batch.datoms = datoms;
    batch.next_seqs[1] = static_cast<uint64_t>(next);
    auto entries = (*store)->Commit(batch);
    if (!entries.ok()) {
      state.SkipWithError(entries.status().ToString().c_str());
      break;
    }
    index->Apply(*entries);  // in place, as Database does when no Db value holds the index
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  if (index->size() > 0)
    state.counters["index_bytes_per_datom"] =
        static_cast<double>(index->MemoryBytes()) / static_cast<double>(index->size());
  store->reset();
  RemoveDb(path);
}
BENCHMARK(BM_CairnStoreCommitBulk)->Name("Cairn/StoreCommitBulk")->Unit(benchmark::kMillisecond)->UseRealTime();

// One small commit (a new entity with two datoms, one of them on an indexed
// string attribute, as cairn bench's tx1 writes) while a reader holds the
// previous snapshot, as a replica or Database does under concurrent queries:
// the commit copies the index (copy-on-write) and then changes the copy. Arg:
// datoms already in the index. The time should grow slowly with it.
void BM_MemoryIndexCommitWhileSnapshotHeld(benchmark::State& state) {
  using namespace cairn;
  const int64_t preload = state.range(0);
  auto index = std::make_shared<storage::CurrentIndex>();
  std::vector<storage::IndexEntry> load;
  load.reserve(static_cast<size_t>(preload));
  for (int64_t i = 1; i <= preload / 2; ++i) {
    EntityId e = EntityId::Make(1, static_cast<uint64_t>(i));
    load.push_back({e, TxTime{1}, Value::String("key-" + std::to_string(i * 7919 % (preload + 1)) + std::string(48, 'x')), 1, true});
    load.push_back({e, TxTime{1}, Value::Long(i), 2, true});
  }
  index->Build(std::move(load));
  // The lazily built AVET of attribute 1 (the "unique key" attribute) exists, as after an upsert.
  storage::IndexBounds b;
  b.aid = 1;
  Value probe = Value::String("key-1");
  b.v = &probe;
  index->Scan(storage::IndexOrder::kAvet, b, [](const storage::IndexEntry&) { return false; });
  int64_t next = preload / 2 + 1;
  for (auto _ : state) {
    std::shared_ptr<const storage::CurrentIndex> held = index;  // a reader's snapshot
    auto copy = std::make_shared<storage::CurrentIndex>(*index);
    EntityId e = EntityId::Make(1, static_cast<uint64_t>(next));
    copy->Apply({{e, TxTime{2}, Value::String("key-new-" + std::to_string(next) + std::string(48, 'x')), 1, true},
                 {e, TxTime{2}, Value::Long(next), 2, true}});
    ++next;
    index = std::move(copy);
    held.reset();  // the reader lets go: the old snapshot is freed here
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MemoryIndexCommitWhileSnapshotHeld)
    ->Name("MemoryIndex/CommitWhileSnapshotHeld")
    ->Arg(10000)
    ->Arg(100000)
    ->Arg(1000000)
    ->Unit(benchmark::kMicrosecond);

void BM_CairnTransactSingleDatom(benchmark::State& state) {
  std::string path = BenchPath("cairn1");
  auto db = cairn::Database::open(path);
  if (!db.ok()) {
    state.SkipWithError(db.status().ToString().c_str());
    return;
  }
  int64_t next = 0;
  for (auto _ : state) {
    auto r = (*db)->transact("[[:db/add \"e\" :item/n " + std::to_string(next++) + "]]");
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  db->reset();
  RemoveDb(path);
}
BENCHMARK(BM_CairnTransactSingleDatom)->Name("Cairn/TransactSingleDatom")->Unit(benchmark::kMicrosecond)->UseRealTime();

// Open time of the log-plus-memory-index design: Database::open reads the
// whole log and builds the current index. Datoms loaded per second.
void BM_CairnOpen(benchmark::State& state) {
  std::string path = BenchPath("open");
  const int64_t batches = state.range(0) / kBatch;
  {
    cairn::Options fast;
    fast.sync = false;  // set-up only
    auto db = cairn::Database::open(path, fast);
    if (!db.ok()) {
      state.SkipWithError(db.status().ToString().c_str());
      return;
    }
    for (int64_t b = 0; b < batches; ++b) {
      auto r = (*db)->transact(BulkEdn(b * kEntitiesPerBatch));
      if (!r.ok()) {
        state.SkipWithError(r.status().ToString().c_str());
        return;
      }
    }
  }
  for (auto _ : state) {
    auto db = cairn::Database::open(path);
    if (!db.ok()) {
      state.SkipWithError(db.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(db->get());
  }
  state.SetItemsProcessed(state.iterations() * batches * (kBatch + 1));
  RemoveDb(path);
}
BENCHMARK(BM_CairnOpen)->Name("Cairn/Open")->Arg(200000)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

// Records items/s per benchmark so main() can print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it == r.counters.end()) continue;
      // With --benchmark_repetitions the median is the figure; else the run.
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name == "median") {
        rates[r.run_name.function_name] = it->second;
        medians.insert(r.run_name.function_name);
      } else if (r.run_type == Run::RT_Iteration && !medians.count(r.run_name.function_name)) {
        rates[r.run_name.function_name] = it->second;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> rates;
  std::set<std::string> medians;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto& r = reporter.rates;
  auto ratio = [&](const char* a, const char* b) {
    if (r.count(a) && r.count(b) && r[b] > 0)
      std::printf("%-28s / %-24s = %5.1f%%  (%.0f vs %.0f per second)\n", a, b, 100.0 * r[a] / r[b], r[a], r[b]);
  };
  ratio("Cairn/TransactBulk", "RawSqlite/BulkInsert");
  ratio("Cairn/StoreCommitBulk", "RawSqlite/BulkInsert");
  ratio("Cairn/TransactSingleDatom", "RawSqlite/SingleRowTx");
  benchmark::Shutdown();
  return 0;
}
