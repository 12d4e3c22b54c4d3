// TestCluster: a handful of RaftNodes wired through in-memory mailboxes and
// in-memory disks, stepped by hand. Unit tests and the scenario-transcript
// runner drive it one input at a time; nothing moves unless asked, so every
// test states exactly which messages flow.
//
// Process(id) honours the Ready contract: it persists the Ready into the
// node's Disk before its messages enter the mailboxes, and a crash discards
// everything the node held in memory. Thread-safety: none.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "raft/raft_node.h"

namespace cairn::raft::testing {

struct Disk {
  HardState hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;

  RestoredState Restore() const { return RestoredState{hard_state, snapshot, entries}; }
};

class TestCluster {
 public:
  TestCluster(std::vector<uint64_t> ids, Config base) : base_(base) {
    ConfState conf;
    for (uint64_t id : ids) conf.voters.push_back(NodeId(id));
    for (uint64_t id : ids) {
      disks_[id] = Disk{};
      RestoredState boot = RaftNode::Bootstrap(conf);
      disks_[id].hard_state = boot.hard_state;
      disks_[id].snapshot = boot.snapshot;
      Start(id);
    }
  }

  // A node that is not in the bootstrap configuration (to be added later).
  void AddEmptyNode(uint64_t id) {
    disks_[id] = Disk{};
    Start(id);
  }

  RaftNode& node(uint64_t id) { return *nodes_.at(id); }
  bool alive(uint64_t id) const { return nodes_.count(id) > 0; }
  const Disk& disk(uint64_t id) const { return disks_.at(id); }
  const std::vector<Entry>& applied(uint64_t id) { return applied_[id]; }
  // The most entries and bytes one Ready of `id` handed out to apply (among
  // Readies with more than one entry).
  std::pair<size_t, uint64_t> largest_apply(uint64_t id) { return largest_apply_[id]; }
  std::vector<ReadState>& reads(uint64_t id) { return reads_[id]; }
  Config& config(uint64_t id) { return configs_[id]; }
  std::vector<uint64_t> ids() const {
    std::vector<uint64_t> out;
    for (const auto& [id, d] : disks_) out.push_back(id);
    return out;
  }

  // Runs one Ready cycle on `id` if it has one. Returns true if it did.
  bool Process(uint64_t id) {
    if (!alive(id) || !node(id).HasReady()) return false;
    RaftNode& n = node(id);
    Ready rd = n.GetReady();
    Disk& d = disks_[id];
    if (rd.snapshot) {
      d.snapshot = rd.snapshot;
      d.entries.clear();
      applied_[id].clear();
      snapshot_installs_[id]++;
    }
    if (!rd.entries.empty()) {
      const LogIndex first = rd.entries.front().index;
      while (!d.entries.empty() && d.entries.back().index >= first) d.entries.pop_back();
      for (const Entry& e : rd.entries) d.entries.push_back(e);
    }
    if (rd.hard_state) d.hard_state = *rd.hard_state;
    for (Message& m : rd.messages) {
      sent_.push_back(m);
      mailbox_[{m.from.value(), m.to.value()}].push_back(std::move(m));
    }
    uint64_t apply_bytes = 0;
    for (const Entry& e : rd.committed_entries) {
      applied_[id].push_back(e);
      apply_bytes += e.SizeBytes();
    }
    if (rd.committed_entries.size() > 1) {
      largest_apply_[id].first = std::max(largest_apply_[id].first, rd.committed_entries.size());
      largest_apply_[id].second = std::max(largest_apply_[id].second, apply_bytes);
    }
    for (const ReadState& r : rd.read_states) reads_[id].push_back(r);
    if (!rd.compacted_through.IsZero()) {
      while (!d.entries.empty() && d.entries.front().index <= rd.compacted_through) {
        d.entries.erase(d.entries.begin());
      }
    }
    n.Advance(rd);
    return true;
  }

  // Delivers up to `max` queued messages from -> to, in order. Messages over
  // a cut link or to a dead node are dropped. Returns how many were stepped.
  int Deliver(uint64_t from, uint64_t to, int max = 1 << 30) {
    auto& q = mailbox_[{from, to}];
    int n = 0;
    while (!q.empty() && n < max) {
      Message m = std::move(q.front());
      q.pop_front();
      if (!alive(to) || cut_.count({from, to})) continue;
      (void)node(to).Step(m);
      n++;
    }
    return n;
  }

  // Drops every queued message from -> to.
  void Drop(uint64_t from, uint64_t to) { mailbox_[{from, to}].clear(); }
  size_t Queued(uint64_t from, uint64_t to) { return mailbox_[{from, to}].size(); }
  const std::deque<Message>& Mailbox(uint64_t from, uint64_t to) { return mailbox_[{from, to}]; }

  // Processes and delivers until nothing moves.
  void Stabilize() {
    for (int round = 0; round < 10000; round++) {
      bool moved = false;
      for (uint64_t id : ids()) moved |= Process(id);
      for (auto& [key, q] : mailbox_) {
        if (!q.empty()) {
          Deliver(key.first, key.second);
          moved = true;
        }
      }
      if (!moved) return;
    }
  }

  void Tick(uint64_t id, int n = 1) {
    for (int i = 0; i < n && alive(id); i++) node(id).Tick();
  }
  // Ticks `id` until it starts an election, then stabilizes.
  void Elect(uint64_t id) {
    node(id).Campaign();
    Stabilize();
  }

  void Cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void CutOneWay(uint64_t from, uint64_t to) { cut_.insert({from, to}); }
  void Isolate(uint64_t id) {
    for (uint64_t other : ids()) {
      if (other != id) Cut(id, other);
    }
  }
  void Heal() { cut_.clear(); }

  // Loses all volatile state of `id`; queued messages to and from it vanish.
  void Crash(uint64_t id) {
    nodes_.erase(id);
    for (auto& [key, q] : mailbox_) {
      if (key.first == id || key.second == id) q.clear();
    }
  }
  void Restart(uint64_t id) {
    Crash(id);
    Start(id);
  }

  // All messages ever sent (after persistence), for assertions.
  const std::vector<Message>& sent() const { return sent_; }
  void ClearSent() { sent_.clear(); }
  int snapshot_installs(uint64_t id) { return snapshot_installs_[id]; }

  uint64_t Leader() {
    uint64_t lead = 0;
    Term best;
    for (auto& [id, n] : nodes_) {
      if (n->role() == Role::kLeader && n->term() >= best) {
        best = n->term();
        lead = id;
      }
    }
    return lead;
  }

 private:
  void Start(uint64_t id) {
    Config c = configs_.count(id) ? configs_[id] : base_;
    c.id = NodeId(id);
    c.seed = base_.seed * 1000 + id;
    configs_[id] = c;
    nodes_[id] = std::make_unique<RaftNode>(c, disks_[id].Restore());
    // Applied state restarts from the snapshot; the log is re-applied.
    applied_[id].clear();
  }

  Config base_;
  std::map<uint64_t, Config> configs_;
  std::map<uint64_t, Disk> disks_;
  std::map<uint64_t, std::unique_ptr<RaftNode>> nodes_;
  std::map<std::pair<uint64_t, uint64_t>, std::deque<Message>> mailbox_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::map<uint64_t, std::vector<Entry>> applied_;
  std::map<uint64_t, std::vector<ReadState>> reads_;
  std::map<uint64_t, int> snapshot_installs_;
  std::map<uint64_t, std::pair<size_t, uint64_t>> largest_apply_;
  std::vector<Message> sent_;
};

}  // namespace cairn::raft::testing
