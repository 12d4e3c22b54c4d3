// ShardMap, placement functions and ClusterConfig parsing.
#include "cluster/shard_map.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace cairn::cluster {
namespace {

TEST(ShardMap, ShardOfPartitionFollowsTheContract) {
  EXPECT_EQ(ShardOfPartition(0, 4), 0u);
  EXPECT_EQ(ShardOfPartition(1, 4), 1u);
  EXPECT_EQ(ShardOfPartition(4, 4), 4u);
  EXPECT_EQ(ShardOfPartition(5, 4), 1u);
  EXPECT_EQ(ShardOfPartition(255, 4), 3u);  // 1 + 254 % 4
  EXPECT_EQ(ShardOfPartition(7, 1), 1u);
}

TEST(ShardMap, ReplicasWrapAroundTheSortedNodes) {
  std::vector<uint32_t> ids = {1, 2, 3};
  EXPECT_EQ(ShardReplicas(1, ids, 3), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(ShardReplicas(2, ids, 3), (std::vector<uint32_t>{2, 3, 1}));
  EXPECT_EQ(ShardReplicas(4, ids, 2), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(ShardReplicas(3, {10, 20, 30, 40, 50}, 3), (std::vector<uint32_t>{30, 40, 50}));
  EXPECT_EQ(ShardReplicas(5, {10, 20, 30, 40, 50}, 3), (std::vector<uint32_t>{50, 10, 20}));
  EXPECT_EQ(MetaVoters({1, 2, 3, 4, 5}), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(MetaVoters({7}), (std::vector<uint32_t>{7}));
}

NodeAddress Node(uint32_t id) {
  NodeAddress a;
  a.id = id;
  return a;
}

TEST(ShardMap, GroupsAndPartitions) {
  ShardMap m(4, 2, 9, {Node(3), Node(1), Node(2)});
  EXPECT_EQ(m.node_ids(), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(m.ReplicasOf(0), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(m.ReplicasOf(3), (std::vector<uint32_t>{3, 1}));
  EXPECT_TRUE(m.ReplicasOf(5).empty());
  EXPECT_EQ(m.GroupsOn(2), (std::vector<uint64_t>{0, 1, 2, 4}));
  EXPECT_EQ(m.GroupsOn(1), (std::vector<uint64_t>{0, 1, 3, 4}));
  EXPECT_EQ(m.PartitionsOf(1), (std::vector<uint32_t>{1, 5}));
  EXPECT_EQ(m.PartitionsOf(4), (std::vector<uint32_t>{4, 8}));
  EXPECT_TRUE(m.Owns(2, 6));
  EXPECT_FALSE(m.Owns(2, 0));
  EXPECT_FALSE(m.Owns(2, 9));
  EXPECT_EQ(m.GroupOfEntity(EntityId::Make(6, 42)), 2u);
  EXPECT_EQ(m.GroupOfEntity(EntityId::Make(0, 42)), 0u);
  // Every user partition belongs to exactly one shard.
  for (uint32_t p = 1; p < 9; ++p) {
    int owners = 0;
    for (uint32_t s = 1; s <= 4; ++s) owners += m.Owns(s, p);
    EXPECT_EQ(owners, 1) << p;
  }
}

std::string Config(const std::string& extra = "", const std::string& nodes = "") {
  std::string n = nodes.empty() ? R"([{"id": 1, "peer": "127.0.0.1:7101", "http": "127.0.0.1:7001"},
    {"id": 2, "peer": "127.0.0.1:7102", "http": "127.0.0.1:7002"},
    {"id": 3, "peer": "127.0.0.1:7103", "http": "127.0.0.1:7003"}])"
                                : nodes;
  return R"({"node_id": 2, "dir": "/tmp/x/node2", "http": "127.0.0.1:7002", "peer": "127.0.0.1:7102",
    "cluster_secret": "s3cret", "shards": 4, "replication": 3, "nodes": )" +
         n + extra + "}";
}

TEST(ClusterConfig, ParsesTheContractExample) {
  Result<ClusterConfig> c = ClusterConfig::Parse(Config(R"(, "tick_ms": 5, "sync": false, "log_level": "warn")"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 2u);
  EXPECT_EQ(c->dir, "/tmp/x/node2");
  EXPECT_EQ(c->http_host, "127.0.0.1");
  EXPECT_EQ(c->http_port, 7002);
  EXPECT_EQ(c->peer_port, 7102);
  EXPECT_EQ(c->cluster_secret, "s3cret");
  EXPECT_EQ(c->shards, 4u);
  EXPECT_EQ(c->partitions, 256u);
  EXPECT_EQ(c->tick_ms, 5);
  EXPECT_FALSE(c->sync);
  EXPECT_EQ(c->log_level, "warn");
  ASSERT_EQ(c->nodes.size(), 3u);
  EXPECT_EQ(c->nodes[2].peer_port, 7103);
  ShardMap m = c->map();
  EXPECT_EQ(m.GroupsOn(2), (std::vector<uint64_t>{0, 1, 2, 3, 4}));
}

void ExpectError(const std::string& json, const std::string& needle) {
  Result<ClusterConfig> c = ClusterConfig::Parse(json, "node.json");
  ASSERT_FALSE(c.ok()) << json;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << c.status().ToString();
  EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("node.json"), std::string::npos) << c.status().ToString();
}

TEST(ClusterConfig, ErrorsNameTheKey) {
  ExpectError("{", "malformed JSON");
  ExpectError("[1]", "JSON object");
  ExpectError(Config(R"(, "colour": "blue")"), "'colour' is not a known key");
  ExpectError(R"({"node_id": 1})", "'dir' is missing");
  ExpectError(Config(R"(, "tick_ms": "ten")"), "'tick_ms' must be a non-negative integer");
  ExpectError(Config(R"(, "partitions": 4)"), "'partitions' must exceed 'shards'");
  ExpectError(Config(R"(, "sync": 1)"), "'sync' must be true or false");
  ExpectError(Config(R"(, "cluster_secret_file": "/x")"), "exactly one of 'cluster_secret'");
  ExpectError(Config("", R"([{"id": 1, "peer": "127.0.0.1", "http": "127.0.0.1:7001"}])"), "nodes[0]: 'peer'");
  ExpectError(Config("", R"([{"id": 2, "peer": "127.0.0.1:1", "http": "127.0.0.1:99999"}])"), "nodes[0]: 'http'");
  ExpectError(Config("", R"([{"id": 2, "peer": "127.0.0.1:1", "http": "h:1", "x": 1}])"), "'x' is not a known key");
  ExpectError(Config("", R"([{"id": 2, "peer": "a:1", "http": "a:2"}, {"id": 2, "peer": "a:3", "http": "a:4"}])"),
              "repeats node id 2");
  ExpectError(Config("", R"([{"id": 1, "peer": "a:1", "http": "a:2"}, {"id": 3, "peer": "a:3", "http": "a:4"}])"),
              "'node_id' is 2, which is not in 'nodes'");
  ExpectError(Config("", R"([{"id": 2, "peer": "a:1", "http": "a:2"}])"), "'replication' is 3");
  ExpectError(Config(R"(, "shards": 0)"), "'shards' must be in 1..");
  ExpectError(Config(R"(, "clock_offset_ms": 86400001)"), "'clock_offset_ms' must be an integer");
  ExpectError(Config(R"(, "clock_offset_ms": -86400001)"), "'clock_offset_ms' must be an integer");
  ExpectError(Config(R"(, "clock_offset_ms": 18446744073709551615)"), "'clock_offset_ms' must be an integer");
  ExpectError(Config(R"(, "clock_offset_ms": 1.5)"), "'clock_offset_ms' must be an integer");
}

TEST(ClusterConfig, ClockOffset) {
  Result<ClusterConfig> c = ClusterConfig::Parse(Config(R"(, "clock_offset_ms": -60000)"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clock_offset_ms, -60000);
  c = ClusterConfig::Parse(Config(""));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->clock_offset_ms, 0);
}

TEST(ClusterConfig, ReadsTheSecretFile) {
  std::string dir = ::testing::TempDir() + "/cairn_cfg_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  std::string secret = dir + "/secret";
  std::ofstream(secret) << "from-file\n";
  std::string json = Config();
  json.replace(json.find(R"("cluster_secret": "s3cret")"), std::string(R"("cluster_secret": "s3cret")").size(),
               "\"cluster_secret_file\": \"" + secret + "\"");
  Result<ClusterConfig> c = ClusterConfig::Parse(json);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cluster_secret, "from-file");
  std::filesystem::remove(secret);
  Result<ClusterConfig> missing = ClusterConfig::Parse(json);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIOError);
  EXPECT_NE(missing.status().message().find("cluster_secret_file"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::cluster
