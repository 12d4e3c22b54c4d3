#include "cairn/status.h"

#include <cstdio>
#include <cstdlib>

#include "core/check.h"

namespace cairn {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kConflict: return "Conflict";
    case StatusCode::kNotLeader: return "NotLeader";
    case StatusCode::kWrongShard: return "WrongShard";
    case StatusCode::kTimeout: return "Timeout";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kCancelled: return "Cancelled";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  std::string m(context);
  m += ": ";
  m += message_;
  return Status(code_, std::move(m));
}

namespace internal {
void CheckFailed(const char* file, int line, const char* expr, const char* msg) {
  std::fprintf(stderr, "CAIRN_CHECK failed at %s:%d: %s%s%s\n", file, line, expr, msg ? " — " : "",
               msg ? msg : "");
  std::fflush(stderr);
  std::abort();
}
}  // namespace internal

}  // namespace cairn
