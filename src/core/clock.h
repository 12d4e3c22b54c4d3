// Clock: the one source of wall-clock time (STYLE 4). Everything that reads
// time takes a Clock* so that tests and the deterministic simulation can
// substitute their own.
//
// Thread-safety: NowMs() may be called from any thread for the clocks here;
// other implementations state their own rules.
#pragma once

#include <atomic>
#include <cstdint>

namespace cairn {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch. Not necessarily monotonic: a wall
  // clock may jump backwards (HybridClock copes with that).
  virtual int64_t NowMs() = 0;
};

// The system wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  int64_t NowMs() override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// Another clock's reading plus a fixed offset (a node configured with
// `clock_offset_ms` to simulate clock skew in tests). `base` is not owned.
class OffsetClock final : public Clock {
 public:
  OffsetClock(Clock* base, int64_t offset_ms) : base_(base), offset_ms_(offset_ms) {}
  int64_t NowMs() override { return base_->NowMs() + offset_ms_; }

 private:
  Clock* base_;
  int64_t offset_ms_;
};

// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 0) : now_ms_(now_ms) {}
  int64_t NowMs() override { return now_ms_.load(std::memory_order_relaxed); }
  void Set(int64_t now_ms) { now_ms_.store(now_ms, std::memory_order_relaxed); }
  void Advance(int64_t delta_ms) { now_ms_.fetch_add(delta_ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace cairn
