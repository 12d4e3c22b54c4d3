// The HTTP API over real TCP on loopback and a real SQLite file: an
// in-process HttpServer + EmbeddedBackend, talked to by a raw-socket client.
#include "server/http_server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "http_client.h"
#include "server/backend.h"
#include "server/metrics.h"

namespace cairn::server {
namespace {

using testing::Capture;
using testing::Conn;
using testing::JsonString;
using testing::Response;

constexpr char kSchema[] =
    "[{:db/ident :user/email :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
    ":db/unique :db.unique/identity}"
    " {:db/ident :user/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}"
    " {:db/ident :user/badge :db/valueType :db.type/long :db/cardinality :db.cardinality/one "
    ":db/unique :db.unique/value}]";

std::string TxJson(const std::string& edn) { return "{\"tx-data\": " + JsonString(edn) + "}"; }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cairn_server_test_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(HttpServerOptions{}); }

  void StartServer(HttpServerOptions options) {
    server_.reset();
    if (!backend_) {
      auto b = EmbeddedBackend::Open(dir_.File("data.db"));
      ASSERT_TRUE(b.ok()) << b.status().ToString();
      backend_ = std::move(*b);
    }
    options.port = 0;
    server_ = std::make_unique<HttpServer>(backend_.get(), options);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  Response Post(const std::string& path, const std::string& body, bool edn_in = false, bool edn_out = false) {
    Conn c(port_);
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("Content-Type", edn_in ? "application/edn" : "application/json");
    if (edn_out) h.emplace_back("Accept", "application/edn");
    return c.Request("POST", path, body, h);
  }
  Response Get(const std::string& target, bool edn_out = false) {
    Conn c(port_);
    std::vector<std::pair<std::string, std::string>> h;
    if (edn_out) h.emplace_back("Accept", "application/edn");
    return c.Request("GET", target, "", h);
  }
  uint64_t Transact(const std::string& edn) {
    Response r = Post("/v1/transact", TxJson(edn));
    EXPECT_EQ(r.status, 200) << r.body;
    return std::stoull("0" + Capture(r.body, "\"t\":(\\d+)"));
  }
  // Everything stored: every datom of the history, as the API returns it.
  std::string AllDatoms() {
    uint64_t latest = std::stoull("0" + Capture(Get("/v1/status").body, "\"latest-t\":(\\d+)"));
    return Get("/v1/diff?from=0&to=" + std::to_string(latest)).body;
  }

  TempDir dir_;
  std::unique_ptr<EmbeddedBackend> backend_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

void ExpectError(const Response& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_NE(r.body.find("{\"error\":{\"code\":\"" + code + "\",\"message\":\""), std::string::npos) << r.body;
}

TEST_F(HttpApiTest, TransactThenQueryInJson) {
  Transact(kSchema);
  Response tx = Post("/v1/transact", TxJson(R"([{:db/id "ann" :user/name "Ann" :user/email "ann@x"}])"));
  ASSERT_EQ(tx.status, 200) << tx.body;
  EXPECT_EQ(tx.header("content-type"), "application/json");
  std::string ann = Capture(tx.body, "\"tempids\":\\{\"ann\":(\\d+)\\}");
  ASSERT_FALSE(ann.empty()) << tx.body;
  EXPECT_NE(tx.body.find("[" + ann + ",\":user/name\",\"Ann\","), std::string::npos) << tx.body;

  Response q = Post("/v1/query", R"({"query": "[:find ?e ?n :in $ ?m :where [?e :user/email ?m] [?e :user/name ?n]]",
                                    "args": ["\"ann@x\""]})");
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.body, "{\"columns\":[\"?e\",\"?n\"],\"rows\":[[" + ann + ",\"Ann\"]],\"shape\":\"relation\"}\n");

  // JSON values as args: a nested string is a string value, numbers stay numbers.
  Response q2 =
      Post("/v1/query", R"({"query": "[:find [?n ...] :in $ [?m ...] :where [?e :user/email ?m] [?e :user/name ?n]]",
                                     "args": [["ann@x", "nobody@x"]]})");
  ASSERT_EQ(q2.status, 200) << q2.body;
  EXPECT_EQ(q2.body, "{\"columns\":[\"?n\"],\"rows\":[[\"Ann\"]],\"shape\":\"collection\"}\n");
}

