#include "linearizability.h"

#include <algorithm>
#include <unordered_set>

namespace cairn::sim {

std::string RegisterOp::ToString() const {
  std::string s = "c" + std::to_string(client) + " ";
  switch (kind) {
    case Kind::kRead: s += "read()->" + std::to_string(result); break;
    case Kind::kWrite: s += "write(" + std::to_string(value) + ")"; break;
    case Kind::kCas:
      s += "cas(" + std::to_string(expected) + "," + std::to_string(value) + ")->" +
           (completed() ? std::to_string(result) : "?");
      break;
  }
  s += " [" + std::to_string(invoke) + "," + (completed() ? std::to_string(ret) : "inf") + "]";
  return s;
}

namespace {

struct StateKey {
  std::vector<uint64_t> bits;
  int64_t value;
  bool operator==(const StateKey&) const = default;
};
struct StateKeyHash {
  size_t operator()(const StateKey& k) const {
    uint64_t h = static_cast<uint64_t>(k.value) * 0x9e3779b97f4a7c15ULL;
    for (uint64_t b : k.bits) h = (h ^ b) * 0x100000001b3ULL + (h >> 29);
    return static_cast<size_t>(h);
  }
};

class Search {
 public:
  Search(std::vector<RegisterOp> ops, uint64_t budget) : ops_(std::move(ops)), budget_(budget) {
    bits_.assign((ops_.size() + 63) / 64, 0);
    for (const RegisterOp& op : ops_) remaining_completed_ += op.completed();
  }

  LinearizableResult Run(int64_t initial) {
    if (Dfs(initial)) return LinearizableResult::kYes;
    return exhausted_ ? LinearizableResult::kUnknown : LinearizableResult::kNo;
  }

 private:
  bool Linearized(size_t i) const { return bits_[i / 64] >> (i % 64) & 1; }
  void Flip(size_t i) { bits_[i / 64] ^= uint64_t{1} << (i % 64); }

  // Applies op to `value`; returns false if the op's recorded outcome is
  // impossible from that state.
  bool Apply(const RegisterOp& op, int64_t value, int64_t* next) const {
    switch (op.kind) {
      case RegisterOp::Kind::kRead:
        *next = value;
        return !op.completed() || op.result == value;
      case RegisterOp::Kind::kWrite:
        *next = op.value;
        return true;
      case RegisterOp::Kind::kCas: {
        const bool swaps = value == op.expected;
        *next = swaps ? op.value : value;
        return !op.completed() || (op.result == 1) == swaps;
      }
    }
    return false;
  }

  bool Dfs(int64_t value) {
    if (remaining_completed_ == 0) return true;
    if (++explored_ > budget_) {
      exhausted_ = true;
      return false;
    }
    // An op can go next only if it was invoked before every pending-to-be-
    // linearized completed op returned.
    uint64_t min_ret = RegisterOp::kPending;
    for (size_t i = 0; i < ops_.size(); i++) {
      if (!Linearized(i) && ops_[i].completed()) min_ret = std::min(min_ret, ops_[i].ret);
    }
    for (size_t i = 0; i < ops_.size(); i++) {
      const RegisterOp& op = ops_[i];
      if (op.invoke > min_ret) break;  // sorted by invocation
      if (Linearized(i)) continue;
      int64_t next;
      if (!Apply(op, value, &next)) continue;
      Flip(i);
      if (seen_.insert(StateKey{bits_, next}).second) {
        remaining_completed_ -= op.completed();
        if (Dfs(next)) return true;
        remaining_completed_ += op.completed();
      }
      Flip(i);
      if (exhausted_) return false;
    }
    return false;
  }

  std::vector<RegisterOp> ops_;
  uint64_t budget_;
  std::vector<uint64_t> bits_;
  size_t remaining_completed_ = 0;
  uint64_t explored_ = 0;
  bool exhausted_ = false;
  std::unordered_set<StateKey, StateKeyHash> seen_;  // membership only; order never observed
};

}  // namespace

LinearizableResult CheckRegister(std::vector<RegisterOp> ops, int64_t initial, uint64_t budget,
                                 std::string* why) {
  // Pending reads have no effect and no observation: drop them.
  ops.erase(std::remove_if(ops.begin(), ops.end(),
                           [](const RegisterOp& op) {
                             return op.kind == RegisterOp::Kind::kRead && !op.completed();
                           }),
            ops.end());
  std::stable_sort(ops.begin(), ops.end(),
                   [](const RegisterOp& a, const RegisterOp& b) { return a.invoke < b.invoke; });
  Search search(ops, budget);
  LinearizableResult r = search.Run(initial);
  if (r == LinearizableResult::kNo && why != nullptr) {
    *why = "history is not linearizable (initial " + std::to_string(initial) + "):\n";
    for (const RegisterOp& op : ops) *why += "  " + op.ToString() + "\n";
  }
  return r;
}

}  // namespace cairn::sim
