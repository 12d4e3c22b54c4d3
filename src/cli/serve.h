// `cairn serve`: run a node's HTTP API until SIGTERM or SIGINT, either over
// an embedded database (--db FILE) or as a cluster node (--config
// node.json; docs/cluster.md).
#pragma once

#include <cstddef>
#include <string>

namespace cairn::cli {

struct ServeArgs {
  std::string db_path;
  std::string config_path;  // cluster mode; exclusive with db_path
  std::string http = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  size_t body_bytes_max = size_t{8} << 20;
  int header_timeout_ms = 10'000;
  int body_timeout_ms = 30'000;
  int request_timeout_ms = 60'000;
  size_t connections_max = 1024;
  // 0 = by mode: 4 embedded (CPU-bound work on one file), 64 in a cluster
  // (a worker mostly waits for a replicated commit on another node).
  int worker_threads = 0;
  bool sync = true;
};

// Prints "listening on http://HOST:PORT" as the first line on stdout once the
// port is bound, then serves until a signal; returns 0 on a clean stop, 2
// for bad arguments or a bad config (nothing started), 1 if starting failed.
int RunServe(const ServeArgs& args);

}  // namespace cairn::cli
