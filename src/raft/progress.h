// Progress: what a leader knows about one follower's log, and how it may
// send to it.
//
// States: kProbe sends one append at a time until the follower's match is
// found (fast backtracking narrows it in few round trips); kReplicate
// pipelines appends, bounded by in-flight messages and bytes; kSnapshot sends
// a snapshot chunk by chunk and sends no entries until it is installed.
// Thread-safety: none; owned by one RaftNode.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "raft/types.h"

namespace cairn::raft {

class Progress {
 public:
  enum class State : uint8_t { kProbe, kReplicate, kSnapshot };

  Progress(NodeId id, LogIndex next) : id_(id), next_(next) {}

  NodeId id() const { return id_; }
  LogIndex match() const { return match_; }
  LogIndex next() const { return next_; }
  State state() const { return state_; }

  void BecomeProbe(LogIndex next);
  void BecomeReplicate();
  void BecomeSnapshot(LogIndex snapshot_index);

  // A successful append response up to `index`. Returns true if match moved.
  bool MaybeUpdate(LogIndex index);
  // An append covering up to `last` with `bytes` was sent.
  void OnSent(LogIndex last, uint64_t bytes);
  // True if no append may be sent now.
  bool IsPaused(uint32_t max_msgs, uint64_t max_bytes) const;
  bool InflightFull(uint32_t max_msgs, uint64_t max_bytes) const;
  // Probe state: allow one more probe (after a heartbeat response).
  void ResumeProbe() { probe_sent_ = false; }

  // Snapshot sending: bytes the follower has acknowledged.
  LogIndex snapshot_index() const { return snapshot_index_; }
  uint64_t snapshot_offset_bytes() const { return snapshot_offset_bytes_; }
  void set_snapshot_offset_bytes(uint64_t v) { snapshot_offset_bytes_ = v; }

  // CheckQuorum: heard from since the last check.
  bool recent_active = false;
  // Highest heartbeat round this peer acknowledged (ReadIndex, leases).
  uint64_t acked_round = 0;

 private:
  void FreeThrough(LogIndex index);

  NodeId id_;
  LogIndex match_;
  LogIndex next_;
  State state_ = State::kProbe;
  bool probe_sent_ = false;
  // (last index, bytes), oldest first. A vector, not a deque: an empty deque
  // allocates, and a node hosts thousands of idle followers' progress.
  std::vector<std::pair<LogIndex, uint64_t>> inflight_;
  uint64_t inflight_bytes_ = 0;
  LogIndex snapshot_index_;
  uint64_t snapshot_offset_bytes_ = 0;
};

}  // namespace cairn::raft
