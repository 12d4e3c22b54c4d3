#include "storage/datom_store.h"

#include <filesystem>
#include <system_error>
#include <utility>

#include "core/check.h"
#include "storage/sqlite.h"
#include "storage/value_codec.h"

namespace cairn::storage {

namespace {

constexpr std::string_view kSchemaSql = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE attrs (id INTEGER PRIMARY KEY, ident TEXT NOT NULL UNIQUE);
CREATE TABLE seqs (part INTEGER PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE txs (t INTEGER PRIMARY KEY, first_row INTEGER NOT NULL, datoms INTEGER NOT NULL);
CREATE TABLE log (row INTEGER PRIMARY KEY, e INTEGER NOT NULL, a INTEGER NOT NULL, v BLOB NOT NULL,
                  added INTEGER NOT NULL);
)sql";

// Log rows per multi-row INSERT: one statement execution (VDBE start, halt,
// reset) covers this many rows, which is most of SQLite's per-row cost in a
// bulk commit. 5 parameters a row stays far below SQLite's parameter limit.
constexpr size_t kLogRowsPerInsert = 50;

std::string MultiRowLogInsert(size_t rows) {
  std::string sql = "INSERT INTO log (row, e, a, v, added) VALUES ";
  for (size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?)";
  return sql;
}

// Partition counters per multi-row upsert: a bulk transaction advances one
// counter per partition it creates entities in (up to all of them), so they go
// like the log rows, a block per statement execution.
constexpr size_t kSeqRowsPerUpsert = 50;

std::string MultiRowSeqUpsert(size_t rows) {
  std::string sql = "INSERT OR REPLACE INTO seqs (part, next) VALUES ";
  for (size_t i = 0; i < rows; ++i) sql += i == 0 ? "(?, ?)" : ", (?, ?)";
  return sql;
}

int64_t ToSql(uint64_t x) { return static_cast<int64_t>(x); }
uint64_t FromSql(int64_t x) { return static_cast<uint64_t>(x); }

}  // namespace

struct DatomStore::Statements {
  SqliteStatement insert_log;
  SqliteStatement insert_log_multi;  // kLogRowsPerInsert rows
  SqliteStatement insert_attr;
  SqliteStatement upsert_seq;
  SqliteStatement upsert_seq_multi;  // kSeqRowsPerUpsert rows
  SqliteStatement insert_tx;
  SqliteStatement update_last_t;
  SqliteStatement read_txs;
  SqliteStatement read_log;
};

DatomStore::DatomStore(std::unique_ptr<Sqlite> db) : db_(std::move(db)), path_(db_->path()) {}
DatomStore::~DatomStore() {
  // A kept-open transaction holds only whole, successful batches: commit it.
  if (open_txn_) (void)open_txn_->Commit();
  open_txn_.reset();
  stmts_.reset();  // finalize statements before closing the connection
  db_.reset();
}

Status DatomStore::Corrupt(const std::string& what) const {
  return Status::Corruption(path_ + ": not a valid Cairn database: " + what);
}

Result<std::unique_ptr<DatomStore>> DatomStore::Open(const std::string& path, const StoreOptions& options) {
  std::error_code ec;
  bool exists = std::filesystem::exists(path, ec);
  if (!exists && !options.create_if_missing) return Status::IOError(path + ": database does not exist");
  if (exists && std::filesystem::is_directory(path, ec)) return Status::IOError(path + ": is a directory");
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Sqlite> db, Sqlite::Open(path, Sqlite::OpenMode::kReadWriteCreate));
  std::unique_ptr<DatomStore> store(new DatomStore(std::move(db)));
  Sqlite& sql = *store->db_;

  // Reading the header first: a non-SQLite file fails here with NOTADB.
  auto app_id = sql.QueryInt("PRAGMA application_id");
  if (!app_id.ok()) return app_id.status().code() == StatusCode::kCorruption ? app_id.status() : store->Corrupt(app_id.status().message());
  if (*app_id == 0) {
    CAIRN_ASSIGN_OR_RETURN(int64_t tables, sql.QueryInt("SELECT count(*) FROM sqlite_master"));
    if (tables != 0) return store->Corrupt("a SQLite database of another application");
    CAIRN_RETURN_IF_ERROR(sql.Exec("PRAGMA journal_mode=WAL"));
    CAIRN_RETURN_IF_ERROR(store->Initialize(options));
  } else if (*app_id != kApplicationId) {
    return store->Corrupt("a SQLite database of another application (application_id " + std::to_string(*app_id) + ")");
  }
  CAIRN_ASSIGN_OR_RETURN(int64_t version, sql.QueryInt("PRAGMA user_version"));
  if (version > kFormatVersion)
    return store->Corrupt("format version " + std::to_string(version) + " is newer than this build supports (" +
                          std::to_string(kFormatVersion) + ")");
  if (version < 1) return store->Corrupt("missing format version");