TEST_F(HttpApiTest, TransactThenQueryInEdn) {
  Response schema = Post("/v1/transact", kSchema, /*edn_in=*/true, /*edn_out=*/true);
  ASSERT_EQ(schema.status, 200) << schema.body;
  EXPECT_EQ(schema.header("content-type"), "application/edn");
  EXPECT_EQ(schema.body.rfind("{:t ", 0), 0u) << schema.body;

  Response tx = Post("/v1/transact", R"([{:db/id "b" :user/name "Bea" :user/email "bea@x"}])", true, true);
  ASSERT_EQ(tx.status, 200) << tx.body;
  EXPECT_NE(tx.body.find(":tempids {\"b\" "), std::string::npos) << tx.body;

  // The whole body as the query.
  Response q = Post("/v1/query", "[:find ?n :where [_ :user/name ?n]]", true, true);
  ASSERT_EQ(q.status, 200) << q.body;
  EXPECT_EQ(q.body, "#{[\"Bea\"]}\n");
  // An envelope with args.
  Response q2 = Post("/v1/query",
                     R"({:query [:find ?n . :in $ ?m :where [?e :user/email ?m] [?e :user/name ?n]] :args ["bea@x"]})",
                     true, true);
  ASSERT_EQ(q2.status, 200) << q2.body;
  EXPECT_EQ(q2.body, "\"Bea\"\n");
  // EDN in, JSON out.
  Response q3 = Post("/v1/query", "[:find ?n :where [_ :user/name ?n]]", true, false);
  EXPECT_EQ(q3.body, "{\"columns\":[\"?n\"],\"rows\":[[\"Bea\"]],\"shape\":\"relation\"}\n");
}

TEST_F(HttpApiTest, AsOfSinceAndHistory) {
  Transact(kSchema);
  uint64_t t1 = Transact(R"([{:user/email "c@x" :user/name "Cid"}])");
  uint64_t t2 = Transact(R"([{:user/email "c@x" :user/name "Cyd"}])");
  ASSERT_LT(t1, t2);
  const std::string q = "\"[:find ?n :where [_ :user/name ?n]]\"";
  EXPECT_NE(Post("/v1/query", "{\"query\": " + q + "}").body.find("[[\"Cyd\"]]"), std::string::npos);
  EXPECT_NE(Post("/v1/query", "{\"query\": " + q + ", \"as-of\": " + std::to_string(t1) + "}").body.find("[[\"Cid\"]]"),
            std::string::npos);
  EXPECT_NE(Post("/v1/query", "{\"query\": " + q + ", \"since\": " + std::to_string(t1) + "}").body.find("[[\"Cyd\"]]"),
            std::string::npos);
  Response h = Post(
      "/v1/query",
      R"({"query": "[:find ?n ?added :where [_ :user/name ?n _ ?added]]", "history": true, "consistency": "stale"})");
  ASSERT_EQ(h.status, 200) << h.body;
  EXPECT_NE(h.body.find("[\"Cid\",true]"), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("[\"Cid\",false]"), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("[\"Cyd\",true]"), std::string::npos) << h.body;
  // EDN envelope with :as-of.
  Response e =
      Post("/v1/query", "{:query [:find ?n :where [_ :user/name ?n]] :as-of " + std::to_string(t1) + "}", true, true);
  EXPECT_EQ(e.body, "#{[\"Cid\"]}\n");
}

TEST_F(HttpApiTest, DiffReturnsChangesBetweenTimes) {
  Transact(kSchema);
  uint64_t t1 = Transact(R"([{:user/email "d@x" :user/name "Dan"}])");
  uint64_t t2 = Transact(R"([{:user/email "d@x" :user/name "Dee"}])");
  Response d = Get("/v1/diff?from=" + std::to_string(t1) + "&to=" + std::to_string(t2));
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_NE(d.body.find("\":user/name\",\"Dan\"," + std::to_string(t2) + ",false]"), std::string::npos) << d.body;
  EXPECT_NE(d.body.find("\":user/name\",\"Dee\"," + std::to_string(t2) + ",true]"), std::string::npos) << d.body;
  EXPECT_EQ(d.body.find("\"Dan\"," + std::to_string(t1)), std::string::npos) << "t1 itself is excluded: " << d.body;
  // `to` defaults to the latest t.
  EXPECT_EQ(Get("/v1/diff?from=" + std::to_string(t1)).body, d.body);
  Response edn = Get("/v1/diff?from=" + std::to_string(t1) + "&to=" + std::to_string(t2), true);
  EXPECT_NE(edn.body.find(":user/name \"Dee\" " + std::to_string(t2) + " true]"), std::string::npos) << edn.body;

  ExpectError(Get("/v1/diff?to=5"), 400, "invalid_argument");
  ExpectError(Get("/v1/diff?from=abc"), 400, "invalid_argument");
  ExpectError(Get("/v1/diff?from=9&to=3"), 400, "invalid_argument");
  ExpectError(Get("/v1/diff?from=1&bogus=2"), 400, "invalid_argument");
}

