#include "raft_sim.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <vector>

#include "linearizability.h"
#include "raft/raft_node.h"
#include "raft/random.h"

namespace cairn::sim {

using raft::ConfChange;
using raft::ConfState;
using raft::Entry;
using raft::EntryType;
using raft::GroupId;
using raft::HardState;
using raft::LogIndex;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::RaftNode;
using raft::Random;
using raft::Ready;
using raft::ReadState;
using raft::Role;
using raft::Snapshot;
using raft::Term;

namespace {

constexpr uint64_t kTickUs = 10000;  // 10 ms per tick
constexpr int kKeys = 3;
constexpr uint64_t kLinBudget = 2000000;

uint64_t HashBytes(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

uint64_t EntryHash(const Entry& e) {
  return Mix(Mix(HashBytes(e.data), static_cast<uint64_t>(e.type)), e.term.value());
}

// The replicated state machine: one register per key. Its hash folds in
// every applied entry, so two replicas at the same index with different
// histories disagree.
struct KvMachine {
  uint64_t applied = 0;
  uint64_t hash = 0;
  std::map<std::string, int64_t> kv;

  std::string Serialize() const {
    std::ostringstream out;
    out << applied << ' ' << hash << ' ' << kv.size();
    for (const auto& [k, v] : kv) out << ' ' << k << ' ' << v;
    return out.str();
  }
  void Restore(const std::string& data) {
    *this = KvMachine();
    if (data.empty()) return;
    std::istringstream in(data);
    size_t n = 0;
    in >> applied >> hash >> n;
    for (size_t i = 0; i < n; i++) {
      std::string k;
      int64_t v;
      in >> k >> v;
      kv[k] = v;
    }
  }
};

// A client command: "W client seq key value" or "C client seq key expected value".
struct Command {
  char kind = 0;
  int client = 0;
  uint64_t seq = 0;
  std::string key;
  int64_t expected = 0;
  int64_t value = 0;

  std::string Encode() const {
    std::ostringstream out;
    out << kind << ' ' << client << ' ' << seq << ' ' << key << ' ' << expected << ' ' << value;
    return out.str();
  }
  static bool Decode(const std::string& s, Command* c) {
    std::istringstream in(s);
    return static_cast<bool>(in >> c->kind >> c->client >> c->seq >> c->key >> c->expected >> c->value);
  }
};

struct Disk {
  HardState hs;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  LogIndex compacted;  // storage discarded every entry <= this

  LogIndex LastIndex() const {
    if (!entries.empty()) return entries.back().index;
    return snapshot ? snapshot->meta.index : LogIndex();
  }
  void Write(const std::vector<Entry>& es) {
    if (es.empty()) return;
    const LogIndex first = es.front().index;
    while (!entries.empty() && entries.back().index >= first) entries.pop_back();
    entries.insert(entries.end(), es.begin(), es.end());
  }
};

struct Input {
  enum class Kind { kTick, kMessage, kWake } kind;
  Message msg;
};

struct ClientOp {
  int client = 0;
  uint64_t seq = 0;
  std::string key;
  RegisterOp op;
  bool done = false;
};

struct Replica {
  int node = 0;
  GroupId group;
  raft::Config config;
  std::unique_ptr<RaftNode> raft;
  Disk disk;
  bool exists_on_disk = false;
  bool blocked = false;
  std::optional<Ready> inflight;
  std::deque<Input> queued;
  KvMachine sm;
  LogIndex seen_commit;
  Term seen_leader_term;
  LogIndex last_snapshot;
  std::map<LogIndex, size_t> proposals;  // index -> op
  std::map<uint64_t, size_t> reads;      // request id -> op
  std::vector<ReadState> ready_reads;
  std::optional<std::pair<LogIndex, std::shared_ptr<const std::string>>> image;
  // streamed_: the snapshot being received, chunk by chunk (lost in a crash).
  std::optional<std::pair<raft::SnapshotMeta, std::string>> incoming;
};

std::optional<Term> DurableTermAt(const Disk& d, LogIndex i) {
  if (d.snapshot && d.snapshot->meta.index == i) return d.snapshot->meta.term;
  if (d.entries.empty() || i < d.entries.front().index || i > d.entries.back().index) {
    if (i.IsZero()) return Term();
    return std::nullopt;
  }
  return d.entries[i.value() - d.entries.front().index.value()].term;
}

struct Group {
  GroupId id;
  ConfState initial;
  raft::Config config;
  uint64_t snapshot_every = 50;
  std::map<uint64_t, uint64_t> leader_of_term;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> committed;  // index -> (term, hash)
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> applied;    // index -> (term, hash)
  std::map<uint64_t, uint64_t> state_hash;                      // index -> machine hash
  std::map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, uint64_t>> entries;  // (i,t)->(hash, prev term)
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> votes;  // (voter, term) -> candidate
  uint64_t max_acked = 0;
};

struct Client {
  int id = 0;
  size_t group = 0;
  int leader_hint = 1;
  uint64_t seq = 0;
  bool busy = false;
};

struct Event {
  uint64_t time_us;
  uint64_t seq;
  std::function<void()> fn;
  bool operator>(const Event& o) const {
    return time_us != o.time_us ? time_us > o.time_us : seq > o.seq;
  }
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& options) : opt_(options), rng_(options.seed) {}

  SimResult Run();

 private:
  // --- scheduling
  void At(uint64_t t_us, std::function<void()> fn) {
    events_.push(Event{t_us, next_event_seq_++, std::move(fn)});
  }
  void After(uint64_t dt_us, std::function<void()> fn) { At(now_ + dt_us, std::move(fn)); }
  void Fail(const std::string& what) {
    if (!failed_) {
      failed_ = true;
      result_.ok = false;
      result_.violation = "t=" + std::to_string(now_ / 1000) + "ms: " + what;
    }
  }
  void Trace(const std::string& s) {
    if (opt_.verbose) std::fprintf(stderr, "[%8.3f] %s\n", now_ / 1000.0, s.c_str());
  }

  void Setup();
  Replica* GetReplica(int node, size_t g, bool create);
  void StartRaft(Replica* r);

  // --- replica driving
  void Feed(Replica* r, Input in);
  void Apply(Replica* r, const Input& in);
  void StepChecked(Replica* r, const Message& m);
  void Observe(Replica* r);
  void Pump(Replica* r);
  void FinishReady(Replica* r);
  void ServeReads(Replica* r);
  void MaybeSnapshot(Replica* r);
  void CheckDiskShape(const Replica* r);
  void CheckCommitIsSafe(Replica* leader, LogIndex c);

  // --- environment
  void Send(const Message& m);
  bool Blocked(int from, int to) const { return cut_.count({from, to}) > 0; }
  void NodeTick(int node);
  void Crash(int node);
  void Restart(int node);
  void ChangePartitions();
  void WakeAll();
  void ChangeMembership(size_t g);
  void TransferLeadership(size_t g);
  Replica* FindLeader(size_t g);

  // --- clients
  void ClientStep(int c);
  void CompleteOp(size_t op_index, int64_t result);
  void ClientDone(int c);

  // --- end checks
  void CheckLeaderExists();
  void CheckConverged();
  void CheckHistories();

  SimOptions opt_;
  Random rng_;
  SimResult result_;
  bool failed_ = false;
  uint64_t now_ = 0;
  uint64_t next_event_seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;

  int nodes_ = 3;
  std::vector<bool> alive_;
  std::vector<uint64_t> incarnation_;
  std::vector<uint64_t> tick_us_;
  std::vector<Group> groups_;
  std::map<std::pair<int, size_t>, Replica> replicas_;
  std::set<std::pair<int, int>> cut_;
  uint64_t drop_ppm_ = 0;
  uint64_t dup_ppm_ = 0;
  uint64_t crash_mean_ms_ = 1000;
  uint64_t partition_mean_ms_ = 500;
  uint64_t leader_crash_ppm_ = 0;
  uint64_t fault_us_ = 0;
  bool membership_ = false;
  bool transfers_ = false;
  // Snapshots stream through the host's chunk callbacks (as Cairn's replicas
  // do) instead of travelling in memory; some chunk writes fail.
  bool streamed_ = false;
  bool healed_ = false;
  bool clients_stop_ = false;
  uint64_t heal_us_ = 0;
  uint64_t live_from_clock_ = 0;

  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;
  uint64_t history_clock_ = 0;
  uint64_t next_read_id_ = 1;
};

// ---------------------------------------------------------------------------

void Simulation::Setup() {
  membership_ = rng_.Chance(400000);
  transfers_ = rng_.Chance(400000);
  streamed_ = rng_.Chance(500000);
  // Membership changes need spare nodes to add.
  nodes_ = membership_ || rng_.Chance(500000) ? 5 : 3;
  const size_t ngroups = 1 + rng_.Uniform(3);
  drop_ppm_ = rng_.Uniform(100001);
  dup_ppm_ = rng_.Uniform(30001);
  crash_mean_ms_ = rng_.Range(300, 3000);
  partition_mean_ms_ = rng_.Range(150, 1000);
  // Some runs crash or isolate fresh leaders moments after they win: many
  // short terms whose entries reach only part of the group (figure 8).
  leader_crash_ppm_ = rng_.Chance(500000) ? rng_.Range(200000, 700000) : 0;
  alive_.assign(nodes_ + 1, true);
  incarnation_.assign(nodes_ + 1, 0);
  tick_us_.assign(nodes_ + 1, kTickUs);
  for (int n = 1; n <= nodes_; n++) {
    // Clock skew: each node's tick runs up to 2% fast or slow.
    tick_us_[n] = kTickUs * (980000 + rng_.Uniform(40001)) / 1000000;
  }
  raft::Config base;
  base.heartbeat_ticks = 5;
  base.election_ticks_min = 15;
  base.election_ticks_max = 30;
  base.pre_vote = rng_.Chance(850000);
  base.check_quorum = rng_.Chance(850000);
  // A removed node that never learns of its removal keeps campaigning; PreVote
  // or leader stickiness is what keeps it from deposing leaders forever.
  if (membership_ && !base.pre_vote) base.check_quorum = true;
  base.lease_reads = base.check_quorum && rng_.Chance(400000);
  base.lease_clock_drift_ticks = 3;
  const uint32_t entries_choices[] = {1, 4, 64};
  base.entries_per_msg_max = entries_choices[rng_.Uniform(3)];
  const uint32_t inflight_choices[] = {1, 4, 64};
  base.inflight_msgs_max = inflight_choices[rng_.Uniform(3)];
  base.inflight_bytes_max = rng_.Chance(300000) ? 2000 : (8 << 20);
  base.uncommitted_bytes_max = rng_.Chance(300000) ? 3000 : (64 << 20);
  const uint64_t chunk_choices[] = {16, 64, 4096};
  base.snapshot_chunk_bytes = chunk_choices[rng_.Uniform(3)];
  const uint64_t retain_choices[] = {0, 5, 50};
  base.compaction_retain_entries = retain_choices[rng_.Uniform(3)];
  base.quiesce_after_idle_rounds = rng_.Chance(200000) ? 3 : 0;
  base.mutations = opt_.mutations;
  const uint64_t snap_choices[] = {10, 50, 200};
  const uint64_t snapshot_every = snap_choices[rng_.Uniform(3)];

  for (size_t g = 0; g < ngroups; g++) {
    Group group;
    group.id = GroupId(g + 1);
    group.config = base;
    group.config.group = group.id;
    group.snapshot_every = snapshot_every;
    const int size = nodes_ == 3 ? 3 : (rng_.Chance(500000) ? 3 : 5);
    std::vector<int> all;
    for (int n = 1; n <= nodes_; n++) all.push_back(n);
    for (int i = 0; i < size; i++) {
      size_t j = i + rng_.Uniform(all.size() - i);
      std::swap(all[i], all[j]);
      group.initial.voters.push_back(NodeId(all[i]));
    }
    std::sort(group.initial.voters.begin(), group.initial.voters.end());
    groups_.push_back(group);
    for (NodeId v : groups_.back().initial.voters) {
      Replica* r = GetReplica(static_cast<int>(v.value()), g, true);
      raft::RestoredState boot = RaftNode::Bootstrap(groups_.back().initial);
      r->disk.hs = boot.hard_state;
      r->disk.snapshot = boot.snapshot;
      r->exists_on_disk = true;
      StartRaft(r);
    }
  }
  std::ostringstream s;
  s << "nodes=" << nodes_ << " groups=" << ngroups << " membership=" << membership_
    << " transfers=" << transfers_ << " streamed=" << streamed_
    << " prevote=" << base.pre_vote << " checkquorum=" << base.check_quorum
    << " lease=" << base.lease_reads << " drop_ppm=" << drop_ppm_ << " dup_ppm=" << dup_ppm_
    << " crash_mean_ms=" << crash_mean_ms_ << " leader_crash_ppm=" << leader_crash_ppm_ << " partition_mean_ms=" << partition_mean_ms_
    << " entries/msg=" << base.entries_per_msg_max << " inflight=" << base.inflight_msgs_max
    << " chunk=" << base.snapshot_chunk_bytes << " retain=" << base.compaction_retain_entries
    << " snapshot_every=" << snapshot_every << " quiesce=" << base.quiesce_after_idle_rounds;
  result_.summary = s.str();

  int client_id = 0;
  for (size_t g = 0; g < ngroups; g++) {
    const int per_group = 2 + static_cast<int>(rng_.Uniform(3));
    for (int i = 0; i < per_group; i++) {
      Client c;
      c.id = client_id++;
      c.group = g;
      c.leader_hint = 1 + static_cast<int>(rng_.Uniform(nodes_));
      clients_.push_back(c);
    }
  }
}

Replica* Simulation::GetReplica(int node, size_t g, bool create) {
  auto key = std::make_pair(node, g);
  auto it = replicas_.find(key);
  if (it != replicas_.end()) return &it->second;
  if (!create) return nullptr;
  Replica& r = replicas_[key];
  r.node = node;
  r.group = groups_[g].id;
  r.config = groups_[g].config;
  r.config.id = NodeId(node);
  r.config.seed = Mix(opt_.seed, node * 1000 + g);
  return &r;
}

void Simulation::StartRaft(Replica* r) {
  CheckDiskShape(r);
  if (failed_) return;
  raft::RestoredState st{r->disk.hs, r->disk.snapshot, r->disk.entries};
  r->incoming.reset();
  if (streamed_) {
    // The durable snapshot is the "file" chunks are read from; the core
    // starts without its bytes.
    r->config.read_snapshot_chunk = [r](const raft::SnapshotMeta& meta, uint64_t offset, uint64_t max_len,
                                        std::string* out) -> std::optional<uint64_t> {
      const std::optional<Snapshot>& s = r->disk.snapshot;
      if (!s || s->meta.index != meta.index || !s->data) return std::nullopt;
      *out = offset < s->data->size() ? s->data->substr(offset, max_len) : std::string();
      return s->data->size();
    };
    r->config.write_snapshot_chunk = [this, r](const raft::SnapshotMeta& meta, uint64_t offset,
                                               std::string_view data) {
      if (rng_.Chance(50000)) return false;  // a failed write: the chunk must come again
      if (offset == 0) r->incoming.emplace(meta, std::string());
      if (!r->incoming || r->incoming->first.index != meta.index || r->incoming->first.term != meta.term ||
          r->incoming->second.size() != offset) {
        Fail("node " + std::to_string(r->node) + " was handed a snapshot chunk at byte " + std::to_string(offset) +
             " out of order");
        return false;
      }
      r->incoming->second.append(data);
      return true;
    };
    if (st.snapshot) st.snapshot->data = nullptr;
  }
  r->raft = std::make_unique<RaftNode>(r->config, std::move(st));
  r->sm = KvMachine();
  if (r->disk.snapshot) r->sm.Restore(*r->disk.snapshot->data);
  if (r->disk.snapshot && r->sm.applied == 0) r->sm.applied = r->disk.snapshot->meta.index.value();
  r->last_snapshot = r->raft->applied();
  r->seen_commit = r->raft->commit();
  r->blocked = false;
  r->inflight.reset();
  r->queued.clear();
  Observe(r);
}

// The durable log must continue the durable snapshot: compaction never
// discards entries the snapshot does not cover.
void Simulation::CheckDiskShape(const Replica* r) {
  const Disk& d = r->disk;
  for (size_t i = 1; i < d.entries.size(); i++) {
    if (d.entries[i].index != d.entries[i - 1].index.Next()) {
      Fail("durable log of node " + std::to_string(r->node) + " is not contiguous");
      return;
    }
  }
  const LogIndex base = d.snapshot ? d.snapshot->meta.index : LogIndex();
  if (d.compacted > base) {
    Fail("storage of node " + std::to_string(r->node) + " group " + std::to_string(r->group.value()) +
         " discarded entries through " + std::to_string(d.compacted.value()) +
         " but its snapshot covers only " + std::to_string(base.value()));
    return;
  }
  if (!d.entries.empty() && d.entries.front().index > base.Next()) {
    Fail("durable log of node " + std::to_string(r->node) + " group " +
         std::to_string(r->group.value()) + " starts at " +
         std::to_string(d.entries.front().index.value()) + " but its snapshot ends at " +
         std::to_string(base.value()) + ": entries were compacted past the snapshot");
  }
}

// ---------------------------------------------------------------------------
// Driving replicas

void Simulation::Feed(Replica* r, Input in) {
  if (!alive_[r->node] || failed_) return;
  if (!r->raft) {
    if (in.kind != Input::Kind::kMessage) return;
    StartRaft(r);  // first contact for a node joining the group
  }
  if (r->blocked) {
    // The node's loop is waiting for fsync; inputs wait with it.
    r->queued.push_back(std::move(in));
    return;
  }
  Apply(r, in);
  Pump(r);
}

void Simulation::Apply(Replica* r, const Input& in) {
  switch (in.kind) {
    case Input::Kind::kTick: r->raft->Tick(); break;
    case Input::Kind::kWake: r->raft->Unquiesce(); break;
    case Input::Kind::kMessage: StepChecked(r, in.msg); break;
  }
  Observe(r);
}

void Simulation::StepChecked(Replica* r, const Message& m) {
  const bool vote_req = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
  const LogIndex li = r->raft->log().last_index();
  const Term lt = r->raft->log().last_term();
  const size_t before = r->raft->pending_messages().size();
  (void)r->raft->Step(m);
  if (!vote_req) return;
  const auto& out = r->raft->pending_messages();
  for (size_t i = before; i < out.size(); i++) {
    const Message& resp = out[i];
    if ((resp.type == MessageType::kVoteResp || resp.type == MessageType::kPreVoteResp) &&
        resp.to == m.from && !resp.reject) {
      const bool up_to_date = m.log_term > lt || (m.log_term == lt && m.index >= li);
      if (!up_to_date) {
        Fail(std::string("node ") + std::to_string(r->node) + " granted " +
             raft::MessageTypeName(m.type) + " to node " + std::to_string(m.from.value()) +
             " whose log (" + std::to_string(m.index.value()) + "@" +
             std::to_string(m.log_term.value()) + ") is behind its own (" +
             std::to_string(li.value()) + "@" + std::to_string(lt.value()) + ")");
      }
    }
  }
}

void Simulation::Observe(Replica* r) {
  if (!r->raft || failed_) return;
  Group& g = groups_[r->group.value() - 1];
  RaftNode& n = *r->raft;
  const auto& log = n.log();
  if (n.role() == Role::kLeader && n.term() > r->seen_leader_term) {
    r->seen_leader_term = n.term();
    result_.elections++;
    Trace("node " + std::to_string(r->node) + " leads group " + std::to_string(g.id.value()) +
          " in term " + std::to_string(n.term().value()));
    if (!healed_ && now_ < fault_us_ && rng_.Chance(leader_crash_ppm_)) {
      const int node = r->node;
      const uint64_t inc = incarnation_[node];
      const bool crash = rng_.Chance(500000);
      After(rng_.Range(500, 20000), [this, node, inc, crash] {
        if (incarnation_[node] != inc || healed_) return;
        if (crash) {
          Crash(node);
        } else {
          cut_.clear();
          for (int n = 1; n <= nodes_; n++) {
            if (n != node) {
              cut_.insert({node, n});
              cut_.insert({n, node});
            }
          }
          WakeAll();
        }
      });
    }
    auto [it, fresh] = g.leader_of_term.emplace(n.term().value(), r->node);
    if (!fresh && it->second != static_cast<uint64_t>(r->node)) {
      Fail("two leaders in term " + std::to_string(n.term().value()) + ": nodes " +
           std::to_string(it->second) + " and " + std::to_string(r->node));
      return;
    }
    // Leader completeness: every committed entry is in the new leader's log.
    for (const auto& [index, th] : g.committed) {
      LogIndex i(index);
      if (i <= log.base_index()) continue;
      if (i > log.last_index() || log.TermAt(i).value() != th.first ||
          EntryHash(log.At(i)) != th.second) {
        Fail("leader " + std::to_string(r->node) + " of term " + std::to_string(n.term().value()) +
             " lacks committed entry " + std::to_string(index));
        return;
      }
    }
  }
  // Commit index never moves back (within one incarnation; across a crash it
  // restarts from the durable commit).
  if (n.commit() < r->seen_commit) {
    Fail("commit index of node " + std::to_string(r->node) + " moved back");
    return;
  }
  if (n.role() == Role::kLeader && n.commit() > r->seen_commit) CheckCommitIsSafe(r, n.commit());
  if (failed_) return;
  for (LogIndex i = r->seen_commit.Next(); i <= n.commit(); i = i.Next()) {
    if (i <= log.base_index()) continue;
    const Entry& e = log.At(i);
    auto th = std::make_pair(e.term.value(), EntryHash(e));
    auto [it, fresh] = g.committed.emplace(i.value(), th);
    if (fresh) result_.commits++;
    if (!fresh && it->second != th) {
      Fail("index " + std::to_string(i.value()) + " committed with two different entries");
      return;
    }
  }
  r->seen_commit = n.commit();
}

void Simulation::Pump(Replica* r) {
  if (failed_ || !alive_[r->node] || !r->raft || r->blocked || !r->raft->HasReady()) return;
  Group& g = groups_[r->group.value() - 1];
  Ready rd = r->raft->GetReady();
  // Log matching: an (index, term) names one entry and one predecessor term
  // wherever it is written.
  for (const Entry& e : rd.entries) {
    const LogIndex prev = e.index.Prev();
    const uint64_t prev_term =
        r->raft->log().HasTerm(prev) ? r->raft->log().TermAt(prev).value() : UINT64_MAX;
    auto key = std::make_pair(e.index.value(), e.term.value());
    auto val = std::make_pair(EntryHash(e), prev_term);
    auto [it, fresh] = g.entries.emplace(key, val);
    if (!fresh && (it->second.first != val.first ||
                   (it->second.second != val.second && val.second != UINT64_MAX &&
                    it->second.second != UINT64_MAX))) {
      Fail("log matching broken at index " + std::to_string(e.index.value()) + " term " +
           std::to_string(e.term.value()));
      return;
    }
  }
  r->blocked = true;
  r->inflight = std::move(rd);
  uint64_t latency = rng_.Range(50, 400);
  if (rng_.Chance(20000)) latency += rng_.Range(2000, 20000);
  const int node = r->node;
  const uint64_t inc = incarnation_[node];
  After(latency, [this, r, node, inc] {
    if (incarnation_[node] != inc || !alive_[node]) return;
    FinishReady(r);
  });
}

void Simulation::FinishReady(Replica* r) {
  Group& g = groups_[r->group.value() - 1];
  Ready rd = std::move(*r->inflight);
  r->inflight.reset();
  // 1. Durable.
  Disk& d = r->disk;
  const LogIndex old_commit = d.hs.commit;
  std::optional<Snapshot> snap = rd.snapshot;
  if (snap && !snap->data) {  // streamed: the host holds the bytes
    if (!r->incoming || r->incoming->first.index != snap->meta.index || r->incoming->first.term != snap->meta.term) {
      Fail("node " + std::to_string(r->node) + " got a snapshot at index " + std::to_string(snap->meta.index.value()) +
           " whose bytes it was not handed");
      return;
    }
    snap->data = std::make_shared<const std::string>(std::move(r->incoming->second));
    r->incoming.reset();
  }
  if (snap) {
    d.snapshot = snap;
    d.entries.clear();
  }
  d.Write(rd.entries);
  if (rd.hard_state) d.hs = *rd.hard_state;
  r->exists_on_disk = true;
  if (d.hs.commit < old_commit) Fail("durable commit index moved back");
  // 2. Messages, each checked against what is now durable.
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::kVoteResp && !m.reject) {
      // Durable: the vote with its term, or a later term (a node past term T
      // can never vote in T again, so a grant for T that leaves with the
      // later term is safe; two votes arriving before one Ready do that).
      if (d.hs.term < m.term || (d.hs.term == m.term && d.hs.vote != m.to)) {
        Fail("node " + std::to_string(r->node) + " sent a vote for node " +
             std::to_string(m.to.value()) + " in term " + std::to_string(m.term.value()) +
             " before the vote was durable");
        return;
      }
      auto [it, fresh] = g.votes.emplace(std::make_pair(m.from.value(), m.term.value()), m.to.value());
      if (!fresh && it->second != m.to.value()) {
        Fail("node " + std::to_string(r->node) + " voted twice in term " +
             std::to_string(m.term.value()));
        return;
      }
    }
    if (m.type == MessageType::kAppendResp && !m.reject && m.index > d.LastIndex()) {
      Fail("node " + std::to_string(r->node) + " acknowledged index " +
           std::to_string(m.index.value()) + " before it was durable");
      return;
    }
    Send(m);
  }
  // 3. State machine.
  if (snap) {
    r->sm.Restore(*snap->data);
    if (r->sm.applied == 0) r->sm.applied = snap->meta.index.value();
    result_.snapshots_installed++;
    auto it = g.state_hash.find(snap->meta.index.value());
    if (it != g.state_hash.end() && it->second != r->sm.hash && !snap->data->empty()) {
      Fail("installed snapshot disagrees with the applied state at its index");
      return;
    }
  }
  for (const Entry& e : rd.committed_entries) {
    if (e.index.value() != r->sm.applied + 1) {
      Fail("node " + std::to_string(r->node) + " applied index " + std::to_string(e.index.value()) +
           " after " + std::to_string(r->sm.applied));
      return;
    }
    auto th = std::make_pair(e.term.value(), EntryHash(e));
    auto [it, fresh] = g.applied.emplace(e.index.value(), th);
    if (!fresh && it->second != th) {
      Fail("state machine safety: index " + std::to_string(e.index.value()) +
           " applied as different entries (node " + std::to_string(r->node) + ")");
      return;
    }
    int64_t outcome = 0;
    Command cmd;
    const bool is_cmd = e.type == EntryType::kNormal && Command::Decode(e.data, &cmd);
    if (is_cmd) {
      int64_t& cur = r->sm.kv[cmd.key];
      if (cmd.kind == 'W') {
        cur = cmd.value;
        outcome = 1;
      } else if (cur == cmd.expected) {
        cur = cmd.value;
        outcome = 1;
      }
    }
    r->sm.applied = e.index.value();
    r->sm.hash = Mix(r->sm.hash, th.second);
    auto [hit, hfresh] = g.state_hash.emplace(e.index.value(), r->sm.hash);
    if (!hfresh && hit->second != r->sm.hash) {
      Fail("state machine of node " + std::to_string(r->node) + " diverged at index " +
           std::to_string(e.index.value()));
      return;
    }
    auto pit = r->proposals.find(e.index);
    if (pit != r->proposals.end()) {
      ClientOp& op = ops_[pit->second];
      if (is_cmd && cmd.client == op.client && cmd.seq == op.seq) {
        g.max_acked = std::max(g.max_acked, e.index.value());
        CompleteOp(pit->second, outcome);
      }
      r->proposals.erase(pit);
    }
  }
  for (const ReadState& rs : rd.read_states) r->ready_reads.push_back(rs);
  r->raft->Advance(rd);
  if (!rd.compacted_through.IsZero()) {
    auto& es = d.entries;
    es.erase(std::remove_if(es.begin(), es.end(),
                            [&](const Entry& e) { return e.index <= rd.compacted_through; }),
             es.end());
    d.compacted = std::max(d.compacted, rd.compacted_through);
  }
  CheckDiskShape(r);
  r->blocked = false;
  Observe(r);
  ServeReads(r);
  MaybeSnapshot(r);
  while (!r->blocked && !r->queued.empty() && !failed_) {
    Input in = std::move(r->queued.front());
    r->queued.pop_front();
    Apply(r, in);
  }
  Pump(r);
}