  {
    CAIRN_ASSIGN_OR_RETURN(SqliteStatement mode, sql.Prepare("PRAGMA journal_mode=WAL"));
    CAIRN_ASSIGN_OR_RETURN(bool row, mode.Step());
    if (!row || mode.ColumnText(0) != "wal") return Status::IOError(path + ": cannot enable WAL mode");
  }
  CAIRN_RETURN_IF_ERROR(sql.Exec(options.sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
  // Integrity: SQLite's own structural check (pages, b-trees), then ours.
  if (options.verify) {
    CAIRN_ASSIGN_OR_RETURN(SqliteStatement check, sql.Prepare("PRAGMA quick_check(5)"));
    CAIRN_ASSIGN_OR_RETURN(bool row, check.Step());
    if (!row) return store->Corrupt("integrity check returned nothing");
    std::string first(check.ColumnText(0));
    if (first != "ok") return store->Corrupt("SQLite integrity check: " + first);
  }
  CAIRN_RETURN_IF_ERROR(store->Load(options.verify));
  return store;
}

Status DatomStore::Initialize(const StoreOptions& options) {
  if (options.partitions == 0 || options.partitions > EntityId::kMaxPartitions)
    return Status::InvalidArgument("partitions must be in 1.." + std::to_string(EntityId::kMaxPartitions));
  SqliteTransaction txn(*db_);
  CAIRN_RETURN_IF_ERROR(txn.Begin());
  CAIRN_RETURN_IF_ERROR(db_->Exec(kSchemaSql));
  CAIRN_RETURN_IF_ERROR(db_->Exec("INSERT INTO meta VALUES ('format', " + std::to_string(kFormatVersion) +
                                  "), ('partitions', " + std::to_string(options.partitions) +
                                  "), ('last_t', 0)"));
  CAIRN_RETURN_IF_ERROR(db_->Exec("PRAGMA application_id=" + std::to_string(kApplicationId)));
  CAIRN_RETURN_IF_ERROR(db_->Exec("PRAGMA user_version=" + std::to_string(kFormatVersion)));
  return txn.Commit();
}

Status DatomStore::Load(bool verify) {
  Sqlite& sql = *db_;
  auto meta_int = [&](std::string_view key) -> Result<int64_t> {
    auto r = sql.QueryInt("SELECT value FROM meta WHERE key = '" + std::string(key) + "'");
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) return Corrupt("meta has no '" + std::string(key) + "'");
    if (!r.ok()) return Corrupt(r.status().message());
    return r;
  };
  CAIRN_ASSIGN_OR_RETURN(int64_t partitions, meta_int("partitions"));
  if (partitions <= 0 || partitions > EntityId::kMaxPartitions) return Corrupt("bad partition count");
  partitions_ = static_cast<uint32_t>(partitions);
  CAIRN_ASSIGN_OR_RETURN(int64_t last_t, meta_int("last_t"));
  if (last_t < 0) return Corrupt("bad last_t");
  last_t_ = TxTime{FromSql(last_t)};

  auto attrs = std::make_shared<AttrTable>();
  attrs->names.emplace_back();
  {
    auto stmt = sql.Prepare("SELECT id, ident FROM attrs ORDER BY id");
    if (!stmt.ok()) return Corrupt(stmt.status().message());
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      int64_t id = stmt->ColumnInt(0);
      std::string_view ident = stmt->ColumnText(1);
      if (id != static_cast<int64_t>(attrs->names.size()) || ident.empty())
        return Corrupt("attribute table has a gap or an empty name at id " + std::to_string(id));
      Keyword k = Keyword::Intern(ident);
      attrs->names.push_back(k);
      attrs->ids.emplace(k, static_cast<uint32_t>(id));
    }
  }
  attrs_ = std::move(attrs);
  {
    auto stmt = sql.Prepare("SELECT part, next FROM seqs");
    if (!stmt.ok()) return Corrupt(stmt.status().message());
    while (true) {
      CAIRN_ASSIGN_OR_RETURN(bool row, stmt->Step());
      if (!row) break;
      int64_t part = stmt->ColumnInt(0), next = stmt->ColumnInt(1);
      if (part < 0 || part >= partitions || next < 0) return Corrupt("bad sequence row for partition " + std::to_string(part));
      next_seqs_[static_cast<uint32_t>(part)] = static_cast<uint64_t>(next);
    }
  }
  // The newest transaction is the recorded last t; verified, the log and the
  // transaction rows also agree on the number of datoms (a scan of both).
  {
    auto stmt = sql.Prepare(
        "SELECT (SELECT coalesce(max(row), 0) FROM log), (SELECT coalesce(max(t), 0) FROM txs)" +
        std::string(verify ? ", (SELECT count(*) FROM log), (SELECT coalesce(sum(datoms), 0) FROM txs)" : ""));
    if (!stmt.ok()) return Corrupt(stmt.status().message());
    CAIRN_ASSIGN_OR_RETURN(bool row, stmt->Step());
    CAIRN_CHECK(row);
    const int64_t max_row = stmt->ColumnInt(0), max_t = stmt->ColumnInt(1);
    if (verify) {
      const int64_t log_rows = stmt->ColumnInt(2), tx_datoms = stmt->ColumnInt(3);
      if (log_rows != tx_datoms || max_row != log_rows)
        return Corrupt("log has " + std::to_string(log_rows) + " datoms (last row " + std::to_string(max_row) +
                       ") but transactions record " + std::to_string(tx_datoms));
    }
    if (max_t != last_t) return Corrupt("last transaction " + std::to_string(max_t) + " != recorded last t " + std::to_string(last_t));
    next_row_ = max_row + 1;
  }