TEST_F(HttpApiTest, DatomsByIndex) {
  Transact(kSchema);
  Response tx = Post("/v1/transact", TxJson(R"([{:db/id "e" :user/email "e@x" :user/name "Eve"}
                                                 {:db/id "f" :user/email "f@x" :user/name "Fay"}])"));
  std::string e = Capture(tx.body, "\"e\":(\\d+)");
  ASSERT_FALSE(e.empty());
  Response eavt = Get("/v1/datoms?index=eavt&e=" + e);
  ASSERT_EQ(eavt.status, 200) << eavt.body;
  EXPECT_NE(eavt.body.find("[" + e + ",\":user/email\",\"e@x\""), std::string::npos) << eavt.body;
  EXPECT_NE(eavt.body.find("[" + e + ",\":user/name\",\"Eve\""), std::string::npos) << eavt.body;
  EXPECT_EQ(eavt.body.find("Fay"), std::string::npos);

  Response eavt_a = Get("/v1/datoms?e=" + e + "&a=%3Auser%2Fname");  // index defaults to eavt
  EXPECT_NE(eavt_a.body.find("Eve"), std::string::npos) << eavt_a.body;
  EXPECT_EQ(eavt_a.body.find("e@x"), std::string::npos) << eavt_a.body;

  Response avet = Get("/v1/datoms?index=avet&a=:user/email&v=%22f%40x%22");
  EXPECT_NE(avet.body.find("\":user/email\",\"f@x\""), std::string::npos) << avet.body;
  EXPECT_EQ(avet.body.find("e@x"), std::string::npos) << avet.body;

  Response limited = Get("/v1/datoms?index=aevt&a=:user/name&limit=1");
  EXPECT_NE(limited.body.find("\"truncated\":true"), std::string::npos) << limited.body;

  ExpectError(Get("/v1/datoms?index=xyz"), 400, "invalid_argument");
  ExpectError(Get("/v1/datoms?index=eavt&v=1"), 400, "invalid_argument");
  ExpectError(Get("/v1/datoms?index=aevt&a=user"), 400, "invalid_argument");
  Response bad_edn = Get("/v1/datoms?index=avet&a=:user/email&v=%22open");
  ExpectError(bad_edn, 400, "invalid_argument");
  EXPECT_NE(bad_edn.body.find("1:1"), std::string::npos) << bad_edn.body;
}

