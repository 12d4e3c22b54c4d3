#include "storage/memory_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <tuple>

namespace cairn::storage {
namespace {

IndexEntry E(uint64_t e, uint32_t a, Value v, uint64_t t, bool added = true) {
  return IndexEntry{EntityId{e}, TxTime{t}, std::move(v), a, added};
}

template <bool H>
std::vector<IndexEntry> ScanAll(const MemoryIndex<H>& idx, IndexOrder order, IndexBounds b = {}) {
  std::vector<IndexEntry> out;
  idx.Scan(order, b, [&](const IndexEntry& x) {
    out.push_back(x);
    return true;
  });
  return out;
}

TEST(MemoryIndex, CurrentIndexAppliesAssertionsAndRetractions) {
  CurrentIndex idx;
  idx.Apply({E(10, 1, Value::String("ann"), 100), E(10, 2, Value::Long(30), 100), E(11, 1, Value::String("bob"), 100),
             E(11, 3, Value::Ref(EntityId{10}), 100)});
  ASSERT_EQ(idx.size(), 4u);
  // Cardinality-one style replacement in a later tx.
  idx.Apply({E(10, 2, Value::Long(30), 200, false), E(10, 2, Value::Long(31), 200)});
  ASSERT_EQ(idx.size(), 4u);
  EXPECT_TRUE(idx.CheckInvariants());

  IndexBounds by_e;
  by_e.e = EntityId{10};
  auto ann = ScanAll(idx, IndexOrder::kEavt, by_e);
  ASSERT_EQ(ann.size(), 2u);
  EXPECT_EQ(ann[1].v.as_long(), 31);
  EXPECT_EQ(ann[1].tx.raw, 200u);
  EXPECT_EQ(ann[0].tx.raw, 100u);

  Value bob = Value::String("bob");
  IndexBounds av;
  av.aid = 1;
  av.v = &bob;
  auto found = ScanAll(idx, IndexOrder::kAvet, av);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].e.raw, 11u);
  EXPECT_EQ(idx.CountRange(IndexOrder::kAvet, av), 1u);

  Value ref10 = Value::Ref(EntityId{10});
  IndexBounds v;
  v.v = &ref10;
  auto refs = ScanAll(idx, IndexOrder::kVaet, v);
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].e.raw, 11u);

  IndexBounds a1;
  a1.aid = 1;
  auto names = ScanAll(idx, IndexOrder::kAevt, a1);
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0].e.raw, 10u);
  EXPECT_EQ(idx.attr_count(1), 2u);
  EXPECT_EQ(CurrentIndex::BestOrder(av), IndexOrder::kAvet);
  EXPECT_EQ(CurrentIndex::BestOrder(by_e), IndexOrder::kEavt);
  EXPECT_EQ(CurrentIndex::BestOrder(v), IndexOrder::kVaet);
}

TEST(MemoryIndex, SnapshotKeepsItsStateAfterCopyAndApply) {
  auto base = std::make_shared<CurrentIndex>();
  base->Apply({E(1, 1, Value::Long(1), 10)});
  auto next = std::make_shared<CurrentIndex>(*base);
  next->Apply({E(1, 1, Value::Long(1), 20, false), E(2, 1, Value::Long(2), 20)});
  EXPECT_EQ(ScanAll(*base, IndexOrder::kEavt).size(), 1u);
  EXPECT_EQ(ScanAll(*base, IndexOrder::kEavt)[0].e.raw, 1u);
  EXPECT_EQ(ScanAll(*next, IndexOrder::kEavt).size(), 1u);
  EXPECT_EQ(ScanAll(*next, IndexOrder::kEavt)[0].e.raw, 2u);
}

TEST(MemoryIndex, BuildFromLogEqualsIncrementalApply) {
  std::mt19937 rng(3);
  std::vector<std::vector<IndexEntry>> txs;
  std::map<std::tuple<uint64_t, uint32_t, int64_t>, bool> live;
  for (uint64_t t = 1; t <= 200; ++t) {
    std::vector<IndexEntry> tx;
    for (int i = 0; i < 20; ++i) {
      uint64_t e = 1 + rng() % 50;
      uint32_t a = 1 + rng() % 4;
      int64_t v = rng() % 5;
      auto key = std::make_tuple(e, a, v);
      bool now = live[key];
      bool dup = false;
      for (const auto& x : tx) dup |= x.e.raw == e && x.aid == a && x.v.as_long() == v;
      if (dup) continue;
      tx.push_back(E(e, a, Value::Long(v), t, !now));
      live[key] = !now;
    }
    txs.push_back(tx);
  }
  CurrentIndex inc;
  HistoryIndex hist_inc;
  std::vector<IndexEntry> log;
  for (const auto& tx : txs) {
    inc.Apply(tx);
    hist_inc.Apply(tx);
    log.insert(log.end(), tx.begin(), tx.end());
  }
  CurrentIndex built;
  built.Build(log);
  HistoryIndex hist_built;
  hist_built.Build(log);
  size_t live_count = 0;
  for (const auto& [k, on] : live) live_count += on;
  EXPECT_EQ(inc.size(), live_count);
  EXPECT_EQ(built.size(), live_count);
  EXPECT_EQ(hist_built.size(), log.size());
  EXPECT_EQ(hist_inc.size(), log.size());
  EXPECT_TRUE(built.CheckInvariants());
  EXPECT_TRUE(hist_built.CheckInvariants());
  for (IndexOrder order : {IndexOrder::kEavt, IndexOrder::kAevt, IndexOrder::kAvet, IndexOrder::kVaet}) {
    auto x = ScanAll(inc, order), y = ScanAll(built, order);
    ASSERT_EQ(x.size(), y.size());
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].e, y[i].e);
      EXPECT_EQ(x[i].aid, y[i].aid);
      EXPECT_EQ(x[i].tx, y[i].tx);
    }
  }
  // History scans carry retractions, ordered by tx within a datom.
  IndexBounds b;
  b.e = EntityId{7};
  auto h = ScanAll(hist_built, IndexOrder::kEavt, b);
  for (size_t i = 1; i < h.size(); ++i) {
    bool same = h[i].aid == h[i - 1].aid && h[i].v == h[i - 1].v;
    if (same) {
      EXPECT_LT(h[i - 1].tx, h[i].tx);
    }
  }
}

