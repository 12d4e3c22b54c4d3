// AttrStatsCache: planner statistics shared by the views of one state, and
// carried over to the next state while an attribute's size stays within
// kDrift (so a query after each small commit does not rescan it).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "shard/store_source.h"
#include "storage/memory_index.h"

namespace cairn::shard {
namespace {

using storage::CurrentIndex;
using storage::IndexEntry;

std::vector<IndexEntry> Entries(uint64_t first, uint64_t n, uint32_t aid, uint64_t modulo) {
  std::vector<IndexEntry> out;
  for (uint64_t i = first; i < first + n; ++i) {
    out.push_back({EntityId::Make(1, i), TxTime{1}, Value::String("v" + std::to_string(i % modulo)), aid, true});
  }
  return out;
}

TEST(AttrStatsCache, ViewsOfOneStateShareTheStatistics) {
  CurrentIndex index;
  index.Build(Entries(1, 5000, 1, 5000));
  AttrStatsCache cache;
  auto a = cache.Get(index, 1);
  auto b = cache.Get(index, 1);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(a->count, 5000u);
  EXPECT_FALSE(a->exact);
}

TEST(AttrStatsCache, ASuccessorReusesSampledStatisticsUntilTheAttributeDrifts) {
  CurrentIndex index;
  index.Build(Entries(1, 5000, 1, 5000));
  auto cache = std::make_shared<AttrStatsCache>();
  auto first = cache->Get(index, 1);

  // A few more datoms (within kDrift): the successor answers the old sample.
  index.Apply(Entries(5001, 100, 1, 5000));
  auto next = cache->Successor();
  EXPECT_EQ(next->Get(index, 1).get(), first.get());

  // Grown by more than kDrift: recomputed with the new count.
  index.Apply(Entries(5101, 2000, 1, 5000));
  auto later = next->Successor();
  auto fresh = later->Get(index, 1);
  EXPECT_NE(fresh.get(), first.get());
  EXPECT_EQ(fresh->count, 7100u);
}

TEST(AttrStatsCache, ExactStatisticsOfSmallAttributesAreNeverCarriedOver) {
  CurrentIndex index;
  index.Build(Entries(1, 100, 2, 10));
  auto cache = std::make_shared<AttrStatsCache>();
  auto small = cache->Get(index, 2);
  ASSERT_TRUE(small->exact);
  EXPECT_EQ(small->distinct_v, 10u);
  index.Apply(Entries(101, 1, 2, 1000));  // a new distinct value: within kDrift, but exact must stay exact
  auto next = cache->Successor()->Get(index, 2);
  EXPECT_NE(next.get(), small.get());
  EXPECT_EQ(next->count, 101u);
  EXPECT_EQ(next->distinct_v, 11u);
}

}  // namespace
}  // namespace cairn::shard
