// Linearizability checker for a history of register operations, in the style
// of Wing & Gong with Lowe's memoization: search for an order of operations
// that respects real time (an operation that returned before another was
// invoked comes first) and the register's sequential semantics.
//
// Operations that never returned (the client timed out or the node crashed)
// may take effect at any point after their invocation or not at all. The
// search is exponential in the worst case; `budget` bounds the number of
// states explored. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace cairn::sim {

struct RegisterOp {
  enum class Kind : uint8_t { kRead, kWrite, kCas };
  Kind kind = Kind::kRead;
  int64_t value = 0;     // write: new value; cas: new value
  int64_t expected = 0;  // cas: expected value
  int64_t result = 0;    // read: observed value; cas: 1 if it swapped
  uint64_t invoke = 0;   // logical time of invocation
  uint64_t ret = kPending;  // logical time of the response, or kPending
  int client = 0;

  static constexpr uint64_t kPending = std::numeric_limits<uint64_t>::max();
  bool completed() const { return ret != kPending; }
  std::string ToString() const;
};

enum class LinearizableResult { kYes, kNo, kUnknown };

// Checks one key's history. `initial` is the register's value before any op.
// On kNo, `why` describes the history.
LinearizableResult CheckRegister(std::vector<RegisterOp> ops, int64_t initial, uint64_t budget,
                                 std::string* why);

}  // namespace cairn::sim
