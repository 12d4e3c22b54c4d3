#include "raft/raft_log.h"

#include <gtest/gtest.h>

namespace cairn::raft {
namespace {

Entry E(uint64_t index, uint64_t term, std::string data = "") {
  return Entry{Term(term), LogIndex(index), EntryType::kNormal, std::move(data)};
}

TEST(RaftLog, StartsAfterItsBase) {
  RaftLog log;
  log.Reset(LogIndex(5), Term(2));
  EXPECT_EQ(log.first_index(), LogIndex(6));
  EXPECT_EQ(log.last_index(), LogIndex(5));
  EXPECT_EQ(log.last_term(), Term(2));
  EXPECT_TRUE(log.Matches(LogIndex(5), Term(2)));
  EXPECT_FALSE(log.HasTerm(LogIndex(4))) << "terms before the base are forgotten";
}

TEST(RaftLog, AppendedEntriesAreUnstableUntilMarked) {
  RaftLog log;
  log.Append(E(1, 1));
  log.Append(E(2, 1));
  EXPECT_EQ(log.UnstableEntries().size(), 2u);
  log.MarkStable(LogIndex(2));
  EXPECT_TRUE(log.UnstableEntries().empty());
  EXPECT_EQ(log.stable_last(), LogIndex(2));
}

TEST(RaftLog, TruncationMakesTheSuffixUnstableAgain) {
  RaftLog log;
  for (uint64_t i = 1; i <= 5; i++) log.Append(E(i, 1));
  log.MarkStable(LogIndex(5));
  log.TruncateFrom(LogIndex(3));
  log.Append(E(3, 2));
  EXPECT_EQ(log.unstable_from(), LogIndex(3));
  auto unstable = log.UnstableEntries();
  ASSERT_EQ(unstable.size(), 1u);
  EXPECT_EQ(unstable[0].term, Term(2));
}

TEST(RaftLog, SliceHonoursCountAndBytesButReturnsAtLeastOne) {
  RaftLog log;
  for (uint64_t i = 1; i <= 10; i++) log.Append(E(i, 1, std::string(100, 'x')));
  EXPECT_EQ(log.Slice(LogIndex(1), LogIndex(10), 1 << 20, 3).size(), 3u);
  EXPECT_EQ(log.Slice(LogIndex(1), LogIndex(10), 250, 100).size(), 2u);
  EXPECT_EQ(log.Slice(LogIndex(1), LogIndex(10), 1, 100).size(), 1u);
}

TEST(RaftLog, CompactionKeepsTheBaseTerm) {
  RaftLog log;
  log.Append(E(1, 1));
  log.Append(E(2, 2));
  log.Append(E(3, 3));
  log.MarkStable(LogIndex(3));
  log.CompactThrough(LogIndex(2));
  EXPECT_EQ(log.base_index(), LogIndex(2));
  EXPECT_EQ(log.TermAt(LogIndex(2)), Term(2));
  EXPECT_EQ(log.At(LogIndex(3)).term, Term(3));
}

TEST(RaftLog, UpToDateComparesLastTermThenLength) {
  RaftLog log;
  log.Append(E(1, 1));
  log.Append(E(2, 3));
  EXPECT_TRUE(log.IsUpToDate(LogIndex(1), Term(4)));
  EXPECT_TRUE(log.IsUpToDate(LogIndex(2), Term(3)));
  EXPECT_FALSE(log.IsUpToDate(LogIndex(9), Term(2)));
  EXPECT_FALSE(log.IsUpToDate(LogIndex(1), Term(3)));
}

TEST(RaftLog, ConflictHintsSkipWholeTerms) {
  RaftLog log;
  for (uint64_t i = 1; i <= 3; i++) log.Append(E(i, 1));
  for (uint64_t i = 4; i <= 8; i++) log.Append(E(i, 2));
  EXPECT_EQ(log.LastIndexWithTermAtMost(LogIndex(8), Term(1)), LogIndex(3));
  EXPECT_EQ(log.LastIndexWithTermAtMost(LogIndex(20), Term(5)), LogIndex(8));
  EXPECT_EQ(log.FirstIndexOfTermEndingAt(LogIndex(7)), LogIndex(4));
}

}  // namespace
}  // namespace cairn::raft
