#include "core/hlc.h"

#include <algorithm>

#include "core/check.h"

namespace cairn {

namespace {
constexpr int64_t kMaxPhysicalMs = (int64_t{1} << (63 - TxTime::kLogicalBits)) - 1;

uint64_t ClockFloor(Clock* clock) {
  int64_t ms = std::clamp<int64_t>(clock->NowMs(), 0, kMaxPhysicalMs);
  return TxTime::FromParts(static_cast<uint64_t>(ms), 0).raw;
}
}  // namespace

HybridClock::HybridClock(Clock* clock, TxTime start) : clock_(clock), last_(start.raw) {
  CAIRN_CHECK(clock_ != nullptr);
}

TxTime HybridClock::Now() {
  uint64_t floor = ClockFloor(clock_);
  uint64_t old = last_.load(std::memory_order_acquire);
  for (;;) {
    CAIRN_CHECK_MSG(old < TxTime::Max().raw, "HybridClock exhausted the TxTime range");
    uint64_t next = std::max(floor, old + 1);
    if (last_.compare_exchange_weak(old, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
      return TxTime{next};
    }
  }
}

void HybridClock::Observe(TxTime remote) {
  uint64_t old = last_.load(std::memory_order_acquire);
  while (remote.raw > old &&
         !last_.compare_exchange_weak(old, remote.raw, std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
}

TxTime HybridClock::Update(TxTime remote) {
  Observe(remote);
  return Now();
}

int64_t HybridClock::AheadOfClockMs() const {
  int64_t now = std::clamp<int64_t>(clock_->NowMs(), 0, kMaxPhysicalMs);
  int64_t last = static_cast<int64_t>(Last().physical_ms());
  return std::max<int64_t>(0, last - now);
}

}  // namespace cairn
