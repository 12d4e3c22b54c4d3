// Transaction router: over a cluster view of real split stores
// (split_cluster.h), the router's shard is the shard the transactor really
// places the transaction's entities on (checked by applying it), schema
// transactions go to the meta group, cross-shard and mixed transactions are
// refused with clear errors and write nothing, and lookup refs / idents in
// value positions that live off the target shard are rewritten to ids so the
// target shard's own transactor resolves them without the other shards.
#include "cluster/tx_router.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "shard/tx_placement.h"
#include "split_cluster.h"

namespace cairn::cluster {
namespace {

using shard::StoreSource;
using testing::SplitCluster;

constexpr uint32_t kShards = 3;
constexpr uint32_t kPartitions = 16;

const char* kSchema =
    "[{:db/ident :p/name :db/valueType :db.type/string :db/unique :db.unique/identity}"
    " {:db/ident :p/age :db/valueType :db.type/long}"
    " {:db/ident :p/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}"
    " {:db/ident :p/best :db/valueType :db.type/ref}"
    " {:db/ident :p/color :db/valueType :db.type/ref}"
    " {:db/ident :c/red} {:db/ident :c/blue}]";

uint32_t ShardOf(uint32_t p) { return testing::ContractShardOf(p, kShards); }

// A :p/name value that an upsert places on shard `s` (the k-th such name).
std::string NameOn(uint32_t s, int k = 0) {
  for (int i = 0;; ++i) {
    std::string n = "u" + std::to_string(i);
    if (ShardOf(shard::UniqueIdentityPartition(Keyword::Intern("p/name"), Value::String(n), kPartitions)) == s && k-- == 0)
      return n;
  }
}

Result<RoutedTransaction> Route(SplitCluster& c, const std::string& tx) {
  auto view = c.ClusterView(StoreSource::Kind::kCurrent);
  return RouteTransaction(tx, *view, kShards, kPartitions, ShardOf);
}

// The shards the reference store's transactor puts `result`'s entities on.
std::set<uint32_t> ShardsOf(const shard::TxResult& result) {
  std::set<uint32_t> out;
  for (const Datom& d : result.datoms)
    if (!d.e.is_tx()) out.insert(d.e.partition() == 0 ? 0 : ShardOf(d.e.partition()));
  return out;
}

uint64_t TotalDatoms(SplitCluster& c) {
  uint64_t n = c.meta().store().datom_count();
  for (uint32_t s = 1; s <= kShards; ++s) n += c.shard(s).store().datom_count();
  return n;
}

TEST(TxRouter, SchemaGoesToMetaAndMixedIsRefused) {
  SplitCluster c("router_schema", kShards, kPartitions, false);
  auto r = Route(c, kSchema);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, RoutedTransaction::Kind::kSchema);
  EXPECT_EQ(r->shard, 0u);
  EXPECT_EQ(r->tx_edn, kSchema);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  // An ident on its own is schema too; with data it is refused.
  r = Route(c, "[{:db/ident :c/green}]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, RoutedTransaction::Kind::kSchema);
  r = Route(c, "[{:db/ident :c/green} {:p/name \"x\" :p/age 1}]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("must not also write ordinary data"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(":p/name"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(IsCrossShard(r.status()));
}

// Random transactions: whenever the router names one shard, the real
// transactor (on the reference store) writes only entities of that shard;
// whenever it refuses with cross_shard, the real transactor would have
// written entities on more than one shard.
TEST(TxRouter, PicksTheShardTheTransactorPlacesEntitiesOn) {
  SplitCluster c("router_place", kShards, kPartitions, false);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  std::mt19937_64 rng(11);
  auto rnd = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  std::vector<EntityId> ids;
  int names = 0, routed = 0, cross = 0;
  for (int i = 0; i < 300; ++i) {
    std::string tx = "[";
    int forms = 1 + rnd(3);
    for (int k = 0; k < forms; ++k) {
      switch (ids.empty() ? 0 : rnd(7)) {
        case 0: tx += "{:p/name \"m" + std::to_string(names++) + "\" :p/age " + std::to_string(rnd(9)) + "}"; break;
        case 1: tx += "{:db/id \"t" + std::to_string(k) + "\" :p/age 3}"; break;  // placed by its tempid (or the anchor)
        case 2: tx += "[:db/add " + std::to_string(ids[static_cast<size_t>(rnd(static_cast<int>(ids.size())))].raw) + " :p/age " + std::to_string(rnd(50)) + "]"; break;
        case 3: tx += "{:db/id [:p/name \"m" + std::to_string(rnd(names)) + "\"] :p/age " + std::to_string(rnd(50)) + "}"; break;
        case 4: tx += "{:p/age 7 :db/partition " + std::to_string(1 + rnd(kPartitions - 1)) + "}"; break;
        case 5: tx += "{:p/name \"m" + std::to_string(rnd(names)) + "\" :p/best [:p/name \"m" + std::to_string(rnd(names)) + "\"]}"; break;
        default: tx += "{:db/id \"w" + std::to_string(k) + "\" :p/friend " + std::to_string(ids[static_cast<size_t>(rnd(static_cast<int>(ids.size())))].raw) + "}"; break;
      }
    }
    tx += "]";
    auto route = Route(c, tx);
    auto applied = c.Transact(tx);  // the real transactor, on one store
    if (!route.ok() && !IsCrossShard(route.status())) {
      // The dry run failed: the transactor fails the same way.
      EXPECT_FALSE(applied.ok()) << tx << "\n" << route.status().ToString();
      if (applied.ok()) continue;
      EXPECT_EQ(route.status().code(), applied.status().code()) << tx;
      continue;
    }
    ASSERT_TRUE(applied.ok()) << tx << "\n" << applied.status().ToString();
    for (const auto& [name, id] : applied->tempids) ids.push_back(id);
    std::set<uint32_t> real = ShardsOf(*applied);
    if (route.ok()) {
      ++routed;
      ASSERT_EQ(route->kind, RoutedTransaction::Kind::kData) << tx;
      EXPECT_LE(real.size(), 1u) << tx;
      if (real.size() == 1) {
        EXPECT_EQ(*real.begin(), route->shard) << tx;
      }
    } else {
      ++cross;
      EXPECT_GT(real.size(), 1u) << tx << "\n" << route.status().ToString();
    }
  }
  EXPECT_GT(routed, 100);
  EXPECT_GT(cross, 20);
}

TEST(TxRouter, CrossShardIsRefusedNamingTheShardsAndWritesNothing) {
  SplitCluster c("router_cross", kShards, kPartitions, false);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  uint64_t before = TotalDatoms(c);
  std::string tx = "[{:p/name \"" + NameOn(1) + "\"} {:p/name \"" + NameOn(3) + "\"}]";
  auto r = Route(c, tx);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsCrossShard(r.status())) << r.status().ToString();
  EXPECT_NE(r.status().message().find("shards 1, 3 ("), std::string::npos) << r.status().ToString();
  EXPECT_EQ(TotalDatoms(c), before);
  // The dry run's own errors pass through with their code and position.
  r = Route(c, "[{:p/name \"x\" :p/age \"old\"}]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("1:"), std::string::npos) << r.status().ToString();
  r = Route(c, "[[:db/add [:p/name \"nobody\"] :p/age 3]]");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  r = Route(c, "[{:p/name \"x\"");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TotalDatoms(c), before);
}

TEST(TxRouter, RewritesValueRefsThatLiveOnOtherShards) {
  SplitCluster c("router_rewrite", kShards, kPartitions, false);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  std::string a = NameOn(1), b = NameOn(2), a2 = NameOn(1, 1);
  auto made = c.Transact("[{:p/name \"" + a + "\"}]");
  ASSERT_TRUE(made.ok());
  ASSERT_TRUE(c.Transact("[{:p/name \"" + a2 + "\"}]").ok());
  ASSERT_TRUE(c.Transact("[{:p/name \"" + b + "\"}]").ok());
  auto view = c.ClusterView(StoreSource::Kind::kCurrent);
  EntityId ea = *view->Lookup(Keyword::Intern("p/name"), Value::String(a));
  EntityId ea2 = *view->Lookup(Keyword::Intern("p/name"), Value::String(a2));
  EntityId red = *view->Lookup(Keyword::Intern("db/ident"), Value::Kw(Keyword::Intern("c/red")));

  // On shard 2: friends on shard 1 by lookup ref (map form, cardinality
  // many vector: rewritten), a best friend on shard 2 by lookup ref and a
  // color by ident (both stay: shard 2 resolves them itself).
  std::string tx = "[{:db/id [:p/name \"" + b + "\"] :p/friend [[:p/name \"" + a + "\"] [:p/name \"" + a2 +
                   "\"]] :p/best [:p/name \"" + b + "\"] :p/color :c/red}"
                   " [:db/add [:p/name \"" + b + "\"] :p/age 5]]";
  auto r = Route(c, tx);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, RoutedTransaction::Kind::kData);
  EXPECT_EQ(r->shard, 2u);
  EXPECT_TRUE(r->rewritten);
  std::string want = "[{:db/id [:p/name \"" + b + "\"] :p/friend [" + std::to_string(ea.raw) + " " +
                     std::to_string(ea2.raw) + "] :p/best [:p/name \"" + b +
                     "\"] :p/color :c/red} [:db/add [:p/name \"" + b + "\"] :p/age 5]]";
  auto got_edn = ReadEdn(r->tx_edn);
  ASSERT_TRUE(got_edn.ok()) << r->tx_edn;
  EXPECT_TRUE(EdnEquals(*got_edn, ReadEdn(want).value())) << r->tx_edn << "\nwant " << want;

