#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace cairn::cli {

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total == 0 ? 1 : total),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

void ProgressBar::Advance(uint64_t n) {
  done_ += n;
  if (done_ > total_) done_ = total_;
  Draw(false);
}

void ProgressBar::Finish() {
  done_ = total_;
  Draw(true);
  if (tty_) std::fputc('\n', stderr);
}

void ProgressBar::Draw(bool force) {
  auto now = std::chrono::steady_clock::now();
  double frac = static_cast<double>(done_) / static_cast<double>(total_);
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '#');
    bar.append(kWidth - filled, '.');
    std::fprintf(stderr, "\r%-22s [%s] %5.1f%% %llu/%llu  %.0f/s ", label_.c_str(), bar.c_str(), frac * 100,
                 static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), rate);
    std::fflush(stderr);
  } else {
    int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_ && !force) return;
    if (force && decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %3d%% (%llu/%llu, %.0f/s)\n", label_.c_str(), decile * 10,
                 static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), rate);
  }
}

}  // namespace cairn::cli
