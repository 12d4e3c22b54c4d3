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
//  - t = max(command.proposed_t, last applied t + 1, closed_t + 1): the
//    leader's clock reading travels in the entry and the bump depends only on
//    replicated state; :db/txInstant is t's physical part. No local clock is
//    read.
//  - a close(T) command (ReplicaCommand::Close) sets the stored closed time
//    to max(closed_t, T), durable with the applied index. Since t strictly
//    increases, once this replica applied up to index i, every transaction
//    with t <= closed_t() that will ever commit on the shard is applied
//    here already (closed_t() below).
//  - entity ids come from the DatomStore's per-partition counters (replicated
//    state), advanced in the same SQLite transaction as the datoms.
//  - a request id already applied is skipped (its first outcome is kept), so
//    a client retry never applies twice; a transaction the transactor refuses
//    is recorded as failed and writes nothing, on every replica alike.
//
// Applied state (ARCHITECTURE §5): the replica's datom file also holds
// replica_state (format, group, applied index) and replica_outcomes (request
// outcomes). All the committed entries of one Ready are applied in ONE
// DatomStore::Transaction: their datoms, their outcomes and "applied up to
// index i" are written together, so the file's applied index and its datoms
// always agree and nothing is applied twice or lost. With
// commit_interval_ms > 0 (NodeHost's default) that transaction is kept open
// across batches and committed every few milliseconds (etcd commits its
// backend the same way): the Raft log, fsynced before anything is applied,
// is the durable record, and after a crash the replica reopens at the
// file's applied index and Raft hands it every later committed entry again,
// which applies deterministically to the same datoms, t and outcomes.
// Snapshots commit first, so the log is never compacted past what the file
// holds. A file with datoms but no replica_state (an older build, or not a
// replica's file) is refused (Corruption), never silently replayed onto.
//
// Indexes and views: the replica keeps the embedded store's two memory
// indexes — the current index and the history index (every assertion and
// retraction with its t) — built from the datom file at open (and after a
// snapshot install or a failed batch, by the same LoadState) and both
// updated by every applied transaction, in place when no published value
// holds them. db() is a shard::StoreSource, the same view code the embedded
// Database uses, so current, as-of(T), since(T) and history reads of a
// replica answer exactly what the embedded store answers for the same
// transactions.
//
// Request outcomes (idempotence) are kept for `outcome_window_entries` log
// entries: an outcome recorded at index i deduplicates a retry applied at
// index k only while k - i < window, and rows with i <= applied - window are
// deleted at the end of every applied batch. The rule depends only on log
// indexes, so every replica deduplicates and prunes identically. An outcome
// keeps the transaction's t, its error and its tempids.
//
// Ownership guard: with ReplicaOptions::owns_partition set, a transaction
// that writes an entity (other than the tx entity and the system partition 0)
// in a partition the shard does not own fails with WrongShard, recorded as
// its outcome, and writes nothing — on every replica alike. The same
// function goes to the Transactor (TransactorOptions::owns_partition): a ref
// VALUE naming an entity in a partition another shard owns (a cross-shard
// ref the coordinator resolved) is accepted without a local existence check.
//
// Snapshots: every `snapshot_entries` applied entries, or once the entries
// applied since the last snapshot carry `snapshot_bytes` of commands, the
// replica copies its datom file (VACUUM INTO; a consistent copy of what the
// file committed, which includes its applied index and the outcomes), calls
// RaftNode::Compact at the copy's applied index (which truncates the log and
// sends the snapshot in chunks, read from its file, to a follower that fell
// behind the truncation), and records the snapshot file in the RaftLogStore
// so it survives a restart. A snapshot received from the leader is written,
// chunk by chunk as it arrives (raft::Config::write_snapshot_chunk), to an
// incoming file next to the snapshot files. When its last chunk is in,
// TakeReady(), BEFORE the host persists the Ready, syncs it and renames it to
// the snapshot file the log store's row will name, copies that to a temp
// file next to the datom file and validates the copy (a Cairn datom file of
// this group whose applied index is the snapshot's index); a bad one fails
// the replica with Corruption and changes nothing the log store or the datom
// file hold. In FinishReady() the temp file is renamed over the datom file
// and the state is reloaded. A restart between the two installs the snapshot
// the log store kept.
//
// Snapshots taken here are files of their own (RaftLogStore::SaveSnapshotFile)
// copied by VACUUM INTO through a second connection, on a thread of their own
// with snapshot_in_background. Neither side of a transfer holds a snapshot's
// bytes in memory: the leader's core reads each chunk from the file
// (raft::Config::read_snapshot_chunk), the follower's writes each chunk out.
//
// Not yet: membership changes beyond the founding configuration (conf change
// entries are passed to Raft's own bookkeeping only).
//
// Thread-safety: none; one owner thread drives it. db() values are immutable
// and may be read from any thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <deque>
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

