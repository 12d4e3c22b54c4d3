// RaftNode: one replica of one Raft group as a pure state machine.
//
// Inputs are Tick(), Step(message), Propose(), ProposeConfChange(),
// ReadIndex(), TransferLeadership(), Compact() and Advance(). Outputs come
// back as a Ready batch. The core never touches a clock, a socket, a file or
// a thread, so the same object runs under unit tests, the deterministic
// simulator (tests/sim) and a real node.
//
// THE READY CONTRACT. The host loops:
//   if (node.HasReady()) {
//     Ready rd = node.GetReady();
//     1. persist rd.snapshot (if any), then rd.entries (the first entry
//        replaces the stored log from its index on), then rd.hard_state, and
//        make them DURABLE (fsync);
//     2. only then send rd.messages: a vote grant, an append acknowledgement
//        or a higher term must never leave before the state it depends on
//        survives a crash;
//     3. install rd.snapshot into the state machine, apply
//        rd.committed_entries in order, serve rd.read_states once the state
//        machine has applied up to their index;
//     4. storage may now drop entries <= rd.compacted_through;
//     5. node.Advance(rd).
//   }
// Between GetReady() and Advance() the host must not call any other mutating
// method (Tick, Step, Propose, ...); it queues inputs instead.
//
// Safety rules and why they are here:
//  - One vote per term, persisted with the term before the grant is sent.
//  - A leader appends a no-op when elected and commits only entries of its
//    own term by counting replicas (Raft §5.4.2, the paper's figure 8).
//  - PreVote: a candidate first asks without raising its term, so a node that
//    was partitioned away cannot depose a healthy leader when it returns.
//  - CheckQuorum: a leader steps down if a quorum has been silent for an
//    election timeout; followers that heard from a leader within the minimum
//    election timeout ignore vote requests (leader stickiness). A restarted
//    node also waits one minimum timeout before voting, because it forgot
//    whether it recently heard from a leader; leases rely on that.
//  - ReadIndex: a read is bound to the commit index at request time, the
//    current term, and a heartbeat round sent after the request that a quorum
//    acknowledged. A leader serves reads only once it has committed an entry
//    of its own term.
//  - Leases (opt-in): see Config::lease_reads. Transferring leadership revokes
//    the lease for the rest of the term, since the transfer target is allowed
//    to bypass followers' stickiness.
//  - Membership changes one node at a time; the latest configuration in the
//    log is in force as soon as it is appended. A leader proposes a change
//    only once it has committed an entry of its own term and the previous
//    change is committed (the single-server-change bug fix from the Raft
//    dissertation errata). A leader removed from the group keeps leading
//    without counting itself until the change commits, then hands over with
//    TimeoutNow and steps down.
//
// Thread-safety: none. One RaftNode is owned and driven by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/status.h"
#include "raft/config.h"
#include "raft/progress.h"
#include "raft/raft_log.h"
#include "raft/random.h"
#include "raft/types.h"

namespace cairn::raft {

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* RoleName(Role r);

// A read that may be served once the state machine has applied `index`.
struct ReadState {
  uint64_t request_id = 0;
  LogIndex index;
};

// What a replica loads from durable storage when it starts.
struct RestoredState {
  HardState hard_state;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;  // contiguous, starting after the snapshot
};

struct Ready {
  // Volatile state after this batch, for the host's routing and metrics.
  Role role = Role::kFollower;
  NodeId leader;
  Term term;

  std::optional<HardState> hard_state;  // persist if set
  std::optional<Snapshot> snapshot;     // persist, replace the log, install
  std::vector<Entry> entries;           // persist; overwrite from entries[0].index
  LogIndex compacted_through;           // storage may drop entries <= this
  std::vector<Message> messages;        // send only after the above is durable
  std::vector<Entry> committed_entries; // apply in order
  std::vector<ReadState> read_states;   // serve once applied >= index
};

class RaftNode {
 public:
  // Starts a replica from what storage restored. REQUIRES: config.id != 0,
  // election_ticks_min < election_ticks_max, heartbeat_ticks < election_ticks_min.
  RaftNode(const Config& config, RestoredState restored);

  // Durable state for a founding member of a new group: a snapshot at index 1,
  // term 1 holding `conf` and empty data. A node joining later starts from an
  // empty RestoredState and learns the group from the leader.
  static RestoredState Bootstrap(const ConfState& conf);

  // One unit of logical time.
  void Tick();
  // Handles a message from a peer. Messages from stale terms or non-members
  // are ignored (OK); malformed ones return InvalidArgument.
  Status Step(const Message& m);
  // Appends a command. Returns its index, NotLeader (message names the leader
  // if known), or Unavailable while transferring leadership or when the
  // uncommitted tail exceeds uncommitted_bytes_max. The index is no promise:
  // the entry is committed only when it comes back in committed_entries with
  // the same term.
  Result<LogIndex> Propose(std::string data);
  // Appends a membership change (see the class comment for when it is
  // allowed). Unavailable if the leader has not committed in its term or a
  // change is pending; InvalidArgument for a change that makes no sense.
  Result<LogIndex> ProposeConfChange(const ConfChange& cc);
  // Requests a linearizable read. The answer arrives later as a ReadState
  // with the same request_id, on this replica. Request ids must be fresh.
  // Unavailable if no leader is known; the request is silently dropped if
  // leadership changes before it is confirmed (the host times out and
  // retries).
  Status ReadIndex(uint64_t request_id);
  // Leader only: hand leadership to `target`, a voter.
  Status TransferLeadership(NodeId target);
  // Starts an election now (tests and tools).
  void Campaign();
  // The application durably saved a snapshot of its state machine at `index`
  // (<= applied()). The core keeps it to send to lagging followers and
  // compacts the log up to index - compaction_retain_entries.
  Status Compact(LogIndex index, std::shared_ptr<const std::string> data);
  // Wakes a quiesced group (the host learned that a peer failed or restarted).
  void Unquiesce();

