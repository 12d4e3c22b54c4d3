// cairn::Client against a real `cairn serve` process: results equal the
// embedded Database's over the same file, errors map to Status codes, a dead
// endpoint or a restarting server is retried transparently, a request id is
// applied once.
#include "cairn/client.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>

#include "cairn/database.h"
#include "serve_process.h"

namespace cairn {
namespace {

#ifdef CAIRN_BIN

using testing::ServeProcess;
using testing::UnusedPort;

constexpr const char* kSchema = R"([
 {:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one
  :db/unique :db.unique/identity}
 {:db/ident :person/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :person/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}
 {:db/ident :person/born :db/valueType :db.type/instant :db/cardinality :db.cardinality/one}])";

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn_client_test_XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    db_path_ = dir_ + "/node.db";
    ASSERT_TRUE(server_.Start(db_path_));
  }
  void TearDown() override {
    server_.Stop();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<Client> Connect(std::vector<std::string> endpoints = {}, ClientOptions options = {}) {
    if (endpoints.empty()) endpoints = {server_.endpoint()};
    auto c = Client::connect(endpoints, options);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::string dir_;
  std::string db_path_;
  ServeProcess server_;
};

// Refs come back from EDN as longs (see client.h); compare modulo that.
std::string Normalized(const QueryResult& r) { return r.ToEdn(); }

TEST_F(ClientTest, QueryResultsEqualTheEmbeddedDatabaseOverTheSameFile) {
  auto client = Connect();
  ASSERT_TRUE(client->transact(kSchema).ok());
  auto tx = client->transact(R"([{:db/id "a" :person/name "Ann" :person/age 31 :person/born #inst "1990-05-01"}
                                 {:db/id "b" :person/name "Bob" :person/age 29 :person/friend "a"}
                                 {:db/id "c" :person/name "Cy" :person/age 31 :person/friend ["a" "b"]}])");
  ASSERT_TRUE(tx.ok()) << tx.status().ToString();
  EXPECT_EQ(tx->tempids.size(), 3u);
  EXPECT_FALSE(tx->datoms.empty());
  TxBuilder builder;
  builder.Add(TxBuilder::Ref::Lookup("person/name", Value::String("Bob")), "person/age", Value::Long(30));
  auto tx2 = client->transact(builder);
  ASSERT_TRUE(tx2.ok()) << tx2.status().ToString();
  EXPECT_GT(tx2->t, tx->t);

  struct Case {
    std::string query;
    std::vector<std::string> args;
  };
  std::vector<Case> cases = {
      {"[:find ?n ?a :where [?e :person/name ?n] [?e :person/age ?a]]", {}},
      {"[:find [?n ...] :where [?e :person/name ?n]]", {}},
      {"[:find ?a . :in $ ?n :where [?e :person/name ?n] [?e :person/age ?a]]", {"\"Bob\""}},
      {"[:find [?n ?a] :where [?e :person/name ?n] [?e :person/age ?a] [(> ?a 30)] [(< ?a 32)] "
       "[?e :person/born]]",
       {}},
      {"[:find ?n (count ?f) :keys name friends :where [?e :person/name ?n] [?e :person/friend ?f]]", {}},
      {"[:find ?age :with ?e :where [?e :person/age ?age]]", {}},
      {"[:find (pull ?e [:person/name :person/age]) :in $ [?n ...] :where [?e :person/name ?n]]", {"[\"Ann\" \"Cy\"]"}},
      {"[:find ?b . :where [?e :person/born ?b]]", {}},
  };
  std::vector<std::string> remote;
  for (const Case& c : cases) {
    auto r = client->db().q(c.query, c.args);
    ASSERT_TRUE(r.ok()) << c.query << ": " << r.status().ToString();
    remote.push_back(Normalized(*r));
  }
  auto as_of = client->db().as_of(tx->t).q("[:find ?a . :where [?e :person/name \"Bob\"] [?e :person/age ?a]]");
  ASSERT_TRUE(as_of.ok()) << as_of.status().ToString();
  EXPECT_EQ(as_of->ToEdn(), "29");
  auto since = client->db().since(tx->t).q("[:find ?a . :where [?e :person/age ?a]]");
  ASSERT_TRUE(since.ok()) << since.status().ToString();
  EXPECT_EQ(since->ToEdn(), "30");
  auto history =
      client->db().history().q("[:find ?a ?added :where [?e :person/name \"Bob\"] [?e :person/age ?a _ ?added]]");
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(history->rows.size(), 3u);  // 29 added, 29 retracted, 30 added
  auto datoms = client->db().datoms(IndexType::kAvet, {Value::Kw("person/name"), Value::String("Ann")});
  ASSERT_TRUE(datoms.ok()) << datoms.status().ToString();
  ASSERT_EQ(datoms->size(), 1u);
  EXPECT_EQ((*datoms)[0].e, tx->tempids.at("a"));

  auto ann = client->db().entid(":person/name", Value::String("Ann"));
  ASSERT_TRUE(ann.ok()) << ann.status().ToString();
  EXPECT_EQ(*ann, tx->tempids.at("a"));
  EXPECT_EQ(client->db().entid("person/name", Value::String("Nobody")).status().code(), StatusCode::kNotFound);
  auto pulled = client->db().pull_many("[:person/name :person/age]", {tx->tempids.at("b"), EntityId{424242}});
  ASSERT_TRUE(pulled.ok()) << pulled.status().ToString();
  ASSERT_EQ(pulled->size(), 2u);
  EXPECT_EQ((*pulled)[0].ToString(), "{:person/age 30, :person/name \"Bob\"}");
  EXPECT_EQ((*pulled)[1].as_map().size(), 0u);
  auto pulled_then = client->db().as_of(tx->t).pull("[:person/age]", tx->tempids.at("b"));
  ASSERT_TRUE(pulled_then.ok()) << pulled_then.status().ToString();
  EXPECT_EQ(pulled_then->ToString(), "{:person/age 29}");

  client.reset();
  ASSERT_EQ(server_.Stop(), 0);
  auto db = Database::open(db_path_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = (*db)->db().q(cases[i].query, cases[i].args);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(remote[i], Normalized(*r)) << cases[i].query;
  }
  ASSERT_TRUE(server_.Start(db_path_));
}