  stmts_ = std::make_unique<Statements>();
  auto prep = [&](SqliteStatement* out, std::string_view text) -> Status {
    auto s = sql.Prepare(text);
    if (!s.ok()) return Corrupt(s.status().message());
    *out = std::move(*s);
    return Status::OK();
  };
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->insert_log, "INSERT INTO log (row, e, a, v, added) VALUES (?, ?, ?, ?, ?)"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->insert_log_multi, MultiRowLogInsert(kLogRowsPerInsert)));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->insert_attr, "INSERT INTO attrs (id, ident) VALUES (?, ?)"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->upsert_seq, "INSERT OR REPLACE INTO seqs (part, next) VALUES (?, ?)"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->upsert_seq_multi, MultiRowSeqUpsert(kSeqRowsPerUpsert)));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->insert_tx, "INSERT INTO txs (t, first_row, datoms) VALUES (?, ?, ?)"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->update_last_t, "UPDATE meta SET value = ?1 WHERE key = 'last_t' AND value = ?2"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->read_txs,
                             "SELECT t, first_row, datoms FROM txs WHERE t > ?1 AND t <= ?2 ORDER BY t"));
  CAIRN_RETURN_IF_ERROR(prep(&stmts_->read_log,
                             "SELECT row, e, a, v, added FROM log WHERE row >= ?1 AND row < ?2 ORDER BY row"));
  return Status::OK();
}

