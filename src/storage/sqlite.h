// Sqlite / SqliteStatement: a thin RAII wrapper over the SQLite C API.
//
// Only src/storage includes this header's implementation details; the SQLite
// handles are opaque here so that sqlite3.h stays out of every other module.
// Every error becomes a Status: kCorruption for SQLITE_CORRUPT/SQLITE_NOTADB
// (with the file path), kIOError for everything else the OS or SQLite fails.
//
// Thread-safety: a Sqlite connection and its statements must be used by one
// thread at a time (callers serialize with a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace cairn::storage {

class Sqlite;

// A prepared statement. Bind parameters are 1-based, columns 0-based.
// Reset() makes it reusable; the destructor finalizes it.
class SqliteStatement {
 public:
  SqliteStatement() = default;
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  bool valid() const { return stmt_ != nullptr; }

  void BindInt(int index, int64_t v);
  void BindBlob(int index, std::string_view bytes);  // copied by SQLite
  void BindText(int index, std::string_view text);
  void BindNull(int index);

  // Advances: returns true if a row is available, false when done.
  // Errors (constraint, I/O, corruption) are returned as Status.
  Result<bool> Step();
  // Runs a statement that yields no rows (or ignores them), then resets it.
  Status Run();
  void Reset();

  int64_t ColumnInt(int col) const;
  std::string_view ColumnBlob(int col) const;  // valid until the next Step/Reset
  std::string_view ColumnText(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class Sqlite;
  SqliteStatement(Sqlite* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Sqlite* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Sqlite {
 public:
  enum class OpenMode { kReadWriteCreate, kReadWrite, kReadOnly };

  // Opens the file. Errors: IOError if it cannot be opened.
  static Result<std::unique_ptr<Sqlite>> Open(const std::string& path, OpenMode mode);
  ~Sqlite();
  Sqlite(const Sqlite&) = delete;
  Sqlite& operator=(const Sqlite&) = delete;

  const std::string& path() const { return path_; }

  // Executes one or more statements without results.
  Status Exec(std::string_view sql);
  Result<SqliteStatement> Prepare(std::string_view sql);
  // A single-row, single-integer query (e.g. "PRAGMA user_version").
  Result<int64_t> QueryInt(std::string_view sql);
  // VACUUM INTO `dest`: a consistent, compacted copy of the database as of
  // the last commit (works on a read-only connection; `dest` must not exist).
  Status VacuumInto(const std::string& dest);

  // BEGIN IMMEDIATE, COMMIT and ROLLBACK through statements prepared once
  // per connection (SqliteTransaction uses them; Exec would parse the SQL
  // every time, which a replica committing every round paid for).
  Status Begin();
  Status Commit();
  Status Rollback();

  // The Status for the connection's last error code `rc`, naming `what`.
  Status ErrorStatus(int rc, std::string_view what) const;
  int64_t changes() const;

 private:
  Sqlite(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // Runs one of the cached transaction statements, preparing it on first use.
  Status RunCached(std::unique_ptr<SqliteStatement>& stmt, std::string_view sql);
  sqlite3* db_ = nullptr;
  std::string path_;
  std::unique_ptr<SqliteStatement> begin_, commit_, rollback_;
};

// RAII transaction: BEGIN IMMEDIATE in Begin(); rolls back in the destructor
// unless Commit() succeeded.
class SqliteTransaction {
 public:
  explicit SqliteTransaction(Sqlite& db) : db_(db) {}
  ~SqliteTransaction();
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  Status Begin();
  Status Commit();

 private:
  Sqlite& db_;
  bool open_ = false;
};

}  // namespace cairn::storage
