// RaftLog: the in-memory view of one replica's log, from the last compaction
// point (the base) to the last entry, and which suffix is not yet durable.
//
// Contract: entries are contiguous, indexes base+1..last. Entries at or after
// unstable_from() have not been handed to storage yet; RaftNode returns them
// in the next Ready and marks them stable in Advance. Truncating a conflicting
// suffix moves unstable_from() back so storage overwrites it. Compaction only
// discards stable entries. Thread-safety: none; owned by one RaftNode.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "raft/types.h"

namespace cairn::raft {

class RaftLog {
 public:
  RaftLog() = default;

  // Forget everything and start after (base_index, base_term), e.g. after
  // installing a snapshot. Nothing is unstable afterwards except what is
  // appended later.
  void Reset(LogIndex base_index, Term base_term);
  // Load durable entries at start-up. REQUIRES: contiguous from base+1.
  void RestoreStable(std::vector<Entry> entries);

  LogIndex base_index() const { return base_index_; }
  Term base_term() const { return base_term_; }
  LogIndex first_index() const { return base_index_.Next(); }
  LogIndex last_index() const { return base_index_.Plus(entries_.size()); }
  Term last_term() const { return entries_.empty() ? base_term_ : entries_.back().term; }
  LogIndex unstable_from() const { return unstable_from_; }
  LogIndex stable_last() const { return unstable_from_.Prev(); }

  // True if the term of index i is known: base <= i <= last.
  bool HasTerm(LogIndex i) const { return i >= base_index_ && i <= last_index(); }
  // REQUIRES: HasTerm(i).
  Term TermAt(LogIndex i) const;
  bool Matches(LogIndex i, Term t) const { return HasTerm(i) && TermAt(i) == t; }
  // REQUIRES: first_index() <= i <= last_index().
  const Entry& At(LogIndex i) const;

  // Raft's election restriction (§5.4.1): is a log ending at (index, term)
  // at least as up to date as this one?
  bool IsUpToDate(LogIndex index, Term term) const {
    return term > last_term() || (term == last_term() && index >= last_index());
  }

  // REQUIRES: e.index == last_index() + 1 and e.term >= last_term().
  void Append(Entry e);
  // Removes entries >= i. REQUIRES: base < i.
  void TruncateFrom(LogIndex i);
  // Entries in [lo, hi], at most max_count and about max_bytes (always at
  // least one entry if the range is non-empty). REQUIRES: lo >= first_index().
  std::vector<Entry> Slice(LogIndex lo, LogIndex hi, uint64_t max_bytes, uint32_t max_count) const;
  // Discards entries <= i. REQUIRES: base <= i <= stable_last().
  void CompactThrough(LogIndex i);

  std::vector<Entry> UnstableEntries() const;
  // Storage made entries up to `last` durable. Ignored if a truncation since
  // then moved unstable_from() below it (the caller never steps in between,
  // so that does not happen in practice).
  void MarkStable(LogIndex last);

  // First index of the run of `term` that ends at i (for conflict hints).
  LogIndex FirstIndexOfTermEndingAt(LogIndex i) const;
  // Largest index <= i whose term is <= t, or base if none is known.
  LogIndex LastIndexWithTermAtMost(LogIndex i, Term t) const;

 private:
  LogIndex base_index_;
  Term base_term_;
  std::deque<Entry> entries_;
  LogIndex unstable_from_{1};
};

}  // namespace cairn::raft