Result<std::vector<IndexEntry>> DatomStore::Commit(const CommitBatch& batch) {
  if (!(batch.t > last_t_))
    return Status::Internal("commit t " + std::to_string(batch.t.raw) + " not after last t " + std::to_string(last_t_.raw));
  // Inside Transaction() the enclosing transaction commits (or rolls back)
  // everything; here only the standalone case owns one.
  if (!in_transaction_ && open_txn_) CAIRN_RETURN_IF_ERROR(Flush());
  SqliteTransaction txn(*db_);
  if (!in_transaction_) CAIRN_RETURN_IF_ERROR(txn.Begin());

  std::shared_ptr<AttrTable> new_attrs;  // copy-on-write when a new attribute appears
  std::vector<IndexEntry> entries;
  entries.reserve(batch.datoms.size());
  std::string encoded;
  int64_t row = next_row_;
  const size_t n = batch.datoms.size();
  for (size_t i = 0; i < n; ++i) {
    const Datom& d = batch.datoms[i];
    if (!d.a.valid()) return Status::InvalidArgument("datom without attribute");
    const AttrTable& table = new_attrs ? *new_attrs : *attrs_;
    std::optional<uint32_t> aid = table.Find(d.a);
    if (!aid) {
      if (!new_attrs) new_attrs = std::make_shared<AttrTable>(*attrs_);
      aid = static_cast<uint32_t>(new_attrs->names.size());
      new_attrs->names.push_back(d.a);
      new_attrs->ids.emplace(d.a, *aid);
      stmts_->insert_attr.BindInt(1, *aid);
      stmts_->insert_attr.BindText(2, d.a.str());
      CAIRN_RETURN_IF_ERROR(stmts_->insert_attr.Run());
    }
    encoded.clear();
    EncodeValue(d.v, &encoded);
    // Rows go in blocks of kLogRowsPerInsert through the multi-row
    // statement; the tail of a batch goes one row at a time.
    const size_t block_start = i - i % kLogRowsPerInsert;
    const bool multi = block_start + kLogRowsPerInsert <= n;
    SqliteStatement& ins = multi ? stmts_->insert_log_multi : stmts_->insert_log;
    const int base = multi ? static_cast<int>(5 * (i - block_start)) : 0;
    ins.BindInt(base + 1, row++);
    ins.BindInt(base + 2, ToSql(d.e.raw));
    ins.BindInt(base + 3, *aid);
    ins.BindBlob(base + 4, encoded);
    ins.BindInt(base + 5, d.added ? 1 : 0);
    if (!multi || i + 1 == block_start + kLogRowsPerInsert) CAIRN_RETURN_IF_ERROR(ins.Run());
    entries.push_back(IndexEntry{d.e, batch.t, d.v, *aid, d.added});
  }
  for (const auto& [part, next] : batch.next_seqs) {
    if (part >= partitions_) return Status::InvalidArgument("partition " + std::to_string(part) + " out of range");
  }
  {
    // Full blocks of kSeqRowsPerUpsert through the multi-row statement, the
    // tail one row at a time (as the log rows above).
    const size_t m = batch.next_seqs.size();
    size_t i = 0;
    for (const auto& [part, next] : batch.next_seqs) {
      const size_t block_start = i - i % kSeqRowsPerUpsert;
      const bool multi = block_start + kSeqRowsPerUpsert <= m;
      SqliteStatement& up = multi ? stmts_->upsert_seq_multi : stmts_->upsert_seq;
      const int base = multi ? static_cast<int>(2 * (i - block_start)) : 0;
      up.BindInt(base + 1, part);
      up.BindInt(base + 2, ToSql(next));
      if (!multi || i + 1 == block_start + kSeqRowsPerUpsert) CAIRN_RETURN_IF_ERROR(up.Run());
      ++i;
    }
  }
  stmts_->insert_tx.BindInt(1, ToSql(batch.t.raw));
  stmts_->insert_tx.BindInt(2, next_row_);
  stmts_->insert_tx.BindInt(3, static_cast<int64_t>(batch.datoms.size()));
  CAIRN_RETURN_IF_ERROR(stmts_->insert_tx.Run());
  stmts_->update_last_t.BindInt(1, ToSql(batch.t.raw));
  stmts_->update_last_t.BindInt(2, ToSql(last_t_.raw));
  CAIRN_RETURN_IF_ERROR(stmts_->update_last_t.Run());
  if (db_->changes() != 1)
    return Status::Conflict(path_ + ": the database was changed by another writer; reopen it");
  if (!in_transaction_) CAIRN_RETURN_IF_ERROR(txn.Commit());

  // Durable (or, inside Transaction(), part of it): publish the new state.
  last_t_ = batch.t;
  next_row_ = row;
  for (const auto& [part, next] : batch.next_seqs) next_seqs_[part] = next;
  if (new_attrs) attrs_ = std::move(new_attrs);
  return entries;
}

Status DatomStore::Transaction(const std::function<Status()>& fn, bool keep_open) {
  if (in_transaction_) return Status::InvalidArgument(path_ + ": DatomStore::Transaction is not reentrant");
  if (!open_txn_) {
    // What a rollback restores: the last committed state.
    committed_ = Committed{last_t_, next_row_, next_seqs_, attrs_};
    auto txn = std::make_unique<SqliteTransaction>(*db_);
    CAIRN_RETURN_IF_ERROR(txn->Begin());
    open_txn_ = std::move(txn);
  }
  in_transaction_ = true;
  Status s = fn();
  in_transaction_ = false;
  if (!s.ok()) {
    RollBack();  // kept batches too
    return s;
  }
  return keep_open ? Status::OK() : Flush();
}

