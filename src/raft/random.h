// Random: the seeded pseudo-random generator the Raft core and the simulator
// draw from (xoshiro256**, seeded through splitmix64).
//
// Behaviour depends only on the seed, on every platform and standard library:
// no std::*_distribution is used, because their output is implementation
// defined and would break seed replay (STYLE 4). Not thread-safe; each owner
// keeps its own instance.
#pragma once

#include <cstdint>

namespace cairn::raft {

class Random {
 public:
  explicit Random(uint64_t seed);

  uint64_t Next();
  // Uniform in [0, n). REQUIRES: n > 0. Lemire's multiply-shift with
  // rejection, so there is no modulo bias.
  uint64_t Uniform(uint64_t n);
  // Uniform in [lo, hi]. REQUIRES: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Uniform(hi - lo + 1); }
  // True with probability per_million / 1e6.
  bool Chance(uint64_t per_million) { return Uniform(1000000) < per_million; }

 private:
  uint64_t s_[4];
};

}  // namespace cairn::raft
