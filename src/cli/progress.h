// ProgressBar: a one-line progress bar on stderr for long CLI work.
//
// Redraws at most every 100 ms (and on Finish). On a terminal it overwrites
// one line; otherwise it prints a line at every 10%. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cairn::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total);
  void Advance(uint64_t n = 1);
  void Finish();

 private:
  void Draw(bool force);
  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace cairn::cli
