// `cairn serve`: run a node's HTTP API over an embedded database until
// SIGTERM or SIGINT.
#pragma once

#include <cstddef>
#include <string>

namespace cairn::cli {

struct ServeArgs {
  std::string db_path;
  std::string http = "127.0.0.1:7070";  // HOST:PORT; port 0 picks a free one
  size_t body_bytes_max = size_t{8} << 20;
  int header_timeout_ms = 10'000;
  int body_timeout_ms = 30'000;
  int request_timeout_ms = 60'000;
  size_t connections_max = 1024;
  int worker_threads = 4;
  bool sync = true;
};

// Prints "listening on http://HOST:PORT" as the first line on stdout once the
// port is bound, then serves until a signal; returns 0 on a clean stop.
int RunServe(const ServeArgs& args);

}  // namespace cairn::cli
