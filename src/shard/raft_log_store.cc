#include "shard/raft_log_store.h"

#include <filesystem>
#include <string>

namespace cairn::shard {

namespace {

std::string EncodeIds(const std::vector<raft::NodeId>& ids) {
  std::string s;
  for (auto id : ids) {
    if (!s.empty()) s += ',';
    s += std::to_string(id.value());
  }
  return s;
}

Result<std::vector<raft::NodeId>> DecodeIds(std::string_view text) {
  std::vector<raft::NodeId> ids;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    std::string part(text.substr(pos, comma - pos));
    char* end = nullptr;
    uint64_t v = std::strtoull(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0') return Status::Corruption("bad node id list '" + std::string(text) + "'");
    ids.emplace_back(v);
    pos = comma + 1;
  }
  return ids;
}

}  // namespace

Result<std::unique_ptr<RaftLogStore>> RaftLogStore::Open(storage::Sqlite* db, std::string snapshot_dir) {
  CAIRN_RETURN_IF_ERROR(db->Exec(R"(
    CREATE TABLE IF NOT EXISTS raft_hard_state(
      grp INTEGER PRIMARY KEY, term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS raft_entries(
      grp INTEGER NOT NULL, idx INTEGER NOT NULL, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB NOT NULL,
      PRIMARY KEY(grp, idx)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS raft_snapshot(
      grp INTEGER PRIMARY KEY, idx INTEGER NOT NULL, term INTEGER NOT NULL,
      voters TEXT NOT NULL, learners TEXT NOT NULL, data BLOB NOT NULL, file TEXT NOT NULL DEFAULT '');
  )"));
  // A log written before snapshots had files of their own.
  CAIRN_ASSIGN_OR_RETURN(int64_t has_file,
                         db->QueryInt("SELECT count(*) FROM pragma_table_info('raft_snapshot') WHERE name = 'file'"));
  if (has_file == 0) {
    CAIRN_RETURN_IF_ERROR(db->Exec("ALTER TABLE raft_snapshot ADD COLUMN file TEXT NOT NULL DEFAULT ''"));
  }
  std::unique_ptr<RaftLogStore> store(new RaftLogStore(db));
  if (snapshot_dir.empty()) {
    snapshot_dir = std::filesystem::path(db->path()).parent_path().string();
    if (snapshot_dir.empty()) snapshot_dir = ".";
  }
  store->snapshot_dir_ = std::move(snapshot_dir);
  CAIRN_ASSIGN_OR_RETURN(store->insert_entry_,
                         db->Prepare("INSERT INTO raft_entries(grp, idx, term, type, data) VALUES(?1, ?2, ?3, ?4, ?5)"));
  CAIRN_ASSIGN_OR_RETURN(store->delete_from_, db->Prepare("DELETE FROM raft_entries WHERE grp = ?1 AND idx >= ?2"));
  CAIRN_ASSIGN_OR_RETURN(store->delete_through_,
                         db->Prepare("DELETE FROM raft_entries WHERE grp = ?1 AND idx <= ?2"));
  CAIRN_ASSIGN_OR_RETURN(store->delete_all_, db->Prepare("DELETE FROM raft_entries WHERE grp = ?1"));
  CAIRN_ASSIGN_OR_RETURN(store->upsert_hard_state_,
                         db->Prepare("INSERT OR REPLACE INTO raft_hard_state(grp, term, vote, commit_index) "
                                     "VALUES(?1, ?2, ?3, ?4)"));
  CAIRN_ASSIGN_OR_RETURN(
      store->upsert_snapshot_,
      db->Prepare("INSERT OR REPLACE INTO raft_snapshot(grp, idx, term, voters, learners, data, file) "
                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  CAIRN_ASSIGN_OR_RETURN(store->first_index_, db->Prepare("SELECT min(idx) FROM raft_entries WHERE grp = ?1"));
  return store;
}

Result<raft::RestoredState> RaftLogStore::Load(raft::GroupId group) {
  raft::RestoredState state;
  const auto g = static_cast<int64_t>(group.value());
  {
    CAIRN_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT term, vote, commit_index FROM raft_hard_state WHERE grp = ?1"));
    st.BindInt(1, g);
    CAIRN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) {
      state.hard_state.term = raft::Term(static_cast<uint64_t>(st.ColumnInt(0)));
      state.hard_state.vote = raft::NodeId(static_cast<uint64_t>(st.ColumnInt(1)));
      state.hard_state.commit = raft::LogIndex(static_cast<uint64_t>(st.ColumnInt(2)));
    }
  }
  {
    CAIRN_ASSIGN_OR_RETURN(
        auto st, db_->Prepare("SELECT idx, term, voters, learners, data, file FROM raft_snapshot WHERE grp = ?1"));
    st.BindInt(1, g);
    CAIRN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (row) {
      raft::Snapshot snap;
      snap.meta.index = raft::LogIndex(static_cast<uint64_t>(st.ColumnInt(0)));
      snap.meta.term = raft::Term(static_cast<uint64_t>(st.ColumnInt(1)));
      CAIRN_ASSIGN_OR_RETURN(snap.meta.conf.voters, DecodeIds(st.ColumnText(2)));
      CAIRN_ASSIGN_OR_RETURN(snap.meta.conf.learners, DecodeIds(st.ColumnText(3)));
      std::string file(st.ColumnText(5));
      if (file.empty()) {
        snap.data = std::make_shared<const std::string>(st.ColumnBlob(4));
      } else {
        // The bytes stay in their file (a whole shard: not read at every
        // start); the caller reads SnapshotPath(file) if it needs them.
        const std::string path = SnapshotPath(file);
        std::error_code ec;
        if (!std::filesystem::is_regular_file(path, ec)) {
          return Status::Corruption("the snapshot of group " + std::to_string(group.value()) + " at index " +
                                    std::to_string(snap.meta.index.value()) + " is the file " + path +
                                    ", which is missing");
        }
      }
      state.snapshot = std::move(snap);
    }
  }
  CAIRN_ASSIGN_OR_RETURN(auto st,
                         db_->Prepare("SELECT idx, term, type, data FROM raft_entries WHERE grp = ?1 ORDER BY idx"));
  st.BindInt(1, g);
  uint64_t expected = state.snapshot ? state.snapshot->meta.index.value() + 1 : 0;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    raft::Entry e;
    e.index = raft::LogIndex(static_cast<uint64_t>(st.ColumnInt(0)));
    e.term = raft::Term(static_cast<uint64_t>(st.ColumnInt(1)));
    int64_t type = st.ColumnInt(2);
    if (type < 0 || type > 2) {
      return Status::Corruption("raft log of group " + std::to_string(group.value()) + " has an entry of unknown type " +
                                std::to_string(type) + " at index " + std::to_string(e.index.value()));
    }
    e.type = static_cast<raft::EntryType>(type);
    e.data.assign(st.ColumnBlob(3));
    // Covered by the snapshot (SaveSnapshotFile keeps them; Save drops them a few thousand at a time).
    if (state.snapshot && e.index <= state.snapshot->meta.index) continue;
    if (expected != 0 && e.index.value() != expected) {
      return Status::Corruption("raft log of group " + std::to_string(group.value()) + " expected index " +
                                std::to_string(expected) + " but found " + std::to_string(e.index.value()));
    }
    expected = e.index.value() + 1;
    state.entries.push_back(std::move(e));
  }
  return state;
}

Status RaftLogStore::SaveSnapshotFile(raft::GroupId group, const raft::SnapshotMeta& meta, const std::string& file) {
  storage::SqliteTransaction tx(*db_);
  CAIRN_RETURN_IF_ERROR(tx.Begin());
  CAIRN_RETURN_IF_ERROR(UpsertSnapshot(group, meta, std::string_view(), file)
                            .WithContext("saving the snapshot of group " + std::to_string(group.value())));
  return tx.Commit();
}

Status RaftLogStore::UpsertSnapshot(raft::GroupId group, const raft::SnapshotMeta& meta, std::string_view data,
                                    std::string_view file) {
  upsert_snapshot_.BindInt(1, static_cast<int64_t>(group.value()));
  upsert_snapshot_.BindInt(2, static_cast<int64_t>(meta.index.value()));
  upsert_snapshot_.BindInt(3, static_cast<int64_t>(meta.term.value()));
  upsert_snapshot_.BindText(4, EncodeIds(meta.conf.voters));
  upsert_snapshot_.BindText(5, EncodeIds(meta.conf.learners));
  upsert_snapshot_.BindBlob(6, data);
  upsert_snapshot_.BindText(7, file);
  return upsert_snapshot_.Run();
}

Result<std::string> RaftLogStore::SnapshotFile(raft::GroupId group) {
  CAIRN_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT file FROM raft_snapshot WHERE grp = ?1"));
  st.BindInt(1, static_cast<int64_t>(group.value()));
  CAIRN_ASSIGN_OR_RETURN(bool row, st.Step());
  return row ? std::string(st.ColumnText(0)) : std::string();
}

Status RaftLogStore::SaveOne(raft::GroupId group, const raft::Ready& ready, const std::string& snapshot_file) {
  const auto g = static_cast<int64_t>(group.value());
  if (ready.snapshot) {
    // The bytes go in the row only when no file holds them.
    const bool in_row = snapshot_file.empty() && ready.snapshot->data;
    CAIRN_RETURN_IF_ERROR(UpsertSnapshot(group, ready.snapshot->meta,
                                         in_row ? std::string_view(*ready.snapshot->data) : std::string_view(),
                                         snapshot_file));
    delete_all_.BindInt(1, g);
    CAIRN_RETURN_IF_ERROR(delete_all_.Run());
    drop_through_.erase(group.value());
  }
  if (!ready.entries.empty()) {
    delete_from_.BindInt(1, g);
    delete_from_.BindInt(2, static_cast<int64_t>(ready.entries.front().index.value()));
    CAIRN_RETURN_IF_ERROR(delete_from_.Run());
    for (const auto& e : ready.entries) {
      insert_entry_.BindInt(1, g);
      insert_entry_.BindInt(2, static_cast<int64_t>(e.index.value()));
      insert_entry_.BindInt(3, static_cast<int64_t>(e.term.value()));
      insert_entry_.BindInt(4, static_cast<int64_t>(e.type));
      insert_entry_.BindBlob(5, e.data);
      CAIRN_RETURN_IF_ERROR(insert_entry_.Run());
    }
  }
  if (ready.hard_state) {
    upsert_hard_state_.BindInt(1, g);
    upsert_hard_state_.BindInt(2, static_cast<int64_t>(ready.hard_state->term.value()));
    upsert_hard_state_.BindInt(3, static_cast<int64_t>(ready.hard_state->vote.value()));
    upsert_hard_state_.BindInt(4, static_cast<int64_t>(ready.hard_state->commit.value()));
    CAIRN_RETURN_IF_ERROR(upsert_hard_state_.Run());
  }
  if (!ready.compacted_through.IsZero()) {
    uint64_t& through = drop_through_[group.value()];
    through = std::max(through, ready.compacted_through.value());
  }
  return Status::OK();
}

Status RaftLogStore::DropCompacted() {
  for (auto it = drop_through_.begin(); it != drop_through_.end();) {
    const auto g = static_cast<int64_t>(it->first);
    first_index_.BindInt(1, g);
    CAIRN_ASSIGN_OR_RETURN(bool row, first_index_.Step());
    const bool none = !row || first_index_.ColumnIsNull(0);
    const uint64_t first = none ? 0 : static_cast<uint64_t>(first_index_.ColumnInt(0));
    first_index_.Reset();
    if (none || first > it->second) {
      it = drop_through_.erase(it);
      continue;
    }
    const uint64_t upto = std::min(it->second, first + drop_batch_ - 1);
    delete_through_.BindInt(1, g);
    delete_through_.BindInt(2, static_cast<int64_t>(upto));
    CAIRN_RETURN_IF_ERROR(delete_through_.Run());
    if (upto == it->second)
      it = drop_through_.erase(it);
    else
      ++it;
  }
  return Status::OK();
}

Status RaftLogStore::Save(const std::vector<GroupWrite>& writes) {
  storage::SqliteTransaction tx(*db_);
  CAIRN_RETURN_IF_ERROR(tx.Begin());
  for (const auto& w : writes)
    CAIRN_RETURN_IF_ERROR(SaveOne(w.group, *w.ready, w.snapshot_file)
                              .WithContext("saving raft state of group " + std::to_string(w.group.value())));
  CAIRN_RETURN_IF_ERROR(DropCompacted().WithContext("dropping compacted raft entries"));
  return tx.Commit();
}

Result<std::vector<raft::GroupId>> RaftLogStore::Groups() {
  CAIRN_ASSIGN_OR_RETURN(auto st, db_->Prepare("SELECT grp FROM raft_hard_state UNION SELECT grp FROM raft_entries "
                                               "UNION SELECT grp FROM raft_snapshot ORDER BY 1"));
  std::vector<raft::GroupId> groups;
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    groups.emplace_back(static_cast<uint64_t>(st.ColumnInt(0)));
  }
  return groups;
}

}  // namespace cairn::shard