  // Shard 2's own transactor cannot resolve the original (the lookup refs
  // name entities it does not hold) ...
  shard::TransactorOptions topts;
  topts.partitions = kPartitions;
  shard::Transactor transactor(topts);
  auto shard2 = c.ShardView(2);
  shard::SeqAllocator ids(c.shard(2).store().next_seqs(), kPartitions);
  auto original = transactor.Prepare(ReadEdn(tx).value(), *shard2, TxTime{900000}, ids);
  ASSERT_FALSE(original.ok());
  EXPECT_EQ(original.status().code(), StatusCode::kNotFound) << original.status().ToString();
  // ... and the rewritten one no longer asks it to: what is left is whether
  // it accepts a raw id of an entity held by another shard.
  auto rewritten = transactor.Prepare(*got_edn, *shard2, TxTime{900000}, ids);
  if (rewritten.ok()) {
    std::printf("the shard's transactor accepts foreign ids in value positions\n");
    std::set<std::string> refs;
    for (const Datom& d : rewritten->datoms)
      if (d.a == Keyword::Intern("p/friend") || d.a == Keyword::Intern("p/color")) refs.insert(d.v.ToString());
    EXPECT_EQ(refs, (std::set<std::string>{std::to_string(ea.raw), std::to_string(ea2.raw), std::to_string(red.raw)}));
  } else {
    // Today's transactor: an integer id in a value position must name an
    // entity the shard holds (docs/cluster.md, "Routing transactions").
    std::printf("the shard's transactor refuses foreign ids in value positions: %s\n",
                rewritten.status().ToString().c_str());
    EXPECT_NE(rewritten.status().message().find(std::to_string(ea.raw)), std::string::npos)
        << rewritten.status().ToString();
    EXPECT_EQ(rewritten.status().message().find("[:p/name"), std::string::npos) << rewritten.status().ToString();
  }

