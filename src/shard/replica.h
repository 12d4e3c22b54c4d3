// Replica: one replica of one shard = a RaftNode + the node's RaftLogStore +
// the datom state machine (a DatomStore with its memory index).
//
// Driven by its host, no threads inside: Tick(), Step(message),
// Propose(command) and HandleReady(send). HandleReady follows the Ready
// contract of raft/raft_node.h: persist (RaftLogStore::Save, one SQLite
// transaction), then hand the messages to `send`, then apply the committed
// entries, then Advance.
//
// Applying a command entry (ReplicaCommand) is deterministic, so every
// replica writes the same datoms:
//  - t = max(command.proposed_t, last applied t + 1): the leader's clock
//    reading travels in the entry and the bump depends only on replicated
//    state; :db/txInstant is t's physical part. No local clock is read.
//  - entity ids come from the DatomStore's per-partition counters (replicated
//    state), advanced in the same SQLite transaction as the datoms.
//  - a request id already applied is skipped (its first outcome is kept), so
//    a client retry never applies twice; a transaction the transactor refuses
//    is recorded as failed and writes nothing, on every replica alike.
//
// Applied index: DatomStore::Commit owns its SQLite transaction and offers no
// hook for extra rows, so the applied index cannot (yet) be written in the
// same transaction as the datoms. Stopgap: the table replica_applied(grp,
// applied_index, last_t) and the request table replica_requests live in the
// node's Raft log database (another connection), written right after each
// command's commit. A crash between the two leaves at most ONE command
// committed in the DatomStore but not recorded; it shows as
// store.last_t > recorded last_t at open, and the first command entry after
// the recorded applied index is then recorded without being re-applied.
// docs/cluster.md describes this and what replaces it.
//
// Not yet: snapshots (installing one returns an error; compaction is not
// triggered), membership changes beyond the founding configuration (conf
// change entries are passed to Raft's own bookkeeping only).
//
// Thread-safety: none; one owner thread drives it. db() values are immutable
// and may be read from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/status.h"
#include "datalog/index_source.h"
#include "raft/raft_node.h"
#include "shard/raft_log_store.h"
#include "shard/replica_command.h"
#include "shard/transactor.h"
#include "storage/datom_store.h"
#include "storage/sqlite.h"

namespace cairn::shard {

struct ReplicaOptions {
  raft::Config raft;  // id, group, timing, seed
  std::string datoms_path;
  storage::StoreOptions store;
  // Membership for a founding replica of a new group: written as the
  // bootstrap snapshot if the log store has nothing for the group yet.
  std::optional<raft::ConfState> bootstrap;
  // Called (on the driver thread) after a command with a request id commits
  // its datoms, with what it wrote (tempids, datoms). The host uses it to
  // answer the client that proposed it; it must not call into the replica.
  std::function<void(const std::string& request_id, const TxResult& result)> on_applied;
};

// What applying one request id produced (kept for idempotent retries).
struct ApplyOutcome {
  raft::LogIndex index;  // the entry that applied it
  TxTime t;              // the transaction's t; zero if it failed
  Status status;         // OK or the transactor's error
  // The tempids it resolved (kept with the outcome so a retry can answer them).
  std::map<std::string, EntityId> tempids{};
};

class Replica {
 public:
  // `log_db` holds the node's Raft log (and this replica's applied-index
  // tables); both it and `log_store` must outlive the replica.
  static Result<std::unique_ptr<Replica>> Open(const ReplicaOptions& options, storage::Sqlite* log_db,
                                               RaftLogStore* log_store);
  ~Replica();

  void Tick() { node_->Tick(); }
  Status Step(const raft::Message& m) { return node_->Step(m); }
  // Leader only. Checks the tx-data parses as EDN; returns the entry's index
  // (no promise: see RaftNode::Propose).
  Result<raft::LogIndex> Propose(const ReplicaCommand& command);

  // Linearizable reads: asks Raft for a read index under `request_id`
  // (fresh per request). Once confirmed and applied locally, the id shows up
  // in TakeServableReads() and db() may answer it. Unavailable if no leader
  // is known; a read lost to a leader change never shows up (the host times
  // out and retries).
  Status ReadIndex(uint64_t request_id) { return node_->ReadIndex(request_id); }
  // Read ids whose read index this replica has applied, oldest first.
  std::vector<uint64_t> TakeServableReads();

  using SendFn = std::function<void(std::vector<raft::Message>)>;
  // Processes every pending Ready: persists it (its own RaftLogStore::Save),
  // sends, applies, advances. An error (I/O, a snapshot to install) leaves
  // the replica failed: every later call returns it again.
  Status HandleReady(const SendFn& send);

  // The same in two halves, for group commit across the groups of a node:
  // the host calls TakeReady() on every replica with work, persists all the
  // batches with ONE RaftLogStore::Save (one fsync), then FinishReady() on
  // each (send, apply, advance). Between the two the host must not call
  // Tick/Step/Propose on that replica (the Ready contract).
  std::optional<raft::Ready> TakeReady();
  // REQUIRES: `rd` came from TakeReady() and is durable.
  Status FinishReady(const raft::Ready& rd, const SendFn& send);

  // Observers.
  raft::GroupId group() const { return options_.raft.group; }
  const raft::RaftNode& raft() const { return *node_; }
  raft::RaftNode& mutable_raft() { return *node_; }
  raft::LogIndex applied_index() const { return applied_; }
  TxTime last_t() const { return store_->last_t(); }
  // The current database value (as of the last applied entry).
  std::shared_ptr<const datalog::IndexSource> db() const;
  // The outcome of a request id once applied; nullopt before.
  std::optional<ApplyOutcome> Outcome(const std::string& request_id) const;
  // Every datom in the store's log, in commit order (tests, diagnostics).
  Result<std::vector<Datom>> LogDatoms();

 private:
  Replica() = default;
  Status LoadAppliedState();
  Status Apply(const raft::Entry& e);
  Status ApplyCommand(const raft::Entry& e);
  Status Record(raft::LogIndex index, const std::string& request_id, const ApplyOutcome& outcome);

  ReplicaOptions options_;
  storage::Sqlite* log_db_ = nullptr;
  RaftLogStore* log_store_ = nullptr;
  std::unique_ptr<raft::RaftNode> node_;
  std::unique_ptr<storage::DatomStore> store_;
  std::shared_ptr<const storage::CurrentIndex> index_;
  std::shared_ptr<const Schema> schema_;

  raft::LogIndex applied_;     // recorded applied index
  TxTime recorded_t_;          // last_t recorded with applied_
  bool commit_unrecorded_ = false;  // see the header comment (crash gap)
  std::unordered_map<std::string, ApplyOutcome> outcomes_;
  std::vector<raft::ReadState> pending_reads_;  // confirmed, not yet applied locally
  std::vector<uint64_t> servable_reads_;
  Status failed_;
  storage::SqliteStatement upsert_applied_, insert_request_;
};

}  // namespace cairn::shard
