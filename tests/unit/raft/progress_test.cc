#include "raft/progress.h"

#include <gtest/gtest.h>

namespace cairn::raft {
namespace {

TEST(Progress, ProbeSendsOneAppendUntilAnswered) {
  Progress pr(NodeId(2), LogIndex(10));
  EXPECT_FALSE(pr.IsPaused(4, 1000));
  pr.OnSent(LogIndex(12), 100);
  EXPECT_TRUE(pr.IsPaused(4, 1000));
  pr.ResumeProbe();
  EXPECT_FALSE(pr.IsPaused(4, 1000));
}

TEST(Progress, ReplicateIsBoundedByInflightMessagesAndBytes) {
  Progress pr(NodeId(2), LogIndex(1));
  pr.MaybeUpdate(LogIndex(5));
  pr.BecomeReplicate();
  EXPECT_EQ(pr.next(), LogIndex(6));
  pr.OnSent(LogIndex(7), 10);
  pr.OnSent(LogIndex(9), 10);
  EXPECT_EQ(pr.next(), LogIndex(10)) << "optimistic next after each send";
  EXPECT_FALSE(pr.IsPaused(3, 1000));
  pr.OnSent(LogIndex(11), 10);
  EXPECT_TRUE(pr.IsPaused(3, 1000));
  pr.MaybeUpdate(LogIndex(9));  // frees the first two
  EXPECT_FALSE(pr.IsPaused(3, 1000));
  pr.OnSent(LogIndex(13), 990);
  EXPECT_TRUE(pr.IsPaused(10, 1000)) << "byte bound";
}

TEST(Progress, ProbeNeverGoesBelowMatch) {
  Progress pr(NodeId(2), LogIndex(1));
  pr.MaybeUpdate(LogIndex(8));
  pr.BecomeProbe(LogIndex(3));
  EXPECT_EQ(pr.next(), LogIndex(9));
}

TEST(Progress, StaleAcksDoNotMoveMatchBack) {
  Progress pr(NodeId(2), LogIndex(1));
  EXPECT_TRUE(pr.MaybeUpdate(LogIndex(8)));
  EXPECT_FALSE(pr.MaybeUpdate(LogIndex(4)));
  EXPECT_EQ(pr.match(), LogIndex(8));
}

}  // namespace
}  // namespace cairn::raft