  // Only off-shard references are rewritten: an ident-free transaction on
  // shard 1 naming shard-1 entities is sent as written, byte for byte.
  std::string local = "[[:db/add [:p/name \"" + a + "\"] :p/best [:p/name \"" + a2 + "\"]]]";
  r = Route(c, local);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shard, 1u);
  EXPECT_FALSE(r->rewritten);
  EXPECT_EQ(r->tx_edn, local);
  // An ident in a value position stays symbolic, and shard 1 resolves it
  // from its own copy of the system partition.
  r = Route(c, "[[:db/add " + std::to_string(ea.raw) + " :p/color :c/blue]]");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->shard, 1u);
  EXPECT_FALSE(r->rewritten);
  shard::SeqAllocator ids1(c.shard(1).store().next_seqs(), kPartitions);
  auto on1 = transactor.Prepare(ReadEdn(r->tx_edn).value(), *c.ShardView(1), TxTime{900001}, ids1);
  EXPECT_TRUE(on1.ok()) << on1.status().ToString();
}

TEST(TxRouter, RedundantTransactionFollowsItsEntity) {
  SplitCluster c("router_redundant", kShards, kPartitions, false);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  std::string n = NameOn(3);
  ASSERT_TRUE(c.Transact("[{:p/name \"" + n + "\" :p/age 4}]").ok());
  auto r = Route(c, "[[:db/add [:p/name \"" + n + "\"] :p/age 4]]");  // already true
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kind, RoutedTransaction::Kind::kData);
  EXPECT_EQ(r->shard, 3u);
  // Metadata on the transaction entity alone does not move it.
  r = Route(c, "[{:db/id \"datomic.tx\" :p/age 1} [:db/add [:p/name \"" + n + "\"] :p/age 9]]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->shard, 3u);
}

}  // namespace
}  // namespace cairn::cluster