TEST_F(HttpApiTest, StatusHealthAndMetrics) {
  Transact(kSchema);
  uint64_t t = Transact(R"([{:user/email "g@x" :user/name "Gus"}])");
  Response s = Get("/v1/status");
  ASSERT_EQ(s.status, 200) << s.body;
  EXPECT_EQ(Capture(s.body, "\"latest-t\":(\\d+)"), std::to_string(t));
  EXPECT_NE(s.body.find("\"mode\":\"embedded\""), std::string::npos);
  EXPECT_NE(s.body.find("\"leader\":true"), std::string::npos);
  EXPECT_EQ(Capture(s.body, "\"transactions\":(\\d+)"), "2");
  EXPECT_GT(std::stoull("0" + Capture(s.body, "\"size-bytes\":(\\d+)")), 0u);
  EXPECT_EQ(Get("/v1/status", true).body.rfind("{:version ", 0), 0u);

  Response h = Get("/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "{\"status\":\"ok\"}\n");

  Get("/nope");
  Response m = Get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(m.body.find("cairn_http_requests_total{path=\"/v1/transact\",code=\"200\"} 2\n"), std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("cairn_http_requests_total{path=\"other\",code=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(m.body.find("cairn_http_request_duration_seconds_bucket{path=\"/v1/transact\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(m.body.find("cairn_http_request_duration_seconds_count{path=\"/v1/status\"} 2\n"), std::string::npos);
  EXPECT_NE(m.body.find("cairn_transactions_total 2\n"), std::string::npos);
  std::string datoms = Capture(m.body, "\ncairn_datoms (\\d+)\n");
  EXPECT_EQ(datoms, Capture(s.body, "\"datoms\":(\\d+)"));
  EXPECT_GE(std::stoull("0" + datoms), 4u);
  EXPECT_GT(std::stoull("0" + Capture(m.body, "\ncairn_db_size_bytes (\\d+)\n")), 0u);
}

TEST_F(HttpApiTest, ErrorsHaveTheirStatusCodes) {
  Transact(kSchema);
  Transact(R"([{:user/email "h@x" :user/name "Hal" :user/badge 7}])");

  ExpectError(Get("/v2/nothing"), 404, "not_found");
  Response m = Get("/v1/transact");
  ExpectError(m, 405, "method_not_allowed");
  EXPECT_EQ(m.header("allow"), "POST");
  Conn c(port_);
  ExpectError(c.Request("DELETE", "/v1/status"), 405, "method_not_allowed");

  Response json = Post("/v1/transact", "{\"tx-data\": \n  [1, }");
  ExpectError(json, 400, "invalid_argument");
  EXPECT_NE(json.body.find("malformed JSON at 2:"), std::string::npos) << json.body;

  Response edn = Post("/v1/transact", TxJson("[{:db/id \"x\"\n  :user/name \"Ivy\" ]"));
  ExpectError(edn, 400, "invalid_argument");
  EXPECT_NE(edn.body.find("2:"), std::string::npos) << edn.body;

  Response wrong_type = Post("/v1/transact", "[[:db/add \"x\" :user/badge \"seven\"]]", true);
  ExpectError(wrong_type, 400, "invalid_argument");
  EXPECT_NE(wrong_type.body.find(":user/badge"), std::string::npos) << wrong_type.body;

  ExpectError(Post("/v1/transact", TxJson(R"([[:db/cas [:user/email "h@x"] :user/name "Wrong" "Ian"]])")), 409,
              "conflict");
  ExpectError(Post("/v1/transact", TxJson(R"([{:user/email "j@x" :user/badge 7}])")), 409, "conflict");
  ExpectError(Post("/v1/transact", TxJson(R"([[:db/add [:user/email "none@x"] :user/name "N"]])")), 404, "not_found");

  ExpectError(Post("/v1/query", R"({"query": "[:find ?x :where [?x :user/name]", "args": []})"), 400,
              "invalid_argument");
  ExpectError(Post("/v1/query", R"({"qurey": "[:find ?x :where [?x :user/name]]"})"), 400, "invalid_argument");
  ExpectError(Post("/v1/query", R"({"query": "[:find ?x :where [?x :user/name]]", "consistency": "eventual"})"), 400,
              "invalid_argument");
  ExpectError(Post("/v1/query", R"({"query": "[:find ?x :where [?x :user/name]]", "as-of": -3})"), 400,
              "invalid_argument");
  ExpectError(Post("/v1/query", R"(["not", "an", "object"])"), 400, "invalid_argument");
  ExpectError(Post("/v1/transact", R"({"tx-data": 5})"), 400, "invalid_argument");

  // EDN error bodies when EDN is asked for.
  Response e = Post("/v1/query", "[:find ?x :where", true, true);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.header("content-type"), "application/edn");
  EXPECT_EQ(e.body.rfind("{:error {:code \"invalid_argument\" :message \"", 0), 0u) << e.body;

  // Malformed HTTP: 400 and the connection closes.
  Conn raw(port_);
  ASSERT_TRUE(raw.SendRaw("GARBAGE\x01 / HTTP/9\r\n\r\n"));
  auto r = raw.ReadResponse();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 400, "bad_request");
  EXPECT_TRUE(raw.ClosedByPeer(2000));
}

TEST_F(HttpApiTest, MalformedInputChangesNothingAndTheNodeKeepsServing) {
  Transact(kSchema);
  Transact(R"([{:user/email "k@x" :user/name "Kim" :user/badge 1}])");
  std::string before = AllDatoms();
  std::string status_before = Capture(Get("/v1/status").body, "(\"latest-t\":\\d+)");

  const std::vector<std::pair<std::string, bool>> bad = {
      {"{", false},
      {"{\"tx-data\": \"[[:db/add \\\"x\\\" :user/name \\\"unclosed]]\"}", false},
      {"[[:db/add \"x\" :user/name \"ok\"] [:db/add \"y\" :user/badge \"one\"]]", true},
      {"[{:db/id \"z\" :user/name \"Zoe\" :user/badge 1}]", true},
      {"[[:db/cas [:user/email \"k@x\"] :user/name \"Zed\" \"Kat\"] [:db/add \"n\" :user/name \"New\"]]", true},
      {"[[:db/retractEntity [:user/email \"nobody\"]]]", true},
      {"\xff\xfe\x00garbage", true},
      {"[:db/add 1 2 3 4 5 6]", true},
      {"{\"tx-data\": \"" + std::string(1000, '[') + "\"}", false},
      {"", true},
  };
  // Nesting that would exhaust a stack: refused, the node stays up.
  std::string deep_args = "{\"query\": \"[:find ?x :in $ ?y :where [?x :user/name ?y]]\", \"args\": [" +
                          std::string(200000, '[') + std::string(200000, ']') + "]}";
  ExpectError(Post("/v1/query", deep_args), 400, "invalid_argument");
  ExpectError(Post("/v1/transact", std::string(200000, '[') + std::string(200000, ']'), true), 400, "invalid_argument");
  ExpectError(Post("/v1/query", "{:query " + std::string(200000, '(') + "}", true), 400, "invalid_argument");
  for (const auto& [body, edn] : bad) {
    Response r = Post("/v1/transact", body, edn);
    EXPECT_GE(r.status, 400) << body;
    EXPECT_LT(r.status, 500) << body << " -> " << r.body;
  }
  EXPECT_EQ(AllDatoms(), before);
  EXPECT_EQ(Capture(Get("/v1/status").body, "(\"latest-t\":\\d+)"), status_before);
  EXPECT_EQ(Get("/health").status, 200);
  Transact(R"([{:user/email "l@x" :user/name "Lou"}])");
  EXPECT_NE(AllDatoms(), before);
}

// Seeded mutations of valid bodies and random bytes as HTTP: every request
// gets a 2xx/4xx answer (or a closed connection for broken framing), and the
// node keeps serving.
TEST_F(HttpApiTest, MutatedBodiesAndGarbageNeverStopTheNode) {
  HttpServerOptions options;
  options.header_timeout_ms = 300;
  options.body_timeout_ms = 300;
  StartServer(options);
  Transact(kSchema);
  Transact(R"([{:user/email "m@x" :user/name "Max" :user/badge 3}])");
  struct Seed {
    std::string path;
    std::string body;
    bool edn;
  };
  const std::vector<Seed> seeds = {
      {"/v1/transact", TxJson(R"([{:db/id "a" :user/email "n@x" :user/name "Ned"} [:db/add "a" :user/badge 9]])"),
       false},
      {"/v1/transact", R"([[:db/cas [:user/email "m@x"] :user/name "Max" "Mia"] {:user/email "m@x" :user/badge 4}])",
       true},
      {"/v1/query",
       R"({"query": "[:find ?n :in $ [?m ...] :where [?e :user/email ?m] [?e :user/name ?n]]", "args": [["m@x"]], "as-of": 5})",
       false},
      {"/v1/query", R"({:query [:find (count ?e) . :where [?e :user/name _]] :history true})", true},
  };
  std::mt19937 rng(20261122);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  int answered = 0;
  Conn conn(port_);
  for (int i = 0; i < 400; ++i) {
    const Seed& seed = seeds[pick(seeds.size())];
    std::string body = seed.body;
    int edits = 1 + static_cast<int>(pick(4));
    for (int k = 0; k < edits && !body.empty(); ++k) {
      size_t at = pick(body.size());
      switch (pick(4)) {
        case 0:
          body[at] = static_cast<char>(rng());
          break;
        case 1:
          body.erase(at, 1 + pick(8));
          break;
        case 2:
          body.insert(at, 1, "[]{}()\"\\:#; ,\n"[pick(15)]);
          break;
        case 3:
          body.resize(at);
          break;
      }
    }
    std::vector<std::pair<std::string, std::string>> headers = {
        {"Content-Type", seed.edn ? "application/edn" : "application/json"}};
    Response r = conn.Request("POST", seed.path, body, headers);
    ASSERT_TRUE(r.status == 200 || (r.status >= 400 && r.status < 500)) << r.status << " " << r.body << "\n" << body;
    ++answered;
  }
  EXPECT_EQ(answered, 400);
  for (int i = 0; i < 50; ++i) {
    std::string junk;
    size_t n = 1 + pick(200);
    for (size_t k = 0; k < n; ++k) junk += static_cast<char>(rng());
    Conn raw(port_);
    raw.SendRaw(i % 2 ? junk + "\r\n\r\n" : "POST /v1/query HTTP/1.1\r\n" + junk + "\r\n\r\n");
    auto r = raw.ReadResponse(2000);
    if (r) {
      EXPECT_TRUE(r->status >= 400 && r->status < 500) << r->status << " " << r->body;
    }
  }
  EXPECT_EQ(Get("/health").status, 200);
  EXPECT_EQ(Post("/v1/query", "[:find ?n . :where [?e :user/email \"m@x\"] [?e :user/name ?n]]", true).status, 200);
}

TEST_F(HttpApiTest, OversizeBodyGets413AndNothingChanges) {
  HttpServerOptions options;
  options.body_bytes_max = 4096;
  StartServer(options);
  Transact(kSchema);
  std::string before = AllDatoms();
  std::string big = "[";
  for (int i = 0; i < 300; ++i) big += "{:user/name \"n" + std::to_string(i) + "\"} ";
  big += "]";
  ASSERT_GT(big.size(), 4096u);

  // Declared by Content-Length: refused before the body is read.
  Conn c(port_);
  ASSERT_TRUE(c.SendRaw("POST /v1/transact HTTP/1.1\r\nHost: x\r\nContent-Type: application/edn\r\nContent-Length: " +
                        std::to_string(big.size()) + "\r\n\r\n"));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 413, "payload_too_large");
  EXPECT_TRUE(c.ClosedByPeer(2000));

  // Chunked: refused once the limit is crossed.
  Conn chunked(port_);
  std::string req =
      "POST /v1/transact HTTP/1.1\r\nHost: x\r\nContent-Type: application/edn\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (size_t i = 0; i < big.size(); i += 1000) {
    std::string part = big.substr(i, 1000);
    char len[16];
    std::snprintf(len, sizeof len, "%zx\r\n", part.size());
    req += len + part + "\r\n";
  }
  req += "0\r\n\r\n";
  chunked.SendRaw(req);
  auto r2 = chunked.ReadResponse();
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->status, 413);

  EXPECT_EQ(AllDatoms(), before);
  // Under the limit still works.
  EXPECT_EQ(Post("/v1/transact", "[{:user/name \"small\"}]", true).status, 200);
}

