#include "storage/chunked_set.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

namespace cairn::storage {
namespace {

struct IntLess {
  bool operator()(int a, int b) const { return a < b; }
};
using Set = ChunkedSet<int, IntLess>;

std::vector<int> Items(const Set& s) {
  std::vector<int> out;
  s.ForEachAll([&](int x) {
    out.push_back(x);
    return true;
  });
  return out;
}

TEST(ChunkedSet, MatchesStdSetUnderRandomBatches) {
  std::mt19937 rng(1);
  Set s;
  std::set<int> model;
  // Every 7th round keeps a snapshot alive so both the in-place and the
  // copy-on-write paths run; each snapshot must keep its contents.
  std::vector<std::pair<Set, std::vector<int>>> snapshots;
  for (int round = 0; round < 300; ++round) {
    if (round % 7 == 0) snapshots.emplace_back(s, std::vector<int>(model.begin(), model.end()));
    std::vector<int> ins, del;
    int n = static_cast<int>(rng() % (round % 10 == 0 ? 3000 : 60));
    for (int i = 0; i < n; ++i) ins.push_back(static_cast<int>(rng() % 20000));
    for (int i = 0; i < n / 2; ++i) del.push_back(static_cast<int>(rng() % 20000));
    // Erase applies after insert, as documented.
    for (int x : ins) model.insert(x);
    for (int x : del) model.erase(x);
    s.Apply(del, ins);
    ASSERT_TRUE(s.CheckInvariants());
    ASSERT_EQ(s.size(), model.size());
  }
  EXPECT_EQ(Items(s), std::vector<int>(model.begin(), model.end()));
  EXPECT_GT(s.chunk_count(), 1u);
  for (const auto& [snap, items] : snapshots) {
    ASSERT_TRUE(snap.CheckInvariants());
    ASSERT_EQ(Items(snap), items);
  }
  // Ranges and ranks.
  for (int q = 0; q < 200; ++q) {
    int lo = static_cast<int>(rng() % 20000), hi = lo + static_cast<int>(rng() % 500);
    auto probe = [&](int x) { return x < lo ? -1 : (x > hi ? 1 : 0); };
    size_t expect = std::distance(model.lower_bound(lo), model.upper_bound(hi));
    EXPECT_EQ(s.CountRange(probe), expect);
    std::vector<int> got;
    s.ForEach(probe, [&](int x) {
      got.push_back(x);
      return true;
    });
    EXPECT_EQ(got, std::vector<int>(model.lower_bound(lo), model.upper_bound(hi)));
  }
}

// Small batches while every earlier state is still held: each touched chunk
// is shared, so every apply takes the copy-then-change-in-place path.
TEST(ChunkedSet, SmallChangesToSharedChunksKeepEverySnapshot) {
  std::mt19937 rng(7);
  Set s;
  std::set<int> model;
  std::vector<int> seed;
  for (int i = 0; i < 3000; ++i) seed.push_back(i * 3);
  s.Apply({}, seed);
  model.insert(seed.begin(), seed.end());
  std::vector<std::pair<Set, std::vector<int>>> held;
  for (int round = 0; round < 400; ++round) {
    held.emplace_back(s, std::vector<int>(model.begin(), model.end()));
    std::vector<int> ins, del;
    int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) ins.push_back(static_cast<int>(rng() % 9000));
    for (int i = 0; i < n; ++i) del.push_back(static_cast<int>(rng() % 9000));
    for (int x : ins) model.insert(x);
    for (int x : del) model.erase(x);
    s.Apply(del, ins);
    ASSERT_TRUE(s.CheckInvariants());
    ASSERT_EQ(Items(s), std::vector<int>(model.begin(), model.end()));
  }
  for (const auto& [snap, items] : held) {
    ASSERT_TRUE(snap.CheckInvariants());
    ASSERT_EQ(Items(snap), items);
  }
}

// Sets large enough for many segments: a dense insert run splits its
// segment, erasing whole runs drops segments, and ranges, ranks and every
// snapshot stay exact; a copy shares every segment.
TEST(ChunkedSet, SegmentsSplitAndDropWithSnapshotsKept) {
  std::mt19937 rng(11);
  Set s;
  std::set<int> model;
  std::vector<int> seed;
  for (int i = 0; i < 200000; ++i) seed.push_back(i * 10);
  s.Apply({}, seed);
  model.insert(seed.begin(), seed.end());
  ASSERT_TRUE(s.CheckInvariants());
  const size_t segments_at_start = s.segment_count();
  EXPECT_GT(segments_at_start, 20u);
  std::vector<std::pair<Set, std::vector<int>>> held;
  bool split_seen = false, drop_seen = false;
  for (int round = 0; round < 40; ++round) {
    if (round % 4 == 0) held.emplace_back(s, std::vector<int>(model.begin(), model.end()));
    std::vector<int> ins, del;
    if (round % 2 == 0) {
      // 20,000 new items in one gap-rich region: that segment must split.
      int base = static_cast<int>(rng() % 1900000);
      for (int i = 0; i < 20000; ++i) ins.push_back(base + static_cast<int>(rng() % 50000));
    } else {
      // Erase a run of ~60,000 consecutive items: whole segments go.
      int base = static_cast<int>(rng() % 140000) * 10;  // on the seeded multiples of 10
      for (int x = base; x < base + 600000; x += 10) del.push_back(x);
      for (int i = 0; i < 50; ++i) ins.push_back(static_cast<int>(rng() % 2000000));
    }
    for (int x : ins) model.insert(x);
    for (int x : del) model.erase(x);
    const size_t before = s.segment_count();
    s.Apply(del, ins);
    ASSERT_TRUE(s.CheckInvariants()) << "round " << round;
    ASSERT_EQ(s.size(), model.size());
    if (round % 2 == 0 && s.segment_count() > before) split_seen = true;
    if (round % 2 == 1 && s.segment_count() < before) drop_seen = true;
    int lo = static_cast<int>(rng() % 2000000), hi = lo + static_cast<int>(rng() % 100000);
    auto probe = [&](int x) { return x < lo ? -1 : (x > hi ? 1 : 0); };
    ASSERT_EQ(s.CountRange(probe), static_cast<size_t>(std::distance(model.lower_bound(lo), model.upper_bound(hi))));
    std::vector<int> got;
    s.ForEach(probe, [&](int x) {
      got.push_back(x);
      return true;
    });
    ASSERT_EQ(got, std::vector<int>(model.lower_bound(lo), model.upper_bound(hi)));
  }
  EXPECT_TRUE(split_seen) << "no segment split";
  EXPECT_TRUE(drop_seen) << "no segment dropped";
  EXPECT_EQ(Items(s), std::vector<int>(model.begin(), model.end()));
  for (const auto& [snap, items] : held) {
    ASSERT_TRUE(snap.CheckInvariants());
    ASSERT_EQ(Items(snap), items);
  }
}

TEST(ChunkedSet, SnapshotsAreUnaffectedByLaterApplies) {
  Set s;
  std::vector<int> first;
  for (int i = 0; i < 5000; ++i) first.push_back(i * 2);
  s.Apply({}, first);
  Set snapshot = s;
  s.Apply({0, 2, 4000}, {1, 3, 9999});
  EXPECT_EQ(Items(snapshot), first);
  EXPECT_EQ(s.size(), 5000u - 3 + 3);
  EXPECT_EQ(Items(s)[0], 1);
}

// Bulk loads of new entities scattered over partitions: insert-only batches
// that land all over the set and split many chunks per batch (the path that
// shifts the chunk arrays in place), with snapshots kept now and then.
TEST(ChunkedSet, ScatteredInsertOnlyBatchesKeepOrderAndSnapshots) {
  std::mt19937 rng(7);
  Set s;
  std::set<int> model;
  std::vector<std::pair<Set, std::vector<int>>> snapshots;
  size_t splits_seen = 0;
  for (int round = 0; round < 200; ++round) {
    if (round % 13 == 5) snapshots.emplace_back(s, std::vector<int>(model.begin(), model.end()));
    std::vector<int> ins;
    int n = 1 + static_cast<int>(rng() % 400);
    for (int i = 0; i < n; ++i) ins.push_back(static_cast<int>(rng() % 1000000));
    size_t chunks_before = s.chunk_count();
    for (int x : ins) model.insert(x);
    s.Apply({}, ins);
    if (chunks_before > 0 && s.chunk_count() > chunks_before) ++splits_seen;
    ASSERT_TRUE(s.CheckInvariants()) << "round " << round;
    ASSERT_EQ(s.size(), model.size());
    // Ranks agree with the model at a few points.
    for (int q = 0; q < 5; ++q) {
      int lo = static_cast<int>(rng() % 1000000);
      auto probe = [&](int x) { return x < lo ? -1 : 0; };
      ASSERT_EQ(s.Rank(s.LowerBound(probe)), static_cast<size_t>(std::distance(model.begin(), model.lower_bound(lo))));
    }
  }
  EXPECT_EQ(Items(s), std::vector<int>(model.begin(), model.end()));
  EXPECT_GT(splits_seen, 100u);
  for (const auto& [snap, items] : snapshots) {
    ASSERT_TRUE(snap.CheckInvariants());
    ASSERT_EQ(Items(snap), items);
  }
}

TEST(ChunkedSet, StopsEarlyWhenToldTo) {
  Set s;
  s.Apply({}, {1, 2, 3, 4});
  int seen = 0;
  bool finished = s.ForEach([](int) { return 0; }, [&](int) { return ++seen < 2; });
  EXPECT_FALSE(finished);
  EXPECT_EQ(seen, 2);
}

}  // namespace
}  // namespace cairn::storage