class AttrStatsCache;  // shard/store_source.h

struct ReplicaOptions {
  raft::Config raft;  // id, group, timing, seed
  std::string datoms_path;
  storage::StoreOptions store;
  // Membership for a founding replica of a new group: written as the
  // bootstrap snapshot if the log store has nothing for the group yet.
  std::optional<raft::ConfState> bootstrap;
  // Take a snapshot (and compact the log) every this many applied entries;
  // 0 = never.
  uint64_t snapshot_entries = 10000;
  // ... or once the commands applied since the last snapshot (counted from
  // this process's start) hold this many bytes: the in-memory Raft log keeps
  // every entry since the last snapshot, and large transactions would
  // otherwise make it grow far past what the entry count suggests.
  uint64_t snapshot_bytes = uint64_t{64} << 20;
  // Copy the datom file for a snapshot on a thread of its own while the
  // owner thread goes on applying (the copy of a large shard takes seconds;
  // a node's driver must not stall that long). The snapshot is recorded by
  // the first FinishReady() after the copy is done. A snapshot received from
  // the leader is likewise synced, copied, validated and read on a thread of
  // its own before TakeReady() hands out its Ready. false: all of it inline
  // (tests).
  bool snapshot_in_background = false;
  // A copy that failed (a full disk, an I/O error) leaves the replica
  // running with its log uncompacted (snapshot_error() says why); the next
  // attempt waits this long.
  int snapshot_retry_ms = 10000;
  // Tests: called on the thread that prepares a received snapshot's install
  // (snapshot_in_background), after the work, before it says it is done.
  std::function<void()> install_job_hook;
  // Deferred commits of the datom file (see "Applied state" above): a
  // batch's SQLite transaction stays open and is committed once this many
  // ms passed since the last commit (checked after each batch and by
  // MaybeFlush) or `commit_entries` entries are uncommitted, before a
  // snapshot, and at close. 0 = commit every batch (durable with it).
  int commit_interval_ms = 0;
  uint64_t commit_entries = 5000;
  // A request outcome deduplicates retries for this many log entries after
  // the entry that applied it (see the header comment). Must be > 0.
  uint64_t outcome_window_entries = 100000;
  // Which user partitions this shard owns; null = all. Must be deterministic
  // and identical on every replica of the group.
  std::function<bool(uint32_t partition)> owns_partition;
  // Called (on the owner thread) after a command with a request id applied
  // its datoms (at the end of its batch; with commit_interval_ms > 0 before
  // the datom file commits them — the entry is committed in Raft already),
  // with what it wrote (tempids, datoms). The host uses it to
  // answer the client that proposed it; it must not call into the replica.
  std::function<void(const std::string& request_id, const TxResult& result)> on_applied;
};

// What applying one request id produced (kept for idempotent retries).
struct ApplyOutcome {
  raft::LogIndex index;                     // the entry that applied it
  TxTime t;                                 // the transaction's t; zero if it failed
  Status status;                            // OK or the transactor's error
  std::map<std::string, EntityId> tempids;  // tempid -> entity, if it applied
};

