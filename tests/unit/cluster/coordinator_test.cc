// Coordinator and Node: 3 nodes in one process over real TCP on loopback,
// with real SQLite files. Transactions through every node, read back on
// every node; schema reaches every shard; cross-shard refused; forwarding
// from a node that does not lead the shard; a retried request id applies once;
// as-of/since/history views and diffs across shards equal one embedded store.
#include "cluster/coordinator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "cairn/database.h"
#include "cluster/node.h"
#include "datalog/engine.h"
#include "shard/tx_placement.h"

namespace cairn::cluster {
namespace {

using namespace std::chrono_literals;

constexpr uint32_t kShards = 4;
constexpr uint32_t kPartitions = 32;

// N nodes (sorted by id), 4 shards, replication 3.
class ClusterNodes : public ::testing::Test {
 protected:
  void Start(uint32_t count) {
    root_ = ::testing::TempDir() + "/cairn_coord_" + std::to_string(::getpid());
    std::filesystem::remove_all(root_);
    for (uint32_t id = 1; id <= count; ++id) {
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
      o.schema_repair_interval_ms = schema_repair_ms_;
      for (uint32_t n = 1; n <= count; ++n) {
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
  int schema_repair_ms_ = 2000;  // the nodes' default
};

class ThreeNodes : public ClusterNodes {
 protected:
  void SetUp() override { Start(3); }
};

// 4 nodes, replication 3: the meta group lives on nodes 1-3, shard s on
// nodes s, s+1, s+2 (mod 4), so every node lacks at least one group and
// reads it from another node (RemoteSource over the peer wire).
class FourNodes : public ClusterNodes {
 protected:
  void SetUp() override { Start(4); }
};

// The same with a background schema repair round every 300 ms.
class FourNodesFastRepair : public ClusterNodes {
 protected:
  void SetUp() override {
    schema_repair_ms_ = 300;
    Start(4);
  }
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
  // Node 3's replica may be a follower that has not applied it yet (the
  // answers came from the leader): a linearizable read there first.
  Coordinator& c3 = nodes_[2]->coordinator();
  ASSERT_TRUE(c3.GroupView(3, c3.Deadline()).ok());
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

TEST_F(ThreeNodes, SchemaWithDocIsASchemaTransaction) {
  Result<TxOutcome> r = nodes_[2]->coordinator().Transact(
      "[{:db/ident :user/nick :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
      "  :db/doc \"a user's nickname\"}]",
      "");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->group, kMetaGroup);
  // Installed everywhere, and usable in a data transaction.
  for (auto& n : nodes_) {
    for (uint64_t g = 0; g <= kShards; ++g) {
      Result<std::shared_ptr<const datalog::IndexSource>> db = n->coordinator().GroupView(g, n->coordinator().Deadline());
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      EXPECT_NE((*db)->schema().Find(Keyword::Intern("user/nick")), nullptr) << "node " << n->id() << " group " << g;
    }
  }
  Result<TxOutcome> data = nodes_[0]->coordinator().Transact("[{:db/id \"n\" :user/nick \"zed\"}]", "");
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_NE(data->group, kMetaGroup);
  // The doc string reads back from the meta group on every node.
  for (auto& n : nodes_) {
    Coordinator& c = n->coordinator();
    Result<std::shared_ptr<const datalog::IndexSource>> view = c.ClusterView(c.Deadline());
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    Result<QueryResult> q = datalog::RunQuery(
        "[:find ?d . :where [?a :db/ident :user/nick] [?a :db/doc ?d]]", {datalog::Input::Db(view->get())});
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    ASSERT_EQ(q->rows.size(), 1u);
    EXPECT_EQ(q->rows[0][0].as_string(), "a user's nickname");
  }
  // Applying the same schema again (a retry with a fresh id: nothing to write)
  // still goes to the meta group, not to a shard.
  Result<TxOutcome> again = nodes_[1]->coordinator().Transact(
      "[{:db/ident :user/nick :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
      "  :db/doc \"a user's nickname\"}]",
      "");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->group, kMetaGroup);
}

TEST_F(ThreeNodes, ARefToAnEntityOnAnotherShardCommits) {
  ASSERT_TRUE(nodes_[0]->coordinator()
                  .Transact("[{:db/ident :country/code :db/valueType :db.type/string :db/unique :db.unique/identity}"
                            " {:db/ident :sub/code :db/valueType :db.type/string :db/unique :db.unique/identity}"
                            " {:db/ident :sub/country :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}]",
                            "")
                  .ok());
  auto on_shard = [](const char* attr, uint32_t shard) {
    for (int i = 0;; ++i) {
      std::string v = "c" + std::to_string(i);
      uint32_t p = shard::UniqueIdentityPartition(Keyword::Intern(attr), Value::String(v), kPartitions);
      if (ShardOfPartition(p, kShards) == shard) return v;
    }
  };
  std::string country = on_shard("country/code", 1), sub = on_shard("sub/code", 2);
  Result<TxOutcome> c = nodes_[1]->coordinator().Transact("[{:country/code \"" + country + "\"}]", "");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->group, 1u);
  // The subdivision lives on shard 2, its country on shard 1: the router
  // rewrites the lookup ref to the country's id and shard 2 accepts it.
  Result<TxOutcome> s = nodes_[2]->coordinator().Transact(
      "[{:sub/code \"" + sub + "\" :sub/country [:country/code \"" + country + "\"]}]", "xref-1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->group, 2u);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    Coordinator& co = nodes_[i]->coordinator();
    Result<std::shared_ptr<const datalog::IndexSource>> view = co.ClusterView(co.Deadline());
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    Result<QueryResult> q = datalog::RunQuery(
        "[:find ?cc . :in $ ?sc :where [?s :sub/code ?sc] [?s :sub/country ?c] [?c :country/code ?cc]]",
        {datalog::Input::Db(view->get()), datalog::Input::Data(Edn::String(sub))});
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    ASSERT_EQ(q->rows.size(), 1u) << "node " << i + 1;
    EXPECT_EQ(q->rows[0][0].as_string(), country);
  }
  // Retried: the duplicate answer from shard 2.
  Result<TxOutcome> again = nodes_[0]->coordinator().Transact(
      "[{:sub/code \"" + sub + "\" :sub/country [:country/code \"" + country + "\"]}]", "xref-1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->t, s->t);
}

TEST_F(FourNodes, EveryNodeAnswersTheSameQueryAcrossShards) {
  // Every node lacks a group: node 4 the meta group and shard 1, node 1 shard 2...
  for (auto& n : nodes_) EXPECT_EQ(n->host().groups().size(), n->id() == 4 ? 3u : 4u) << "node " << n->id();
  // Schema through node 4, which holds no meta replica (forwarded; its
  // router reads the meta group remotely).
  Result<TxOutcome> schema = nodes_[3]->coordinator().Transact(kSchema, "");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ(schema->group, kMetaGroup);
  // Two users per shard, each written through a different node.
  std::vector<std::string> want;
  for (uint32_t s = 1; s <= kShards; ++s) {
    for (int k = 0; k < 2; ++k) {
      Node& via = *nodes_[(s + k) % 4];
      std::string email = EmailOnShard(s, 10 + k);
      Result<TxOutcome> r = via.coordinator().Transact(
          "[{:db/id \"u\" :user/email \"" + email + "\" :user/name \"n" + std::to_string(s) + "\"}]", "");
      ASSERT_TRUE(r.ok()) << "via node " << via.id() << ": " << r.status().ToString();
      EXPECT_EQ(r->group, s);
      want.push_back(email);
    }
  }
  std::sort(want.begin(), want.end());
  const std::string query =
      "[:find ?name (count ?e) :where [?e :user/email ?m] [?e :user/name ?name]]";
  std::string first;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    EXPECT_EQ(Strings(i, "user/email"), want) << "node " << i + 1;
    Coordinator& c = nodes_[i]->coordinator();
    Result<std::shared_ptr<const datalog::IndexSource>> view = c.ClusterView(c.Deadline());
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    Result<QueryResult> q = datalog::RunQuery(query, {datalog::Input::Db(view->get())});
    ASSERT_TRUE(q.ok()) << "node " << i + 1 << ": " << q.status().ToString();
    ASSERT_EQ(q->rows.size(), kShards) << q->ToEdn();
    for (const auto& row : q->rows) EXPECT_EQ(row[1].as_long(), 2) << q->ToEdn();
    if (i == 0) first = q->ToEdn();
    EXPECT_EQ(q->ToEdn(), first) << "node " << i + 1;
    // A lookup by identity value finds the same entity from every node.
    std::optional<EntityId> e = (*view)->Lookup(Keyword::Intern("user/email"), Value::String(want[0]));
    ASSERT_TRUE(e.has_value()) << "node " << i + 1;
    std::optional<EntityId> e0 =
        nodes_[0]->coordinator().ClusterView(c.Deadline()).value()->Lookup(Keyword::Intern("user/email"),
                                                                          Value::String(want[0]));
    EXPECT_EQ(e, e0);
  }
  // A retry of an applied request through the node that lacks the shard
  // answers the duplicate.
  std::string email = EmailOnShard(1, 20);
  std::string tx = "[{:db/id \"x\" :user/email \"" + email + "\" :user/name \"once\"}]";
  Result<TxOutcome> once = nodes_[0]->coordinator().Transact(tx, "four-once");
  ASSERT_TRUE(once.ok()) << once.status().ToString();
  Result<TxOutcome> again = nodes_[3]->coordinator().Transact(tx, "four-once");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->t, once->t);
  EXPECT_EQ(again->group, 1u);
}


// The map every node routes with follows the meta group's records (node 4
// holds no meta replica and asks a member), and a schema transaction that
// reached only the meta group reaches every shard through the background
// repair, without a restart.
TEST_F(FourNodesFastRepair, NodesFollowTheMetaGroupsMapAndRepairShardSchema) {
  auto wait_for = [](const std::function<bool()>& cond, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    return cond();
  };
  ASSERT_TRUE(wait_for(
      [&] {
        for (auto& n : nodes_) {
          if (!n->bootstrapped() || !n->coordinator().map_cache().from_meta()) return false;
        }
        return true;
      },
      10s));
  for (auto& n : nodes_) EXPECT_EQ(*n->map(), n->coordinator().map_cache().config_map()) << "node " << n->id();

  // An edit through node 4 (forwarded to the meta leader).
  Result<TxOutcome> edit = nodes_[3]->coordinator().MetaTransact(
      "[{:cairn.shard/id 3 :cairn.shard/leader 4} [:db/retract [:cairn.shard/id 3] :cairn.shard/replicas 1]"
      " [:db/add [:cairn.shard/id 3] :cairn.shard/replicas 2]]",
      "edit-1");
  ASSERT_TRUE(edit.ok()) << edit.status().ToString();
  EXPECT_EQ(edit->group, kMetaGroup);
  EXPECT_TRUE(wait_for(
      [&] {
        for (auto& n : nodes_) {
          std::shared_ptr<const ShardMap> m = n->map();
          if (m->LeaderHint(3) != 4 || m->ReplicasOf(3) != std::vector<uint32_t>{4, 2, 3}) return false;
        }
        return true;
      },
      3s));
  // Writes to shard 3 still commit through every node (node 2 hosts no replica of it).
  for (auto& n : nodes_) {
    Result<TxOutcome> w = n->coordinator().Transact(
        "[{:db/id \"x\" :db/partition 3 :user/name \"via-" + std::to_string(n->id()) + "\"}]", "");
    ASSERT_TRUE(w.ok()) << "node " << n->id() << ": " << w.status().ToString();
    EXPECT_EQ(w->group, 3u);
  }

  // Schema to the meta group only.
  Result<TxOutcome> schema = nodes_[1]->coordinator().MetaTransact(
      "[{:db/ident :user/tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}]", "");
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  Keyword tags = Keyword::Intern("user/tags");
  EXPECT_TRUE(wait_for(
      [&] {
        for (auto& n : nodes_) {
          for (uint64_t g : n->host().groups()) {
            NodeHost::DbResult db = n->host().StaleRead(g);
            if (!db.ok() || (*db)->schema().Find(tags) == nullptr) return false;
          }
        }
        return true;
      },
      15s));
  uint64_t repairs = 0;
  for (auto& n : nodes_) repairs += n->schema_repairs();
  EXPECT_GT(repairs, 0u);
  // And it behaves as cardinality many on a shard.
  Result<TxOutcome> w = nodes_[0]->coordinator().Transact(
      "[{:db/id \"t\" :db/partition 2 :user/tags \"a\"} [:db/add \"t\" :user/tags \"b\"]]", "");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(Strings(3, "user/tags"), (std::vector<std::string>{"a", "b"}));

  // Malformed EDN is refused before anything is proposed.
  Result<TxOutcome> bad = nodes_[0]->coordinator().MetaTransact("[{:cairn.shard/id 3", "");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// Time travel across shards on real replicas: transactions written through
// different nodes on every shard, then on every node (each lacks a group and
// reads it remotely) as-of each t, since each t, history and diff over the
// cluster equal the same queries over one embedded Database that ran the
// same transactions. The clocks differ, so each t is replaced by the number
// of its transaction.
TEST_F(FourNodes, TimeViewsAndDiffsMatchOneEmbeddedStore) {
  const std::string schema =
      "[{:db/ident :user/email :db/valueType :db.type/string :db/cardinality :db.cardinality/one"
      "  :db/unique :db.unique/identity}"
      " {:db/ident :user/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}"
      " {:db/ident :user/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}"
      " {:db/ident :user/tag :db/valueType :db.type/string :db/cardinality :db.cardinality/many}]";
  // The nodes' own bootstrap (the :cairn.node/* schema and data in the meta
  // group) must not land between the transactions compared below.
  auto boot_deadline = std::chrono::steady_clock::now() + 15s;
  for (auto& n : nodes_) {
    while (!n->bootstrapped() && std::chrono::steady_clock::now() < boot_deadline) std::this_thread::sleep_for(10ms);
    ASSERT_TRUE(n->bootstrapped()) << "node " << n->id();
  }
  Options eo;
  eo.sync = false;
  eo.partitions = kPartitions;
  Result<std::unique_ptr<Database>> embedded = Database::open(root_ + "/embedded.db", eo);
  ASSERT_TRUE(embedded.ok()) << embedded.status().ToString();
  std::vector<TxTime> cts, ets;  // the k-th transaction's t on the cluster and on the embedded store
  int n = 0;
  auto run = [&](const std::string& edn) {
    Node& via = *nodes_[static_cast<size_t>(n++) % nodes_.size()];
    Result<TxOutcome> r = via.coordinator().Transact(edn, "");
    ASSERT_TRUE(r.ok()) << "via node " << via.id() << ": " << r.status().ToString() << "\n" << edn;
    Result<TxReport> e = (*embedded)->transact(edn);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    cts.push_back(r->t);
    ets.push_back(e->t);
    // Shards assign t independently: a later transaction on another shard
    // may get the same t unless the clock moved on (with equal t's an as-of
    // rightly shows both, unlike the one store).
    std::this_thread::sleep_for(3ms);
  };
  run(schema);
  std::vector<std::string> emails;
  for (uint32_t s = 1; s <= kShards; ++s) {
    for (int k = 0; k < 2; ++k) {
      emails.push_back(EmailOnShard(s, 30 + k));
      run("[{:user/email \"" + emails.back() + "\" :user/name \"n" + std::to_string(s) + "-" + std::to_string(k) +
          "\" :user/age " + std::to_string(20 + s) + " :user/tag [\"a\" \"b\"]}]");
    }
  }
  auto ref = [&](size_t i) { return "[:user/email \"" + emails[i] + "\"]"; };
  for (size_t i = 0; i < emails.size(); i += 3) run("[[:db/add " + ref(i) + " :user/age 60]]");
  run("[[:db/retract " + ref(1) + " :user/tag \"a\"]]");
  run("[[:db/retractEntity " + ref(2) + "]]");
  run("[[:db/add " + ref(5) + " :user/name \"renamed\"] [:db/retract " + ref(5) + " :user/tag \"b\"]]");
  run("[{:user/email \"" + emails[2] + "\" :user/name \"back\"}]");
  ASSERT_FALSE(HasFailure());
  for (size_t k = 1; k < cts.size(); ++k) ASSERT_LT(cts[k - 1], cts[k]) << "transaction " << k;

  // A value's text with every t (or transaction entity) replaced by "t<k>".
  auto norm_value = [&](const Value& v, const std::vector<TxTime>& ts) -> std::string {
    for (size_t k = 0; k < ts.size(); ++k) {
      uint64_t tx_entity = EntityId::ForTx(ts[k]).raw;
      if ((v.type() == ValueType::kLong &&
           (static_cast<uint64_t>(v.as_long()) == ts[k].raw || static_cast<uint64_t>(v.as_long()) == tx_entity)) ||
          (v.type() == ValueType::kRef && v.as_ref() == EntityId::ForTx(ts[k])))
        return "t" + std::to_string(k);
    }
    return v.ToString();
  };
  auto rows = [&](const QueryResult& q, const std::vector<TxTime>& ts) {
    std::vector<std::string> out;
    for (const auto& row : q.rows) {
      std::string r;
      for (const Value& v : row) r += norm_value(v, ts) + " ";
      out.push_back(r);
    }
    std::sort(out.begin(), out.end());
    std::string all;
    for (const std::string& r : out) all += r + "\n";
    return all;
  };
  const std::vector<std::string> queries = {
      "[:find ?m ?n ?a :where [?e :user/email ?m] [?e :user/name ?n] [?e :user/age ?a]]",
      "[:find ?m ?t :where [?e :user/email ?m] [?e :user/tag ?t]]",
      "[:find ?n (count ?e) :where [?e :user/name ?n]]",
      "[:find ?m ?a ?v ?tx ?added :where [?e :user/email ?m] [?e ?a ?v ?tx ?added]]"};
  struct V {
    ViewSpec::Kind kind;
    size_t k;
  };
  std::vector<V> views = {{ViewSpec::Kind::kCurrent, 0}, {ViewSpec::Kind::kHistory, 0}};
  for (size_t k = 0; k < cts.size(); ++k) views.push_back({ViewSpec::Kind::kAsOf, k}), views.push_back({ViewSpec::Kind::kSince, k});
  int nonempty = 0;
  for (auto& node : nodes_) {
    Coordinator& c = node->coordinator();
    for (const V& v : views) {
      ViewSpec spec{v.kind, v.kind == ViewSpec::Kind::kAsOf || v.kind == ViewSpec::Kind::kSince ? cts[v.k] : TxTime{}};
      Db want = (*embedded)->db();
      if (v.kind == ViewSpec::Kind::kAsOf) want = want.as_of(ets[v.k]);
      if (v.kind == ViewSpec::Kind::kSince) want = want.since(ets[v.k]);
      if (v.kind == ViewSpec::Kind::kHistory) want = want.history();
      Result<std::shared_ptr<const datalog::IndexSource>> got = c.ClusterView(c.Deadline(), spec);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      std::string name = "node " + std::to_string(node->id()) + " view " + std::to_string(static_cast<int>(v.kind)) +
                         " at tx " + std::to_string(v.k);
      for (const std::string& q : queries) {
        Result<QueryResult> w = want.q(q);
        Result<QueryResult> g = datalog::RunQuery(q, {datalog::Input::Db(got->get())});
        ASSERT_TRUE(w.ok() && g.ok()) << name << " " << q << ": " << (g.ok() ? w.status() : g.status()).ToString();
        if (!w->rows.empty()) ++nonempty;
        EXPECT_EQ(rows(*w, ets), rows(*g, cts)) << name << "\n" << q;
      }
    }
    // Diffs between transactions (the schema transaction's own t differs
    // per shard copy, so ranges start after it).
    auto diff_text = [&](const std::vector<Datom>& ds, const std::vector<TxTime>& ts) {
      std::vector<std::string> out;
      for (const Datom& d : ds) {
        std::string v = d.a.str() == "db/txInstant" ? "inst" : norm_value(d.v, ts);
        out.push_back(norm_value(Value::Ref(d.e), ts) + " " + d.a.ToString() + " " + v + " " +
                      norm_value(Value::Ref(EntityId::ForTx(d.tx)), ts) + (d.added ? " +" : " -"));
      }
      std::string all;
      for (const std::string& r : out) all += r + "\n";
      return all;
    };
    for (size_t i = 0; i + 1 < cts.size(); i += 2) {
      for (size_t j : {i + 1, cts.size() - 1}) {
        Result<std::vector<Datom>> g = c.Diff(cts[i], cts[j], c.Deadline());
        Result<std::vector<Datom>> w = diff(**embedded, ets[i], ets[j]);
        ASSERT_TRUE(g.ok() && w.ok()) << (g.ok() ? w.status() : g.status()).ToString();
        EXPECT_FALSE(w->empty());
        // The same datoms in t order (within one t the cluster orders by
        // attribute name, e, v; the embedded store by write order).
        std::vector<Datom> ws = *w;
        std::stable_sort(ws.begin(), ws.end(), [](const Datom& x, const Datom& y) {
          if (x.tx != y.tx) return x.tx < y.tx;
          if (x.a != y.a) return x.a.str() < y.a.str();
          if (x.e != y.e) return x.e < y.e;
          if (int cmp = x.v.Compare(y.v)) return cmp < 0;
          return !x.added && y.added;
        });
        // The shards' copies of schema transactions (ours, and the
        // bootstrap's if a node re-sends it late) are transactions of their
        // own with other t's: their transaction entities show (a known
        // wrinkle, docs/cluster.md); the rest must be equal.
        std::vector<Datom> gs;
        for (const Datom& d : *g) {
          if (d.e.is_tx() && std::find(cts.begin(), cts.end(), d.e.tx_time()) == cts.end()) {
            EXPECT_EQ(d.a.str(), "db/txInstant") << d.ToString();
            continue;
          }
          gs.push_back(d);
        }
        EXPECT_EQ(diff_text(ws, ets), diff_text(gs, cts)) << "node " << node->id() << " diff " << i << ".." << j;
      }
    }
  }
  EXPECT_GT(nonempty, static_cast<int>(views.size() * 2)) << "the views compared nothing";
}

}  // namespace
}  // namespace cairn::cluster
