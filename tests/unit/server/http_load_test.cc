// Throughput of the HTTP API over loopback (not a timed test: disabled by
// default, prints figures). Run with
//   cairn_unit_server --gtest_also_run_disabled_tests --gtest_filter='*HttpLoad*'
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include "http_client.h"
#include "server/backend.h"
#include "server/http_server.h"

namespace cairn::server {
namespace {

using testing::Conn;
using testing::JsonString;
using testing::Response;

struct LoadResult {
  double ops_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  int errors = 0;
};

// `clients` keep-alive connections each issuing `request(client, i)` for `seconds`.
LoadResult Drive(uint16_t port, int clients, double seconds, const std::function<Response(Conn&, int, int)>& request) {
  std::vector<std::vector<double>> lat(clients);
  std::atomic<int> errors{0};
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      Conn conn(port);
      for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        Response r = request(conn, c, i);
        lat[c].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (r.status != 200) errors.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  LoadResult r;
  r.ops_per_s = static_cast<double>(all.size()) / seconds;
  if (!all.empty()) {
    r.p50_ms = all[all.size() / 2];
    r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  r.errors = errors.load();
  return r;
}

TEST(HttpLoad, DISABLED_ReportsThroughput) {
  char tmpl[] = "/tmp/cairn_http_load_XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto backend = EmbeddedBackend::Open(dir + "/load.db");
  ASSERT_TRUE(backend.ok());
  HttpServer server(backend->get(), {});
  ASSERT_TRUE(server.Start().ok());
  {
    Conn c(server.port());
    ASSERT_EQ(c.Request("POST", "/v1/transact",
                        "[{:db/ident :k/id :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
                        ":db/unique :db.unique/identity} {:db/ident :k/v :db/valueType :db.type/string "
                        ":db/cardinality :db.cardinality/one}]",
                        {{"Content-Type", "application/edn"}})
                  .status,
              200);
  }
  const std::string value(64, 'x');
  for (int clients : {1, 16, 64}) {
    LoadResult health = Drive(server.port(), clients, 2, [](Conn& c, int, int) { return c.Request("GET", "/health"); });
    LoadResult tx = Drive(server.port(), clients, 2, [&](Conn& c, int client, int i) {
      return c.Request("POST", "/v1/transact",
                       "[{:k/id \"c" + std::to_string(client) + "-" + std::to_string(i) + "\" :k/v \"" + value + "\"}]",
                       {{"Content-Type", "application/edn"}});
    });
    LoadResult q = Drive(server.port(), clients, 2, [&](Conn& c, int client, int) {
      return c.Request("POST", "/v1/query",
                       "{\"query\": \"[:find ?v . :in $ ?k :where [?e :k/id ?k] [?e :k/v ?v]]\", \"args\": [" +
                           JsonString("\"c" + std::to_string(client) + "-0\"") + "]}");
    });
    for (auto [name, r] :
         {std::pair{"GET /health", health}, std::pair{"transact 1 entity", tx}, std::pair{"point query", q}}) {
      std::printf("clients=%-3d %-18s %9.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  errors %d\n", clients, name, r.ops_per_s,
                  r.p50_ms, r.p99_ms, r.errors);
      EXPECT_EQ(r.errors, 0);
    }
  }
  server.Stop();
  backend->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cairn::server
