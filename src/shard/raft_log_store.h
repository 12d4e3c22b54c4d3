// RaftLogStore: the durable Raft state of the groups a node hosts, in SQLite.
//
// Tables (created if missing, in the connection it is given, so a shard's log
// can live in the same file as its datoms — ARCHITECTURE §5):
//   raft_hard_state(grp PK, term, vote, commit_index)
//   raft_entries(grp, idx, term, type, data, PK(grp, idx)) WITHOUT ROWID
//   raft_snapshot(grp PK, idx, term, voters, learners, data)
//
// Save() writes the snapshot, entries and hard state of MANY groups' Ready
// batches in ONE SQLite transaction, so one fsync serves every group on the
// node (group commit). It follows the Ready contract of raft/raft_node.h: a
// snapshot replaces the group's log; entries overwrite the log from their
// first index on; the hard state replaces the old one; then entries up to
// compacted_through are dropped. Durability depends on the connection's
// `PRAGMA synchronous` (FULL for real nodes).
//
// SaveSnapshotFile() records a snapshot the application took itself (after
// RaftNode::Compact): its meta in raft_snapshot and its bytes in a file of
// their own in the store's snapshot directory (the row names the file), so
// the node's Save() never writes a whole shard into raft.db. Entries at or
// below a snapshot's index may linger: Load() skips them, and Save() drops
// the compacted ones a few thousand per call (a compaction of 100,000 entries
// would otherwise be one long DELETE in a single round).
//
// A snapshot received from a leader arrives in a Ready and is saved with it:
// its row names the file the replica wrote (GroupWrite::snapshot_file), or
// holds the bytes when there is none.
//
// Thread-safety: none; one owner thread (the node's storage thread).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/status.h"
#include "raft/raft_node.h"
#include "storage/sqlite.h"

namespace cairn::shard {

class RaftLogStore {
 public:
  // Creates the tables if needed. `db` must outlive the store. Snapshot
  // files live in `snapshot_dir` (default: the directory of db's file).
  static Result<std::unique_ptr<RaftLogStore>> Open(storage::Sqlite* db, std::string snapshot_dir = {});

  // What a replica of `group` restores at start: hard state, the latest
  // snapshot and the entries after it. A snapshot whose bytes are in a file
  // comes back without them (data == nullptr; SnapshotPath(SnapshotFile(
  // group)) holds them). Corruption if the stored log has a gap or does not
  // start right after the snapshot, or if the snapshot's file is missing.
  Result<raft::RestoredState> Load(raft::GroupId group);

  struct GroupWrite {
    raft::GroupId group;
    const raft::Ready* ready;
    // The file in the snapshot directory already holding ready->snapshot's
    // bytes (written and synced by the caller); empty: store them in the row.
    std::string snapshot_file = {};
  };
  // Persists every group's Ready in one transaction (one fsync).
  Status Save(const std::vector<GroupWrite>& writes);

  // Durably records `meta` as the group's latest snapshot, whose bytes are
  // the file SnapshotPath(file) (written and synced by the caller), in its
  // own transaction; the entries stay (the next Ready's compacted_through
  // drops the old ones). Call it right after RaftNode::Compact and before the
  // next Save, so the log never loses entries the stored snapshot does not
  // cover. The file the row named before is the caller's to remove.
  Status SaveSnapshotFile(raft::GroupId group, const raft::SnapshotMeta& meta, const std::string& file);
  // The file name the group's snapshot row refers to; empty if none (no
  // snapshot, or one saved with its bytes in the row).
  Result<std::string> SnapshotFile(raft::GroupId group);
  // Where a snapshot file named `file` lives.
  std::string SnapshotPath(const std::string& file) const { return snapshot_dir_ + "/" + file; }
  const std::string& snapshot_dir() const { return snapshot_dir_; }
  // Compacted entries dropped per Save() (tests lower it).
  void set_drop_batch(uint64_t n) { drop_batch_ = n; }

  // Groups with any stored state, ascending.
  Result<std::vector<raft::GroupId>> Groups();

 private:
  explicit RaftLogStore(storage::Sqlite* db) : db_(db) {}
  Status SaveOne(raft::GroupId group, const raft::Ready& ready, const std::string& snapshot_file);
  // Writes the group's raft_snapshot row.
  Status UpsertSnapshot(raft::GroupId group, const raft::SnapshotMeta& meta, std::string_view data,
                        std::string_view file);
  // Drops up to drop_batch_ compacted entries of each group that has some.
  Status DropCompacted();

  storage::Sqlite* db_;
  std::string snapshot_dir_;
  storage::SqliteStatement insert_entry_, delete_from_, delete_through_, upsert_hard_state_, upsert_snapshot_,
      delete_all_, first_index_;
  // Group -> the index through which its entries are to be dropped.
  std::map<uint64_t, uint64_t> drop_through_;
  uint64_t drop_batch_ = 4096;
};

}  // namespace cairn::shard
