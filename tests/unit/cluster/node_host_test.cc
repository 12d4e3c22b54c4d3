// NodeHost: three nodes x two groups in one process, each node with its own
// SQLite files in a temp dir and its own PeerTransport on 127.0.0.1 (real
// TCP, authenticated). Checks leader election per group, that transactions
// proposed at the leader apply with identical datoms on all three nodes,
// failover when the node hosting a leader goes away, and that the node
// recreated from its files catches up.
#include "cluster/node_host.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "gtest/gtest.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kGroups[] = {1, 2};

const char* kSchema =
    "[{:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one"
    "  :db/unique :db.unique/identity}"
    " {:db/ident :person/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]";

std::string PersonTx(const std::string& name, int age) {
  return "[{:person/name \"" + name + "\" :person/age " + std::to_string(age) + "}]";
}

class TestCluster {
 public:
  explicit TestCluster(const std::string& name, uint32_t quiesce_after_idle_rounds = 0, bool sync = false,
                       uint64_t snapshot_entries = 10000, cairn::Clock* clock = nullptr)
      : quiesce_(quiesce_after_idle_rounds), sync_(sync), snapshot_entries_(snapshot_entries), clock_(clock) {
    dir_ = (std::filesystem::temp_directory_path() / ("cairn_cluster_" + std::to_string(::getpid())) / name).string();
    std::filesystem::remove_all(dir_);
    for (uint32_t id = 1; id <= 3; ++id) StartNode(id);
  }
  ~TestCluster() {
    for (auto& h : hosts_) h.reset();
    std::filesystem::remove_all(dir_);
  }

  // `untold`: a node not told where this one listens now (kept cut off).
  void StartNode(uint32_t id, uint32_t untold = 0) {
    NodeHostOptions o;
    o.node_id = id;
    o.dir = dir_ + "/node" + std::to_string(id);
    for (uint64_t g : kGroups) o.groups[g] = {1, 2, 3};
    o.cluster_secret = "test-secret";
    o.tick_ms = 10;
    o.store.sync = sync_;
    o.store.partitions = 16;
    o.sync_log = sync_;
    o.raft.quiesce_after_idle_rounds = quiesce_;
    o.snapshot_entries = snapshot_entries_;
    o.clock = clock_;
    for (uint32_t peer = 1; peer <= 3; ++peer) {
      if (peer != id && hosts_[peer]) o.peers[peer] = {"127.0.0.1", hosts_[peer]->port()};
    }
    auto h = NodeHost::Start(o);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    hosts_[id] = std::move(*h);
    // Tell the others where this node listens now.
    for (uint32_t peer = 1; peer <= 3; ++peer) {
      if (peer != id && peer != untold && hosts_[peer]) hosts_[peer]->SetPeer(id, "127.0.0.1", hosts_[id]->port());
    }
  }

  void StopNode(uint32_t id) { hosts_[id].reset(); }
  NodeHost* at(uint32_t id) { return hosts_[id].get(); }

  // The live node leading `group` (and known as leader by itself), or 0.
  uint32_t Leader(uint64_t group) {
    for (uint32_t id = 1; id <= 3; ++id) {
      if (!hosts_[id]) continue;
      Result<GroupStatus> s = hosts_[id]->status(group);
      if (s.ok() && s->role == raft::Role::kLeader && s->applied >= s->commit && s->commit > 1) return id;
    }
    return 0;
  }

  uint32_t WaitLeader(uint64_t group, std::chrono::milliseconds within) {
    Clock::time_point end = Clock::now() + within;
    while (Clock::now() < end) {
      if (uint32_t l = Leader(group)) return l;
      std::this_thread::sleep_for(5ms);
    }
    return 0;
  }

  // Proposes at the current leader, following NotLeader hints.
  ProposeResult Propose(uint64_t group, const std::string& request_id, const std::string& tx) {
    ProposeResult last;
    for (int attempt = 0; attempt < 20; ++attempt) {
      uint32_t l = WaitLeader(group, 2000ms);
      if (l == 0) return last;
      last = hosts_[l]->Propose(group, request_id, tx).get();
      if (last.status.code() != StatusCode::kNotLeader) return last;
      std::this_thread::sleep_for(20ms);
    }
    return last;
  }