TEST(MemoryIndex, LazyAvetFollowsEverySnapshot) {
  auto s1 = std::make_shared<CurrentIndex>();
  s1->Apply({E(1, 1, Value::Long(5), 10), E(2, 1, Value::Long(3), 10)});
  Value five = Value::Long(5), seven = Value::Long(7);
  IndexBounds b5;
  b5.aid = 1;
  b5.v = &five;
  IndexBounds b7 = b5;
  b7.v = &seven;
  // Not built yet in s1; s2 is derived before anyone asks.
  auto s2 = std::make_shared<CurrentIndex>(*s1);
  s2->Apply({E(1, 1, Value::Long(5), 20, false), E(3, 1, Value::Long(7), 20)});
  EXPECT_EQ(ScanAll(*s1, IndexOrder::kAvet, b5).size(), 1u);  // builds s1's AVET
  EXPECT_EQ(ScanAll(*s2, IndexOrder::kAvet, b5).size(), 0u);  // builds s2's own
  EXPECT_EQ(ScanAll(*s2, IndexOrder::kAvet, b7).size(), 1u);
  // Built AVETs are maintained by later applies, copied or in place.
  auto s3 = std::make_shared<CurrentIndex>(*s2);
  s3->Apply({E(4, 1, Value::Long(5), 30)});
  EXPECT_EQ(ScanAll(*s3, IndexOrder::kAvet, b5).size(), 1u);
  EXPECT_EQ(ScanAll(*s2, IndexOrder::kAvet, b5).size(), 0u);
  s3->Apply({E(4, 1, Value::Long(5), 40, false), E(9, 1, Value::Long(7), 40)});
  EXPECT_EQ(ScanAll(*s3, IndexOrder::kAvet, b5).size(), 0u);
  EXPECT_EQ(ScanAll(*s3, IndexOrder::kAvet, b7).size(), 2u);
  EXPECT_EQ(s3->CountRange(IndexOrder::kAvet, b7), 2u);
  EXPECT_TRUE(s3->CheckInvariants());
  EXPECT_TRUE(s1->CheckInvariants());
}

// BuildAvet builds an attribute's AVET ahead of its first use (the same set
// the first scan would build); out-of-range ids are ignored.
TEST(MemoryIndex, BuildAvetBuildsAheadOfTheFirstScan) {
  auto s = std::make_shared<CurrentIndex>();
  s->Apply({E(1, 1, Value::Long(5), 10), E(2, 1, Value::Long(3), 10), E(3, 2, Value::Long(3), 10)});
  EXPECT_FALSE(s->AvetBuilt(1));
  s->BuildAvet(1);
  s->BuildAvet(99);
  EXPECT_TRUE(s->AvetBuilt(1));
  EXPECT_FALSE(s->AvetBuilt(2));
  Value three = Value::Long(3);
  IndexBounds b;
  b.aid = 1;
  b.v = &three;
  EXPECT_EQ(ScanAll(*s, IndexOrder::kAvet, b).size(), 1u);
  s->Apply({E(4, 1, Value::Long(3), 20)});
  EXPECT_EQ(ScanAll(*s, IndexOrder::kAvet, b).size(), 2u);
  EXPECT_TRUE(s->CheckInvariants());
}

TEST(MemoryIndex, ReportsMemoryPerDatom) {
  CurrentIndex idx;
  std::vector<IndexEntry> tx;
  for (uint64_t e = 1; e <= 20000; ++e) {
    tx.push_back(E(e, 1, Value::String("name-" + std::to_string(e)), 1));
    tx.push_back(E(e, 2, Value::Long(static_cast<int64_t>(e % 90)), 1));
    tx.push_back(E(e, 3, Value::Ref(EntityId{1 + e % 100}), 1));
  }
  idx.Apply(tx);
  double lazy = static_cast<double>(idx.MemoryBytes()) / static_cast<double>(idx.size());
  // Build every attribute's AVET.
  for (uint32_t a = 1; a <= 3; ++a) {
    IndexBounds b;
    b.aid = a;
    idx.Scan(IndexOrder::kAvet, b, [](const IndexEntry&) { return false; });
  }
  double full = static_cast<double>(idx.MemoryBytes()) / static_cast<double>(idx.size());
  std::cout << "current index: " << idx.size() << " datoms, " << lazy << " bytes/datom without AVET, " << full
            << " with AVET for every attribute (index structures)\n";
  EXPECT_LT(lazy, full);
  EXPECT_LT(full, 400.0);
}

}  // namespace
}  // namespace cairn::storage
