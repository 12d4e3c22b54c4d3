#include "raft/random.h"

#include <gtest/gtest.h>

#include <vector>

namespace cairn::raft {
namespace {

TEST(Random, SameSeedSameSequence) {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; i++) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

// Pinned values: a change here means every recorded seed replays differently.
TEST(Random, SequenceIsPinned) {
  Random r(1);
  EXPECT_EQ(r.Next(), 12966619160104079557ULL);
  EXPECT_EQ(r.Next(), 9600361134598540522ULL);
  EXPECT_EQ(Random(7).Range(150, 299), 255u);
}

TEST(Random, UniformStaysInRangeAndCoversIt) {
  Random r(9);
  std::vector<int> seen(10);
  for (int i = 0; i < 10000; i++) {
    const uint64_t v = r.Uniform(10);
    ASSERT_LT(v, 10u);
    seen[v]++;
  }
  for (int n : seen) {
    EXPECT_GT(n, 850);
    EXPECT_LT(n, 1150);
  }
  for (int i = 0; i < 1000; i++) {
    const uint64_t v = r.Range(15, 29);
    ASSERT_GE(v, 15u);
    ASSERT_LE(v, 29u);
  }
}

}  // namespace
}  // namespace cairn::raft
