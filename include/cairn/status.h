// Status and Result<T>: errors as values (STYLE 2).
//
// A Status is either OK or carries a code a caller can act on plus a message
// for humans. Result<T> holds a T or a non-OK Status. Both are cheap to move
// and [[nodiscard]]. Broken invariants are not errors: they crash through
// CAIRN_CHECK (src/core/check.h).
//
// Thread-safety: values; no shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cairn {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // bad input: malformed EDN, wrong type, unknown attribute...
  kNotFound,         // a lookup ref, key or entity that does not exist
  kConflict,         // CAS mismatch, uniqueness violation, lock held
  kNotLeader,        // retry on the leader named in the message/hint
  kWrongShard,       // the key does not live on this shard (shard map moved)
  kTimeout,          // deadline passed; the operation may or may not have applied
  kUnavailable,      // no quorum / shutting down; retry later
  kCorruption,       // stored data failed a check
  kIOError,          // the OS or SQLite failed to read or write
  kCancelled,        // the caller cancelled (e.g. a query timeout)
  kInternal,         // a bug surfaced as an error at an API edge
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status NotLeader(std::string m) { return {StatusCode::kNotLeader, std::move(m)}; }
  static Status WrongShard(std::string m) { return {StatusCode::kWrongShard, std::move(m)}; }
  static Status Timeout(std::string m) { return {StatusCode::kTimeout, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status IOError(std::string m) { return {StatusCode::kIOError, std::move(m)}; }
  static Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: 1:7: unexpected ')'" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context + ": "`.
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Holds either a value or an error. Accessing value() of an error crashes.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}     // NOLINT
  Result(Status status) : data_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    if (std::get<1>(data_).ok()) data_.template emplace<1>(StatusCode::kInternal, "Result from OK status");
  }

  bool ok() const { return data_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(data_);
  }
  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace cairn

#define CAIRN_CONCAT_INNER_(a, b) a##b
#define CAIRN_CONCAT_(a, b) CAIRN_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function if `expr` is not OK.
#define CAIRN_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::cairn::Status cairn_status_ = (expr);      \
    if (!cairn_status_.ok()) return cairn_status_; \
  } while (0)

// `CAIRN_ASSIGN_OR_RETURN(auto x, F());` declares x from a Result or returns its error.
#define CAIRN_ASSIGN_OR_RETURN(lhs, expr) \
  CAIRN_ASSIGN_OR_RETURN_IMPL_(CAIRN_CONCAT_(cairn_result_, __LINE__), lhs, expr)
#define CAIRN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