void Simulation::ServeReads(Replica* r) {
  auto& rr = r->ready_reads;
  for (size_t i = 0; i < rr.size();) {
    if (rr[i].index.value() > r->sm.applied) {
      i++;
      continue;
    }
    auto it = r->reads.find(rr[i].request_id);
    if (it != r->reads.end()) {
      const ClientOp& op = ops_[it->second];
      auto v = r->sm.kv.find(op.key);
      CompleteOp(it->second, v == r->sm.kv.end() ? 0 : v->second);
      r->reads.erase(it);
    }
    rr.erase(rr.begin() + i);
  }
}

// Snapshots are taken the way a real state machine takes them: the image is
// captured at one index and handed to the core a little later, after more
// entries were applied, so the snapshot index trails applied.
void Simulation::MaybeSnapshot(Replica* r) {
  const Group& g = groups_[r->group.value() - 1];
  if (r->raft->applied().value() != r->sm.applied) return;
  if (r->image) {
    if (r->sm.applied == r->image->first.value()) return;
    const LogIndex at = r->image->first;
    auto data = std::move(r->image->second);
    r->image.reset();
    // The snapshot is saved durably first, then the core may compact.
    if (!r->raft->Compact(at, streamed_ ? nullptr : data).ok()) return;
    // (A no-op if a newer snapshot was installed meanwhile.)
    if (r->raft->snapshot().meta.index == at) r->disk.snapshot = Snapshot{r->raft->snapshot().meta, data};
    r->last_snapshot = at;
    Pump(r);
    return;
  }
  if (r->sm.applied < r->last_snapshot.value() + g.snapshot_every) return;
  r->image.emplace(LogIndex(r->sm.applied), std::make_shared<const std::string>(r->sm.Serialize()));
}