  // Waits until every live node applied at least `index` of `group`.
  bool WaitApplied(uint64_t group, uint64_t index, std::chrono::milliseconds within) {
    Clock::time_point end = Clock::now() + within;
    while (Clock::now() < end) {
      bool all = true;
      for (uint32_t id = 1; id <= 3; ++id) {
        if (!hosts_[id]) continue;
        Result<GroupStatus> s = hosts_[id]->status(group);
        if (!s.ok() || s->applied < index) all = false;
      }
      if (all) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  // Node `id`'s status of `group` once `ok` holds for it, or the last one
  // seen after `within`. status() is published at the end of a driver round,
  // after the round's answers went out, so a caller holding an answer may
  // still read the status of the round before.
  GroupStatus WaitStatus(uint32_t id, uint64_t group, const std::function<bool(const GroupStatus&)>& ok,
                         std::chrono::milliseconds within) {
    Clock::time_point end = Clock::now() + within;
    GroupStatus last;
    while (true) {
      Result<GroupStatus> s = hosts_[id]->status(group);
      if (s.ok()) {
        last = *s;
        if (ok(last)) return last;
      }
      if (Clock::now() >= end) return last;
      std::this_thread::sleep_for(2ms);
    }
  }

  // Every live node holds the same datoms for `group`; returns their count.
  size_t ExpectSameDatoms(uint64_t group) {
    std::vector<Datom> first;
    bool have_first = false;
    for (uint32_t id = 1; id <= 3; ++id) {
      if (!hosts_[id]) continue;
      Result<std::vector<Datom>> ds = hosts_[id]->LogDatoms(group);
      EXPECT_TRUE(ds.ok()) << ds.status().ToString();
      if (!ds.ok()) return 0;
      if (!have_first) {
        first = std::move(*ds);
        have_first = true;
      } else {
        EXPECT_EQ(*ds, first) << "node " << id << " group " << group;
      }
    }
    return first.size();
  }

 private:
  uint32_t quiesce_;
  bool sync_;
  std::string dir_;
  std::unique_ptr<NodeHost> hosts_[4];
  uint64_t snapshot_entries_ = 10000;
  cairn::Clock* clock_ = nullptr;
};

TEST(NodeHost, ThreeNodesTwoGroupsElectReplicateFailOverAndCatchUp) {
  TestCluster c("main");

  // 1. A leader per group within 2 s.
  for (uint64_t g : kGroups) ASSERT_NE(c.WaitLeader(g, 2000ms), 0u) << "group " << g;

  // 2. Transactions proposed at the leader apply on all three, identically.
  uint64_t last_index[3] = {};
  for (uint64_t g : kGroups) {
    ProposeResult r = c.Propose(g, "schema-" + std::to_string(g), kSchema);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    for (int i = 0; i < 10; ++i) {
      std::string name = "g" + std::to_string(g) + "-p" + std::to_string(i);
      r = c.Propose(g, name, PersonTx(name, i));
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      EXPECT_GT(r.t, TxTime{});
    }
    last_index[g] = r.index;
  }
  // A retry of an applied request id returns its first outcome.
  ProposeResult again = c.Propose(1, "g1-p9", PersonTx("g1-p9", 9));
  ASSERT_TRUE(again.status.ok());
  EXPECT_EQ(again.index, last_index[1]);
  // A refused transaction reports the transactor's error.
  ProposeResult bad = c.Propose(1, "bad", "[{:person/name \"z\" :person/age \"not a number\"}]");
  std::printf("refused: %s\n", bad.status.ToString().c_str());
  EXPECT_FALSE(bad.status.ok());
  for (uint64_t g : kGroups) {
    ASSERT_TRUE(c.WaitApplied(g, last_index[g], 2000ms)) << "group " << g;
    EXPECT_GT(c.ExpectSameDatoms(g), 20u);
  }

  // Group commit and batching: one Save per round carrying every group's
  // Ready, one frame per peer per round. Proposing to both groups at once
  // makes rounds where both have work.
  // Whether a round finds both groups with work depends on scheduling (a
  // loaded machine may run the driver between two Propose calls), so bursts
  // repeat until one shows it, a bounded number of times: with group commit
  // broken no burst ever would.
  size_t bursts_run = 0;
  {
    NodeHostStats total;
    for (int burst = 0; burst < 10; ++burst) {
      ++bursts_run;
      std::vector<std::future<ProposeResult>> fs;
      for (int i = 0; i < 20; ++i) {
        for (uint64_t g : kGroups) {
          uint32_t l = c.Leader(g);
          ASSERT_NE(l, 0u);
          std::string name = "burst" + std::to_string(burst) + "-g" + std::to_string(g) + "-" + std::to_string(i);
          fs.push_back(c.at(l)->Propose(g, name, PersonTx(name, i)));
        }
      }
      for (auto& f : fs) {
        ProposeResult r = f.get();
        EXPECT_TRUE(r.status.ok()) << r.status.ToString();
      }
      total = NodeHostStats{};
      for (uint32_t id = 1; id <= 3; ++id) {
        NodeHostStats s = c.at(id)->stats();
        EXPECT_EQ(s.saves, s.rounds);
        // Rounds that persisted something took some time; the longest is kept.
        EXPECT_GT(s.round_us_max, 0u);
        total.saves += s.saves;
        total.readies_saved += s.readies_saved;
        total.frames_sent += s.frames_sent;
        total.messages_sent += s.messages_sent;
      }
      if (total.readies_saved > total.saves && total.messages_sent > total.frames_sent) break;
    }
    std::printf("group commit: %llu saves carried %llu group readies; %llu frames carried %llu messages\n",
                static_cast<unsigned long long>(total.saves), static_cast<unsigned long long>(total.readies_saved),
                static_cast<unsigned long long>(total.frames_sent),
                static_cast<unsigned long long>(total.messages_sent));
    EXPECT_GT(total.readies_saved, total.saves);        // some saves served both groups
    EXPECT_GT(total.messages_sent, total.frames_sent);  // some frames carried several messages
  }

  // Linearizable reads on every node, leader or follower, see every
  // transaction completed before the read started.
  for (uint32_t id = 1; id <= 3; ++id) {
    for (uint64_t g : kGroups) {
      NodeHost::DbResult db = c.at(id)->Read(g).get();
      ASSERT_TRUE(db.ok()) << "node " << id << " group " << g << ": " << db.status().ToString();
      std::string name = "g" + std::to_string(g) + "-p9";
      EXPECT_TRUE((*db)->Lookup(Keyword::Intern("person/name"), Value::String(name)).has_value())
          << "node " << id << " misses " << name;
      datalog::DatomPattern by_name;
      by_name.a = Keyword::Intern("person/name");
      size_t names = 0;
      ASSERT_TRUE((*db)->Scan(by_name, [&](const Datom&) { return ++names, true; }).ok());
      EXPECT_EQ(names, 10u + 20u * bursts_run) << "node " << id << " group " << g;  // 10 + 20 per burst
    }
  }
  EXPECT_EQ(c.at(1)->Read(99).get().status().code(), StatusCode::kNotFound);

  // A non-leader answers NotLeader naming the leader.
  uint32_t l1 = c.Leader(1);
  uint32_t follower = l1 == 1 ? 2 : 1;
  ProposeResult nl = c.at(follower)->Propose(1, "", PersonTx("x", 1)).get();
  EXPECT_EQ(nl.status.code(), StatusCode::kNotLeader) << nl.status.ToString();
  EXPECT_EQ(nl.leader, l1);

  // 3. Destroy the node hosting group 1's leader: a new leader within 1 s,
  //    and new proposals commit on the remaining two.
  c.StopNode(l1);
  Clock::time_point down = Clock::now();
  uint32_t new_l1 = c.WaitLeader(1, 1000ms);
  ASSERT_NE(new_l1, 0u) << "no new leader for group 1 within 1 s";
  EXPECT_NE(new_l1, l1);
  std::printf("failover: new leader of group 1 (node %u) after %lld ms\n", new_l1,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down).count()));
  for (uint64_t g : kGroups) {
    for (int i = 0; i < 5; ++i) {
      std::string name = "after-g" + std::to_string(g) + "-" + std::to_string(i);
      ProposeResult r = c.Propose(g, name, PersonTx(name, 100 + i));
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      last_index[g] = r.index;
    }
    ASSERT_TRUE(c.WaitApplied(g, last_index[g], 2000ms));
    c.ExpectSameDatoms(g);
  }