class Replica {
 public:
  // `log_db` holds the node's Raft log (`log_store`); both must outlive the
  // replica. The applied state lives in options.datoms_path.
  static Result<std::unique_ptr<Replica>> Open(const ReplicaOptions& options, storage::Sqlite* log_db,
                                               RaftLogStore* log_store);
  ~Replica();

  // A failed replica ignores ticks and refuses messages (its Raft core may be
  // stuck between GetReady and Advance).
  void Tick() {
    if (failed_.ok()) node_->Tick();
  }
  Status Step(const raft::Message& m) { return failed_.ok() ? node_->Step(m) : failed_; }
  // Leader only. Checks the tx-data parses as EDN; returns the entry's index
  // (no promise: see RaftNode::Propose).
  Result<raft::LogIndex> Propose(const ReplicaCommand& command);

  // Linearizable reads: asks Raft for a read index under `request_id`
  // (fresh per request). Once confirmed and applied locally, the id shows up
  // in TakeServableReads() and db() may answer it. Unavailable if no leader
  // is known; a read lost to a leader change never shows up (the host times
  // out and retries).
  Status ReadIndex(uint64_t request_id) { return failed_.ok() ? node_->ReadIndex(request_id) : failed_; }
  // Read ids whose read index this replica has applied, oldest first.
  std::vector<uint64_t> TakeServableReads();

  using SendFn = std::function<void(std::vector<raft::Message>)>;
  // Processes every pending Ready: persists it (its own RaftLogStore::Save),
  // sends, applies, advances. An error (I/O, a corrupt snapshot) leaves the
  // replica failed: every later call returns it again (see error()).
  Status HandleReady(const SendFn& send);

  // The same in two halves, for group commit across the groups of a node:
  // the host calls TakeReady() on every replica with work, persists all the
  // batches with ONE RaftLogStore::Save (one fsync), then FinishReady() on
  // each (send, apply, advance). Between the two the host must not call
  // Tick/Step/Propose on that replica (the Ready contract).
  // A Ready carrying a snapshot is validated here, before it is persisted,
  // and its bytes written to a snapshot file: the host passes
  // prepared_snapshot_file() with the Ready to RaftLogStore::Save (GroupWrite::
  // snapshot_file). A bad snapshot fails the replica and returns nullopt.
  std::optional<raft::Ready> TakeReady();
  std::string prepared_snapshot_file() const;
  // REQUIRES: `rd` came from TakeReady() and is durable.
  Status FinishReady(const raft::Ready& rd, const SendFn& send);

  // Commits the datom file's open transaction (commit_interval_ms > 0):
  // everything applied so far becomes durable in the file. An error fails
  // the replica (its memory state is ahead of the file; a restart replays
  // the log). MaybeFlush does it only if commit_interval_ms passed since
  // the last commit or commit_entries are uncommitted; it runs after every
  // batch, and the host calls it every tick.
  Status Flush();
  Status MaybeFlush();
  // Log entries applied but not yet committed to the datom file.
  uint64_t unflushed_entries() const { return unflushed_entries_; }