void DatomStore::RollBack() {
  open_txn_.reset();  // its destructor rolls back
  last_t_ = committed_.last_t;
  next_row_ = committed_.next_row;
  next_seqs_ = committed_.next_seqs;
  attrs_ = committed_.attrs;
}

Status DatomStore::Flush() {
  if (!open_txn_) return Status::OK();
  Status s = open_txn_->Commit();
  if (!s.ok()) {
    RollBack();
    return s;
  }
  open_txn_.reset();
  return Status::OK();
}

Status DatomStore::CopyTo(const std::string& dest) {
  if (in_transaction_) return Status::InvalidArgument(path_ + ": CopyTo inside a transaction");
  CAIRN_RETURN_IF_ERROR(Flush());
  std::error_code ec;
  if (std::filesystem::exists(dest, ec)) return Status::IOError(dest + ": already exists");
  return db_->VacuumInto(dest);
}

Status DatomStore::ReadLog(TxTime after, TxTime upto, const std::function<void(const IndexEntry&)>& fn) {
  // The transactions in range, then their rows: a transaction's datoms are
  // the rows first_row .. first_row + datoms - 1, and consecutive
  // transactions' rows are adjacent (checked as we go).
  struct Tx {
    TxTime t;
    int64_t first_row, datoms;
  };
  std::vector<Tx> txs;
  {
    SqliteStatement& stmt = stmts_->read_txs;
    stmt.BindInt(1, ToSql(after.raw));
    stmt.BindInt(2, ToSql(upto.raw));
    Status status;
    while (true) {
      Result<bool> row = stmt.Step();
      if (!row.ok()) {
        status = row.status();
        break;
      }
      if (!*row) break;
      Tx tx{TxTime{FromSql(stmt.ColumnInt(0))}, stmt.ColumnInt(1), stmt.ColumnInt(2)};
      if (tx.datoms < 0 || (!txs.empty() && tx.first_row != txs.back().first_row + txs.back().datoms)) {
        status = Corrupt("transaction " + std::to_string(tx.t.raw) + " does not start where the previous one ends");
        break;
      }
      txs.push_back(tx);
    }
    stmt.Reset();
    CAIRN_RETURN_IF_ERROR(status);
  }
  if (txs.empty()) return Status::OK();
  SqliteStatement& stmt = stmts_->read_log;
  stmt.BindInt(1, txs.front().first_row);
  stmt.BindInt(2, txs.back().first_row + txs.back().datoms);
  std::shared_ptr<const AttrTable> attrs = attrs_;
  Status status;
  size_t k = 0;
  int64_t expect_row = txs.front().first_row;
  while (true) {
    Result<bool> row = stmt.Step();
    if (!row.ok()) {
      status = row.status();
      break;
    }
    if (!*row) break;
    int64_t r = stmt.ColumnInt(0);
    if (r != expect_row) {
      status = Corrupt("log row " + std::to_string(expect_row) + " is missing");
      break;
    }
    ++expect_row;
    while (k < txs.size() && r >= txs[k].first_row + txs[k].datoms) ++k;
    int64_t aid = stmt.ColumnInt(2);
    if (aid <= 0 || aid >= static_cast<int64_t>(attrs->names.size())) {
      status = Corrupt("log row " + std::to_string(r) + " refers to unknown attribute id " + std::to_string(aid));
      break;
    }
    Result<Value> v = DecodeValue(stmt.ColumnBlob(3));
    if (!v.ok()) {
      status = Corrupt("log row " + std::to_string(r) + ": " + v.status().message());
      break;
    }
    fn(IndexEntry{EntityId{FromSql(stmt.ColumnInt(1))}, txs[k].t, std::move(*v), static_cast<uint32_t>(aid),
                  stmt.ColumnInt(4) != 0});
  }
  stmt.Reset();
  if (status.ok() && expect_row != txs.back().first_row + txs.back().datoms)
    status = Corrupt("log ends at row " + std::to_string(expect_row - 1) + " but its transactions need more");
  return status;
}

}  // namespace cairn::storage