// Leader completeness as a state predicate, checked whenever a leader moves
// its commit index: no node that lacks the newly committed entry could still
// collect a quorum of votes, judged by the voters' durable logs. Correct Raft
// guarantees this at the moment of commit (the paper's §5.4.3 argument); a
// commit of an older term's entry by counting replicas (figure 8) breaks it.
void Simulation::CheckCommitIsSafe(Replica* leader, LogIndex c) {
  const size_t g = leader->group.value() - 1;
  const LogIndex base = leader->raft->log().base_index();
  if (c <= base) return;
  const Term tc = leader->raft->log().TermAt(c);
  const ConfState& conf = leader->raft->conf();
  for (NodeId x : conf.voters) {
    Replica* rx = GetReplica(static_cast<int>(x.value()), g, false);
    if (!rx) continue;
    // The candidate's log: in memory if running (the most it could claim).
    LogIndex x_last;
    Term x_last_term;
    bool has = false;
    if (rx->raft) {
      const auto& lg = rx->raft->log();
      x_last = lg.last_index();
      x_last_term = lg.last_term();
      has = c <= lg.base_index() || (lg.HasTerm(c) && lg.TermAt(c) == tc);
    } else {
      x_last = rx->disk.LastIndex();
      x_last_term = DurableTermAt(rx->disk, x_last).value_or(Term());
      const LogIndex xb = rx->disk.snapshot ? rx->disk.snapshot->meta.index : LogIndex();
      has = c <= xb || DurableTermAt(rx->disk, c) == tc;
    }
    if (has) continue;
    size_t votes = 0;
    for (NodeId v : conf.voters) {
      Replica* rv = GetReplica(static_cast<int>(v.value()), g, false);
      if (!rv) {
        votes++;
        continue;
      }
      const LogIndex v_last = rv->disk.LastIndex();
      const Term v_term = DurableTermAt(rv->disk, v_last).value_or(Term());
      if (x_last_term > v_term || (x_last_term == v_term && x_last >= v_last)) votes++;
    }
    if (votes >= conf.voters.size() / 2 + 1) {
      Fail("leader " + std::to_string(leader->node) + " committed index " + std::to_string(c.value()) +
           " (term " + std::to_string(tc.value()) + ") in term " +
           std::to_string(leader->raft->term().value()) + ", but node " + std::to_string(x.value()) +
           " lacks it and could still be elected by a quorum");
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Environment

void Simulation::Send(const Message& m) {
  const int from = static_cast<int>(m.from.value());
  const int to = static_cast<int>(m.to.value());
  if (to < 1 || to > nodes_) return;
  if (Blocked(from, to) || rng_.Chance(drop_ppm_)) return;
  const int copies = rng_.Chance(dup_ppm_) ? 2 : 1;
  for (int c = 0; c < copies; c++) {
    uint64_t delay = rng_.Range(200, 3000);
    if (!healed_ && rng_.Chance(30000)) delay += rng_.Range(5000, 60000);  // reordering
    const size_t g = m.group.value() - 1;
    After(delay, [this, m, from, to, g] {
      if (!alive_[to] || Blocked(from, to)) return;
      Replica* r = GetReplica(to, g, true);
      Feed(r, Input{Input::Kind::kMessage, m});
    });
  }
}

void Simulation::NodeTick(int node) {
  if (alive_[node]) {
    for (auto& [key, r] : replicas_) {
      if (key.first == node && r.raft) Feed(&r, Input{Input::Kind::kTick, {}});
    }
  }
  After(tick_us_[node], [this, node] { NodeTick(node); });
}

void Simulation::Crash(int node) {
  if (!alive_[node]) return;
  alive_[node] = false;
  incarnation_[node]++;
  result_.crashes++;
  Trace("crash node " + std::to_string(node));
  for (auto& [key, r] : replicas_) {
    if (key.first != node) continue;
    if (r.inflight && !r.inflight->snapshot && !r.inflight->entries.empty() && rng_.Chance(500000)) {
      // A torn write: a prefix of the unsynced entries reached the platter.
      const auto& es = r.inflight->entries;
      std::vector<Entry> prefix(es.begin(), es.begin() + rng_.Uniform(es.size() + 1));
      r.disk.Write(prefix);
    }
    r.raft.reset();
    r.inflight.reset();
    r.blocked = false;
    r.queued.clear();
    r.sm = KvMachine();
    r.proposals.clear();
    r.reads.clear();
    r.ready_reads.clear();
    r.image.reset();
    r.seen_commit = LogIndex();
  }
  WakeAll();
  if (!healed_) After(rng_.Range(1000, 400000), [this, node] { Restart(node); });
}

void Simulation::Restart(int node) {
  if (alive_[node]) return;
  alive_[node] = true;
  Trace("restart node " + std::to_string(node));
  for (auto& [key, r] : replicas_) {
    if (key.first == node && r.exists_on_disk) {
      StartRaft(&r);
      Pump(&r);
    }
  }
  WakeAll();
}

// The node layer's failure detector: any change in who can reach whom wakes
// quiesced groups so they re-run elections if needed.
void Simulation::WakeAll() {
  for (auto& [key, r] : replicas_) {
    if (r.raft && alive_[key.first]) Feed(&r, Input{Input::Kind::kWake, {}});
  }
}

void Simulation::ChangePartitions() {
  cut_.clear();
  const uint64_t kind = rng_.Uniform(5);
  if (kind == 0) {
    // healed
  } else if (kind == 1) {
    const int victim = 1 + static_cast<int>(rng_.Uniform(nodes_));
    for (int n = 1; n <= nodes_; n++) {
      if (n != victim) {
        cut_.insert({victim, n});
        cut_.insert({n, victim});
      }
    }
  } else if (kind == 2) {
    std::vector<bool> side(nodes_ + 1);
    for (int n = 1; n <= nodes_; n++) side[n] = rng_.Chance(500000);
    for (int a = 1; a <= nodes_; a++) {
      for (int b = 1; b <= nodes_; b++) {
        if (side[a] != side[b]) cut_.insert({a, b});
      }
    }
  } else {
    // One-way cuts: a node that can send but not receive, or the reverse.
    const int links = 1 + static_cast<int>(rng_.Uniform(nodes_));
    for (int i = 0; i < links; i++) {
      const int a = 1 + static_cast<int>(rng_.Uniform(nodes_));
      const int b = 1 + static_cast<int>(rng_.Uniform(nodes_));
      if (a != b) cut_.insert({a, b});
    }
  }
  Trace("partition kind " + std::to_string(kind) + " links cut " + std::to_string(cut_.size()));
  WakeAll();
}

Replica* Simulation::FindLeader(size_t g) {
  Replica* best = nullptr;
  for (auto& [key, r] : replicas_) {
    if (key.second != g || !r.raft || !alive_[key.first]) continue;
    if (r.raft->role() == Role::kLeader && (!best || r.raft->term() > best->raft->term())) best = &r;
  }
  return best;
}

void Simulation::ChangeMembership(size_t g) {
  Replica* l = FindLeader(g);
  if (!l || l->blocked) return;
  const ConfState& conf = l->raft->conf();
  ConfChange cc;
  std::vector<NodeId> outsiders;
  for (int n = 1; n <= nodes_; n++) {
    if (!conf.IsMember(NodeId(n))) outsiders.push_back(NodeId(n));
  }
  if (!conf.learners.empty()) {
    cc = {ConfChange::Type::kAddVoter, conf.learners[rng_.Uniform(conf.learners.size())]};
  } else if (!outsiders.empty() && (conf.voters.size() < 4 || rng_.Chance(500000))) {
    cc = {ConfChange::Type::kAddLearner, outsiders[rng_.Uniform(outsiders.size())]};
  } else if (conf.voters.size() > 3) {
    cc = {ConfChange::Type::kRemoveNode, conf.voters[rng_.Uniform(conf.voters.size())]};
  } else {
    return;
  }
  auto res = l->raft->ProposeConfChange(cc);
  if (res.ok()) {
    result_.conf_changes++;
    Trace("group " + std::to_string(g + 1) + " conf change " + cc.Encode());
  }
  Observe(l);
  Pump(l);
}

void Simulation::TransferLeadership(size_t g) {
  Replica* l = FindLeader(g);
  if (!l || l->blocked) return;
  const auto& voters = l->raft->conf().voters;
  if (voters.size() < 2) return;
  const NodeId target = voters[rng_.Uniform(voters.size())];
  if (target == l->raft->id()) return;
  if (l->raft->TransferLeadership(target).ok()) {
    result_.transfers++;
    Trace("group " + std::to_string(g + 1) + " transfer to " + std::to_string(target.value()));
  }
  Observe(l);
  Pump(l);
}

// ---------------------------------------------------------------------------
// Clients

void Simulation::ClientStep(int c) {
  Client& cl = clients_[c];
  if (clients_stop_ || failed_) {
    cl.busy = false;
    return;
  }
  cl.busy = true;
  Replica* r = GetReplica(cl.leader_hint, cl.group, false);
  auto retry = [this, c](uint64_t us) { After(us, [this, c] { ClientStep(c); }); };
  auto rehint = [this, &cl](Replica* rep) {
    NodeId hint = rep && rep->raft ? rep->raft->leader() : NodeId();
    cl.leader_hint = !hint.IsZero() && rng_.Chance(900000)
                         ? static_cast<int>(hint.value())
                         : 1 + static_cast<int>(rng_.Uniform(nodes_));
  };
  if (!r || !r->raft || !alive_[cl.leader_hint]) {
    rehint(nullptr);
    retry(2000);
    return;
  }
  if (r->blocked) {
    retry(300);
    return;
  }
  ClientOp op;
  op.client = cl.id;
  op.seq = ++cl.seq;
  op.key = "k" + std::to_string(rng_.Uniform(kKeys));
  op.op.client = cl.id;
  const uint64_t kind = rng_.Uniform(10);
  uint64_t timeout_us;
  if (kind < 4) {
    op.op.kind = RegisterOp::Kind::kRead;
    const uint64_t id = next_read_id_++;
    if (!r->raft->ReadIndex(id).ok()) {
      rehint(r);
      retry(2000);
      return;
    }
    op.op.invoke = ++history_clock_;
    ops_.push_back(op);
    r->reads[id] = ops_.size() - 1;
    timeout_us = 1000000;
  } else {
    Command cmd;
    cmd.client = cl.id;
    cmd.seq = op.seq;
    cmd.key = op.key;
    cmd.value = static_cast<int64_t>(cl.id) * 1000000 + static_cast<int64_t>(op.seq);
    if (kind < 8) {
      cmd.kind = 'W';
      op.op.kind = RegisterOp::Kind::kWrite;
    } else {
      cmd.kind = 'C';
      op.op.kind = RegisterOp::Kind::kCas;
      // Expect the value this client last saw written somewhere: often right.
      const auto& by_key = r->sm.kv;
      auto it = by_key.find(op.key);
      cmd.expected = it == by_key.end() ? 0 : it->second;
      op.op.expected = cmd.expected;
    }
    op.op.value = cmd.value;
    auto res = r->raft->Propose(cmd.Encode());
    if (!res.ok()) {
      rehint(r);
      retry(2000);
      return;
    }
    op.op.invoke = ++history_clock_;
    ops_.push_back(op);
    r->proposals[*res] = ops_.size() - 1;
    timeout_us = 1500000;
  }
  const size_t idx = ops_.size() - 1;
  Observe(r);
  Pump(r);
  After(timeout_us, [this, idx, c] {
    if (!ops_[idx].done) {
      // Indeterminate: it may still take effect later; the checker allows
      // that. The client moves on.
      ops_[idx].done = true;
      ClientDone(c);
    }
  });
}

void Simulation::CompleteOp(size_t op_index, int64_t result) {
  ClientOp& op = ops_[op_index];
  if (op.done) return;  // timed out already: stays indeterminate
  op.done = true;
  op.op.result = result;
  op.op.ret = ++history_clock_;
  result_.ops_completed++;
  ClientDone(op.client);
}

void Simulation::ClientDone(int c) {
  clients_[c].busy = false;
  After(rng_.Range(1000, 20000), [this, c] {
    if (!clients_[c].busy) ClientStep(c);
  });
}

// ---------------------------------------------------------------------------
// End checks

void Simulation::CheckLeaderExists() {
  for (size_t g = 0; g < groups_.size() && !failed_; g++) {
    Replica* l = FindLeader(g);
    if (!l) {
      Fail("liveness: group " + std::to_string(g + 1) + " has no leader 3s after faults healed");
      return;
    }
  }
}

void Simulation::CheckConverged() {
  for (size_t g = 0; g < groups_.size() && !failed_; g++) {
    Replica* l = FindLeader(g);
    if (!l) {
      Fail("liveness: group " + std::to_string(g + 1) + " lost its leader after healing");
      return;
    }
    const ConfState conf = l->raft->conf();
    if (l->raft->commit() != l->raft->log().last_index()) {
      Fail("liveness: leader of group " + std::to_string(g + 1) + " did not commit its log");
      return;
    }
    std::vector<NodeId> members = conf.voters;
    members.insert(members.end(), conf.learners.begin(), conf.learners.end());
    for (NodeId m : members) {
      Replica* r = GetReplica(static_cast<int>(m.value()), g, false);
      if (!r || !r->raft || r->sm.applied != l->raft->commit().value()) {
        Fail("liveness: member " + std::to_string(m.value()) + " of group " + std::to_string(g + 1) +
             " did not catch up to " + std::to_string(l->raft->commit().value()));
        return;
      }
    }
    if (groups_[g].max_acked > l->raft->commit().value()) {
      Fail("acknowledged proposal lost in group " + std::to_string(g + 1));
      return;
    }
  }
  for (size_t i = 0; i < ops_.size() && !failed_; i++) {
    const ClientOp& op = ops_[i];
    if (op.op.kind != RegisterOp::Kind::kRead && op.op.invoke >= live_from_clock_ &&
        !op.op.completed()) {
      Fail("liveness: a proposal made after healing never completed: " + op.op.ToString());
    }
  }
}

void Simulation::CheckHistories() {
  std::map<std::pair<size_t, std::string>, std::vector<RegisterOp>> by_key;
  for (const ClientOp& op : ops_) {
    by_key[{clients_[op.client].group, op.key}].push_back(op.op);
  }
  for (auto& [key, hist] : by_key) {
    std::string why;
    auto res = CheckRegister(hist, 0, kLinBudget, &why);
    if (res == LinearizableResult::kNo) {
      Fail("linearizability violated for group " + std::to_string(key.first + 1) + " key " +
           key.second + ": " + why);
      return;
    }
    if (res == LinearizableResult::kUnknown) result_.lin_unknown++;
  }
}

SimResult Simulation::Run() {
  Setup();
  for (int n = 1; n <= nodes_; n++) {
    At(rng_.Uniform(kTickUs), [this, n] { NodeTick(n); });
  }
  // Faults.
  const uint64_t fault_us = opt_.fault_ms * 1000;
  fault_us_ = fault_us;
  std::function<void()> crash_loop = [this, &crash_loop, fault_us] {
    if (now_ >= fault_us) return;
    Crash(1 + static_cast<int>(rng_.Uniform(nodes_)));
    After(rng_.Range(crash_mean_ms_ * 500, crash_mean_ms_ * 1500), crash_loop);
  };
  After(rng_.Range(100000, crash_mean_ms_ * 1000), crash_loop);
  std::function<void()> partition_loop = [this, &partition_loop, fault_us] {
    if (now_ >= fault_us) return;
    ChangePartitions();
    After(rng_.Range(partition_mean_ms_ * 500, partition_mean_ms_ * 1500), partition_loop);
  };
  After(rng_.Range(50000, partition_mean_ms_ * 1000), partition_loop);
  std::function<void()> member_loop = [this, &member_loop, fault_us] {
    if (now_ >= fault_us) return;
    ChangeMembership(rng_.Uniform(groups_.size()));
    After(rng_.Range(200000, 800000), member_loop);
  };
  if (membership_) After(300000, member_loop);
  std::function<void()> transfer_loop = [this, &transfer_loop, fault_us] {
    if (now_ >= fault_us) return;
    TransferLeadership(rng_.Uniform(groups_.size()));
    After(rng_.Range(200000, 1500000), transfer_loop);
  };
  if (transfers_) After(rng_.Range(100000, 800000), transfer_loop);
  for (size_t c = 0; c < clients_.size(); c++) {
    After(rng_.Range(0, 50000), [this, c] { ClientStep(static_cast<int>(c)); });
  }
  // Heal, then demand liveness.
  heal_us_ = fault_us;
  At(heal_us_, [this] {
    healed_ = true;
    cut_.clear();
    drop_ppm_ = opt_.network_dies_at_heal ? 1000000 : 0;
    dup_ppm_ = 0;
    Trace("heal");
    for (int n = 1; n <= nodes_; n++) Restart(n);
    WakeAll();
  });
  At(heal_us_ + 3000000, [this] {
    CheckLeaderExists();
    live_from_clock_ = history_clock_ + 1;
  });
  At(heal_us_ + 4500000, [this] { clients_stop_ = true; });
  const uint64_t end_us = heal_us_ + 7000000;
  At(end_us, [this] { CheckConverged(); });

  while (!events_.empty() && !failed_) {
    Event ev = events_.top();
    events_.pop();
    if (ev.time_us > end_us) break;
    now_ = ev.time_us;
    result_.events++;
    ev.fn();
  }
  if (!failed_) CheckHistories();
  return result_;
}

}  // namespace

SimResult RunRaftSim(const SimOptions& options) {
  Simulation sim(options);
  return sim.Run();
}

}  // namespace cairn::sim