TEST_F(ClientTest, ServerErrorsMapToStatusCodesWithTheServersMessage) {
  auto client = Connect();
  ASSERT_TRUE(client->transact(kSchema).ok());
  ASSERT_TRUE(client->transact(R"([{:person/name "Ann"}])").ok());

  auto bad = client->transact("[{:person/name \"x\" ");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("1:"), std::string::npos) << bad.status().message();

  auto type = client->transact(R"([{:person/name "Zed" :person/age "old"}])");
  EXPECT_EQ(type.status().code(), StatusCode::kInvalidArgument) << type.status().ToString();

  auto cas = client->transact(R"([[:db/cas [:person/name "Ann"] :person/age 99 100]])");
  EXPECT_EQ(cas.status().code(), StatusCode::kConflict) << cas.status().ToString();

  auto missing = client->transact(R"([[:db/add [:person/name "Nobody"] :person/age 1]])");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();

  auto query = client->db().q("[:find ?x :where [?x :person/name]");
  EXPECT_EQ(query.status().code(), StatusCode::kInvalidArgument);

  // Nothing of the failed transactions was written.
  auto n = client->db().q("[:find (count ?e) . :where [?e :person/name]]");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->ToEdn(), "1");
}

TEST_F(ClientTest, ARetriedRequestIdIsAppliedOnce) {
  auto client = Connect();
  ASSERT_TRUE(client->transact(kSchema).ok());
  auto first = client->transact_with_id(R"([{:person/name "Once" :person/age 1}])", "req-once-1");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->duplicate);
  auto again = client->transact_with_id(R"([{:person/name "Once" :person/age 1}])", "req-once-1");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->t, first->t);
  auto txs = client->db().history().q("[:find (count ?tx) . :where [_ :person/age _ ?tx]]");
  ASSERT_TRUE(txs.ok());
  EXPECT_EQ(txs->ToEdn(), "1");
}

TEST_F(ClientTest, FailsOverFromADeadEndpointToALiveOne) {
  std::string dead = "127.0.0.1:" + std::to_string(UnusedPort());
  auto client = Connect({dead, server_.endpoint()});
  auto tx = client->transact(kSchema);
  ASSERT_TRUE(tx.ok()) << tx.status().ToString();
  // Later calls start at the endpoint that answered.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->db().q("[:find ?e . :where [?e :db/ident :person/name]]").ok());
}

TEST_F(ClientTest, GivesUpWithUnavailableWhenNoEndpointAnswersByTheDeadline) {
  ClientOptions options;
  options.timeout_ms = 400;
  auto client =
      Connect({"127.0.0.1:" + std::to_string(UnusedPort()), "127.0.0.1:" + std::to_string(UnusedPort())}, options);
  auto start = std::chrono::steady_clock::now();
  auto r = client->transact(kSchema);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find("attempts"), std::string::npos) << r.status().message();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_EQ(client->health().code(), StatusCode::kUnavailable);
}