  // 4. Recreate it from its files: it catches up on both groups.
  c.StartNode(l1);
  ASSERT_NE(c.at(l1), nullptr);
  for (uint64_t g : kGroups) {
    ASSERT_TRUE(c.WaitApplied(g, last_index[g], 5000ms)) << "node " << l1 << " did not catch up on group " << g;
    c.ExpectSameDatoms(g);
  }
  // And it takes part again: a proposal now applies on all three.
  ProposeResult r = c.Propose(2, "final", PersonTx("final", 1));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(c.WaitApplied(2, r.index, 2000ms));
  c.ExpectSameDatoms(2);
}

// Idle groups quiesce (no ticks, no raft heartbeats); the host's node-level
// liveness beats still reveal a dead leader node, so the survivors wake and
// elect, and a quiesced group wakes for a new proposal.
TEST(NodeHost, QuiescedGroupsFailOverWhenTheLeaderNodeDies) {
  TestCluster c("quiesce", /*quiesce_after_idle_rounds=*/2);
  for (uint64_t g : kGroups) ASSERT_NE(c.WaitLeader(g, 2000ms), 0u) << "group " << g;
  for (uint64_t g : kGroups) {
    ProposeResult r = c.Propose(g, "schema-" + std::to_string(g), kSchema);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
  auto all_quiesced = [&](uint64_t g) {
    for (uint32_t id = 1; id <= 3; ++id) {
      if (!c.at(id)) continue;
      Result<GroupStatus> s = c.at(id)->status(g);
      if (!s.ok() || !s->quiesced) return false;
    }
    return true;
  };
  Clock::time_point end = Clock::now() + 3s;
  while (Clock::now() < end && !(all_quiesced(1) && all_quiesced(2))) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(all_quiesced(1) && all_quiesced(2)) << "groups did not quiesce";

  // A proposal wakes its quiesced group and commits.
  ProposeResult r = c.Propose(2, "wake", PersonTx("wake", 1));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  end = Clock::now() + 3s;
  while (Clock::now() < end && !all_quiesced(2)) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(all_quiesced(2));

  uint32_t l1 = c.Leader(1);
  ASSERT_NE(l1, 0u);
  c.StopNode(l1);
  uint32_t new_l1 = c.WaitLeader(1, 1500ms);
  ASSERT_NE(new_l1, 0u) << "quiesced followers never noticed the leader's node died";
  r = c.Propose(1, "after", PersonTx("after", 2));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(c.WaitApplied(1, r.index, 2000ms));
  c.ExpectSameDatoms(1);
}

// Figures, not a check (run with --gtest_also_run_disabled_tests): durable
// (synchronous=FULL) logs and datoms, 3 nodes x 2 groups on one machine.
// Sequential: one transaction at a time at group 1's leader (commit latency).
// Pipelined: `kInFlight` transactions per group outstanding at once.
TEST(NodeHost, DISABLED_Figures) {
  TestCluster c("figures", 0, /*sync=*/true);
  for (uint64_t g : kGroups) ASSERT_NE(c.WaitLeader(g, 2000ms), 0u);
  for (uint64_t g : kGroups) ASSERT_TRUE(c.Propose(g, "schema-" + std::to_string(g), kSchema).status.ok());
  const int kSequential = 200;
  Clock::time_point start = Clock::now();
  uint32_t l = c.Leader(1);
  for (int i = 0; i < kSequential; ++i) {
    std::string name = "seq-" + std::to_string(i);
    ProposeResult r = c.at(l)->Propose(1, name, PersonTx(name, i)).get();
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  }
  double seq_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("sequential: %d tx in %.3f s = %.2f ms per tx\n", kSequential, seq_s, seq_s * 1000 / kSequential);

  const int kTotal = 2000, kInFlight = 64;
  std::vector<std::future<ProposeResult>> window;
  start = Clock::now();
  int sent = 0, done = 0, failed = 0;
  NodeHostStats before[4];
  for (uint32_t id = 1; id <= 3; ++id) before[id] = c.at(id)->stats();
  while (done < kTotal) {
    while (sent < kTotal && static_cast<int>(window.size()) < kInFlight * 2) {
      uint64_t g = kGroups[sent % 2];
      std::string name = "pipe-" + std::to_string(sent);
      uint32_t leader = c.WaitLeader(g, 2000ms);
      ASSERT_NE(leader, 0u);
      window.push_back(c.at(leader)->Propose(g, name, PersonTx(name, sent)));
      ++sent;
    }
    ProposeResult r = window.front().get();
    window.erase(window.begin());
    // A leader change under load (a slow fsync on a busy machine) fails the
    // requests in flight; counted, not retried.
    if (!r.status.ok()) {
      if (failed++ == 0) std::printf("first failure: %s\n", r.status.ToString().c_str());
    }
    ++done;
  }
  double pipe_s = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t saves = 0, readies = 0;
  for (uint32_t id = 1; id <= 3; ++id) {
    saves += c.at(id)->stats().saves - before[id].saves;
    readies += c.at(id)->stats().readies_saved - before[id].readies_saved;
  }
  std::printf("pipelined: %d tx over 2 groups, %d in flight per group, in %.3f s = %.0f tx/s; "
              "%.2f group readies per save\n",
              kTotal, kInFlight, pipe_s, kTotal / pipe_s, static_cast<double>(readies) / saves);
  std::printf("pipelined: %d of %d failed\n", failed, kTotal);
  EXPECT_LT(failed, kTotal / 10);
}

// A proposal at a leader cut off from its followers cannot commit; once the
// others elect a leader and overwrite the entry, the proposer learns it at
// once (NotLeader naming the new leader), not after propose_timeout_ms.
TEST(NodeHost, AProposalDroppedByALeaderChangeFailsFast) {
  TestCluster c("dropped");
  ASSERT_NE(c.WaitLeader(1, 2000ms), 0u);
  ASSERT_TRUE(c.Propose(1, "schema", kSchema).status.ok());
  uint32_t l = c.Leader(1);
  uint32_t a = l % 3 + 1, b = a % 3 + 1;
  c.StopNode(a);
  c.StopNode(b);
  Clock::time_point start = Clock::now();
  std::future<ProposeResult> f = c.at(l)->Propose(1, "orphan", PersonTx("orphan", 1));
  std::this_thread::sleep_for(100ms);
  // The old leader cannot reach them (port 1 refuses), they can reach it:
  // they elect one of themselves, whose appends overwrite the orphan entry.
  // (Cut before they start and kept cut while they do: a reconnect in
  // between could replicate and commit the orphan.)
  c.at(l)->SetPeer(a, "127.0.0.1", 1);
  c.at(l)->SetPeer(b, "127.0.0.1", 1);
  c.StartNode(a, l);
  c.StartNode(b, l);
  ASSERT_EQ(f.wait_for(4s), std::future_status::ready) << "the proposal waited for its timeout";
  c.at(l)->SetPeer(a, "127.0.0.1", c.at(a)->port());
  c.at(l)->SetPeer(b, "127.0.0.1", c.at(b)->port());
  ProposeResult r = f.get();
  long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  std::printf("dropped proposal answered after %lld ms: %s\n", ms, r.status.ToString().c_str());
  EXPECT_EQ(r.status.code(), StatusCode::kNotLeader) << r.status.ToString();
  EXPECT_NE(r.leader, l);
  // The cluster heals: the old leader's node follows and applies again.
  r = c.Propose(1, "healed", PersonTx("healed", 2));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(c.WaitApplied(1, r.index, 3000ms));
  c.ExpectSameDatoms(1);
}

TEST(NodeHost, ProposeToUnknownGroupAndAfterStop) {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("cairn_cluster_" + std::to_string(::getpid())) / "single").string();
  std::filesystem::remove_all(dir);
  NodeHostOptions o;
  o.node_id = 1;
  o.dir = dir;
  o.groups[7] = {1};
  o.cluster_secret = "s";
  o.sync_log = false;
  o.store.sync = false;
  o.store.partitions = 16;
  auto h = NodeHost::Start(o);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  NodeHost& host = **h;
  EXPECT_EQ(host.status(8).status().code(), StatusCode::kNotFound);
  ProposeResult r = host.Propose(8, "", "[]").get();
  EXPECT_EQ(r.status.code(), StatusCode::kNotFound);
  // A single-voter group elects itself.
  Clock::time_point end = Clock::now() + 2s;
  while (Clock::now() < end && host.status(7)->role != raft::Role::kLeader) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(host.status(7)->role, raft::Role::kLeader);
  r = host.Propose(7, "s", kSchema).get();
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  host.Stop();
  r = host.Propose(7, "", PersonTx("a", 1)).get();
  EXPECT_EQ(r.status.code(), StatusCode::kCancelled);
  EXPECT_EQ(host.LogDatoms(7).status().code(), StatusCode::kUnavailable);
  std::filesystem::remove_all(dir);
}

