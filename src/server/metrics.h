// Metrics: the node's counters and latency histograms, rendered in the
// Prometheus text exposition format (version 0.0.4) for GET /metrics.
//
// Request counts are keyed by (route, status code). Routes are the API's
// fixed paths ("/v1/query", ...) or "other", never the raw target, so a
// client cannot grow the label set.
//
// Thread-safety: every method may be called from many threads at once.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "server/backend.h"

namespace cairn::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the latency histogram buckets; +Inf is implied.
  static constexpr std::array<double, 14> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  void RecordRequest(std::string_view route, int status, double seconds);
  void ConnectionOpened() {
    connections_open_.fetch_add(1);
    connections_total_.fetch_add(1);
  }
  void ConnectionClosed() { connections_open_.fetch_sub(1); }
  void ConnectionRejected() { connections_rejected_.fetch_add(1); }
  void ReadTimedOut() { read_timeouts_.fetch_add(1); }
  int64_t connections_open() const { return connections_open_.load(); }

  // Every metric, with `backend`'s gauges (transactions, datoms, size).
  std::string RenderPrometheus(const BackendStatus& backend) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // guarded by mu_
  std::map<std::string, Histogram> latency_;                  // guarded by mu_
  std::atomic<int64_t> connections_open_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<uint64_t> connections_rejected_{0};
  std::atomic<uint64_t> read_timeouts_{0};
};

}  // namespace cairn::server
