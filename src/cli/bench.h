// `cairn bench`: an HTTP load generator for a running Cairn node or cluster,
// or for etcd's v3 JSON gateway, so both are driven by the same client.
//
// For every (workload, client count) pair it runs N concurrent keep-alive
// clients on one io_context for a fixed time (or op count), then prints a
// table (ops/s, datoms/s, latency p50/p99/p999, errors) and optionally writes
// the same figures as JSON. Errors of the target are counted, never fatal;
// a target that cannot be reached at all (setup fails) exits 1. Not
// re-entrant; runs in the calling thread plus `threads` I/O threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cairn::cli {

struct BenchArgs {
  std::string target = "cairn";                  // "cairn" or "etcd"
  std::vector<std::string> endpoints;            // HOST:PORT; clients are spread round-robin
  std::vector<std::string> workloads = {"tx1"};  // tx1, tx100, point
  std::vector<int> clients = {1, 16, 64};        // one run per count, per workload
  double duration_s = 10;                        // measured time per run (after the warm-up)
  double warmup_s = 1;                           // time per run whose ops are not counted
  uint64_t ops = 0;                              // if > 0: ops per run instead of a duration
  int threads = 2;                               // I/O threads running the io_context
  int timeout_ms = 10'000;                       // per request (connect, write, read)
  int value_bytes = 64;                          // size of each written value
  int point_keys = 1000;                         // keys written before `point` runs
  std::string out;                               // JSON file to write ("" = none)
  bool quiet = false;                            // no progress lines on stderr
};

// Returns 0 when every run finished (errors are reported, not fatal), 1 when
// the target could not be set up, 2 on bad arguments.
int RunBench(const BenchArgs& args);

}  // namespace cairn::cli
