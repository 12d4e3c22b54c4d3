#include "core/hlc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

namespace cairn {
namespace {

TxTime T(uint64_t ms, uint32_t logical) { return TxTime::FromParts(ms, logical); }

TEST(HybridClock, TracksAnAdvancingClock) {
  ManualClock clock(1000);
  HybridClock hlc(&clock);
  EXPECT_EQ(hlc.Now(), T(1000, 0));
  clock.Set(1005);
  EXPECT_EQ(hlc.Now(), T(1005, 0));
  clock.Advance(1);
  EXPECT_EQ(hlc.Now(), T(1006, 0));
  EXPECT_EQ(hlc.Last(), T(1006, 0));
  EXPECT_EQ(hlc.AheadOfClockMs(), 0);
}

TEST(HybridClock, StuckClockCountsLogically) {
  ManualClock clock(500);
  HybridClock hlc(&clock);
  EXPECT_EQ(hlc.Now(), T(500, 0));
  EXPECT_EQ(hlc.Now(), T(500, 1));
  EXPECT_EQ(hlc.Now(), T(500, 2));
  clock.Advance(1);
  EXPECT_EQ(hlc.Now(), T(501, 0));  // logical resets when the clock moves on
}

TEST(HybridClock, BackwardsClockNeverMovesTimeBack) {
  ManualClock clock(10'000);
  HybridClock hlc(&clock);
  TxTime a = hlc.Now();
  clock.Set(9'000);  // NTP step backwards
  TxTime b = hlc.Now();
  TxTime c = hlc.Now();
  EXPECT_GT(b, a);
  EXPECT_GT(c, b);
  EXPECT_EQ(b, T(10'000, 1));
  EXPECT_EQ(hlc.AheadOfClockMs(), 1000);
  clock.Set(10'001);
  EXPECT_EQ(hlc.Now(), T(10'001, 0));
}

TEST(HybridClock, LogicalOverflowBumpsPhysical) {
  ManualClock clock(42);
  HybridClock hlc(&clock);
  TxTime prev = hlc.Now();
  for (int i = 0; i < 0xFFFF; ++i) {
    TxTime t = hlc.Now();
    ASSERT_GT(t, prev);
    prev = t;
  }
  EXPECT_EQ(prev, T(42, 0xFFFF));
  TxTime next = hlc.Now();
  EXPECT_EQ(next, T(43, 0));
  EXPECT_GT(next, prev);
  EXPECT_EQ(hlc.AheadOfClockMs(), 1);
  // The clock catching up with the bumped time continues logically.
  clock.Set(43);
  EXPECT_EQ(hlc.Now(), T(43, 1));
}

TEST(HybridClock, ObserveMakesLaterTimesGreater) {
  ManualClock clock(1000);
  HybridClock hlc(&clock);
  hlc.Observe(T(5000, 7));  // a peer (or a client) is ahead
  EXPECT_EQ(hlc.Now(), T(5000, 8));
  hlc.Observe(T(10, 0));  // old times change nothing
  EXPECT_EQ(hlc.Now(), T(5000, 9));
  EXPECT_EQ(hlc.Update(T(6000, 0)), T(6000, 1));
  EXPECT_EQ(hlc.AheadOfClockMs(), 5000);
}

TEST(HybridClock, LargeForwardJump) {
  ManualClock clock(1000);
  HybridClock hlc(&clock);
  (void)hlc.Now();
  clock.Set(int64_t{1} << 40);
  EXPECT_EQ(hlc.Now(), T(uint64_t{1} << 40, 0));
  clock.Set(int64_t{1} << 50);  // beyond 47 bits: clamped, still increasing
  TxTime a = hlc.Now();
  TxTime b = hlc.Now();
  EXPECT_GT(b, a);
  EXPECT_EQ(a.physical_ms(), (uint64_t{1} << 47) - 1);
}

TEST(HybridClock, ClockAtZeroOrNegativeStillGivesValidTimes) {
  ManualClock clock(-5);
  HybridClock hlc(&clock);
  TxTime t = hlc.Now();
  EXPECT_TRUE(t.valid());
  EXPECT_EQ(t, T(0, 1));
}

TEST(HybridClock, StartsAfterAGivenTime) {
  ManualClock clock(100);
  HybridClock hlc(&clock, T(200, 3));  // e.g. the last t found on disk
  EXPECT_EQ(hlc.Now(), T(200, 4));
}

TEST(HybridClock, ConcurrentCallersGetDistinctIncreasingTimes) {
  ManualClock clock(1);
  HybridClock hlc(&clock);
  constexpr int kThreads = 4, kN = 20000;
  std::vector<std::vector<TxTime>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kN; ++i) {
        if (t == 0 && i % 1000 == 0) clock.Advance(1);
        got[t].push_back(hlc.Now());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint64_t> all;
  for (const auto& v : got) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_GT(v[i], v[i - 1]);
    for (TxTime x : v) all.push_back(x.raw);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
}

TEST(SystemClock, IsNearNow) {
  int64_t ms = SystemClock::Default()->NowMs();
  EXPECT_GT(ms, int64_t{1'600'000'000'000});  // after 2020
}

}  // namespace
}  // namespace cairn
