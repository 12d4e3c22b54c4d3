// Benchmarks of one shard replica's apply path on real SQLite files.
//
//   BM_Apply/<batch>/<sync>: a single-voter group (so every proposal commits
//     as soon as it is durable in the Raft log); each iteration proposes
//     `batch` single-entity transactions and runs HandleReady until they are
//     applied. sync=1: Raft log and datom file synchronous=FULL (a real node);
//     sync=0: both NORMAL (no fsync per commit; the CPU cost of apply). The
//     entries/s counter is what docs/cluster.md quotes: how many committed
//     entries one replica applies per second on the driver thread.
//
// Files live in $TMPDIR (default /tmp)/cairn_bench_shard_<pid>, removed at
// the end of each benchmark.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "shard/raft_log_store.h"
#include "shard/replica.h"
#include "storage/sqlite.h"

namespace cairn::shard {
namespace {

constexpr uint64_t kBaseMs = 1'700'000'000'000ull;

struct Single {
  std::string dir;
  std::unique_ptr<storage::Sqlite> log_db;
  std::unique_ptr<RaftLogStore> log_store;
  std::unique_ptr<Replica> replica;

  explicit Single(bool sync) {
    dir = (std::filesystem::temp_directory_path() / ("cairn_bench_shard_" + std::to_string(::getpid()))).string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    log_db = std::move(*storage::Sqlite::Open(dir + "/raft.db", storage::Sqlite::OpenMode::kReadWriteCreate));
    (void)log_db->Exec(sync ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                            : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    log_store = std::move(*RaftLogStore::Open(log_db.get()));
    ReplicaOptions o;
    o.raft.id = raft::NodeId(1);
    o.raft.group = raft::GroupId(1);
    o.datoms_path = dir + "/datoms.db";
    o.store.sync = sync;
    o.store.partitions = 16;
    o.bootstrap = raft::ConfState{{raft::NodeId(1)}, {}};
    auto r = Replica::Open(o, log_db.get(), log_store.get());
    if (!r.ok()) std::abort();
    replica = std::move(*r);
    for (int i = 0; i < 100 && replica->raft().role() != raft::Role::kLeader; ++i) {
      replica->Tick();
      Drive();
    }
  }
  ~Single() {
    replica.reset();
    log_store.reset();
    log_db.reset();
    std::filesystem::remove_all(dir);
  }
  void Drive() {
    Status s = replica->HandleReady([](std::vector<raft::Message>) {});
    if (!s.ok()) std::abort();
  }
};

void BM_Apply(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Single s(state.range(1) != 0);
  if (s.replica->raft().role() != raft::Role::kLeader) {
    state.SkipWithError("no leader");
    return;
  }
  (void)s.replica->Propose({"schema", TxTime::FromParts(kBaseMs, 0),
                            "[{:db/ident :item/name :db/valueType :db.type/string "
                            ":db/cardinality :db.cardinality/one}]"});
  s.Drive();
  uint64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i, ++n) {
      std::string id = "r" + std::to_string(n);
      Result<raft::LogIndex> idx =
          s.replica->Propose({id, TxTime::FromParts(kBaseMs + 1 + n, 0), "[{:item/name \"" + id + "\"}]"});
      if (!idx.ok()) {
        state.SkipWithError(idx.status().ToString().c_str());
        return;
      }
    }
    s.Drive();
  }
  if (!s.replica->Outcome("r" + std::to_string(n - 1))) state.SkipWithError("last entry not applied");
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Apply)
    ->ArgsProduct({{1, 16, 64}, {0, 1}})
    ->ArgNames({"batch", "sync"})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0)
    ->UseRealTime();

}  // namespace
}  // namespace cairn::shard

BENCHMARK_MAIN();