TEST_F(HttpApiTest, ExpectContinueIsAnswered) {
  Conn c(port_);
  std::string body = TxJson(kSchema);
  ASSERT_TRUE(c.SendRaw("POST /v1/transact HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n"));
  // The server asks for the body before the client sends it.
  auto cont = c.ReadResponse(2000, /*skip_continue=*/false);
  ASSERT_TRUE(cont.has_value());
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(c.SendRaw(body));
  auto r = c.ReadResponse();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(HttpApiTest, HalfOpenClientsAreDroppedWhileOthersAreServed) {
  HttpServerOptions options;
  options.header_timeout_ms = 400;
  options.body_timeout_ms = 400;
  StartServer(options);
  Transact(kSchema);

  Conn half_header(port_);
  ASSERT_TRUE(half_header.SendRaw("POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Le"));
  Conn half_body(port_);
  ASSERT_TRUE(
      half_body.SendRaw("POST /v1/transact HTTP/1.1\r\nHost: x\r\nContent-Type: application/edn\r\n"
                        "Content-Length: 100\r\n\r\n[{:user/name"));
  Conn silent(port_);

  // Others are served meanwhile, on a keep-alive connection.
  {
    Conn good(port_);
    for (int i = 0; i < 5; ++i) {
      Response r = good.Request("POST", "/v1/transact", "[{:user/name \"ok" + std::to_string(i) + "\"}]",
                                {{"Content-Type", "application/edn"}});
      EXPECT_EQ(r.status, 200) << r.body;
    }
  }
  EXPECT_TRUE(half_header.ClosedByPeer(3000));
  EXPECT_TRUE(half_body.ClosedByPeer(3000));
  EXPECT_TRUE(silent.ClosedByPeer(3000));
  // The half-written transaction never applied.
  EXPECT_EQ(Post("/v1/query", "[:find (count ?n) . :where [_ :user/name ?n]]", true, true).body, "5\n");
  // The socket closes just before the timeout is counted: allow the count a moment.
  std::string timeouts;
  for (int i = 0; i < 100 && timeouts != "3"; ++i) {
    timeouts = Capture(Get("/metrics").body, "\ncairn_http_read_timeouts_total (\\d+)\n");
    if (timeouts != "3") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(timeouts, "3");
}

TEST_F(HttpApiTest, ConnectionCapRefusesTheExtraClient) {
  HttpServerOptions options;
  options.connections_max = 2;
  StartServer(options);
  auto a = std::make_unique<Conn>(port_);
  Conn b(port_);
  // Make sure both are accepted and counted before the third arrives.
  EXPECT_EQ(a->Request("GET", "/health").status, 200);
  EXPECT_EQ(b.Request("GET", "/health").status, 200);
  Conn extra(port_);
  auto r = extra.ReadResponse(3000);
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 503, "unavailable");
  EXPECT_TRUE(extra.ClosedByPeer(2000));
  // Closing one frees a slot.
  a.reset();
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    Conn next(port_);
    status = next.Request("GET", "/health").status;
  }
  EXPECT_EQ(status, 200);
}