  // Observers.
  raft::GroupId group() const { return options_.raft.group; }
  const raft::RaftNode& raft() const { return *node_; }
  raft::RaftNode& mutable_raft() { return *node_; }
  raft::LogIndex applied_index() const { return applied_; }
  TxTime last_t() const { return store_->last_t(); }
  // The shard's closed time as of this replica's applied index:
  // max(last close(T) applied, last_t()). No transaction with t <= closed_t()
  // can still commit on the shard without being applied here already.
  TxTime closed_t() const { return std::max(closed_t_, last_t()); }
  // OK, or why the replica stopped.
  const Status& error() const { return failed_; }
  // Snapshots taken by this replica (Compact calls) and installed from a
  // leader, since it was opened.
  uint64_t snapshots_taken() const { return snapshots_taken_; }
  uint64_t snapshots_installed() const { return snapshots_installed_; }
  // Why the last snapshot copy failed; OK once one succeeds again.
  const Status& snapshot_error() const { return snapshot_error_; }
  // The current database value (as of the last applied entry): a
  // shard::StoreSource whose View() (or shard::ViewOf) gives its as-of,
  // since and history views, exactly as the embedded Database defines them.
  // Without history (with_history = false) the value offers only the
  // current view, and holding it does not pin the history index, so the
  // next applies update that index in place instead of copying what they
  // touch (NodeHost's StaleRead values are such).
  std::shared_ptr<const datalog::IndexSource> db(bool with_history = true) const;
  // The schema as of the last applied entry (a new object after every
  // schema change, so comparing pointers tells whether it changed).
  const std::shared_ptr<const Schema>& schema() const { return schema_; }
  // The outcome of a request id once applied (nullopt before, and after it
  // left the outcome window).
  std::optional<ApplyOutcome> Outcome(const std::string& request_id) const;
  // Every datom in the store's log, in commit order (tests, diagnostics).
  Result<std::vector<Datom>> LogDatoms();

 private:
  struct Statements;
  Replica();
  struct Loaded;
  // Reads everything but the store itself from a datom file open as `store`
  // (any thread): the applied index, the outcomes, the memory indexes and
  // the schema.
  static Result<std::unique_ptr<Loaded>> ReadLoaded(storage::DatomStore& store, const std::string& path,
                                                    uint64_t group);
  // (Re)opens the datom file and loads everything from it, or takes
  // `loaded`, read from the same bytes before (an install prepared in the
  // background).
  Status LoadState(std::unique_ptr<Loaded> loaded = nullptr);
  Status ApplyBatch(const std::vector<raft::Entry>& entries);
  Status ApplyCommand(const raft::Entry& e);
  Status RecordOutcome(const std::string& request_id, ApplyOutcome outcome);
  struct TakenSnapshot;
  template <typename R>
  class BackgroundJob;
  // Starts a snapshot when one is due, or records the one copied in the
  // background once it is done.
  Status MaybeSnapshot();
  // Copies the committed state of the datom file into a snapshot file in
  // the log store's directory, through a connection of its own (any thread).
  static TakenSnapshot CopySnapshot(const std::string& datoms_path, raft::GroupId group, const RaftLogStore& log_store);
  // Compacts the Raft log to a copied snapshot and records it durably.
  Status RecordSnapshot(TakenSnapshot taken);
  // Joins a background copy, discarding its result.
  void WaitForSnapshotJob();
  // Removes the file of a copy that is not recorded (unless it is the
  // recorded one).
  void DiscardCopy(const TakenSnapshot& taken);
  // Whether the recorded snapshot file is the one of the snapshot at `index`.
  bool RecordedFileHolds(raft::LogIndex index) const;
  // A chunk of the recorded snapshot at `meta`, read from its file; its
  // size, or nullopt (raft::Config::read_snapshot_chunk).
  std::optional<uint64_t> ReadSnapshotChunk(const raft::SnapshotMeta& meta, uint64_t offset, uint64_t max_len,
                                            std::string* out) const;
  // Writes a chunk of a snapshot received from the leader to the incoming
  // file (raft::Config::write_snapshot_chunk).
  bool WriteSnapshotChunk(const raft::SnapshotMeta& meta, uint64_t offset, std::string_view data);
  void CloseIncoming();
  std::string IncomingPath() const;
  // Puts the snapshot's bytes in its snapshot file: received, the incoming
  // file renamed; from an old log store's row, `snap.data`; after a crash,
  // the recorded file, already there.
  Status StageSnapshotFile(const raft::Snapshot& snap);
  // Syncs that file, copies it to `install_path` and validates the copy (a
  // datom file of `group` applied up to `index`); with `load`, also reads
  // it for LoadState. Any thread.
  static Result<std::unique_ptr<Loaded>> ValidateInstall(const std::string& file_path,
                                                         const std::string& install_path, storage::StoreOptions so,
                                                         raft::GroupId group, raft::LogIndex index, bool load);
  // Removes what a refused or outdated install left and says why it failed.
  Status FailedInstall(const raft::SnapshotMeta& meta, const Status& why);
  // Forgets any prepared install, then StageSnapshotFile (FailedInstall's
  // error if that fails).
  Status BeginInstall(const raft::Snapshot& snap);
  // BeginInstall, then ValidateInstall, on the owner thread.
  Status PrepareInstall(const raft::Snapshot& snap);
  // Replaces the datom file with the prepared temp file and reloads.
  Status InstallPrepared(raft::LogIndex index);
  struct InstallJob;
  // With snapshot_in_background: prepares the install of the snapshot the
  // core received (RaftNode::pending_install) on a thread of its own before
  // its Ready is taken. False while that runs (the Ready waits; Step and
  // Tick go on), true once the Ready may be taken.
  bool InstallPreparedAhead();
  // Joins a background install, removing its files if it is not taken.
  void DiscardInstallJob();
  std::string InstallPath() const { return options_.datoms_path + ".install"; }

