// Coordinator and Node: 3 nodes in one process over real TCP on loopback,
// with real SQLite files. Transactions through every node, read back on
// every node; schema reaches every shard; cross-shard refused; forwarding
// from a node that does not lead the shard; a retried request id applies once.
#include "cluster/coordinator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "cluster/node.h"
#include "shard/tx_placement.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kShards = 4;
constexpr uint32_t kPartitions = 32;

class ThreeNodes : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/cairn_coord_" + std::to_string(::getpid());
    std::filesystem::remove_all(root_);
    for (uint32_t id = 1; id <= 3; ++id) {
      NodeOptions o;
      ClusterConfig& c = o.config;
      c.node_id = id;
      c.dir = root_ + "/node" + std::to_string(id);
      c.peer_host = "127.0.0.1";
      c.peer_port = 0;
      c.cluster_secret = "test-secret";
      c.shards = kShards;
      c.replication = 3;
      c.partitions = kPartitions;
      c.sync = false;
      for (uint32_t n = 1; n <= 3; ++n) {
        NodeAddress a;
        a.id = n;
        a.peer = a.http = "127.0.0.1:1";  // re-addressed below once ports are known
        a.peer_host = a.http_host = "127.0.0.1";
        a.peer_port = a.http_port = 1;
        c.nodes.push_back(a);
      }
      Result<std::unique_ptr<Node>> node = Node::Start(o);
      ASSERT_TRUE(node.ok()) << node.status().ToString();
      nodes_.push_back(std::move(*node));
    }
    for (auto& a : nodes_) {
      for (auto& b : nodes_) {
        if (a != b) a->SetPeer(b->id(), "127.0.0.1", b->peer_port());
      }
    }
    auto deadline = std::chrono::steady_clock::now() + 15s;
    for (auto& n : nodes_) {
      while (!n->Health().ok() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
      ASSERT_TRUE(n->Health().ok()) << n->Health().ToString();
    }
  }
  void TearDown() override {
    nodes_.clear();
    std::filesystem::remove_all(root_);
  }

  // Values of `attr` over the whole cluster, as node `i` reads them.
  std::vector<std::string> Strings(size_t i, const char* attr) {
    Coordinator& c = nodes_[i]->coordinator();
    Result<std::shared_ptr<const datalog::IndexSource>> view = c.ClusterView(c.Deadline());
    EXPECT_TRUE(view.ok()) << view.status().ToString();
    std::vector<std::string> out;
    if (!view.ok()) return out;
    datalog::DatomPattern p;
    p.a = Keyword::Intern(attr);
    EXPECT_TRUE((*view)->Scan(p, [&](const Datom& d) {
                          out.push_back(d.v.as_string());
                          return true;
                        }).ok());
    std::sort(out.begin(), out.end());
    return out;
  }

  // An email whose identity partition lives on `shard`.
  static std::string EmailOnShard(uint32_t shard, int salt) {
    for (int i = 0;; ++i) {
      std::string email = "u" + std::to_string(salt) + "-" + std::to_string(i) + "@x";
      uint32_t p = shard::UniqueIdentityPartition(Keyword::Intern("user/email"), Value::String(email), kPartitions);
      if (ShardOfPartition(p, kShards) == shard) return email;
    }
  }

  std::string root_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

constexpr const char* kSchema =
    "[{:db/ident :user/email :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
    "  :db/unique :db.unique/identity}"
    " {:db/ident :user/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]";