TEST_F(HttpApiTest, FiftyConcurrentKeepAliveClients) {
  Transact(kSchema);
  constexpr int kClients = 50;
  constexpr int kRounds = 10;
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Conn conn(port_);
      for (int i = 0; i < kRounds; ++i) {
        std::string email = "c" + std::to_string(c) + "-" + std::to_string(i) + "@x";
        Response tx =
            conn.Request("POST", "/v1/transact", TxJson("[{:user/email \"" + email + "\" :user/name \"n\"}]"));
        Response q = conn.Request("POST", "/v1/query",
                                  "{\"query\": \"[:find ?e . :in $ ?m :where [?e :user/email ?m]]\", \"args\": [" +
                                      JsonString("\"" + email + "\"") + "]}");
        bool good = tx.status == 200 && q.status == 200 && q.body.find("\"rows\":[[") != std::string::npos &&
                    tx.header("connection") != "close";
        (good ? ok : failed).fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRounds);
  Response count = Post("/v1/query", "[:find (count ?e) . :where [?e :user/email]]", true, true);
  EXPECT_EQ(count.body, std::to_string(kClients * kRounds) + "\n");
  // One connection per client (plus the helper calls', one each): keep-alive held.
  std::string metrics = Get("/metrics").body;
  uint64_t connections = std::stoull("0" + Capture(metrics, "\ncairn_http_connections_total (\\d+)\n"));
  EXPECT_LE(connections, static_cast<uint64_t>(kClients + 5));
}

