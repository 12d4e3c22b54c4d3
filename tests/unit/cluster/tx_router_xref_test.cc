// Cross-shard refs end to end over real split stores: the router rewrites a
// lookup ref to another shard's entity into that entity's id, and the target
// shard's transactor — given the shard's ownership (TransactorOptions::
// owns_partition, as the Replica passes it) — accepts the foreign id in value
// position; the datoms commit to the target shard's real store and its own
// index then answers the ref. Without the ownership predicate the same
// rewritten transaction is refused ("does not exist"), as before the fix.
#include <gtest/gtest.h>

#include <set>

#include "cluster/tx_router.h"
#include "shard/tx_placement.h"
#include "split_cluster.h"

namespace cairn::cluster {
namespace {

using shard::StoreSource;
using testing::SplitCluster;

constexpr uint32_t kShards = 3;
constexpr uint32_t kPartitions = 16;

uint32_t ShardOf(uint32_t p) { return testing::ContractShardOf(p, kShards); }

// A :c/name (or :s/name) value that an upsert places on shard `s`.
std::string NameOn(const char* attr, uint32_t s) {
  for (int i = 0;; ++i) {
    std::string n = "n" + std::to_string(i);
    if (ShardOf(shard::UniqueIdentityPartition(Keyword::Intern(attr), Value::String(n), kPartitions)) == s) return n;
  }
}

TEST(TxRouterCrossShardRef, RewrittenRefAppliesOnTheTargetShard) {
  SplitCluster c("router_xref", kShards, kPartitions, false);
  ASSERT_TRUE(c.Transact("[{:db/ident :c/name :db/valueType :db.type/string :db/unique :db.unique/identity}"
                         " {:db/ident :s/name :db/valueType :db.type/string :db/unique :db.unique/identity}"
                         " {:db/ident :s/country :db/valueType :db.type/ref}]")
                  .ok());
  std::string country = NameOn("c/name", 1), sub = NameOn("s/name", 2);
  ASSERT_TRUE(c.Transact("[{:c/name \"" + country + "\"}]").ok());
  auto view = c.ClusterView(StoreSource::Kind::kCurrent);
  EntityId ec = *view->Lookup(Keyword::Intern("c/name"), Value::String(country));
  ASSERT_EQ(ShardOf(ec.partition()), 1u);

  // A subdivision on shard 2 referring to a country on shard 1.
  std::string tx = "[{:s/name \"" + sub + "\" :s/country [:c/name \"" + country + "\"]}]";
  auto r = RouteTransaction(tx, *view, kShards, kPartitions, ShardOf);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->shard, 2u);
  ASSERT_TRUE(r->rewritten);
  Result<Edn> routed = ReadEdn(r->tx_edn);
  ASSERT_TRUE(routed.ok()) << r->tx_edn;

  auto shard2 = c.ShardView(2);
  shard::SeqAllocator ids(c.shard(2).store().next_seqs(), kPartitions);
  TxTime t{1'800'000'000'000ull << 16};

  // The embedded default (owns everything) refuses the foreign id ...
  shard::TransactorOptions all;
  all.partitions = kPartitions;
  auto refused = shard::Transactor(all).Prepare(*routed, *shard2, t, ids);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kNotFound) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find(std::to_string(ec.raw) + " does not exist"), std::string::npos)
      << refused.status().ToString();

  // ... the shard's transactor, knowing what it owns, accepts it.
  shard::TransactorOptions owned = all;
  owned.owns_partition = [](uint32_t p) { return ShardOf(p) == 2; };
  auto prepared = shard::Transactor(owned).Prepare(*routed, *shard2, t, ids);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EntityId es;
  for (const Datom& d : prepared->datoms) {
    if (d.e.is_tx()) continue;
    EXPECT_EQ(ShardOf(d.e.partition()), 2u) << d.ToString();
    if (d.a == Keyword::Intern("s/country")) {
      EXPECT_EQ(d.v, Value::Ref(ec));
      es = d.e;
    }
  }
  ASSERT_TRUE(es.raw != 0);
  ASSERT_TRUE(c.shard(2).Commit(t, prepared->datoms, ids.advanced()).ok());

  // Shard 2's own store now holds the reference.
  datalog::DatomPattern p;
  p.e = es;
  p.a = Keyword::Intern("s/country");
  std::vector<Value> got;
  ASSERT_TRUE(c.ShardView(2)
                  ->Scan(p,
                         [&](const Datom& d) {
                           got.push_back(d.v);
                           return true;
                         })
                  .ok());
  EXPECT_EQ(got, std::vector<Value>{Value::Ref(ec)});
}

}  // namespace
}  // namespace cairn::cluster