TEST_F(ThreeNodes, SchemaReachesEveryShardAndDataIsReadEverywhere) {
  Result<TxOutcome> schema = nodes_[1]->coordinator().Transact(kSchema, "");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(schema->group, kMetaGroup);
  // Every replica of every group on every node knows the attribute.
  for (auto& n : nodes_) {
    for (uint64_t g = 0; g <= kShards; ++g) {
      Result<std::shared_ptr<const datalog::IndexSource>> db = n->coordinator().GroupView(g, n->coordinator().Deadline());
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      EXPECT_NE((*db)->schema().Find(Keyword::Intern("user/email")), nullptr) << "node " << n->id() << " group " << g;
    }
  }
  // One write per shard, each through a different node (so most are
  // forwarded to a leader elsewhere).
  std::vector<std::string> want;
  int forwarded = 0;
  for (uint32_t s = 1; s <= kShards; ++s) {
    Node& via = *nodes_[s % 3];
    std::string email = EmailOnShard(s, 1);
    Result<GroupStatus> st = via.host().status(s);
    ASSERT_TRUE(st.ok());
    if (st->leader != via.id()) ++forwarded;
    Result<TxOutcome> r =
        via.coordinator().Transact("[{:db/id \"u\" :user/email \"" + email + "\" :user/name \"n" + std::to_string(s) + "\"}]", "");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->group, s);
    ASSERT_EQ(r->tempids.count("u"), 1u);
    EXPECT_EQ(ShardOfPartition(r->tempids["u"].partition(), kShards), s);
    EXPECT_FALSE(r->datoms.empty());
    want.push_back(email);
  }
  EXPECT_GT(forwarded, 0);
  std::sort(want.begin(), want.end());
  for (size_t i = 0; i < nodes_.size(); ++i) EXPECT_EQ(Strings(i, "user/email"), want) << "node " << i + 1;
}

TEST_F(ThreeNodes, CrossShardAndMixedSchemaTransactionsAreRefused) {
  ASSERT_TRUE(nodes_[0]->coordinator().Transact(kSchema, "").ok());
  std::string a = EmailOnShard(1, 2), b = EmailOnShard(2, 2);
  Result<TxOutcome> r = nodes_[2]->coordinator().Transact(
      "[{:db/id \"a\" :user/email \"" + a + "\"} {:db/id \"b\" :user/email \"" + b + "\"}]", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().rfind("cross_shard", 0), 0u) << r.status().ToString();
  EXPECT_NE(r.status().message().find("shards 1, 2"), std::string::npos) << r.status().ToString();
  Result<TxOutcome> mixed = nodes_[0]->coordinator().Transact(
      "[{:db/ident :user/age :db/valueType :db.type/long} {:db/id \"a\" :user/email \"" + a + "\"}]", "");
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("schema transaction"), std::string::npos) << mixed.status().ToString();
  // Nothing was written by either.
  for (size_t i = 0; i < nodes_.size(); ++i) EXPECT_TRUE(Strings(i, "user/email").empty());
}

TEST_F(ThreeNodes, RetriedRequestIdAppliesOnceFromAnyNode) {
  ASSERT_TRUE(nodes_[0]->coordinator().Transact(kSchema, "").ok());
  std::string tx = "[{:db/id \"x\" :user/email \"" + EmailOnShard(3, 3) + "\" :user/name \"first\"}]";
  Result<TxOutcome> first = nodes_[0]->coordinator().Transact(tx, "req-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  // The same request id through the other nodes (a client retrying elsewhere).
  for (size_t i = 1; i < 3; ++i) {
    Result<TxOutcome> again = nodes_[i]->coordinator().Transact(tx, "req-1");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_TRUE(again->duplicate);
    EXPECT_EQ(again->t, first->t);
    EXPECT_EQ(again->tempids, first->tempids);
  }
  // Applied once: one transaction on shard 3 besides the schema copies.
  Result<std::vector<Datom>> log = nodes_[2]->host().LogDatoms(3);
  ASSERT_TRUE(log.ok());
  int names = 0;
  for (const Datom& d : *log) names += d.a.str() == "user/name";
  EXPECT_EQ(names, 1);
}

TEST_F(ThreeNodes, StatusAndHealthReportEveryGroup) {
  for (auto& n : nodes_) {
    EXPECT_EQ(n->host().groups().size(), kShards + 1);
    for (uint64_t g = 0; g <= kShards; ++g) {
      Result<GroupStatus> st = n->host().status(g);
      ASSERT_TRUE(st.ok());
      EXPECT_NE(st->leader, 0u);
      if (st->role == raft::Role::kLeader) {
        EXPECT_EQ(st->replicas.size(), 3u);
      }
    }
  }
  nodes_[2]->Stop();
  EXPECT_FALSE(nodes_[2]->Health().ok());
}

}  // namespace
}  // namespace cairn::cluster
