// Benchmarks of the Raft core alone: no disk, no network, messages handed
// from one RaftNode to another in memory.
//
//   BM_CommitThroughput/<batch>: a 3-node group; the leader proposes `batch`
//     entries of 64 bytes per round, and a round runs Ready/Advance on all
//     three nodes until the batch is committed and applied everywhere. The
//     entries/s counter is the goal metric (>= 1,000,000/s with batching).
//   BM_IdleGroupsTick/<groups>/<mode>: `groups` idle 3-node groups spread
//     over three simulated nodes, leaders balanced across them. One iteration
//     is one tick on every replica of every group plus the message exchange
//     it causes. mode 0: no quiescence; 1: quiescence, the host still ticks
//     every replica; 2: quiescence, the host ticks only awake groups; replica_tick is the time per replica per tick (a node hosting N groups pays N times that).
#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <vector>

#include "raft/raft_node.h"

namespace cairn::raft {
namespace {

// Three replicas of one group wired together in memory.
class Trio {
 public:
  Trio(const Config& base, uint64_t group) {
    ConfState conf{{NodeId(1), NodeId(2), NodeId(3)}, {}};
    for (uint64_t id = 1; id <= 3; id++) {
      Config c = base;
      c.id = NodeId(id);
      c.group = GroupId(group);
      c.seed = group * 7 + id;
      nodes_.push_back(std::make_unique<RaftNode>(c, RaftNode::Bootstrap(conf)));
    }
  }

  RaftNode& node(uint64_t id) { return *nodes_[id - 1]; }

  // Runs Ready cycles and delivers messages until nothing moves. Returns the
  // number of entries applied on node 1.
  uint64_t Settle() {
    uint64_t applied = 0;
    for (;;) {
      bool moved = false;
      for (auto& n : nodes_) {
        if (!n->HasReady()) continue;
        moved = true;
        Ready rd = n->GetReady();
        if (n->id() == NodeId(1)) applied += rd.committed_entries.size();
        for (Message& m : rd.messages) inbox_.push_back(std::move(m));
        n->Advance(rd);
      }
      while (!inbox_.empty()) {
        moved = true;
        Message m = std::move(inbox_.front());
        inbox_.pop_front();
        (void)nodes_[m.to.value() - 1]->Step(m);
      }
      if (!moved) return applied;
    }
  }

  void Tick(uint64_t id) { nodes_[id - 1]->Tick(); }

 private:
  std::vector<std::unique_ptr<RaftNode>> nodes_;
  std::deque<Message> inbox_;
};

void BM_CommitThroughput(benchmark::State& state) {
  const int64_t batch = state.range(0);
  Config cfg;
  cfg.entries_per_msg_max = 4096;
  cfg.bytes_per_msg_max = 8 << 20;
  cfg.uncommitted_bytes_max = 1ULL << 30;
  Trio trio(cfg, 1);
  trio.node(1).Campaign();
  trio.Settle();
  const std::string payload(64, 'p');
  uint64_t committed = 0;
  for (auto _ : state) {
    for (int64_t i = 0; i < batch; i++) {
      auto r = trio.node(1).Propose(payload);
      if (!r.ok()) state.SkipWithError("propose failed");
    }
    committed += trio.Settle();
    // Keep memory flat: snapshot and compact what every node applied.
    if (trio.node(1).applied().value() > 100000) {
      for (uint64_t id = 1; id <= 3; id++) {
        RaftNode& n = trio.node(id);
        (void)n.Compact(n.applied(), std::make_shared<const std::string>());
      }
      trio.Settle();
    }
  }
  state.counters["entries/s"] = benchmark::Counter(static_cast<double>(committed),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CommitThroughput)->Arg(1)->Arg(64)->Arg(1024)->Arg(8192)->Unit(benchmark::kMicrosecond);

void BM_IdleGroupsTick(benchmark::State& state) {
  const int64_t groups = state.range(0);
  Config cfg;
  cfg.quiesce_after_idle_rounds = state.range(1) ? 3 : 0;
  std::vector<std::unique_ptr<Trio>> trios;
  trios.reserve(groups);
  for (int64_t g = 0; g < groups; g++) {
    trios.push_back(std::make_unique<Trio>(cfg, g + 1));
    trios.back()->node(1 + g % 3).Campaign();
    trios.back()->Settle();
  }
  // Let idle groups settle (and quiesce, if enabled).
  for (int t = 0; t < 40; t++) {
    for (auto& trio : trios) {
      for (uint64_t id = 1; id <= 3; id++) trio->Tick(id);
      trio->Settle();
    }
  }
  // Mode 2: the host keeps only groups with a non-quiesced replica in its tick
  // set (a message would put a group back), so an idle group costs nothing.
  std::vector<Trio*> active;
  for (auto& trio : trios) {
    bool awake = state.range(1) != 2;
    for (uint64_t id = 1; id <= 3; id++) awake |= !trio->node(id).quiesced();
    if (awake) active.push_back(trio.get());
  }
  for (auto _ : state) {
    for (Trio* trio : active) {
      for (uint64_t id = 1; id <= 3; id++) trio->Tick(id);
      trio->Settle();
    }
  }
  state.counters["ticked_groups"] = static_cast<double>(active.size());
  // Every group has one replica per node, so one node's share is a third.
  state.counters["replica_tick"] = benchmark::Counter(
      static_cast<double>(groups) * 3, benchmark::Counter::kIsIterationInvariantRate |
                                          benchmark::Counter::kInvert);
  int leaders = 0;
  for (auto& trio : trios) {
    for (uint64_t id = 1; id <= 3; id++) leaders += trio->node(id).role() == Role::kLeader;
  }
  state.counters["leaders"] = leaders;
}
BENCHMARK(BM_IdleGroupsTick)
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Args({10000, 2})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cairn::raft

BENCHMARK_MAIN();