// A node kept down while the others snapshot and compact their logs (every
// 20 entries here) cannot catch up from the log: the leader streams its
// snapshot over the peer connection, the node installs it and ends with the
// same datoms.
TEST(NodeHost, NodeKeptDownCatchesUpBySnapshot) {
  TestCluster c("snapshot", 0, false, /*snapshot_entries=*/20);
  ASSERT_NE(c.WaitLeader(1, 2000ms), 0u);
  ASSERT_TRUE(c.Propose(1, "schema", kSchema).status.ok());
  c.StopNode(3);
  ProposeResult last;
  for (int i = 0; i < 150; ++i) {
    last = c.Propose(1, "s" + std::to_string(i), PersonTx("s" + std::to_string(i), i));
    ASSERT_TRUE(last.status.ok()) << i << ": " << last.status.ToString();
  }
  uint32_t leader = c.WaitLeader(1, 2000ms);
  ASSERT_NE(leader, 0u);
  // Snapshots are copied in the background and recorded by a later round:
  // wait (bounded) for one past where node 3 stopped.
  Result<GroupStatus> ls = c.at(leader)->status(1);
  for (auto until = std::chrono::steady_clock::now() + 5s;
       ls.ok() && ls->snapshot_index <= 64u + 10u && std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(10ms);
    ls = c.at(leader)->status(1);
  }
  ASSERT_TRUE(ls.ok());
  EXPECT_GT(ls->snapshots_taken, 0u);
  EXPECT_GT(ls->snapshot_index, 64u + 10u) << "the log should be compacted past where node 3 stopped";
  c.StartNode(3);
  ASSERT_TRUE(c.WaitApplied(1, last.index, 10000ms));
  Result<GroupStatus> s3 = c.at(3)->status(1);
  ASSERT_TRUE(s3.ok());
  EXPECT_TRUE(s3->error.ok()) << s3->error.ToString();
  EXPECT_EQ(s3->snapshots_installed, 1u);
  EXPECT_GT(c.ExpectSameDatoms(1), 150u);
}

}  // namespace
}  // namespace cairn::cluster

