// DatomStore: Cairn's datoms in one SQLite file (WAL mode).
//
// The file holds the append-only transaction log (every assertion and
// retraction with its t: the full history, in commit order), the attribute
// table (keyword <-> small integer id), one row per transaction, the entity
// sequence counters per partition and the meta row (format version, number
// of partitions, last t). docs/storage.md describes the format. The access
// paths (EAVT, AEVT, AVET, VAET) are built in memory from the log at open and
// kept up to date by the caller (see MemoryIndex), so a commit writes each
// datom exactly once.
//
// Commit() is one SQLite transaction (BEGIN IMMEDIATE ... COMMIT) and, with
// sync on, durable (fsynced WAL, synchronous=FULL) when it returns OK; on any
// error nothing of it is visible and the store is unchanged.
//
// Transaction(fn) groups work into ONE SQLite transaction: every Commit() fn
// makes and every row fn writes to the owner's own tables through sql()
// become durable together (one fsync), or none of them does. A shard replica
// uses it to store "applied up to log index i", its request outcomes and the
// datoms of a whole batch of log entries atomically (ARCHITECTURE §5).
//
// Open() validates the file: not a SQLite file, not a Cairn file, a newer
// format, a failed SQLite integrity check, or a log that disagrees with its
// transaction rows are all Corruption naming the path; never a crash.
//
// Thread-safety: not thread-safe; the owner serializes calls (the embedded
// Database holds its transaction mutex). attrs() snapshots are immutable and
// may be read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "storage/memory_index.h"

namespace cairn::storage {

class Sqlite;
class SqliteStatement;
class SqliteTransaction;

// Keyword <-> attribute id. Immutable once published.
struct AttrTable {
  std::vector<Keyword> names;  // by id; names[0] unused (ids start at 1)
  std::unordered_map<Keyword, uint32_t> ids;

  Keyword Name(uint32_t aid) const { return aid < names.size() ? names[aid] : Keyword(); }
  std::optional<uint32_t> Find(Keyword k) const {
    auto it = ids.find(k);
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
};

struct StoreOptions {
  bool create_if_missing = true;
  bool sync = true;             // synchronous=FULL; false = NORMAL (not durable on power loss)
  uint32_t partitions = 256;    // used when creating; an existing file keeps its own
  // Open verifies an existing file: SQLite's quick_check (every page) and
  // that the log's datoms and the transaction rows agree in number (a scan
  // of both tables); tens of ms per 100,000 datoms. A replica reopening a
  // file it verified and read whole just before (an installed snapshot)
  // turns it off; the header, format, attributes, sequences and the newest
  // row and transaction are still read.
  bool verify = true;
};

// One transaction's writes.
struct CommitBatch {
  TxTime t;
  std::span<const Datom> datoms;  // not owned
  // Partition -> next sequence number to hand out, for partitions that changed.
  std::map<uint32_t, uint64_t> next_seqs;
};

class DatomStore {
 public:
  static constexpr int kFormatVersion = 1;
  static constexpr int32_t kApplicationId = 0x4341524E;  // "CARN"

  static Result<std::unique_ptr<DatomStore>> Open(const std::string& path, const StoreOptions& options);
  ~DatomStore();

  const std::string& path() const { return path_; }
  uint32_t partitions() const { return partitions_; }
  TxTime last_t() const { return last_t_; }
  // Next sequence number per partition (partitions never used are absent).
  const std::map<uint32_t, uint64_t>& next_seqs() const { return next_seqs_; }
  std::shared_ptr<const AttrTable> attrs() const { return attrs_; }
  uint64_t datom_count() const { return next_row_ - 1; }

  // Writes one transaction atomically and durably. REQUIRES batch.t > last_t().
  // Returns the datoms as index entries (attribute ids assigned). Errors:
  // IOError (disk), Conflict if another process wrote the file meanwhile.
  Result<std::vector<IndexEntry>> Commit(const CommitBatch& batch);

  // Runs fn inside one SQLite transaction (see the header comment). Inside
  // fn, Commit() writes without committing and the new state (last_t(),
  // next_seqs(), attrs()) is visible at once, so successive Commit()s chain.
  // If fn returns an error, or the final COMMIT fails, the transaction rolls
  // back and the store's state is what it was before fn; the error is
  // returned. Not reentrant (InvalidArgument if nested).
  //
  // keep_open: when fn succeeds the SQLite transaction is NOT committed; it
  // stays open, the next Transaction() calls add to it, and Flush() (or
  // CopyTo, or closing the store) commits it. Until then none of it is on
  // disk. An error in a later fn (or a failed Flush) rolls back the whole
  // open transaction — every kept batch — and the store's state returns to
  // the last committed one. A shard replica keeps batches open and commits
  // every few milliseconds: its Raft log is the durable record, the datom
  // file a replayable materialization of it (shard/replica.h).
  Status Transaction(const std::function<Status()>& fn, bool keep_open = false);
  // Commits the transaction Transaction(keep_open) left open; OK if none.
  Status Flush();
  // True while a kept-open transaction holds work not yet committed.
  bool unflushed() const { return open_txn_ != nullptr; }
  bool in_transaction() const { return in_transaction_; }
  // The connection, for the owner's own tables in the same file (e.g. the
  // replica's replica_* tables). Never write the store's own tables (meta,
  // attrs, seqs, txs, log) through it. Valid while the store is open.
  Sqlite& sql() { return *db_; }
  // Writes a consistent copy of the database to `dest` (which must not
  // exist) with VACUUM INTO: a compact single file, no WAL. Not inside
  // Transaction(); a kept-open transaction is flushed first. Errors: IOError.
  Status CopyTo(const std::string& dest);

  // Calls fn for each logged datom with after < t <= upto, in commit order.
  Status ReadLog(TxTime after, TxTime upto, const std::function<void(const IndexEntry&)>& fn);
  // Every logged datom, in commit order.
  Status ReadAll(const std::function<void(const IndexEntry&)>& fn) { return ReadLog(TxTime{0}, TxTime::Max(), fn); }

 private:
  explicit DatomStore(std::unique_ptr<Sqlite> db);
  Status Initialize(const StoreOptions& options);
  Status Load(bool verify);
  Status Corrupt(const std::string& what) const;
  // Rolls the open transaction back; the state returns to committed_.
  void RollBack();

  std::unique_ptr<Sqlite> db_;
  std::string path_;
  uint32_t partitions_ = 0;
  TxTime last_t_;
  int64_t next_row_ = 1;
  std::map<uint32_t, uint64_t> next_seqs_;
  std::shared_ptr<const AttrTable> attrs_;
  bool in_transaction_ = false;
  // Transaction(keep_open): the open SQLite transaction and the state a
  // rollback of it restores (the last committed one).
  struct Committed {
    TxTime last_t;
    int64_t next_row = 1;
    std::map<uint32_t, uint64_t> next_seqs;
    std::shared_ptr<const AttrTable> attrs;
  };
  std::unique_ptr<SqliteTransaction> open_txn_;
  Committed committed_;
  struct Statements;
  std::unique_ptr<Statements> stmts_;
};

}  // namespace cairn::storage
