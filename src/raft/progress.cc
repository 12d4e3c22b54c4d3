#include "raft/progress.h"

#include <algorithm>

namespace cairn::raft {

void Progress::BecomeProbe(LogIndex next) {
  state_ = State::kProbe;
  next_ = std::max(next, match_.Next());
  probe_sent_ = false;
  inflight_.clear();
  inflight_bytes_ = 0;
}

void Progress::BecomeReplicate() {
  state_ = State::kReplicate;
  next_ = match_.Next();
  inflight_.clear();
  inflight_bytes_ = 0;
}

void Progress::BecomeSnapshot(LogIndex snapshot_index) {
  state_ = State::kSnapshot;
  snapshot_index_ = snapshot_index;
  snapshot_offset_bytes_ = 0;
  inflight_.clear();
  inflight_bytes_ = 0;
}

bool Progress::MaybeUpdate(LogIndex index) {
  bool moved = false;
  if (index > match_) {
    match_ = index;
    moved = true;
    probe_sent_ = false;
  }
  if (next_ <= index) next_ = index.Next();
  FreeThrough(index);
  return moved;
}

void Progress::OnSent(LogIndex last, uint64_t bytes) {
  if (state_ == State::kReplicate) {
    if (last >= next_) {
      next_ = last.Next();
      inflight_.emplace_back(last, bytes);
      inflight_bytes_ += bytes;
    }
  } else if (state_ == State::kProbe) {
    probe_sent_ = true;
  }
}

void Progress::FreeThrough(LogIndex index) {
  size_t n = 0;
  while (n < inflight_.size() && inflight_[n].first <= index) {
    inflight_bytes_ -= inflight_[n].second;
    n++;
  }
  inflight_.erase(inflight_.begin(), inflight_.begin() + n);
}

bool Progress::InflightFull(uint32_t max_msgs, uint64_t max_bytes) const {
  return inflight_.size() >= max_msgs || inflight_bytes_ >= max_bytes;
}

bool Progress::IsPaused(uint32_t max_msgs, uint64_t max_bytes) const {
  switch (state_) {
    case State::kProbe: return probe_sent_;
    case State::kReplicate: return InflightFull(max_msgs, max_bytes);
    case State::kSnapshot: return true;
  }
  return true;
}

}  // namespace cairn::raft