// A Backend whose every call fails with a chosen status: proves the mapping
// of cluster-only errors (no quorum, timeouts) to HTTP codes.
class FailingBackend : public Backend {
 public:
  explicit FailingBackend(Status s) : status_(std::move(s)) {}
  Result<TransactResult> Transact(const TransactRequest&) override { return status_; }
  Result<QueryResult> Query(const QueryRequest&) override { return status_; }
  Result<DatomsResult> Datoms(const DatomsRequest&) override { return status_; }
  Result<std::vector<Datom>> Diff(TxTime, TxTime) override { return status_; }
  BackendStatus GetStatus() override { return {}; }
  Status Health() override { return status_; }

 private:
  Status status_;
};

TEST(HttpApiErrors, BackendStatusesMapToHttpCodes) {
  struct Case {
    Status status;
    int http;
    std::string code;
  };
  const std::vector<Case> cases = {
      {Status::Unavailable("no quorum for shard 3"), 503, "unavailable"},
      {Status::NotLeader("leader is node 2"), 503, "not_leader"},
      {Status::Timeout("commit not acknowledged in 5000 ms"), 504, "timeout"},
      {Status::Cancelled("query cancelled"), 504, "cancelled"},
      {Status::Conflict("lock held"), 409, "conflict"},
      {Status::NotFound("no such entity"), 404, "not_found"},
      {Status::IOError("disk full"), 500, "io_error"},
      {Status::InvalidArgument("cross_shard: the transaction's entities live on shards 1, 2"), 400, "cross_shard"},
  };
  for (const Case& c : cases) {
    FailingBackend backend(c.status);
    HttpServer server(&backend, {});
    ASSERT_TRUE(server.Start().ok());
    Conn conn(server.port());
    Response tx = conn.Request("POST", "/v1/transact", "[]", {{"Content-Type", "application/edn"}});
    ExpectError(tx, c.http, c.code);
    EXPECT_NE(tx.body.find(c.status.message()), std::string::npos) << tx.body;
    ExpectError(conn.Request("POST", "/v1/query", "{\"query\": \"[:find ?e :where [?e :a]]\"}"), c.http, c.code);
    Response health = conn.Request("GET", "/health");
    EXPECT_EQ(health.status, c.http < 500 ? 503 : c.http);
  }
}

// Queries take `delay`; everything else answers at once.
class SlowBackend : public FailingBackend {
 public:
  explicit SlowBackend(std::chrono::milliseconds delay) : FailingBackend(Status::NotFound("x")), delay_(delay) {}
  Result<QueryResult> Query(const QueryRequest&) override {
    std::this_thread::sleep_for(delay_);
    return QueryResult{};
  }
  Status Health() override { return Status::OK(); }

 private:
  std::chrono::milliseconds delay_;
};

