// Config: everything that tunes one replica of one Raft group.
//
// Time is counted in ticks; the host decides how long a tick is. Cairn's
// defaults assume a 10 ms tick: heartbeats every 50 ms, election timeouts
// drawn uniformly from [150 ms, 300 ms). Every queue and batch has a bound.
// Thread-safety: a value.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "raft/types.h"

namespace cairn::raft {

// Test-only switches that each break exactly one rule of the protocol. They
// exist so the simulation can prove that it notices when a rule is broken
// (tests/sim/mutation_test.cc). Never set outside tests.
struct Mutations {
  bool skip_persist_vote = false;          // Ready hard state omits the vote
  bool commit_previous_term = false;       // count replicas of older-term entries
  bool read_without_read_index = false;    // serve reads at commit, no quorum check
  bool prevote_skips_log_check = false;    // grant PreVote to any log
  bool compact_past_snapshot = false;      // compaction reaches past the snapshot, to applied
};

struct Config {
  NodeId id;
  GroupId group;

  // Ticks. Election timeouts are drawn from [election_ticks_min,
  // election_ticks_max) at every reset.
  uint32_t heartbeat_ticks = 5;
  uint32_t election_ticks_min = 15;
  uint32_t election_ticks_max = 30;

  // PreVote: a candidate first asks whether it could win, without raising its
  // term, so a partitioned node rejoining cannot depose a healthy leader.
  bool pre_vote = true;
  // CheckQuorum: a leader that has not heard from a quorum within
  // election_ticks_min steps down; followers that heard from a leader within
  // that time ignore vote requests (leader stickiness).
  bool check_quorum = true;

  // Replication bounds.
  uint32_t entries_per_msg_max = 256;
  uint64_t bytes_per_msg_max = 1 << 20;
  uint32_t inflight_msgs_max = 64;
  uint64_t inflight_bytes_max = 8 << 20;
  uint64_t uncommitted_bytes_max = 64 << 20;
  // Committed entries one Ready hands out to apply (at least one): a
  // follower catching up applies the log in steps this size, so that no
  // host round applies for long (a 4,096-entry Ready of single-datom
  // transactions took a node's driver 75-230 ms).
  uint32_t apply_entries_per_ready_max = 1024;
  uint64_t apply_bytes_per_ready_max = 256 << 10;

  // Leader leases (opt-in): a leader serves reads locally while a quorum has
  // acknowledged a heartbeat sent within the last
  // election_ticks_min - lease_clock_drift_ticks of its own ticks. Requires
  // check_quorum. The drift bound must cover how much faster the leader's
  // clock may run than any follower's over one election timeout.
  bool lease_reads = false;
  uint32_t lease_clock_drift_ticks = 3;

  // Snapshots are sent in chunks of this many bytes.
  uint64_t snapshot_chunk_bytes = 64 << 10;
  // Entries kept below a new snapshot, so slightly lagging followers still
  // catch up from the log instead of a snapshot.
  uint64_t compaction_retain_entries = 64;
  // Hosts that keep snapshots in files set both, so that neither side of a
  // transfer holds a shard's whole image in memory:
  //  - read_snapshot_chunk(meta, offset, max_len, &out): a leader sending the
  //    snapshot at `meta` (its own, whose bytes it need not hold: Compact may
  //    be given none) reads up to max_len bytes from `offset` into `out` and
  //    returns the snapshot's total size, or nullopt if it cannot be read now
  //    (nothing is sent; the next heartbeat round tries again);
  //  - write_snapshot_chunk(meta, offset, data): a follower hands each chunk,
  //    in order, to the host (offset 0 starts a new transfer) instead of
  //    assembling it; false if it could not be stored (the chunk is not
  //    acknowledged, so the leader sends it again after its next heartbeat).
  //    The received snapshot then comes out in Ready with null data: the
  //    host holds its bytes.
  // Without them a snapshot's bytes are held in memory (Snapshot::data).
  std::function<std::optional<uint64_t>(const SnapshotMeta&, uint64_t offset, uint64_t max_len, std::string* out)>
      read_snapshot_chunk;
  std::function<bool(const SnapshotMeta&, uint64_t offset, std::string_view data)> write_snapshot_chunk;

  // Idle groups: after this many heartbeat rounds with nothing to replicate, a
  // leader quiesces the group (no ticks, no heartbeats) until something
  // happens. Zero disables quiescence. The host must call Unquiesce() when it
  // learns that a peer node failed or restarted.
  uint32_t quiesce_after_idle_rounds = 0;

  // Seed for the election-timeout randomness. Hosts give every replica a
  // different seed.
  uint64_t seed = 1;

  Mutations mutations;
};

}  // namespace cairn::raft
