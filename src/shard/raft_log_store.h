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
// SaveSnapshot() records a snapshot the application took itself (after
// RaftNode::Compact) without touching the log: entries at or below a
// snapshot's index may linger until the next Save drops them, and Load()
// skips them.
//
// Thread-safety: none; one owner thread (the node's storage thread).
#pragma once

#include <memory>
#include <vector>

#include "cairn/status.h"
#include "raft/raft_node.h"
#include "storage/sqlite.h"

namespace cairn::shard {

class RaftLogStore {
 public:
  // Creates the tables if needed. `db` must outlive the store.
  static Result<std::unique_ptr<RaftLogStore>> Open(storage::Sqlite* db);

  // What a replica of `group` restores at start: hard state, the latest
  // snapshot and the entries after it. Corruption if the stored log has a gap
  // or does not start right after the snapshot.
  Result<raft::RestoredState> Load(raft::GroupId group);

  struct GroupWrite {
    raft::GroupId group;
    const raft::Ready* ready;
  };
  // Persists every group's Ready in one transaction (one fsync).
  Status Save(const std::vector<GroupWrite>& writes);

  // Durably records `snapshot` (meta and data) as the group's latest, in its
  // own transaction; the entries stay (the next Ready's compacted_through
  // drops the old ones). Call it right after RaftNode::Compact and before the
  // next Save, so the log never loses entries the stored snapshot does not
  // cover.
  Status SaveSnapshot(raft::GroupId group, const raft::Snapshot& snapshot);

  // Groups with any stored state, ascending.
  Result<std::vector<raft::GroupId>> Groups();

 private:
  explicit RaftLogStore(storage::Sqlite* db) : db_(db) {}
  Status SaveOne(raft::GroupId group, const raft::Ready& ready);

  storage::Sqlite* db_;
  storage::SqliteStatement insert_entry_, delete_from_, delete_through_, upsert_hard_state_, upsert_snapshot_,
      delete_all_;
};

}  // namespace cairn::shard