TEST_F(ClientTest, ACallSpanningAServerRestartSucceedsOnceTheServerIsBack) {
  uint16_t port = server_.port();
  auto client = Connect();
  ASSERT_TRUE(client->transact(kSchema).ok());
  ASSERT_EQ(server_.Stop(), 0);
  // The call starts while nothing listens; the server comes back on the same
  // port 500 ms later and the same request (same request id) goes through.
  auto pending = std::async(std::launch::async, [&] { return client->transact(R"([{:person/name "Late"}])"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(server_.Start(db_path_, port));
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto n = client->db().q("[:find (count ?e) . :where [?e :person/name \"Late\"]]");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->ToEdn(), "1");
}

TEST_F(ClientTest, KeepsOneConnectionAliveAcrossSequentialCalls) {
  auto client = Connect();
  ASSERT_TRUE(client->transact(kSchema).ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client->db().q("[:find ?e . :where [?e :db/ident :person/age]]").ok());
  auto status = client->status_json();
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  // The status request itself is the one open connection.
  EXPECT_NE(status->find("\"connections\":1"), std::string::npos) << *status;
  auto t = client->latest_t();
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->valid());
  EXPECT_TRUE(client->health().ok());
}

// The client remembers the largest t it saw and sends it as min-t: against
// a real one-node cluster whose clock runs 30 s behind, a transaction after
// observe_t(now) commits above now (without min-t it would get a t ~30 s
// earlier). Against an embedded server min-t is accepted and ignored.
TEST_F(ClientTest, SendsTheLargestTItSawAsMinT) {
  auto embedded = Connect();
  EXPECT_FALSE(embedded->max_t().valid());
  auto e1 = embedded->transact(kSchema);
  ASSERT_TRUE(e1.ok()) << e1.status().ToString();
  EXPECT_EQ(embedded->max_t(), e1->t);
  auto e2 = embedded->transact(R"([{:person/name "Embedded"}])");  // carries min-t now
  ASSERT_TRUE(e2.ok()) << e2.status().ToString();
  EXPECT_EQ(embedded->max_t(), e2->t);
  // A reader that never wrote learns the t its answers are based on (the
  // Cairn-T header), so its later writes are causally after what it read.
  auto reader = Connect();
  ASSERT_TRUE(reader->db().q("[:find ?e . :where [?e :person/name \"Embedded\"]]").ok());
  EXPECT_EQ(reader->max_t(), e2->t);

  uint16_t http = UnusedPort(), peer = UnusedPort();
  std::string node_dir = dir_ + "/node1";
  std::string config = dir_ + "/node.json";
  {
    std::string text = R"({"node_id": 1, "dir": ")" + node_dir + R"(", "http": "127.0.0.1:)" + std::to_string(http) +
                       R"(", "peer": "127.0.0.1:)" + std::to_string(peer) +
                       R"(", "cluster_secret": "client-test", "shards": 1, "replication": 1, "sync": false,
        "clock_offset_ms": -30000,
        "nodes": [{"id": 1, "peer": "127.0.0.1:)" + std::to_string(peer) + R"(", "http": "127.0.0.1:)" +
                       std::to_string(http) + R"("}]})";
    FILE* f = std::fopen(config.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
  ServeProcess node;
  ASSERT_TRUE(node.StartNode(config));
  auto client = Connect({"127.0.0.1:" + std::to_string(http)});
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!client->health().ok() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(client->health().ok()) << client->health().ToString();
  auto schema = client->transact(kSchema);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  // At least the answer's t (the node's clock may be ahead: the schema's
  // copy on the shard commits after the meta group's t that is answered).
  EXPECT_GE(client->max_t(), schema->t);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_LT(static_cast<int64_t>(schema->t.physical_ms()), now_ms - 20'000) << "the node's clock is not skewed";

  const TxTime seen = TxTime::FromParts(static_cast<uint64_t>(now_ms), 3);  // "seen elsewhere"
  client->observe_t(seen);
  EXPECT_EQ(client->max_t(), seen);
  client->observe_t(schema->t);  // smaller: no effect
  EXPECT_EQ(client->max_t(), seen);
  auto after = client->transact(R"([{:person/name "After"}])");
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_GT(after->t, seen) << "the transaction did not commit above the client's min-t";
  EXPECT_GE(client->max_t(), after->t);
  auto cluster_reader = Connect({"127.0.0.1:" + std::to_string(http)});
  auto read = cluster_reader->db().q("[:find ?e . :where [?e :person/name \"After\"]]");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_GE(cluster_reader->max_t(), after->t) << "a query answer did not advance the reader's max t";
  EXPECT_EQ(node.Stop(), 0);
}

TEST(ClientConnect, RefusesBadEndpoints) {
  EXPECT_EQ(Client::connect({}).status().code(), StatusCode::kInvalidArgument);
  auto bad = Client::connect({"127.0.0.1:7001", "localhost"});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'localhost'"), std::string::npos) << bad.status().message();
  EXPECT_EQ(Client::connect({"127.0.0.1:99999"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Client::connect({"http://127.0.0.1:7001/", "[::1]:7002"}).ok());
}

#endif  // CAIRN_BIN

}  // namespace
}  // namespace cairn
