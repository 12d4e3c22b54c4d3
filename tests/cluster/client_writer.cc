// The writer of cluster test client_failover (cluster_test.py): writes COUNT
// transactions through cairn::Client, one at a time, each a new entity in
// PARTITION with :t/val BASE+i, and prints "ack VALUE T ENTITY DUPLICATE MS" for
// each acknowledged one (ENTITY 0: a duplicate answer without tempids; MS:
// milliseconds since the first call). A call that fails (the client gave up: it must ride
// through a leader change by itself) prints the error and exits 1.
//
//   client_writer HOST:PORT[,HOST:PORT...] PARTITION COUNT BASE
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/client.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s HOST:PORT[,HOST:PORT...] PARTITION COUNT BASE\n", argv[0]);
    return 2;
  }
  std::vector<std::string> endpoints;
  std::stringstream list(argv[1]);
  for (std::string e; std::getline(list, e, ',');) endpoints.push_back(e);
  long partition = std::strtol(argv[2], nullptr, 10);
  long count = std::strtol(argv[3], nullptr, 10);
  long base = std::strtol(argv[4], nullptr, 10);

  cairn::ClientOptions options;
  options.timeout_ms = 20'000;
  auto client = cairn::Client::connect(endpoints, options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    long value = base + i;
    std::string tx = "[{:db/id \"w\" :db/partition " + std::to_string(partition) + " :t/val " + std::to_string(value) +
                     " :t/writer 77}]";
    auto report = (*client)->transact(tx);
    if (!report.ok()) {
      std::fprintf(stderr, "write %ld (value %ld) failed: %s\n", i, value, report.status().ToString().c_str());
      return 1;
    }
    // A retried call may be answered as a duplicate; the test checks its entity when the answer names it
    // (request_id_retry checks that it does).
    auto it = report->tempids.find("w");
    if (it == report->tempids.end() && !report->duplicate) {
      std::fprintf(stderr, "write %ld (value %ld): no tempid \"w\" in the report\n", i, value);
      return 1;
    }
    unsigned long long entity = it == report->tempids.end() ? 0 : it->second.raw;
    auto elapsed = std::chrono::steady_clock::now() - start;
    long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
    std::printf("ack %ld %llu %llu %d %lld\n", value, static_cast<unsigned long long>(report->t.raw), entity,
                report->duplicate ? 1 : 0, ms);
    std::fflush(stdout);
  }
  return 0;
}
