#include "raft/raft_log.h"

#include <algorithm>

#include "core/check.h"

namespace cairn::raft {

void RaftLog::Reset(LogIndex base_index, Term base_term) {
  base_index_ = base_index;
  base_term_ = base_term;
  entries_.clear();
  unstable_from_ = base_index.Next();
}

void RaftLog::RestoreStable(std::vector<Entry> entries) {
  for (Entry& e : entries) Append(std::move(e));
  unstable_from_ = last_index().Next();
}

Term RaftLog::TermAt(LogIndex i) const {
  CAIRN_CHECK(HasTerm(i));
  if (i == base_index_) return base_term_;
  return entries_[i.value() - first_index().value()].term;
}

const Entry& RaftLog::At(LogIndex i) const {
  CAIRN_CHECK(i >= first_index() && i <= last_index());
  return entries_[i.value() - first_index().value()];
}

void RaftLog::Append(Entry e) {
  CAIRN_CHECK(e.index == last_index().Next());
  CAIRN_CHECK(e.term >= last_term());
  entries_.push_back(std::move(e));
}

void RaftLog::TruncateFrom(LogIndex i) {
  CAIRN_CHECK(i > base_index_);
  if (i > last_index()) return;
  entries_.resize(i.value() - first_index().value());
  unstable_from_ = std::min(unstable_from_, i);
}

std::vector<Entry> RaftLog::Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes,
                                  uint32_t max_count) const {
  CAIRN_CHECK(lo >= first_index());
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (LogIndex i = lo; i <= hi && i <= last_index(); i = i.Next()) {
    const Entry& e = At(i);
    if (!out.empty() && (out.size() >= max_count || bytes + e.SizeBytes() > max_bytes)) break;
    bytes += e.SizeBytes();
    out.push_back(e);
  }
  return out;
}

void RaftLog::CompactThrough(LogIndex i) {
  if (i <= base_index_) return;
  CAIRN_CHECK(i <= stable_last());
  Term t = TermAt(i);
  entries_.erase(entries_.begin(), entries_.begin() + (i.value() - base_index_.value()));
  base_index_ = i;
  base_term_ = t;
}

std::vector<Entry> RaftLog::UnstableEntries() const {
  std::vector<Entry> out;
  for (LogIndex i = unstable_from_; i <= last_index(); i = i.Next()) out.push_back(At(i));
  return out;
}

void RaftLog::MarkStable(LogIndex last) {
  if (last >= unstable_from_ && last <= last_index()) unstable_from_ = last.Next();
}

LogIndex RaftLog::FirstIndexOfTermEndingAt(LogIndex i) const {
  CAIRN_CHECK(HasTerm(i));
  Term t = TermAt(i);
  while (i > first_index() && TermAt(i.Prev()) == t) i = i.Prev();
  return i;
}

LogIndex RaftLog::LastIndexWithTermAtMost(LogIndex i, Term t) const {
  if (i > last_index()) i = last_index();
  while (i > base_index_ && TermAt(i) > t) i = i.Prev();
  return i;
}

}  // namespace cairn::raft
