#include "core/clock.h"

#include <chrono>

namespace cairn {

int64_t SystemClock::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SystemClock* SystemClock::Default() {
  static SystemClock* clock = new SystemClock;  // never destroyed: usable during static destruction
  return clock;
}

}  // namespace cairn
