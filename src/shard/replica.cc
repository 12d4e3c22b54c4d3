#include "shard/replica.h"

#include <algorithm>
#include <atomic>
#include <map>

#include "core/check.h"
#include "core/edn.h"
#include "shard/replica_source.h"
#include "shard/seq_allocator.h"
#include "shard/transactor.h"

namespace cairn::shard {
namespace {

constexpr const char* kSchemaSql =
    "CREATE TABLE IF NOT EXISTS replica_applied("
    "  grp INTEGER PRIMARY KEY, applied_index INTEGER NOT NULL, last_t INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS replica_requests("
    "  grp INTEGER NOT NULL, request_id BLOB NOT NULL, idx INTEGER NOT NULL, t INTEGER NOT NULL,"
    "  code INTEGER NOT NULL, message TEXT NOT NULL, tempids BLOB, PRIMARY KEY(grp, request_id)) WITHOUT ROWID;";

// tempids := varint(count) (varint(len) name varint(id)){count}
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarint(std::string_view* in, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    *v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

std::string EncodeTempids(const std::map<std::string, EntityId>& tempids) {
  std::string out;
  PutVarint(&out, tempids.size());
  for (const auto& [name, id] : tempids) {
    PutVarint(&out, name.size());
    out += name;
    PutVarint(&out, id.raw);
  }
  return out;
}

bool DecodeTempids(std::string_view in, std::map<std::string, EntityId>* out) {
  uint64_t n = 0;
  if (!GetVarint(&in, &n)) return in.empty();  // NULL / empty: none
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = 0, id = 0;
    if (!GetVarint(&in, &len) || len > in.size()) return false;
    std::string name(in.substr(0, len));
    in.remove_prefix(len);
    if (!GetVarint(&in, &id)) return false;
    (*out)[std::move(name)] = EntityId{id};
  }
  return in.empty();
}

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t U64(int64_t v) { return static_cast<uint64_t>(v); }

}  // namespace

Replica::~Replica() = default;

Result<std::unique_ptr<Replica>> Replica::Open(const ReplicaOptions& options, storage::Sqlite* log_db,
                                               RaftLogStore* log_store) {
  std::unique_ptr<Replica> r(new Replica());
  r->options_ = options;
  r->log_db_ = log_db;
  r->log_store_ = log_store;
  CAIRN_RETURN_IF_ERROR(log_db->Exec(kSchemaSql));
  // Files made before outcomes kept tempids: add the column.
  if (Status s = log_db->Exec("ALTER TABLE replica_requests ADD COLUMN tempids BLOB"); !s.ok()) {
    if (s.message().find("duplicate column") == std::string::npos) return s;
  }
  CAIRN_ASSIGN_OR_RETURN(r->upsert_applied_,
                         log_db->Prepare("INSERT OR REPLACE INTO replica_applied(grp, applied_index, last_t) "
                                         "VALUES (?1, ?2, ?3)"));
  CAIRN_ASSIGN_OR_RETURN(r->insert_request_,
                         log_db->Prepare("INSERT INTO replica_requests(grp, request_id, idx, t, code, message, tempids) "
                                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  CAIRN_RETURN_IF_ERROR(r->LoadAppliedState());

  CAIRN_ASSIGN_OR_RETURN(r->store_, storage::DatomStore::Open(options.datoms_path, options.store));
  std::vector<storage::IndexEntry> log;
  log.reserve(r->store_->datom_count());
  CAIRN_RETURN_IF_ERROR(r->store_->ReadAll([&](const storage::IndexEntry& x) { log.push_back(x); }));
  auto index = std::make_shared<storage::CurrentIndex>();
  index->Build(std::move(log));
  r->schema_ = LoadSchemaFromIndex(*index, *r->store_->attrs());
  r->index_ = std::move(index);

  TxTime stored_t = r->store_->last_t();
  if (stored_t < r->recorded_t_) {
    return Status::Corruption(options.datoms_path + ": datoms end at t " + std::to_string(stored_t.raw) +
                              " but group " + std::to_string(options.raft.group.value()) + " recorded t " +
                              std::to_string(r->recorded_t_.raw) + " as applied (lost writes?)");
  }
  r->commit_unrecorded_ = r->recorded_t_ < stored_t;

  CAIRN_ASSIGN_OR_RETURN(raft::RestoredState restored, log_store->Load(options.raft.group));
  bool empty = !restored.snapshot && restored.entries.empty() && restored.hard_state == raft::HardState{};
  if (empty && r->store_->last_t().valid()) {
    // Replaying a log from scratch onto existing datoms would apply twice.
    return Status::Corruption(options.datoms_path + " holds transactions but " + log_db->path() +
                              " has no Raft state for group " + std::to_string(options.raft.group.value()));
  }
  if (empty && options.bootstrap) {
    restored = raft::RaftNode::Bootstrap(*options.bootstrap);
    raft::Ready init;  // the bootstrap snapshot must be durable like any other
    init.snapshot = restored.snapshot;
    init.hard_state = restored.hard_state;
    CAIRN_RETURN_IF_ERROR(log_store->Save({{options.raft.group, &init}}));
  }
  if (restored.snapshot && restored.snapshot->meta.index > r->applied_ && restored.snapshot->data &&
      !restored.snapshot->data->empty()) {
    return Status::Unavailable("group " + std::to_string(options.raft.group.value()) +
                               ": restoring from a state-machine snapshot is not implemented yet");
  }
  r->node_ = std::make_unique<raft::RaftNode>(options.raft, std::move(restored));
  return r;
}

Status Replica::LoadAppliedState() {
  const int64_t grp = I64(options_.raft.group.value());
  {
    CAIRN_ASSIGN_OR_RETURN(storage::SqliteStatement q,
                           log_db_->Prepare("SELECT applied_index, last_t FROM replica_applied WHERE grp = ?1"));
    q.BindInt(1, grp);
    CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row) {
      applied_ = raft::LogIndex(U64(q.ColumnInt(0)));
      recorded_t_ = TxTime{U64(q.ColumnInt(1))};
    }
  }
  CAIRN_ASSIGN_OR_RETURN(storage::SqliteStatement q,
                         log_db_->Prepare("SELECT request_id, idx, t, code, message, tempids FROM replica_requests "
                                          "WHERE grp = ?1"));
  q.BindInt(1, grp);
  while (true) {
    CAIRN_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ApplyOutcome o;
    o.index = raft::LogIndex(U64(q.ColumnInt(1)));
    o.t = TxTime{U64(q.ColumnInt(2))};
    int64_t code = q.ColumnInt(3);
    if (code < 0 || code > static_cast<int64_t>(StatusCode::kInternal)) {
      return Status::Corruption(log_db_->path() + ": replica_requests of group " + std::to_string(grp) +
                                " holds an unknown status code " + std::to_string(code));
    }
    if (code != 0) o.status = Status(static_cast<StatusCode>(code), std::string(q.ColumnText(4)));
    if (!DecodeTempids(q.ColumnBlob(5), &o.tempids)) {
      return Status::Corruption(log_db_->path() + ": replica_requests of group " + std::to_string(grp) +
                                " holds malformed tempids");
    }
    outcomes_[std::string(q.ColumnBlob(0))] = std::move(o);
  }
  return Status::OK();
}

Result<raft::LogIndex> Replica::Propose(const ReplicaCommand& command) {
  if (!failed_.ok()) return failed_;
  if (command.proposed_t > TxTime::Max()) return Status::InvalidArgument("proposed t is out of range");
  Result<Edn> parsed = ReadEdn(command.tx_edn);
  if (!parsed.ok()) return parsed.status();
  return node_->Propose(command.Encode());
}

Status Replica::HandleReady(const SendFn& send) {
  while (true) {
    if (!failed_.ok()) return failed_;
    std::optional<raft::Ready> rd = TakeReady();
    if (!rd) return Status::OK();
    // 1. Durable first (one SQLite transaction).
    Status s = log_store_->Save({{options_.raft.group, &*rd}});
    if (!s.ok()) return failed_ = s;
    CAIRN_RETURN_IF_ERROR(FinishReady(*rd, send));
  }
}

std::optional<raft::Ready> Replica::TakeReady() {
  if (!failed_.ok() || !node_->HasReady()) return std::nullopt;
  return node_->GetReady();
}

Status Replica::FinishReady(const raft::Ready& rd, const SendFn& send) {
  if (!failed_.ok()) return failed_;
  // 2. The batch is durable: the messages may leave.
  if (!rd.messages.empty()) send(rd.messages);
  // 3. Then the state machine.
  if (rd.snapshot && rd.snapshot->meta.index > applied_) {
    return failed_ = Status::Unavailable("group " + std::to_string(options_.raft.group.value()) +
                                         ": installing a snapshot is not implemented yet");
  }
  for (const raft::Entry& e : rd.committed_entries) {
    if (e.index <= applied_) continue;  // applied before a restart
    Status s = Apply(e);
    if (!s.ok()) return failed_ = s;
    applied_ = e.index;
  }
  pending_reads_.insert(pending_reads_.end(), rd.read_states.begin(), rd.read_states.end());
  auto unserved = std::stable_partition(pending_reads_.begin(), pending_reads_.end(), [&](const raft::ReadState& r) {
    return r.index <= applied_;
  });
  for (auto it = pending_reads_.begin(); it != unserved; ++it) servable_reads_.push_back(it->request_id);
  pending_reads_.erase(pending_reads_.begin(), unserved);
  node_->Advance(rd);
  return Status::OK();
}

std::vector<uint64_t> Replica::TakeServableReads() {
  std::vector<uint64_t> out;
  out.swap(servable_reads_);
  return out;
}

Status Replica::Apply(const raft::Entry& e) {
  if (e.type != raft::EntryType::kNormal || e.data.empty()) return Status::OK();  // no-op, conf change
  return ApplyCommand(e);
}

Status Replica::ApplyCommand(const raft::Entry& e) {
  Result<ReplicaCommand> cmd = ReplicaCommand::Decode(e.data);
  if (!cmd.ok()) {
    // The same bytes fail the same way everywhere: record and move on.
    return Record(e.index, "", ApplyOutcome{e.index, TxTime{}, cmd.status()});
  }
  if (commit_unrecorded_) {
    // This entry's datoms were committed before a crash that lost its
    // record (see the header comment); record it without re-applying.
    commit_unrecorded_ = false;
    return Record(e.index, cmd->request_id, ApplyOutcome{e.index, store_->last_t(), Status::OK()});
  }
  if (!cmd->request_id.empty() && outcomes_.count(cmd->request_id)) {
    return Record(e.index, "", ApplyOutcome{e.index, TxTime{}, Status::OK()});  // a retry: applied once
  }
  if (cmd->proposed_t > TxTime::Max() || store_->last_t() >= TxTime::Max()) {
    return Record(e.index, cmd->request_id,
                  ApplyOutcome{e.index, TxTime{}, Status::InvalidArgument("proposed t " +
                                                                          std::to_string(cmd->proposed_t.raw) +
                                                                          " is out of range")});
  }
  Result<Edn> tx_data = ReadEdn(cmd->tx_edn);
  if (!tx_data.ok()) return Record(e.index, cmd->request_id, ApplyOutcome{e.index, TxTime{}, tx_data.status()});

  TxTime t = std::max(cmd->proposed_t, TxTime{store_->last_t().raw + 1});
  SeqAllocator ids(store_->next_seqs(), store_->partitions());
  TransactorOptions topts;
  topts.partitions = store_->partitions();
  topts.tx_instant_ms = 0;  // t's physical part: from the entry, not the local clock
  Transactor transactor(topts);
  Result<TxResult> prepared = [&] {
    ReplicaSource view(index_, store_->attrs(), schema_);
    return transactor.Prepare(*tx_data, view, t, ids);
  }();
  if (!prepared.ok()) return Record(e.index, cmd->request_id, ApplyOutcome{e.index, TxTime{}, prepared.status()});

  storage::CommitBatch batch;
  batch.t = t;
  batch.datoms = prepared->datoms;
  batch.next_seqs = ids.advanced();
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::IndexEntry> entries, store_->Commit(batch));
  if (index_.use_count() == 1) {
    // Nobody else holds this state: update in place. The fence pairs with
    // the release of the last other holder's reference.
    std::atomic_thread_fence(std::memory_order_acquire);
    const_cast<storage::CurrentIndex&>(*index_).Apply(entries);
  } else {
    auto copy = std::make_shared<storage::CurrentIndex>(*index_);
    copy->Apply(entries);
    index_ = std::move(copy);
  }
  if (!prepared->schema_changes.empty()) {
    auto schema = std::make_shared<Schema>(*schema_);
    for (const Attribute& a : prepared->schema_changes) schema->Put(a);
    schema_ = std::move(schema);
  }
  CAIRN_RETURN_IF_ERROR(Record(e.index, cmd->request_id, ApplyOutcome{e.index, t, Status::OK(), prepared->tempids}));
  if (options_.on_applied && !cmd->request_id.empty()) options_.on_applied(cmd->request_id, *prepared);
  return Status::OK();
}

Status Replica::Record(raft::LogIndex index, const std::string& request_id, const ApplyOutcome& outcome) {
  const int64_t grp = I64(options_.raft.group.value());
  storage::SqliteTransaction txn(*log_db_);
  CAIRN_RETURN_IF_ERROR(txn.Begin());
  upsert_applied_.BindInt(1, grp);
  upsert_applied_.BindInt(2, I64(index.value()));
  upsert_applied_.BindInt(3, I64(store_->last_t().raw));
  CAIRN_RETURN_IF_ERROR(upsert_applied_.Run());
  bool new_request = !request_id.empty() && !outcomes_.count(request_id);
  if (new_request) {
    insert_request_.BindInt(1, grp);
    insert_request_.BindBlob(2, request_id);
    insert_request_.BindInt(3, I64(outcome.index.value()));
    insert_request_.BindInt(4, I64(outcome.t.raw));
    insert_request_.BindInt(5, static_cast<int64_t>(outcome.status.code()));
    insert_request_.BindText(6, outcome.status.message());
    insert_request_.BindBlob(7, EncodeTempids(outcome.tempids));
    CAIRN_RETURN_IF_ERROR(insert_request_.Run());
  }
  CAIRN_RETURN_IF_ERROR(txn.Commit());
  recorded_t_ = store_->last_t();
  if (new_request) outcomes_[request_id] = outcome;
  return Status::OK();
}

std::shared_ptr<const datalog::IndexSource> Replica::db() const {
  return std::make_shared<ReplicaSource>(index_, store_->attrs(), schema_);
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