  ReplicaOptions options_;
  storage::Sqlite* log_db_ = nullptr;
  RaftLogStore* log_store_ = nullptr;
  std::unique_ptr<raft::RaftNode> node_;
  std::unique_ptr<storage::DatomStore> store_;
  std::unique_ptr<Statements> stmts_;  // on store_'s connection; reset before it
  std::shared_ptr<const storage::CurrentIndex> index_;
  // Planner statistics shared by every db() of the current state (db()).
  mutable std::shared_ptr<AttrStatsCache> stats_;
  mutable TxTime stats_t_;
  mutable const void* stats_index_ = nullptr;
  std::shared_ptr<const storage::HistoryIndex> history_;  // every assertion and retraction
  std::shared_ptr<const Schema> schema_;

  raft::LogIndex applied_;  // durable in the datom file
  TxTime closed_t_;         // the largest close(T) applied; durable with applied_
  bool closed_dirty_ = false;  // closed_t_ moved in the batch being applied
  std::unordered_map<std::string, ApplyOutcome> outcomes_;
  std::deque<std::pair<raft::LogIndex, std::string>> outcome_order_;  // by index, for pruning
  raft::LogIndex prepared_install_;             // index of the validated snapshot in InstallPath(), or zero
  // The snapshot being received from the leader, written to IncomingPath()
  // chunk by chunk as it arrives.
  struct Incoming {
    int fd = -1;
    raft::SnapshotMeta meta;
    uint64_t bytes = 0;  // written in order from offset 0
  } incoming_;
  std::vector<raft::ReadState> pending_reads_;  // confirmed, not yet applied locally
  std::vector<uint64_t> servable_reads_;
  // on_applied calls of the batch being applied, made once it is applied.
  std::vector<std::pair<std::string, TxResult>> applied_results_;
  // History entries of the batch being applied, added to history_ at its end.
  std::vector<storage::IndexEntry> batch_history_;
  // Deferred commits: entries applied since the last commit of the datom
  // file, and when that commit was.
  uint64_t unflushed_entries_ = 0;
  uint64_t bytes_since_snapshot_ = 0;  // command bytes applied since the last snapshot
  std::chrono::steady_clock::time_point last_flush_ = std::chrono::steady_clock::now();
  uint64_t snapshots_taken_ = 0, snapshots_installed_ = 0;
  std::unique_ptr<BackgroundJob<TakenSnapshot>> job_;  // a snapshot copied in the background
  std::unique_ptr<InstallJob> install_job_;  // a received snapshot prepared in the background
  std::unique_ptr<Loaded> prepared_loaded_;  // what it read, for InstallPrepared
  std::string snapshot_file_;         // the file of the recorded snapshot; empty if its bytes are in the row
  Status snapshot_error_;             // the last copy's or transfer's failure, until one succeeds
  std::chrono::steady_clock::time_point snapshot_retry_at_;  // no copy before this after a failure
  Status failed_;
};

}  // namespace cairn::shard
