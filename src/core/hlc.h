// HybridClock: the hybrid logical clock that assigns transaction times
// (ARCHITECTURE §3; TxTime layout in include/cairn/ids.h).
//
// A TxTime is (physical ms << 16) | logical. Now() returns the larger of
// (clock now, logical 0) and (last result + 1). Because the logical counter
// sits in the low bits, "+1" on a counter at 0xFFFF carries into the
// physical part: logical overflow moves time 1 ms ahead of the clock instead
// of failing. So:
//   - Now() is strictly greater than every earlier Now() result and every
//     time passed to Observe(), whatever the clock does (stuck, backwards);
//   - while the clock is ahead of everything seen, Now() tracks it exactly;
//   - after a backwards jump, results keep climbing by one logical tick
//     until the clock catches up.
// The clock reading is clamped to [0, 2^47) ms (TxTime has 47 bits of
// milliseconds). The first result is never the invalid TxTime{0}.
//
// Thread-safety: Now(), Observe(), Update() and Last() may be called
// concurrently (one atomic word, compare-and-swap). The Clock must outlive
// the HybridClock and be safe to call from the calling threads.
#pragma once

#include <atomic>
#include <cstdint>

#include "cairn/ids.h"
#include "core/clock.h"

namespace cairn {

class HybridClock {
 public:
  // `clock` is not owned.
  explicit HybridClock(Clock* clock, TxTime start = TxTime{});

  HybridClock(const HybridClock&) = delete;
  HybridClock& operator=(const HybridClock&) = delete;

  // A time strictly greater than every earlier result and observed time.
  TxTime Now();
  // Records a time seen elsewhere (a client's latest t, a peer's proposal,
  // the last t found on disk at start-up): later Now() results exceed it.
  void Observe(TxTime remote);
  // Observe(remote), then Now().
  TxTime Update(TxTime remote);
  // The largest time returned or observed so far (TxTime{} initially).
  TxTime Last() const { return TxTime{last_.load(std::memory_order_acquire)}; }
  // How far the last time is ahead of the clock, in ms (0 if not ahead).
  // A large value means a peer's clock or the logical counter ran ahead.
  int64_t AheadOfClockMs() const;

 private:
  Clock* clock_;
  std::atomic<uint64_t> last_;
};

}  // namespace cairn
