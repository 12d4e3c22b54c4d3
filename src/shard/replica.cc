#include "shard/replica.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <thread>

#include "core/check.h"
#include "core/edn.h"
#include "shard/seq_allocator.h"
#include "shard/store_source.h"
#include "shard/transactor.h"

namespace cairn::shard {
namespace {

// The replica's own tables in its datom file (next to the DatomStore's).
constexpr int kReplicaFormat = 1;
constexpr const char* kReplicaSchemaSql =
    "CREATE TABLE replica_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE replica_outcomes(request_id BLOB PRIMARY KEY, idx INTEGER NOT NULL, t INTEGER NOT NULL,"
    "  code INTEGER NOT NULL, message TEXT NOT NULL, tempids BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX replica_outcomes_by_idx ON replica_outcomes(idx);";

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t U64(int64_t v) { return static_cast<uint64_t>(v); }

std::string GroupName(raft::GroupId g) { return "group " + std::to_string(g.value()); }

// Writes all of `bytes` at `offset` of the open file `fd` (named `path`).
Status WriteAt(int fd, const std::string& path, uint64_t offset, std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError(path + ": write failed: " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// Writes `bytes` to `path` (replacing it) and fsyncs it.
Status WriteFileDurably(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(path + ": cannot create: " + std::strerror(errno));
  if (Status w = WriteAt(fd, path, 0, bytes); !w.ok()) {
    ::close(fd);
    return w;
  }
  if (::fsync(fd) != 0) {
    Status s = Status::IOError(path + ": fsync failed: " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  ::close(fd);
  return Status::OK();
}

Status SyncDirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(dir + ": cannot open directory: " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError(dir + ": fsync failed: " + std::strerror(errno));
  return Status::OK();
}

// Writes `bytes` to `path` so that a crash leaves either the old file or the
// whole new one: a synced temp file renamed over it, directory synced.
Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  CAIRN_RETURN_IF_ERROR(WriteFileDurably(path + ".tmp", bytes));
  std::error_code ec;
  std::filesystem::rename(path + ".tmp", path, ec);
  if (ec) return Status::IOError(path + ".tmp: cannot rename: " + ec.message());
  return SyncDirectoryOf(path);
}

Status SyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path + ": cannot open: " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::IOError(path + ": fsync failed: " + std::strerror(errno));
  return Status::OK();
}

// Copies `from` to `to` (replacing it) and fsyncs the copy.
Status CopyFileDurably(const std::string& from, const std::string& to) {
  std::error_code ec;
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return Status::IOError(from + ": cannot copy to " + to + ": " + ec.message());
  return SyncFile(to);
}

void RemoveDatabaseFiles(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix, ec);
}

struct ReplicaState {
  raft::LogIndex applied;
  uint64_t group = 0;
  TxTime closed_t;  // zero in a file written before close(T) existed
};

// Reads replica_state from a datom file open as `sql`. NotFound if the file
// has no replica tables; Corruption if they are malformed.
Result<ReplicaState> ReadReplicaState(storage::Sqlite& sql) {
  CAIRN_ASSIGN_OR_RETURN(int64_t tables,
                         sql.QueryInt("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                                      "'replica_state'"));
  if (tables == 0) return Status::NotFound(sql.path() + ": no replica_state table");
  auto get = [&](const char* key) -> Result<int64_t> {
    Result<int64_t> v = sql.QueryInt(std::string("SELECT value FROM replica_state WHERE key = '") + key + "'");
    if (!v.ok() && v.status().code() == StatusCode::kNotFound)
      return Status::Corruption(sql.path() + ": replica_state has no '" + key + "'");
    return v;
  };
  CAIRN_ASSIGN_OR_RETURN(int64_t format, get("format"));
  if (format != kReplicaFormat) {
    return Status::Corruption(sql.path() + ": replica state format " + std::to_string(format) +
                              " is not the supported " + std::to_string(kReplicaFormat));
  }
  ReplicaState st;
  CAIRN_ASSIGN_OR_RETURN(int64_t group, get("group"));
  CAIRN_ASSIGN_OR_RETURN(int64_t applied, get("applied_index"));
  if (group < 0 || applied < 0) return Status::Corruption(sql.path() + ": replica_state holds a bad value");
  st.group = U64(group);
  st.applied = raft::LogIndex(U64(applied));
  Result<int64_t> closed = sql.QueryInt("SELECT value FROM replica_state WHERE key = 'closed_t'");
  if (closed.ok()) {
    if (*closed < 0) return Status::Corruption(sql.path() + ": replica_state holds a bad closed_t");
    st.closed_t = TxTime{U64(*closed)};
  } else if (closed.status().code() != StatusCode::kNotFound) {
    return closed.status();
  }
  return st;
}

// The prefix of the names of the snapshot files of the replica whose datom
// file is `datoms_path` (they live in the log store's snapshot directory),
// and the name of the one at `index`.
std::string SnapshotFilePrefix(const std::string& datoms_path) {
  return std::filesystem::path(datoms_path).filename().string() + ".snapshot-";
}
std::string SnapshotFileName(const std::string& datoms_path, raft::LogIndex index) {
  return SnapshotFilePrefix(datoms_path) + std::to_string(index.value());
}

}  // namespace

// A snapshot copied by CopySnapshot().
struct Replica::TakenSnapshot {
  Status status;
  raft::LogIndex index;  // the applied index of the copy
  std::string file;      // its name in the log store's snapshot directory
};

// Work on a thread of its own, below the drivers: at nice 10, so on a busy
// node it takes the spare CPU, not the rounds' (Linux: a thread's nice value
// is its own). Take() hands over the result once Done(); the destructor
// waits for it.
template <typename R>
class Replica::BackgroundJob {
 public:
  explicit BackgroundJob(std::function<R()> work)
      : thread_([this, work = std::move(work)] {
          (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
          result_.emplace(work());
          done_.store(true, std::memory_order_release);
        }) {}
  ~BackgroundJob() {
    if (thread_.joinable()) thread_.join();
  }
  bool Done() const { return done_.load(std::memory_order_acquire); }
  R Take() {
    thread_.join();
    return std::move(*result_);
  }

 private:
  std::atomic<bool> done_{false};
  std::optional<R> result_;  // written by the thread before done_
  std::thread thread_;       // last: it starts once the members it writes exist
};

Replica::TakenSnapshot Replica::CopySnapshot(const std::string& datoms_path, raft::GroupId group,
                                             const RaftLogStore& log_store) {
  TakenSnapshot out;
  const std::string tmp = log_store.SnapshotPath(SnapshotFilePrefix(datoms_path) + "copy");
  out.status = [&]() -> Status {
    RemoveDatabaseFiles(tmp);
    {
      // A connection of its own: the owner's connection keeps committing
      // batches while VACUUM INTO copies the last committed state.
      CAIRN_ASSIGN_OR_RETURN(auto src, storage::Sqlite::Open(datoms_path, storage::Sqlite::OpenMode::kReadOnly));
      CAIRN_RETURN_IF_ERROR(src->VacuumInto(tmp));
    }
    {
      CAIRN_ASSIGN_OR_RETURN(auto copy, storage::Sqlite::Open(tmp, storage::Sqlite::OpenMode::kReadWrite));
      CAIRN_ASSIGN_OR_RETURN(ReplicaState st, ReadReplicaState(*copy));
      out.index = st.applied;
    }
    // The copy becomes the snapshot file as it is: synced, renamed, the
    // directory synced. Its bytes stay on disk (the core reads them back
    // when a follower needs them).
    CAIRN_RETURN_IF_ERROR(SyncFile(tmp));
    out.file = SnapshotFileName(datoms_path, out.index);
    const std::string path = log_store.SnapshotPath(out.file);
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) return Status::IOError(tmp + ": cannot rename to " + path + ": " + ec.message());
    return SyncDirectoryOf(path);
  }();
  RemoveDatabaseFiles(tmp);
  if (!out.status.ok()) out.status = out.status.WithContext(GroupName(group) + ": taking a snapshot");
  return out;
}

struct Replica::Statements {
  storage::SqliteStatement set_applied, set_closed, insert_outcome, prune_outcomes;
};

Replica::Replica() = default;

Replica::~Replica() {
  DiscardInstallJob();
  WaitForSnapshotJob();
  CloseIncoming();
  // Closing the store commits a kept-open transaction (whole batches only).
  stmts_.reset();  // finalized before the store's connection closes
  store_.reset();
}

Result<std::unique_ptr<Replica>> Replica::Open(const ReplicaOptions& options, storage::Sqlite* log_db,
                                               RaftLogStore* log_store) {
  if (options.outcome_window_entries == 0) return Status::InvalidArgument("outcome_window_entries must be > 0");
  std::unique_ptr<Replica> r(new Replica());
  r->options_ = options;
  r->log_db_ = log_db;
  r->log_store_ = log_store;
  // A leftover install file is from a crash before its rename: the log
  // store's snapshot (below) is the authority, not this file.
  RemoveDatabaseFiles(r->InstallPath());
  CAIRN_RETURN_IF_ERROR(r->LoadState());

  const std::string group = GroupName(options.raft.group);
  CAIRN_ASSIGN_OR_RETURN(raft::RestoredState restored, log_store->Load(options.raft.group));
  bool empty = !restored.snapshot && restored.entries.empty() && restored.hard_state == raft::HardState{};
  if (empty && (r->store_->last_t().valid() || !r->applied_.IsZero())) {
    // Replaying a log from scratch onto existing datoms would apply twice.
    return Status::Corruption(options.datoms_path + " holds transactions but " + log_db->path() +
                              " has no Raft state for " + group);
  }
  if (empty && options.bootstrap) {
    restored = raft::RaftNode::Bootstrap(*options.bootstrap);
    raft::Ready init;  // the bootstrap snapshot must be durable like any other
    init.snapshot = restored.snapshot;
    init.hard_state = restored.hard_state;
    CAIRN_RETURN_IF_ERROR(log_store->Save({{options.raft.group, &init}}));
  }
  CAIRN_ASSIGN_OR_RETURN(r->snapshot_file_, log_store->SnapshotFile(options.raft.group));
  if (restored.snapshot && restored.snapshot->meta.index > r->applied_) {
    // A snapshot from the leader persisted by the log store, whose install
    // did not happen before a crash: install it now.
    // Its bytes are in the recorded file, or (a log store written before
    // snapshot files) in the row.
    const raft::Snapshot& snap = *restored.snapshot;
    if ((snap.data && !snap.data->empty()) || r->RecordedFileHolds(snap.meta.index)) {
      CAIRN_RETURN_IF_ERROR(r->PrepareInstall(snap));
      CAIRN_RETURN_IF_ERROR(r->InstallPrepared(snap.meta.index));
    } else if (snap.meta.index.value() > 1) {
      return Status::Corruption(log_db->path() + ": the snapshot of " + group + " at index " +
                                std::to_string(snap.meta.index.value()) + " has no data but " + options.datoms_path +
                                " only applied up to " + std::to_string(r->applied_.value()));
    }
  }
  if (!restored.entries.empty() || restored.snapshot) {
    raft::LogIndex last = restored.entries.empty() ? restored.snapshot->meta.index : restored.entries.back().index;
    if (r->applied_ > last) {
      return Status::Corruption(options.datoms_path + " applied up to index " + std::to_string(r->applied_.value()) +
                                " but the Raft log of " + group + " in " + log_db->path() + " ends at " +
                                std::to_string(last.value()) + " (lost log writes?)");
    }
  }
  // Snapshots stream between files: read chunk by chunk from the recorded
  // file to be sent, written chunk by chunk to the incoming file when received.
  raft::Config raft_config = options.raft;
  raft_config.read_snapshot_chunk = [self = r.get()](const raft::SnapshotMeta& meta, uint64_t offset,
                                                     uint64_t max_len, std::string* out) {
    return self->ReadSnapshotChunk(meta, offset, max_len, out);
  };
  raft_config.write_snapshot_chunk = [self = r.get()](const raft::SnapshotMeta& meta, uint64_t offset,
                                                      std::string_view data) {
    return self->WriteSnapshotChunk(meta, offset, data);
  };
  r->node_ = std::make_unique<raft::RaftNode>(raft_config, std::move(restored));
  // Snapshot files of this group other than the one the log store names:
  // left by a crash between a copy and its record, replaced by a snapshot
  // received from the leader, or a transfer that did not finish.
  std::error_code ec;
  const std::string prefix = SnapshotFilePrefix(options.datoms_path);
  for (const auto& entry : std::filesystem::directory_iterator(log_store->snapshot_dir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name != r->snapshot_file_) std::filesystem::remove(entry.path(), ec);
  }
  return r;
}

// Everything LoadState() reads from a datom file besides the open store:
// read in full by ReadLoaded(), on any thread.
struct Replica::Loaded {
  ReplicaState state;
  std::unordered_map<std::string, ApplyOutcome> outcomes;
  std::deque<std::pair<raft::LogIndex, std::string>> outcome_order;
  std::shared_ptr<const storage::CurrentIndex> index;
  std::shared_ptr<const storage::HistoryIndex> history;
  std::shared_ptr<const Schema> schema;
};

Result<std::unique_ptr<Replica::Loaded>> Replica::ReadLoaded(storage::DatomStore& store, const std::string& path,
                                                            uint64_t group) {
  auto out = std::make_unique<Loaded>();
  CAIRN_ASSIGN_OR_RETURN(out->state, ReadReplicaState(store.sql()));
  if (out->state.group != group) {
    return Status::Corruption(path + " is the state of group " + std::to_string(out->state.group) +
                              ", not of group " + std::to_string(group));
  }
  {
    CAIRN_ASSIGN_OR_RETURN(storage::SqliteStatement q,
                           store.sql().Prepare("SELECT request_id, idx, t, code, message, tempids FROM "
                                               "replica_outcomes ORDER BY idx"));
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ApplyOutcome o;
      o.index = raft::LogIndex(U64(q.ColumnInt(1)));
      o.t = TxTime{U64(q.ColumnInt(2))};
      int64_t code = q.ColumnInt(3);
      if (code < 0 || code > static_cast<int64_t>(StatusCode::kInternal)) {
        return Status::Corruption(path + ": replica_outcomes holds an unknown status code " + std::to_string(code));
      }
      if (code != 0) o.status = Status(static_cast<StatusCode>(code), std::string(q.ColumnText(4)));
      Result<std::map<std::string, EntityId>> tempids = DecodeTempids(q.ColumnBlob(5));
      if (!tempids.ok()) return tempids.status().WithContext(path + ": replica_outcomes");
      o.tempids = std::move(*tempids);
      std::string id(q.ColumnBlob(0));
      out->outcome_order.emplace_back(o.index, id);
      out->outcomes[std::move(id)] = std::move(o);
    }
  }
  std::vector<storage::IndexEntry> log;
  log.reserve(store.datom_count());
  CAIRN_RETURN_IF_ERROR(store.ReadAll([&](const storage::IndexEntry& x) { log.push_back(x); }));
  // The history index (every assertion and retraction: as-of and history
  // views) from the same log, as the embedded Database builds its own.
  auto history = std::make_shared<storage::HistoryIndex>();
  history->Build(log);
  auto index = std::make_shared<storage::CurrentIndex>();
  index->Build(std::move(log));
  out->schema = LoadSchemaFromIndex(*index, *store.attrs());
  // The AVET of each unique attribute, now: else the first transaction that
  // upserts or checks one sorts all of its datoms on the driver (~170 ms for
  // 250,000 after a snapshot install).
  const storage::AttrTable& attrs = *store.attrs();
  for (uint32_t aid = 1; aid < attrs.names.size(); ++aid) {
    const Attribute* a = out->schema->Find(attrs.Name(aid));
    if (a != nullptr && a->unique != Uniqueness::kNone) index->BuildAvet(aid);
  }
  out->index = std::move(index);
  out->history = std::move(history);
  return out;
}

Status Replica::LoadState(std::unique_ptr<Loaded> loaded) {
  WaitForSnapshotJob();  // its connection reads the file about to be reopened
  batch_history_.clear();
  unflushed_entries_ = 0;
  last_flush_ = std::chrono::steady_clock::now();
  stmts_.reset();
  store_.reset();
  const std::string& path = options_.datoms_path;
  const uint64_t grp = options_.raft.group.value();
  storage::StoreOptions so = options_.store;
  // Read whole just before (the install's validation): no second count.
  if (loaded) so.verify = false;
  CAIRN_ASSIGN_OR_RETURN(store_, storage::DatomStore::Open(path, so));
  storage::Sqlite& sql = store_->sql();
  if (!loaded) {
    Result<ReplicaState> state = ReadReplicaState(store_->sql());
    if (!state.ok() && state.status().code() == StatusCode::kNotFound) {
      if (store_->last_t().valid()) {
        return Status::Corruption(path +
                                  " holds transactions but no replica state (a file of an older build, or "
                                  "not a shard replica's file); refusing to replay a log onto it");
      }
      CAIRN_RETURN_IF_ERROR(store_->Transaction([&]() -> Status {
        CAIRN_RETURN_IF_ERROR(sql.Exec(kReplicaSchemaSql));
        return sql.Exec("INSERT INTO replica_state VALUES ('format', " + std::to_string(kReplicaFormat) +
                        "), ('group', " + std::to_string(grp) + "), ('applied_index', 0)");
      }));
    } else if (!state.ok()) {
      return state.status();
    }
    CAIRN_ASSIGN_OR_RETURN(loaded, ReadLoaded(*store_, path, grp));
  }
  applied_ = loaded->state.applied;
  closed_t_ = loaded->state.closed_t;
  closed_dirty_ = false;
  outcomes_ = std::move(loaded->outcomes);
  outcome_order_ = std::move(loaded->outcome_order);
  schema_ = std::move(loaded->schema);
  index_ = std::move(loaded->index);
  history_ = std::move(loaded->history);

  stmts_ = std::make_unique<Statements>();
  CAIRN_ASSIGN_OR_RETURN(stmts_->set_applied,
                         sql.Prepare("UPDATE replica_state SET value = ?1 WHERE key = 'applied_index'"));
  CAIRN_ASSIGN_OR_RETURN(stmts_->set_closed,
                         sql.Prepare("INSERT OR REPLACE INTO replica_state(key, value) VALUES ('closed_t', ?1)"));
  CAIRN_ASSIGN_OR_RETURN(stmts_->insert_outcome,
                         sql.Prepare("INSERT INTO replica_outcomes(request_id, idx, t, code, message, tempids) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  CAIRN_ASSIGN_OR_RETURN(stmts_->prune_outcomes, sql.Prepare("DELETE FROM replica_outcomes WHERE idx <= ?1"));
  return Status::OK();
}

Result<raft::LogIndex> Replica::Propose(const ReplicaCommand& command) {
  if (!failed_.ok()) return failed_;
  if (command.proposed_t > TxTime::Max()) return Status::InvalidArgument("proposed t is out of range");
  if (command.kind == ReplicaCommand::Kind::kClose) {
    if (command.proposed_t >= TxTime::Max()) return Status::InvalidArgument("close time is out of range");
    return node_->Propose(command.Encode());
  }
  Result<Edn> parsed = ReadEdn(command.tx_edn);
  if (!parsed.ok()) return parsed.status();
  return node_->Propose(command.Encode());
}

Status Replica::HandleReady(const SendFn& send) {
  while (true) {
    if (!failed_.ok()) return failed_;
    std::optional<raft::Ready> rd = TakeReady();
    if (!rd) return failed_;
    // 1. Durable first (one SQLite transaction).
    Status s = log_store_->Save({{options_.raft.group, &*rd, prepared_snapshot_file()}});
    if (!s.ok()) return failed_ = s;
    CAIRN_RETURN_IF_ERROR(FinishReady(*rd, send));
  }
}

std::optional<raft::Ready> Replica::TakeReady() {
  if (!failed_.ok() || !node_->HasReady() || !InstallPreparedAhead()) return std::nullopt;
  raft::Ready rd = node_->GetReady();
  if (rd.snapshot && rd.snapshot->meta.index > applied_ && prepared_install_ != rd.snapshot->meta.index &&
      !(rd.snapshot->data && rd.snapshot->data->empty())) {
    // Validate before the host persists it: a bad snapshot must not replace
    // the log store's state. The Raft core stays inside this Ready, so the
    // replica is failed for good (a restart recovers the old state and asks
    // the leader again).
    Status s = PrepareInstall(*rd.snapshot);
    if (!s.ok()) {
      failed_ = s;
      return std::nullopt;
    }
  }
  return rd;
}

Status Replica::FinishReady(const raft::Ready& rd, const SendFn& send) {
  if (!failed_.ok()) return failed_;
  // 2. The batch is durable: the messages may leave.
  if (!rd.messages.empty()) send(rd.messages);
  // 3. Then the state machine.
  if (rd.snapshot && rd.snapshot->meta.index > applied_) {
    if (prepared_install_ == rd.snapshot->meta.index) {
      Status s = InstallPrepared(rd.snapshot->meta.index);
      if (!s.ok()) return failed_ = s;
    } else if (rd.snapshot->meta.index.value() > 1) {
      return failed_ = Status::Corruption(GroupName(options_.raft.group) + ": a snapshot at index " +
                                          std::to_string(rd.snapshot->meta.index.value()) + " without data");
    }
  }
  Status applied = ApplyBatch(rd.committed_entries);
  if (!applied.ok()) return failed_ = applied;
  pending_reads_.insert(pending_reads_.end(), rd.read_states.begin(), rd.read_states.end());
  auto unserved = std::stable_partition(pending_reads_.begin(), pending_reads_.end(),
                                        [&](const raft::ReadState& r) { return r.index <= applied_; });
  for (auto it = pending_reads_.begin(); it != unserved; ++it) servable_reads_.push_back(it->request_id);
  pending_reads_.erase(pending_reads_.begin(), unserved);
  node_->Advance(rd);
  Status snap = MaybeSnapshot();
  if (!snap.ok()) return failed_ = snap;
  return Status::OK();
}

std::vector<uint64_t> Replica::TakeServableReads() {
  std::vector<uint64_t> out;
  out.swap(servable_reads_);
  return out;
}

Status Replica::ApplyBatch(const std::vector<raft::Entry>& entries) {
  raft::LogIndex last = applied_;
  for (const raft::Entry& e : entries) last = std::max(last, e.index);
  if (last == applied_) return Status::OK();  // everything applied before a restart
  const raft::LogIndex prune_through = last.value() >= options_.outcome_window_entries
                                           ? raft::LogIndex(last.value() - options_.outcome_window_entries)
                                           : raft::LogIndex();
  // One SQLite transaction for the whole batch: datoms, outcomes, applied
  // index and pruning are written together; with commit_interval_ms the
  // transaction stays open for the next batches (see the header comment).
  const raft::LogIndex first_unapplied = applied_;
  const bool defer = options_.commit_interval_ms > 0;
  Status s = store_->Transaction([&]() -> Status {
    for (const raft::Entry& e : entries) {
      if (e.index <= applied_) continue;  // applied before a restart
      if (e.type == raft::EntryType::kNormal && !e.data.empty()) CAIRN_RETURN_IF_ERROR(ApplyCommand(e));
      bytes_since_snapshot_ += e.data.size();
      applied_ = e.index;
    }
    if (!batch_history_.empty()) {
      history_ = ApplyTo(std::move(history_), batch_history_);
      batch_history_.clear();
    }
    stmts_->set_applied.BindInt(1, I64(last.value()));
    CAIRN_RETURN_IF_ERROR(stmts_->set_applied.Run());
    if (closed_dirty_) {
      stmts_->set_closed.BindInt(1, I64(closed_t_.raw));
      CAIRN_RETURN_IF_ERROR(stmts_->set_closed.Run());
      closed_dirty_ = false;
    }
    if (!prune_through.IsZero()) {
      stmts_->prune_outcomes.BindInt(1, I64(prune_through.value()));
      CAIRN_RETURN_IF_ERROR(stmts_->prune_outcomes.Run());
    }
    return Status::OK();
  }, defer);
  std::vector<std::pair<std::string, TxResult>> results;
  results.swap(applied_results_);
  if (s.ok() && defer) {
    unflushed_entries_ += last.value() - first_unapplied.value();
    s = MaybeFlush();
  }
  if (!s.ok()) {
    // Nothing of the batch is stored; the memory state ran ahead. Reload it
    // from the file so db() and Outcome() show what is durable.
    Status reload = LoadState();
    if (!reload.ok()) return s.WithContext("applying entries (and reloading failed too: " + reload.ToString() + ")");
    return s;
  }
  while (!outcome_order_.empty() && outcome_order_.front().first <= prune_through) {
    auto it = outcomes_.find(outcome_order_.front().second);
    if (it != outcomes_.end() && it->second.index == outcome_order_.front().first) outcomes_.erase(it);
    outcome_order_.pop_front();
  }
  // Applied (and committed to the file, or replayable from the Raft log):
  // tell the host what the batch's commands wrote.
  for (const auto& [request_id, result] : results) options_.on_applied(request_id, result);
  return Status::OK();
}

Status Replica::Flush() {
  if (!failed_.ok()) return failed_;
  if (!store_->unflushed()) return Status::OK();
  Status s = store_->Flush();
  if (!s.ok()) {
    // The memory state is ahead of the file now: stop; a restart replays.
    return failed_ = s.WithContext(GroupName(options_.raft.group) + ": committing the datom file");
  }
  unflushed_entries_ = 0;
  last_flush_ = std::chrono::steady_clock::now();
  return Status::OK();
}

Status Replica::MaybeFlush() {
  if (options_.commit_interval_ms <= 0 || !store_->unflushed()) return Status::OK();
  if (unflushed_entries_ < options_.commit_entries &&
      std::chrono::steady_clock::now() - last_flush_ < std::chrono::milliseconds(options_.commit_interval_ms)) {
    return Status::OK();
  }
  return Flush();
}

Status Replica::ApplyCommand(const raft::Entry& e) {
  Result<ReplicaCommand> cmd = ReplicaCommand::Decode(e.data);
  if (!cmd.ok()) return Status::OK();  // the same bytes fail the same way everywhere; nothing to record
  if (cmd->kind == ReplicaCommand::Kind::kClose) {
    // Out of range (never proposed by a correct leader): ignored everywhere alike.
    if (cmd->proposed_t < TxTime::Max() && cmd->proposed_t > closed_t_) {
      closed_t_ = cmd->proposed_t;
      closed_dirty_ = true;
    }
    return Status::OK();
  }
  if (!cmd->request_id.empty()) {
    auto it = outcomes_.find(cmd->request_id);
    if (it != outcomes_.end() && e.index.value() - it->second.index.value() < options_.outcome_window_entries) {
      return Status::OK();  // a retry: applied once
    }
  }
  auto fail = [&](Status status) {
    return RecordOutcome(cmd->request_id, ApplyOutcome{e.index, TxTime{}, std::move(status), {}});
  };
  if (cmd->proposed_t > TxTime::Max() || store_->last_t() >= TxTime::Max()) {
    return fail(Status::InvalidArgument("proposed t " + std::to_string(cmd->proposed_t.raw) + " is out of range"));
  }
  Result<Edn> tx_data = ReadEdn(cmd->tx_edn);
  if (!tx_data.ok()) return fail(tx_data.status());

  // Strictly after every applied transaction and every closed time.
  TxTime t = std::max({cmd->proposed_t, TxTime{store_->last_t().raw + 1}, TxTime{closed_t_.raw + 1}});
  SeqAllocator ids(store_->next_seqs(), store_->partitions());
  TransactorOptions topts;
  topts.partitions = store_->partitions();
  topts.tx_instant_ms = 0;  // t's physical part: from the entry, not the local clock
  topts.owns_partition = options_.owns_partition;  // cross-shard refs: checked by the coordinator
  Transactor transactor(topts);
  Result<TxResult> prepared = [&] {
    StoreSource view(Snapshot{store_->last_t(), index_, store_->attrs(), schema_}, StoreSource::Kind::kCurrent,
                     store_->last_t(), {});
    return transactor.Prepare(*tx_data, view, t, ids);
  }();
  if (!prepared.ok()) return fail(prepared.status());
  if (options_.owns_partition) {
    for (const Datom& d : prepared->datoms) {
      uint32_t p = d.e.partition();
      if (p != EntityId::kSystemPartition && !options_.owns_partition(p)) {
        return fail(Status::WrongShard(GroupName(options_.raft.group) + " does not own partition " + std::to_string(p) +
                                       " (entity " + std::to_string(d.e.raw) +
                                       "); the transaction was routed to the wrong shard"));
      }
    }
  }

  storage::CommitBatch batch;
  batch.t = t;
  batch.datoms = prepared->datoms;
  batch.next_seqs = ids.advanced();
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::IndexEntry> entries, store_->Commit(batch));
  // Both indexes, in place when no published value holds them.
  // The current index now (the next command's transactor reads it); the
  // history index once per batch (ApplyBatch): nothing reads it in between.
  index_ = ApplyTo(std::move(index_), entries);
  std::move(entries.begin(), entries.end(), std::back_inserter(batch_history_));
  if (!prepared->schema_changes.empty()) {
    auto schema = std::make_shared<Schema>(*schema_);
    for (const Attribute& a : prepared->schema_changes) schema->Put(a);
    schema_ = std::move(schema);
  }
  if (options_.on_applied && !cmd->request_id.empty()) applied_results_.emplace_back(cmd->request_id, *prepared);
  return RecordOutcome(cmd->request_id, ApplyOutcome{e.index, t, Status::OK(), std::move(prepared->tempids)});
}

// Inside the batch's transaction.
Status Replica::RecordOutcome(const std::string& request_id, ApplyOutcome outcome) {
  if (request_id.empty()) return Status::OK();  // never deduplicated: nothing to keep
  storage::SqliteStatement& ins = stmts_->insert_outcome;
  ins.BindBlob(1, request_id);
  ins.BindInt(2, I64(outcome.index.value()));
  ins.BindInt(3, I64(outcome.t.raw));
  ins.BindInt(4, static_cast<int64_t>(outcome.status.code()));
  ins.BindText(5, outcome.status.message());
  ins.BindBlob(6, EncodeTempids(outcome.tempids));
  // A row left from an outcome outside the window (not yet pruned) is
  // replaced: the request applied again, as the window rule says.
  Status s = ins.Run();
  if (!s.ok() && s.code() == StatusCode::kConflict) {
    CAIRN_ASSIGN_OR_RETURN(storage::SqliteStatement del,
                           store_->sql().Prepare("DELETE FROM replica_outcomes WHERE request_id = ?1"));
    del.BindBlob(1, request_id);
    CAIRN_RETURN_IF_ERROR(del.Run());
    ins.BindBlob(1, request_id);
    ins.BindInt(2, I64(outcome.index.value()));
    ins.BindInt(3, I64(outcome.t.raw));
    ins.BindInt(4, static_cast<int64_t>(outcome.status.code()));
    ins.BindText(5, outcome.status.message());
    ins.BindBlob(6, EncodeTempids(outcome.tempids));
    s = ins.Run();
  }
  CAIRN_RETURN_IF_ERROR(s);
  outcome_order_.emplace_back(outcome.index, request_id);
  outcomes_[request_id] = std::move(outcome);
  return Status::OK();
}

bool Replica::RecordedFileHolds(raft::LogIndex index) const {
  return !snapshot_file_.empty() && snapshot_file_ == SnapshotFileName(options_.datoms_path, index);
}

std::string Replica::prepared_snapshot_file() const {
  return prepared_install_.IsZero() ? std::string() : SnapshotFileName(options_.datoms_path, prepared_install_);
}

std::optional<uint64_t> Replica::ReadSnapshotChunk(const raft::SnapshotMeta& meta, uint64_t offset, uint64_t max_len,
                                                   std::string* out) const {
  if (!RecordedFileHolds(meta.index)) return std::nullopt;
  const std::string path = log_store_->SnapshotPath(snapshot_file_);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::optional<uint64_t> size;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    const uint64_t total = static_cast<uint64_t>(st.st_size);
    const uint64_t len = offset < total ? std::min(max_len, total - offset) : 0;
    out->resize(len);
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pread(fd, out->data() + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (done == len) size = total;
  }
  ::close(fd);
  return size;
}

std::string Replica::IncomingPath() const {
  return log_store_->SnapshotPath(SnapshotFilePrefix(options_.datoms_path) + "incoming");
}

void Replica::CloseIncoming() {
  if (incoming_.fd >= 0) ::close(incoming_.fd);
  incoming_ = Incoming{};
}

bool Replica::WriteSnapshotChunk(const raft::SnapshotMeta& meta, uint64_t offset, std::string_view data) {
  const std::string path = IncomingPath();
  Status s = [&]() -> Status {
    if (offset == 0) {  // a new transfer
      CloseIncoming();
      incoming_.meta = meta;
      incoming_.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (incoming_.fd < 0) return Status::IOError(path + ": cannot create: " + std::strerror(errno));
    } else if (incoming_.fd < 0 || incoming_.meta.index != meta.index || incoming_.meta.term != meta.term ||
               incoming_.bytes != offset) {
      return Status::Internal(path + ": chunk at byte " + std::to_string(offset) + " out of order");
    }
    // At its offset: a chunk written in part before a failure is rewritten.
    CAIRN_RETURN_IF_ERROR(WriteAt(incoming_.fd, path, offset, data));
    incoming_.bytes = offset + data.size();
    return Status::OK();
  }();
  if (!s.ok()) {
    snapshot_error_ = s.WithContext(GroupName(options_.raft.group) + ": receiving the snapshot at index " +
                                    std::to_string(meta.index.value()));
  }
  return s.ok();
}

Status Replica::MaybeSnapshot() {
  if (job_) {
    if (!job_->Done()) return Status::OK();
    TakenSnapshot taken = job_->Take();
    job_.reset();
    return RecordSnapshot(std::move(taken));
  }
  if (options_.snapshot_entries == 0 || std::chrono::steady_clock::now() < snapshot_retry_at_) return Status::OK();
  const raft::LogIndex base = node_->snapshot().meta.index;
  const bool due = applied_.value() >= base.value() + options_.snapshot_entries ||
                   (options_.snapshot_bytes > 0 && bytes_since_snapshot_ >= options_.snapshot_bytes);
  if (!due || applied_ <= base || applied_ > node_->applied()) return Status::OK();
  // The copy holds what the datom file committed: commit the open
  // transaction first, so that is everything applied so far.
  CAIRN_RETURN_IF_ERROR(Flush());
  bytes_since_snapshot_ = 0;
  if (!options_.snapshot_in_background) {
    return RecordSnapshot(CopySnapshot(options_.datoms_path, options_.raft.group, *log_store_));
  }
  job_ = std::make_unique<BackgroundJob<TakenSnapshot>>(
      [path = options_.datoms_path, group = options_.raft.group, store = log_store_] {
        return CopySnapshot(path, group, *store);
      });
  return Status::OK();
}

Status Replica::RecordSnapshot(TakenSnapshot taken) {
  if (!taken.status.ok()) {
    // Only the copy failed: the replica goes on, its log uncompacted.
    snapshot_error_ = taken.status;
    snapshot_retry_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.snapshot_retry_ms);
    return Status::OK();
  }
  snapshot_error_ = Status::OK();
  // Outdated while it was copied (a snapshot from the leader was installed,
  // or the copy is not past the current one): drop it.
  if (taken.index <= node_->snapshot().meta.index || taken.index > node_->applied() || taken.file == snapshot_file_) {
    DiscardCopy(taken);
    return Status::OK();
  }
  // No bytes in memory: the core reads them from the file when it needs them.
  CAIRN_RETURN_IF_ERROR(node_->Compact(taken.index, nullptr));
  // Durable before the next Save drops the compacted entries.
  CAIRN_RETURN_IF_ERROR(log_store_->SaveSnapshotFile(options_.raft.group, node_->snapshot().meta, taken.file));
  std::error_code ec;
  if (!snapshot_file_.empty()) std::filesystem::remove(log_store_->SnapshotPath(snapshot_file_), ec);
  snapshot_file_ = taken.file;
  ++snapshots_taken_;
  return Status::OK();
}

void Replica::WaitForSnapshotJob() {
  if (!job_) return;
  TakenSnapshot taken = job_->Take();
  if (taken.status.ok()) DiscardCopy(taken);
  job_.reset();
}

void Replica::DiscardCopy(const TakenSnapshot& taken) {
  std::error_code ec;
  if (taken.file != snapshot_file_) std::filesystem::remove(log_store_->SnapshotPath(taken.file), ec);
}

Status Replica::StageSnapshotFile(const raft::Snapshot& snap) {
  const raft::LogIndex index = snap.meta.index;
  const std::string file_path = log_store_->SnapshotPath(SnapshotFileName(options_.datoms_path, index));
  if (snap.data) return WriteFileAtomically(file_path, *snap.data);
  if (RecordedFileHolds(index)) return Status::OK();
  if (incoming_.fd < 0 || incoming_.meta.index != index || incoming_.meta.term != snap.meta.term) {
    return Status::Internal("its bytes were not received");
  }
  CloseIncoming();  // synced by ValidateInstall
  std::error_code ec;
  std::filesystem::rename(IncomingPath(), file_path, ec);
  if (ec) return Status::IOError(IncomingPath() + ": cannot rename to " + file_path + ": " + ec.message());
  return Status::OK();
}

Result<std::unique_ptr<Replica::Loaded>> Replica::ValidateInstall(const std::string& file_path,
                                                                  const std::string& install_path,
                                                                  storage::StoreOptions so, raft::GroupId group,
                                                                  raft::LogIndex index, bool load) {
  CAIRN_RETURN_IF_ERROR(SyncFile(file_path));
  CAIRN_RETURN_IF_ERROR(SyncDirectoryOf(file_path));
  CAIRN_RETURN_IF_ERROR(CopyFileDurably(file_path, install_path));
  so.create_if_missing = false;
  Result<std::unique_ptr<storage::DatomStore>> store = storage::DatomStore::Open(install_path, so);
  if (!store.ok()) return Status::Corruption(store.status().message());
  Result<ReplicaState> st = ReadReplicaState((*store)->sql());
  if (!st.ok()) return Status::Corruption(st.status().message());
  if (st->group != group.value()) return Status::Corruption("it holds the state of group " + std::to_string(st->group));
  if (st->applied != index) {
    return Status::Corruption("its data applied up to index " + std::to_string(st->applied.value()));
  }
  if (!load) return std::unique_ptr<Loaded>();
  Result<std::unique_ptr<Loaded>> loaded = ReadLoaded(**store, install_path, group.value());
  if (!loaded.ok() && loaded.status().code() != StatusCode::kIOError) return Status::Corruption(loaded.status().message());
  return loaded;
}

Status Replica::FailedInstall(const raft::SnapshotMeta& meta, const Status& why) {
  RemoveDatabaseFiles(InstallPath());
  std::error_code ec;
  if (!RecordedFileHolds(meta.index)) {
    std::filesystem::remove(log_store_->SnapshotPath(SnapshotFileName(options_.datoms_path, meta.index)), ec);
  }
  const std::string what =
      GroupName(options_.raft.group) + ": snapshot at index " + std::to_string(meta.index.value());
  if (why.code() != StatusCode::kCorruption) return why.WithContext(what);
  return Status::Corruption(what + " refused: " + why.message());
}

Status Replica::BeginInstall(const raft::Snapshot& snap) {
  prepared_install_ = raft::LogIndex();
  prepared_loaded_.reset();
  RemoveDatabaseFiles(InstallPath());
  if (Status staged = StageSnapshotFile(snap); !staged.ok()) return FailedInstall(snap.meta, staged);
  return Status::OK();
}

Status Replica::PrepareInstall(const raft::Snapshot& snap) {
  CAIRN_RETURN_IF_ERROR(BeginInstall(snap));
  const std::string file_path = log_store_->SnapshotPath(SnapshotFileName(options_.datoms_path, snap.meta.index));
  Result<std::unique_ptr<Loaded>> valid =
      ValidateInstall(file_path, InstallPath(), options_.store, options_.raft.group, snap.meta.index, false);
  if (!valid.ok()) return FailedInstall(snap.meta, valid.status());
  prepared_install_ = snap.meta.index;
  return Status::OK();
}

// A received snapshot's install prepared on a thread of its own.
struct Replica::InstallJob {
  raft::SnapshotMeta meta;
  BackgroundJob<Result<std::unique_ptr<Loaded>>> work;
};

bool Replica::InstallPreparedAhead() {
  if (!options_.snapshot_in_background) return true;
  const std::optional<raft::Snapshot>& pending = node_->pending_install();
  if (install_job_) {
    if (!install_job_->work.Done()) return false;
    const raft::SnapshotMeta meta = install_job_->meta;
    Result<std::unique_ptr<Loaded>> result = install_job_->work.Take();
    install_job_.reset();
    if (!pending || pending->meta.index != meta.index || pending->meta.term != meta.term) {
      // A newer snapshot replaced it while it was prepared.
      (void)FailedInstall(meta, Status::OK());
    } else if (!result.ok()) {
      failed_ = FailedInstall(meta, result.status());
      return false;
    } else {
      prepared_install_ = meta.index;
      prepared_loaded_ = std::move(*result);
      return true;
    }
  }
  if (!pending || pending->meta.index <= applied_ || pending->data || prepared_install_ == pending->meta.index) {
    return true;  // nothing to install, or bytes in memory: TakeReady prepares it
  }
  if (Status begun = BeginInstall(*pending); !begun.ok()) {
    failed_ = begun;
    return false;
  }
  install_job_.reset(new InstallJob{
      pending->meta,
      BackgroundJob<Result<std::unique_ptr<Loaded>>>(
          [file = log_store_->SnapshotPath(SnapshotFileName(options_.datoms_path, pending->meta.index)),
           install = InstallPath(), so = options_.store, group = options_.raft.group, index = pending->meta.index,
           hook = options_.install_job_hook] {
            Result<std::unique_ptr<Loaded>> r = ValidateInstall(file, install, so, group, index, true);
            if (hook) hook();
            return r;
          })});
  return false;
}

void Replica::DiscardInstallJob() {
  if (!install_job_) return;
  install_job_.reset();  // waits for it
  RemoveDatabaseFiles(InstallPath());
}

Status Replica::InstallPrepared(raft::LogIndex index) {
  if (prepared_install_ != index) {
    return Status::Internal(GroupName(options_.raft.group) + ": snapshot at index " + std::to_string(index.value()) +
                            " was not validated before install");
  }
  const std::string file = prepared_snapshot_file();
  prepared_install_ = raft::LogIndex();
  std::unique_ptr<Loaded> loaded = std::move(prepared_loaded_);
  WaitForSnapshotJob();  // before its connection's WAL and shm files go
  // Close the current file (its WAL is checkpointed and removed), replace it
  // atomically, then load everything from the new one.
  stmts_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove(options_.datoms_path + "-wal", ec);
  std::filesystem::remove(options_.datoms_path + "-shm", ec);
  std::filesystem::rename(InstallPath(), options_.datoms_path, ec);
  if (ec) return Status::IOError(InstallPath() + ": cannot rename over " + options_.datoms_path + ": " + ec.message());
  CAIRN_RETURN_IF_ERROR(SyncDirectoryOf(options_.datoms_path));
  CAIRN_RETURN_IF_ERROR(LoadState(std::move(loaded)));
  if (applied_ != index) {
    return Status::Corruption(options_.datoms_path + ": installed snapshot applied up to " +
                              std::to_string(applied_.value()) + ", expected " + std::to_string(index.value()));
  }
  // The log store's row names the received snapshot's file now.
  if (!snapshot_file_.empty() && snapshot_file_ != file) {
    std::filesystem::remove(log_store_->SnapshotPath(snapshot_file_), ec);
  }
  snapshot_file_ = file;
  snapshot_error_ = Status::OK();  // a failed transfer, now done
  ++snapshots_installed_;
  return Status::OK();
}

std::shared_ptr<const datalog::IndexSource> Replica::db(bool with_history) const {
  std::shared_ptr<const storage::AttrTable> attrs = store_->attrs();
  // Every db() of one state shares its planner statistics; a new state
  // takes the previous ones' successor (AttrStatsCache).
  if (!stats_ || stats_t_ != store_->last_t() || stats_index_ != index_.get()) {
    stats_ = stats_ ? stats_->Successor() : std::make_shared<AttrStatsCache>();
    stats_t_ = store_->last_t();
    stats_index_ = index_.get();
  }
  return std::make_shared<StoreSource>(Snapshot{store_->last_t(), index_, attrs, schema_, stats_},
                                       StoreSource::Kind::kCurrent, store_->last_t(),
                                       with_history ? HistoryState{history_, attrs} : HistoryState{});
}

std::optional<ApplyOutcome> Replica::Outcome(const std::string& request_id) const {
  auto it = outcomes_.find(request_id);
  if (it == outcomes_.end()) return std::nullopt;
  return it->second;
}

Result<std::vector<Datom>> Replica::LogDatoms() {
  std::vector<Datom> out;
  std::shared_ptr<const storage::AttrTable> attrs = store_->attrs();
  CAIRN_RETURN_IF_ERROR(store_->ReadAll([&](const storage::IndexEntry& x) {
    out.push_back(Datom{x.e, attrs->Name(x.aid), x.v, x.tx, x.added});
  }));
  return out;
}

}  // namespace cairn::shard