TEST(HttpApiErrors, SlowRequestGets504WhileOthersAreServed) {
  SlowBackend backend(std::chrono::milliseconds(1500));
  HttpServerOptions options;
  options.request_timeout_ms = 300;
  HttpServer server(&backend, options);
  ASSERT_TRUE(server.Start().ok());
  Conn slow(server.port());
  const std::string body = "{\"query\": \"[:find ?e :where [?e :a]]\"}";
  ASSERT_TRUE(slow.SendRaw("POST /v1/query HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n" + body));
  Conn other(server.port());
  EXPECT_EQ(other.Request("GET", "/health").status, 200);
  auto start = std::chrono::steady_clock::now();
  auto r = slow.ReadResponse(5000);
  ASSERT_TRUE(r.has_value());
  ExpectError(*r, 504, "timeout");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1200));
  EXPECT_TRUE(slow.ClosedByPeer(2000));
  EXPECT_EQ(other.Request("GET", "/health").status, 200);
  std::string metrics = other.Request("GET", "/metrics").body;
  EXPECT_NE(metrics.find("cairn_http_requests_total{path=\"/v1/query\",code=\"504\"} 1\n"), std::string::npos)
      << metrics;
}

// Transactions answered later, from another thread, as a cluster node does
// (Backend::TransactAsync): the test holds every answer until it releases it.
class LateBackend : public FailingBackend {
 public:
  LateBackend() : FailingBackend(Status::NotFound("x")) {}
  void TransactAsync(const TransactRequest&, TransactDone done) override {
    std::lock_guard<std::mutex> lock(mu_);
    owed_.push_back(std::move(done));
  }
  Status Health() override { return Status::OK(); }
  size_t owed() {
    std::lock_guard<std::mutex> lock(mu_);
    return owed_.size();
  }
  // Answers every owed transaction (t = 42) from a thread of its own.
  void AnswerAll() {
    std::vector<TransactDone> owed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      owed.swap(owed_);
    }
    std::thread([owed = std::move(owed)] {
      for (const TransactDone& done : owed) {
        TransactResult r;
        r.report.t = TxTime{42};
        done(r);
      }
    }).join();
  }

 private:
  std::mutex mu_;
  std::vector<TransactDone> owed_;
};

// Sends a one-datom EDN transaction without waiting for its answer.
bool SendTransact(Conn& conn) {
  const std::string body = "[[:db/add \"e\" :db/doc \"x\"]]";
  return conn.SendRaw("POST /v1/transact HTTP/1.1\r\nHost: x\r\nContent-Type: application/edn\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body);
}

bool WaitFor(const std::function<bool()>& pred) {
  for (int i = 0; i < 1000 && !pred(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pred();
}

TEST(HttpApiAsync, ATransactionAnsweredLaterFreesTheWorkerAndReachesItsClient) {
  LateBackend backend;
  HttpServerOptions options;
  options.worker_threads = 1;
  HttpServer server(&backend, options);
  ASSERT_TRUE(server.Start().ok());
  Conn waiting(server.port());
  ASSERT_TRUE(SendTransact(waiting));
  ASSERT_TRUE(WaitFor([&] { return backend.owed() == 1; }));
  // The only worker is free while the transaction waits for its answer.
  Conn other(server.port());
  EXPECT_EQ(other.Request("GET", "/health").status, 200);
  backend.AnswerAll();
  std::optional<Response> r = waiting.ReadResponse(5000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_NE(r->body.find("\"t\":42"), std::string::npos) << r->body;
  // The keep-alive connection goes on.
  EXPECT_EQ(waiting.Request("GET", "/health").status, 200);
}

TEST(HttpApiAsync, StopWaitsForAnAnswerTheBackendStillOwes) {
  LateBackend backend;
  HttpServer server(&backend, {});
  ASSERT_TRUE(server.Start().ok());
  Conn waiting(server.port());
  ASSERT_TRUE(SendTransact(waiting));
  ASSERT_TRUE(WaitFor([&] { return backend.owed() == 1; }));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    server.Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(stopped.load()) << "Stop() returned while the backend still owed an answer";
  backend.AnswerAll();  // posts to the server's io_context: it must still exist
  stopper.join();
  EXPECT_TRUE(stopped.load());
}

TEST(HttpServerStart, ReportsAnAddressInUse) {
  FailingBackend backend(Status::Unavailable("x"));
  HttpServer first(&backend, {});
  ASSERT_TRUE(first.Start().ok());
  HttpServerOptions options;
  options.port = first.port();
  HttpServer second(&backend, options);
  Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kIOError) << s.ToString();
  HttpServerOptions bad;
  bad.address = "no-such-host.invalid";
  EXPECT_EQ(HttpServer(&backend, bad).Start().code(), StatusCode::kInvalidArgument);
  HttpServerOptions named;
  named.address = "localhost";
  HttpServer by_name(&backend, named);
  ASSERT_TRUE(by_name.Start().ok());
  Conn c(by_name.port());
  EXPECT_EQ(c.Request("GET", "/health").status, 503);  // FailingBackend is unhealthy
}

}  // namespace
}  // namespace cairn::server
