#include "storage/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "core/check.h"

namespace cairn::storage {

namespace {
bool IsCorruptionCode(int rc) {
  int primary = rc & 0xFF;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}
}  // namespace

SqliteStatement::~SqliteStatement() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

void SqliteStatement::BindInt(int index, int64_t v) {
  CAIRN_CHECK(sqlite3_bind_int64(stmt_, index, v) == SQLITE_OK);
}
void SqliteStatement::BindBlob(int index, std::string_view bytes) {
  // A zero-length blob must not bind as NULL: pass a non-null pointer.
  static const char kEmpty = 0;
  CAIRN_CHECK(sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(), bytes.size(),
                                  SQLITE_TRANSIENT) == SQLITE_OK);
}
void SqliteStatement::BindText(int index, std::string_view text) {
  CAIRN_CHECK(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8) ==
              SQLITE_OK);
}
void SqliteStatement::BindNull(int index) { CAIRN_CHECK(sqlite3_bind_null(stmt_, index) == SQLITE_OK); }

Result<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = db_->ErrorStatus(rc, sqlite3_sql(stmt_));
  sqlite3_reset(stmt_);
  return s;
}

Status SqliteStatement::Run() {
  Result<bool> r = Step();
  while (r.ok() && *r) r = Step();
  if (!r.ok()) return r.status();
  Reset();
  return Status::OK();
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t SqliteStatement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
std::string_view SqliteStatement::ColumnBlob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return {};
  return {static_cast<const char*>(p), static_cast<size_t>(n)};
}
std::string_view SqliteStatement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (p == nullptr) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}
bool SqliteStatement::ColumnIsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Result<std::unique_ptr<Sqlite>> Sqlite::Open(const std::string& path, OpenMode mode) {
  int flags = SQLITE_OPEN_NOMUTEX;
  switch (mode) {
    case OpenMode::kReadWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE; break;
    case OpenMode::kReadWrite: flags |= SQLITE_OPEN_READWRITE; break;
    case OpenMode::kReadOnly: flags |= SQLITE_OPEN_READONLY; break;
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    if (IsCorruptionCode(rc)) return Status::Corruption(path + ": " + msg);
    return Status::IOError(path + ": cannot open: " + msg);
  }
  sqlite3_extended_result_codes(db, 1);
  // Wait instead of failing when another connection briefly holds a lock.
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<Sqlite>(new Sqlite(db, path));
}

Sqlite::~Sqlite() {
  begin_.reset();  // finalized before the connection closes
  commit_.reset();
  rollback_.reset();
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Status Sqlite::RunCached(std::unique_ptr<SqliteStatement>& stmt, std::string_view sql) {
  if (!stmt) {
    Result<SqliteStatement> prepared = Prepare(sql);
    if (!prepared.ok()) return prepared.status();
    stmt = std::make_unique<SqliteStatement>(std::move(*prepared));
  }
  Status s = stmt->Run();
  if (!s.ok()) stmt->Reset();  // reusable after an error (e.g. a busy COMMIT)
  return s;
}

Status Sqlite::Begin() { return RunCached(begin_, "BEGIN IMMEDIATE"); }
Status Sqlite::Commit() { return RunCached(commit_, "COMMIT"); }
Status Sqlite::Rollback() { return RunCached(rollback_, "ROLLBACK"); }

Status Sqlite::ErrorStatus(int rc, std::string_view what) const {
  std::string msg = path_ + ": " + sqlite3_errmsg(db_) + " (in: " + std::string(what.substr(0, 80)) + ")";
  if (IsCorruptionCode(rc)) return Status::Corruption(std::move(msg));
  int primary = rc & 0xFF;
  if (primary == SQLITE_CONSTRAINT) return Status::Conflict(std::move(msg));
  return Status::IOError(std::move(msg));
}

Status Sqlite::Exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (err != nullptr) sqlite3_free(err);
  if (rc != SQLITE_OK) return ErrorStatus(rc, sql);
  return Status::OK();
}

Result<SqliteStatement> Sqlite::Prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return ErrorStatus(rc, sql);
  return SqliteStatement(this, stmt);
}

Result<int64_t> Sqlite::QueryInt(std::string_view sql) {
  CAIRN_ASSIGN_OR_RETURN(SqliteStatement stmt, Prepare(sql));
  CAIRN_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return Status::NotFound(path_ + ": no row for: " + std::string(sql));
  return stmt.ColumnInt(0);
}

Status Sqlite::VacuumInto(const std::string& dest) {
  std::string quoted;
  for (char c : dest) {
    quoted += c;
    if (c == '\'') quoted += '\'';
  }
  return Exec("VACUUM INTO '" + quoted + "'");
}

int64_t Sqlite::changes() const { return sqlite3_changes64(db_); }

SqliteTransaction::~SqliteTransaction() {
  if (open_) (void)db_.Rollback();
}

Status SqliteTransaction::Begin() {
  CAIRN_CHECK(!open_);
  CAIRN_RETURN_IF_ERROR(db_.Begin());
  open_ = true;
  return Status::OK();
}

Status SqliteTransaction::Commit() {
  CAIRN_CHECK(open_);
  Status s = db_.Commit();
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace cairn::storage