  bool HasReady() const;
  Ready GetReady();
  void Advance(const Ready& ready);

  // Observers.
  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId leader() const { return lead_; }
  NodeId vote() const { return vote_; }
  LogIndex commit() const { return commit_; }
  LogIndex applied() const { return applied_; }
  bool quiesced() const { return quiesced_; }
  const RaftLog& log() const { return log_; }
  const ConfState& conf() const { return conf_; }
  const Snapshot& snapshot() const { return snapshot_; }
  // A snapshot received from the leader that the next Ready will carry to
  // be installed (hosts may prepare its install before taking that Ready).
  const std::optional<Snapshot>& pending_install() const { return pending_install_; }
  const Progress* progress(NodeId id) const;
  // True if a lease read would be served locally right now.
  bool LeaseValid() const;
  // Messages produced since the last GetReady (for tests and invariant checks).
  const std::vector<Message>& pending_messages() const { return msgs_; }

 private:
  struct PendingRead {
    uint64_t request_id;
    LogIndex index;
    uint64_t round;
    NodeId from;
  };
  struct IncomingSnapshot {
    SnapshotMeta meta;
    std::string data;       // without Config::write_snapshot_chunk
    uint64_t received = 0;  // bytes received in order
  };
  enum class CampaignKind { kPreVote, kElection, kTransfer };

  void BecomeFollower(Term term, NodeId lead);
  void BecomeLeader();
  void ResetForTerm(Term term);
  void CampaignAs(CampaignKind kind);
  bool Promotable() const { return conf_.IsVoter(config_.id); }
  size_t Quorum() const { return conf_.voters.size() / 2 + 1; }
  void ResetElectionTimer();

  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshotChunk(const Message& m);
  void HandleAppendResp(Progress* pr, const Message& m);
  void HandleHeartbeatResp(Progress* pr, const Message& m);
  void HandleSnapshotResp(Progress* pr, const Message& m);
  void HandleReadRequest(uint64_t request_id, NodeId from);

  // Appends entries from the leader at or after `index`, truncating a
  // conflicting suffix.
  void AppendFromLeader(const std::vector<Entry>& entries);
  void AppendLocal(EntryType type, std::string data);
  void OnEntryAppended(const Entry& e);
  void RollbackConfFrom(LogIndex index);
  void SetConf(const ConfState& conf);
  ConfState ConfAt(LogIndex index) const;

  Progress* FindProgress(NodeId id);
  bool SendAppend(Progress* pr, bool allow_empty);
  void SendAppendsWhileOpen(Progress* pr);
  void SendSnapshotChunk(Progress* pr);
  // Whether the snapshot can be sent: its bytes are held, or read through
  // Config::read_snapshot_chunk.
  bool SnapshotSendable() const;
  void SendTimeoutNow(NodeId to);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  void FlushBroadcasts();
  bool MaybeCommit();
  void OnCommitAdvanced(LogIndex old_commit);
  bool CommittedInTerm() const;
  uint64_t QuorumAckedRound() const;
  void ReleaseReads();
  void ReleaseRead(uint64_t request_id, LogIndex index, NodeId from);
  void AbortTransfer() { lead_transferee_ = kNoNode; }

  void Send(Message m);
  void CheckNotInReady() const;

  Config config_;
  Random rng_;

  // Persistent (with the log).
  Term term_;
  NodeId vote_;
  RaftLog log_;
  LogIndex commit_;
  HardState persisted_hs_;  // last hard state handed out in a Ready

  // Volatile.
  Role role_ = Role::kFollower;
  NodeId lead_;
  LogIndex applied_;
  uint32_t election_elapsed_ = 0;
  uint32_t heartbeat_elapsed_ = 0;
  uint32_t randomized_election_ticks_ = 0;
  uint64_t now_ticks_ = 0;
  bool restart_guard_ = true;
  std::vector<NodeId> granted_;
  std::vector<NodeId> rejected_;

  // Membership: the snapshot's configuration plus every change in the log.
  ConfState conf_;
  ConfState conf_base_;
  std::vector<std::pair<LogIndex, ConfState>> conf_history_;

  // Leader.
  std::vector<Progress> progress_;  // sorted by id; includes self if a member
  LogIndex noop_index_;
  LogIndex pending_conf_index_;
  uint64_t uncommitted_bytes_ = 0;
  NodeId lead_transferee_;
  bool lease_revoked_ = false;
  bool need_broadcast_append_ = false;
  bool need_broadcast_heartbeat_ = false;
  uint64_t hb_round_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> round_ticks_;  // (round, tick sent)
  std::vector<PendingRead> pending_reads_;  // oldest first
  std::vector<std::pair<uint64_t, NodeId>> reads_awaiting_commit_;
  uint32_t idle_rounds_ = 0;
  bool quiesced_ = false;

  // Snapshots.
  Snapshot snapshot_;
  std::optional<Snapshot> pending_install_;
  std::optional<IncomingSnapshot> incoming_;
  LogIndex pending_compaction_;

  // Output.
  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  bool in_ready_ = false;
};

}  // namespace cairn::raft