namespace cairn::cluster {
namespace {

// ---------------------------------------------------------------- time

constexpr int64_t kBaseMs = 1'700'000'000'000;

// Every proposal draws its t from the node's hybrid clock: a time observed
// (a client's min-t) bounds it even when every wall clock is far behind,
// and a t applied in one group bounds the node's proposals in every group.
TEST(NodeHost, ProposalsExceedObservedAndAppliedTimes) {
  ManualClock clock(kBaseMs);
  TestCluster c("hlc", 0, false, 10000, &clock);
  for (uint64_t g : kGroups) {
    ASSERT_NE(c.WaitLeader(g, 2000ms), 0u);
    ASSERT_TRUE(c.Propose(g, "schema", kSchema).status.ok());
  }
  ProposeResult first = c.Propose(1, "first", PersonTx("first", 1));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  EXPECT_EQ(first.t.physical_ms(), static_cast<uint64_t>(kBaseMs));  // the clock, while nothing is ahead of it

  const TxTime min_t = TxTime::FromParts(kBaseMs + 30'000, 5);  // a client saw this t elsewhere
  uint32_t l1 = c.WaitLeader(1, 3000ms);
  ASSERT_NE(l1, 0u);
  // Too far ahead of the wall clock (default bound 60 s): refused, not recorded.
  Status far = c.at(l1)->ObserveTime(TxTime::FromParts(kBaseMs + 120'000, 0));
  EXPECT_EQ(far.code(), StatusCode::kInvalidArgument) << far.ToString();
  EXPECT_LT(c.at(l1)->LatestTime(), min_t);
  ASSERT_TRUE(c.at(l1)->ObserveTime(min_t).ok());
  EXPECT_GE(c.at(l1)->LatestTime(), min_t);
  ProposeResult r = c.at(l1)->Propose(1, "causal", PersonTx("causal", 2)).get();
  for (int attempt = 0; attempt < 10 && r.status.code() == StatusCode::kNotLeader; ++attempt) {
    // A loaded machine moved the leadership: observe at the new leader too.
    l1 = c.WaitLeader(1, 3000ms);
    ASSERT_NE(l1, 0u);
    ASSERT_TRUE(c.at(l1)->ObserveTime(min_t).ok());
    r = c.at(l1)->Propose(1, "causal", PersonTx("causal", 2)).get();
  }
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_GT(r.t, min_t);
  ASSERT_TRUE(c.WaitApplied(1, r.index, 3000ms));
  // Every node applied group 1's entry: its clock is past it, so group 2's
  // leader (wherever it is, clock still at the base) proposes above it.
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_GE(c.at(id)->LatestTime(), r.t) << "node " << id;
  ProposeResult g2 = c.Propose(2, "other-group", PersonTx("other", 3));
  ASSERT_TRUE(g2.status.ok()) << g2.status.ToString();
  EXPECT_GT(g2.t, r.t);
}

bool Has(const NodeHost::DbResult& db, const std::string& name) {
  return db.ok() && (*db)->Lookup(Keyword::Intern("person/name"), Value::String(name)).has_value();
}

// ReadAt(T) on a follower (close forwarded to the leader as a close request)
// and on the leader (close proposed locally): the value holds every
// transaction committed before, and every transaction after gets t > T even
// though the leader's clock is behind T. A T the shard closed already needs
// no log entry; a T too far ahead is refused.
TEST(NodeHost, ReadAtClosesTheTimeOnFollowerAndLeader) {
  ManualClock clock(kBaseMs);
  TestCluster c("read_at", 0, false, 10000, &clock);
  ASSERT_NE(c.WaitLeader(1, 2000ms), 0u);
  ASSERT_TRUE(c.Propose(1, "schema", kSchema).status.ok());
  TxTime last;
  uint64_t last_index = 0;
  for (int i = 0; i < 5; ++i) {
    ProposeResult r = c.Propose(1, "a" + std::to_string(i), PersonTx("a" + std::to_string(i), i));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    last = r.t;
    last_index = r.index;
  }
  // Statuses are published after the round that answered the proposal.
  ASSERT_TRUE(c.WaitApplied(1, last_index, 3000ms));
  uint32_t leader = c.WaitLeader(1, 3000ms);
  ASSERT_NE(leader, 0u);
  uint32_t follower = leader % 3 + 1;

  // A time every replica closed already (the last t): no close entry.
  Result<GroupStatus> before = c.at(leader)->status(1);
  ASSERT_TRUE(before.ok());
  NodeHost::DbResult db = c.at(follower)->ReadAt(1, last).get();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_TRUE(Has(db, "a4"));
  std::this_thread::sleep_for(50ms);  // a close entry would have committed by now
  Result<GroupStatus> after = c.at(leader)->status(1);
  ASSERT_TRUE(after.ok());
  if (after->term == before->term) {  // (a new term's leader appends a no-op: a loaded machine may elect one)
    EXPECT_EQ(after->commit, before->commit) << "a closed time must not need a close entry";
  }

  // A time ahead of every clock (within the bound): the follower has the
  // leader close it.
  const TxTime t_future = TxTime::FromParts(kBaseMs + 2000, 0);
  ASSERT_LT(c.at(follower)->status(1)->closed_t, t_future);
  db = c.at(follower)->ReadAt(1, t_future).get();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(Has(db, "a" + std::to_string(i))) << i;
  // The close entry committed (the leader answers the close request before
  // it publishes that round's status).
  EXPECT_GT(c.WaitStatus(leader, 1, [&](const GroupStatus& s) { return s.commit > before->commit; }, 2000ms).commit,
            before->commit);
  ProposeResult late = c.Propose(1, "late", PersonTx("late", 9));
  ASSERT_TRUE(late.status.ok()) << late.status.ToString();
  EXPECT_GT(late.t, t_future) << "a transaction committed after ReadAt(T) must have t > T";
  EXPECT_FALSE(Has(db, "late"));
  ASSERT_TRUE(c.WaitApplied(1, late.index, 3000ms));
  for (uint32_t id = 1; id <= 3; ++id) EXPECT_GE(c.at(id)->status(1)->closed_t, t_future) << "node " << id;

  // On the leader: the close is proposed locally.
  const TxTime t_leader = TxTime::FromParts(kBaseMs + 4000, 0);
  leader = c.WaitLeader(1, 3000ms);
  ASSERT_NE(leader, 0u);
  db = c.at(leader)->ReadAt(1, t_leader).get();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_TRUE(Has(db, "late"));
  EXPECT_GE(c.WaitStatus(leader, 1, [&](const GroupStatus& s) { return s.closed_t >= t_leader; }, 2000ms).closed_t,
            t_leader);
  ProposeResult later = c.Propose(1, "later", PersonTx("later", 10));
  ASSERT_TRUE(later.status.ok()) << later.status.ToString();
  EXPECT_GT(later.t, t_leader);

  // Far ahead of the node's clock: refused, nothing proposed.
  NodeHost::DbResult far = c.at(follower)->ReadAt(1, TxTime::FromParts(kBaseMs + 60'000, 0)).get();
  ASSERT_FALSE(far.ok());
  EXPECT_EQ(far.status().code(), StatusCode::kInvalidArgument) << far.status().ToString();
  EXPECT_NE(far.status().message().find("ahead"), std::string::npos) << far.status().ToString();
  // A group the node does not host.
  EXPECT_EQ(c.at(follower)->ReadAt(9, last).get().status().code(), StatusCode::kNotFound);
}

// Many concurrent ReadAt(T) share close entries: the leader proposes one
// close while one is pending and answers at once once T is closed.
TEST(NodeHost, ConcurrentReadAtsShareOneClose) {
  ManualClock clock(kBaseMs);
  TestCluster c("read_at_many", 0, false, 10000, &clock);
  ASSERT_NE(c.WaitLeader(1, 2000ms), 0u);
  ProposeResult schema = c.Propose(1, "schema", kSchema);
  ASSERT_TRUE(schema.status.ok()) << schema.status.ToString();
  ASSERT_TRUE(c.WaitApplied(1, schema.index, 3000ms));
  uint32_t leader = c.WaitLeader(1, 3000ms);
  ASSERT_NE(leader, 0u);
  uint64_t commit_before = c.at(leader)->status(1)->commit;
  const TxTime t = TxTime::FromParts(kBaseMs + 1500, 0);
  std::vector<std::future<NodeHost::DbResult>> reads;
  for (int i = 0; i < 30; ++i) reads.push_back(c.at(1 + i % 3)->ReadAt(1, t));
  for (auto& f : reads) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    NodeHost::DbResult db = f.get();
    EXPECT_TRUE(db.ok()) << db.status().ToString();
  }
  // Every close entry proposed for them committed before its reads were
  // answered; the leader publishes the status after its answering round.
  const uint64_t proposed = c.at(leader)->stats().closes_proposed;
  uint64_t entries =
      c.WaitStatus(leader, 1, [&](const GroupStatus& s) { return s.commit - commit_before >= proposed; }, 2000ms)
          .commit -
      commit_before;
  EXPECT_GE(entries, 1u);
  EXPECT_LE(entries, 4u) << "30 reads at one T should share a few close entries";
  EXPECT_EQ(c.at(leader)->stats().closes_proposed, entries);
  // (Followers may or may not have sent close requests: when the leader's
  // own reads closed T first, theirs find it closed.)
}

// The closed time is replicated state: after the leader's node goes away, a
// new leader whose clock is far behind still commits above it; a ReadAt
// issued during the election answers (OK or a retryable error), never hangs,
// and one retried after it closes again.
TEST(NodeHost, ClosedTimeSurvivesALeaderChange) {
  ManualClock clock(kBaseMs);
  TestCluster c("read_at_failover", 0, false, 10000, &clock);
  ASSERT_NE(c.WaitLeader(1, 2000ms), 0u);
  ASSERT_TRUE(c.Propose(1, "schema", kSchema).status.ok());
  uint32_t leader = c.WaitLeader(1, 3000ms);
  ASSERT_NE(leader, 0u);
  uint32_t follower = leader % 3 + 1;
  const TxTime t1 = TxTime::FromParts(kBaseMs + 2000, 0);
  NodeHost::DbResult db = c.at(follower)->ReadAt(1, t1).get();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  ASSERT_TRUE(c.WaitApplied(1, c.at(leader)->status(1)->commit, 3000ms));

  c.StopNode(leader);
  const TxTime t2 = TxTime::FromParts(kBaseMs + 3000, 0);
  std::future<NodeHost::DbResult> during = c.at(follower)->ReadAt(1, t2);
  // Answered once the follower learns the new leader, well before the 5 s
  // propose timeout.
  ASSERT_EQ(during.wait_for(4s), std::future_status::ready) << "ReadAt waited out its timeout across the leader change";
  NodeHost::DbResult d = during.get();
  if (!d.ok()) {
    StatusCode code = d.status().code();
    EXPECT_TRUE(code == StatusCode::kNotLeader || code == StatusCode::kUnavailable || code == StatusCode::kTimeout)
        << d.status().ToString();
  }
  ASSERT_NE(c.WaitLeader(1, 3000ms), 0u);
  ProposeResult r = c.Propose(1, "after-failover", PersonTx("after", 1));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_GT(r.t, t1) << "the new leader ignored the replicated closed time";
  if (d.ok()) {
    EXPECT_GT(r.t, t2);
  }
  // Retried after the election: closes t2 if it was not.
  Clock::time_point end = Clock::now() + 5s;
  NodeHost::DbResult again = Status::Unavailable("not tried");
  while (Clock::now() < end) {
    uint32_t l = c.Leader(1);
    uint32_t reader = 0;  // a live follower (the close goes through a close request)
    for (uint32_t id = 1; id <= 3; ++id) {
      if (id != leader && id != l) reader = id;
    }
    again = c.at(reader)->ReadAt(1, TxTime::FromParts(kBaseMs + 4000, 0)).get();
    if (again.ok()) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ProposeResult r2 = c.Propose(1, "after-close", PersonTx("after2", 2));
  ASSERT_TRUE(r2.status.ok()) << r2.status.ToString();
  EXPECT_GT(r2.t, TxTime::FromParts(kBaseMs + 4000, 0));
}

// Every peer request and reply carries the sender's hybrid clock and the
// receiver observes it: after a request/reply exchange both nodes' clocks are
// at least the other's (so data read from a peer bounds later proposals).
TEST(NodeHost, RequestsAndRepliesCarryTheClock) {
  ManualClock clock(kBaseMs);
  TestCluster c("clock_exchange", 0, false, 10000, &clock);
  c.at(2)->SetRequestHandler([](uint32_t, std::string payload, NodeHost::RequestReply reply) { reply(payload); });
  const TxTime x = TxTime::FromParts(kBaseMs + 20'000, 1);
  ASSERT_TRUE(c.at(1)->ObserveTime(x).ok());
  ASSERT_LT(c.at(2)->LatestTime(), x);
  Result<std::string> r = c.at(1)->SendRequest(2, "ping", 3000).get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "ping");
  EXPECT_GE(c.at(2)->LatestTime(), x) << "the request's clock was not observed";
  const TxTime y = TxTime::FromParts(kBaseMs + 40'000, 2);
  ASSERT_TRUE(c.at(2)->ObserveTime(y).ok());
  r = c.at(1)->SendRequest(2, "pong", 3000).get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GE(c.at(1)->LatestTime(), y) << "the reply's clock was not observed";
  // Node 3 never talked to them.
  EXPECT_LT(c.at(3)->LatestTime(), x);
}

}  // namespace
}  // namespace cairn::cluster
