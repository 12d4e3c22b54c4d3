// ShardMapCache: how the meta group's records become the map a node routes
// with (what is followed, what is not), versions, and the records' wire
// encoding (round trip; bad bytes are InvalidArgument, never a crash).
#include "cluster/shard_map_cache.h"

#include <gtest/gtest.h>

#include <random>

namespace cairn::cluster {
namespace {

NodeAddress Addr(uint32_t id, const std::string& peer, const std::string& http) {
  NodeAddress n;
  n.id = id;
  n.peer = peer;
  n.http = http;
  EXPECT_TRUE(SplitHostPort(peer, "peer", &n.peer_host, &n.peer_port).ok());
  EXPECT_TRUE(SplitHostPort(http, "http", &n.http_host, &n.http_port).ok());
  return n;
}

ShardMap ConfigMap() {
  // 4 nodes, 4 shards, replication 3: shard 3 on [3, 4, 1].
  std::vector<NodeAddress> nodes;
  for (uint32_t i = 1; i <= 4; ++i) {
    nodes.push_back(Addr(i, "10.0.0." + std::to_string(i) + ":7100", "10.0.0." + std::to_string(i) + ":7000"));
  }
  return ShardMap(4, 3, 256, nodes);
}

// The records bootstrap writes for `config` (recorded addresses: another
// node's view of the peers).
MetaRecords RecordsOf(const ShardMap& config) {
  MetaRecords r;
  r.shards = config.shards();
  r.partitions = config.partitions();
  r.replication = config.replication();
  for (const NodeAddress& n : config.nodes()) {
    r.nodes.push_back(Addr(n.id, "192.168.0." + std::to_string(n.id) + ":1", "192.168.0." + std::to_string(n.id) + ":2"));
  }
  for (uint32_t s = 1; s <= config.shards(); ++s) {
    std::vector<uint32_t> replicas = config.ReplicasOf(s);
    std::sort(replicas.begin(), replicas.end());
    r.shard_records.push_back({s, replicas, 0});
  }
  return r;
}

TEST(ShardMapCache, RecordsEqualToTheConfigGiveTheConfigsMap) {
  ShardMap config = ConfigMap();
  std::vector<std::string> diffs;
  ShardMap m = ShardMapCache::Merge(config, RecordsOf(config), &diffs);
  EXPECT_EQ(m, config);  // placement order kept, addresses as this node's config says
  EXPECT_TRUE(diffs.empty()) << diffs.front();
}

TEST(ShardMapCache, ReplicaSetsLeaderHintsAndNodesAreFollowedCountsAreNot) {
  ShardMap config = ConfigMap();
  MetaRecords r = RecordsOf(config);
  r.shard_records[2].replicas = {2, 3, 4};  // shard 3: {1,3,4} -> {2,3,4}
  r.shard_records[2].leader = 4;
  r.shard_records[1].leader = 3;  // shard 2: same set, a hint
  r.nodes.push_back(Addr(9, "127.0.0.9:1", "127.0.0.9:2"));
  r.shards = 8;  // not followed
  r.shard_records.push_back({7, {1}, 0});  // a shard the config does not have: ignored
  std::vector<std::string> diffs;
  ShardMap m = ShardMapCache::Merge(config, r, &diffs);
  EXPECT_EQ(m.ReplicasOf(3), (std::vector<uint32_t>{4, 2, 3}));  // the hint first, then ascending
  EXPECT_EQ(m.LeaderHint(3), 4u);
  EXPECT_EQ(m.ReplicasOf(2), config.ReplicasOf(2));  // same set: config order
  EXPECT_EQ(m.LeaderHint(2), 3u);
  EXPECT_EQ(m.LeaderHint(1), 0u);
  EXPECT_EQ(m.shards(), 4u);
  EXPECT_EQ(m.ReplicasOf(0), config.ReplicasOf(0));  // meta voters from the config
  ASSERT_EQ(m.nodes().size(), 5u);
  EXPECT_EQ(m.node(1)->peer, "10.0.0.1:7100");  // the config's address for a node it lists
  EXPECT_EQ(m.node(9)->peer, "127.0.0.9:1");    // the recorded one otherwise
  EXPECT_EQ(m.node(9)->peer_port, 1);
  std::string all;
  for (const std::string& d : diffs) all += d + "\n";
  EXPECT_NE(all.find("shard 3 replicas [4 2 3] in the meta group, [3 4 1] by the config"), std::string::npos) << all;
  EXPECT_NE(all.find("8 shards"), std::string::npos) << all;
  EXPECT_NE(all.find("not followed"), std::string::npos) << all;
  EXPECT_NE(all.find("node 9 is in the meta group's records"), std::string::npos) << all;
  EXPECT_NE(all.find("shard 7"), std::string::npos) << all;

  // A node dropped from the records is dropped from the map (and reported).
  MetaRecords fewer = RecordsOf(config);
  fewer.nodes.pop_back();
  diffs.clear();
  m = ShardMapCache::Merge(config, fewer, &diffs);
  EXPECT_EQ(m.node(4), nullptr);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_NE(diffs[0].find("node 4 is in the config"), std::string::npos);
}

TEST(ShardMapCache, ApplyInstallsNewerVersionsOnly) {
  ShardMap config = ConfigMap();
  ShardMapCache cache(1, config);
  EXPECT_EQ(cache.version(), 0u);
  EXPECT_FALSE(cache.from_meta());
  EXPECT_EQ(*cache.map(), config);
  MetaRecords r = RecordsOf(config);
  EXPECT_FALSE(cache.Apply(r, 5));  // the same map, now from the meta group
  EXPECT_TRUE(cache.from_meta());
  EXPECT_EQ(cache.version(), 5u);
  std::shared_ptr<const ShardMap> before = cache.map();
  r.shard_records[0].leader = 2;
  EXPECT_FALSE(cache.Apply(r, 4));  // older: ignored
  EXPECT_EQ(cache.map()->LeaderHint(1), 0u);
  EXPECT_TRUE(cache.Apply(r, 9));
  EXPECT_EQ(cache.map()->LeaderHint(1), 2u);
  EXPECT_EQ(before->LeaderHint(1), 0u);  // a snapshot handed out earlier does not change
  EXPECT_FALSE(cache.Apply(r, 10));     // nothing changed
  EXPECT_EQ(cache.version(), 10u);
}

TEST(ShardMapCache, RecordsRoundTripAndBadBytesAreInvalidArgument) {
  MetaRecords r = RecordsOf(ConfigMap());
  r.shard_records[1].leader = 3;
  r.nodes.push_back(Addr(9, "127.0.0.9:1", "127.0.0.9:2"));
  std::string bytes = EncodeMetaRecords(r);
  Result<MetaRecords> back = DecodeMetaRecords(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, r);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<MetaRecords> cut = DecodeMetaRecords(bytes.substr(0, n));
    ASSERT_FALSE(cut.ok()) << n;
    EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(DecodeMetaRecords(bytes + "x").status().code(), StatusCode::kInvalidArgument);
  // A forged count never drives an allocation.
  std::string forged = bytes.substr(0, 4) + std::string("\xff\xff\xff\xff\x0f", 5);
  EXPECT_EQ(DecodeMetaRecords(forged).status().code(), StatusCode::kInvalidArgument);
  std::mt19937_64 rng(11);
  for (int i = 0; i < 5000; ++i) {
    std::string m = bytes;
    for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k) m[rng() % m.size()] = static_cast<char>(rng());
    Result<MetaRecords> d = DecodeMetaRecords(m);
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
    }
  }
}

}  // namespace
}  // namespace cairn::cluster
