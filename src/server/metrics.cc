#include "server/metrics.h"

#include <cstdio>

namespace cairn::server {

void Metrics::RecordRequest(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(route), status}];
  Histogram& h = latency_[std::string(route)];
  ++h.count;
  h.sum += seconds;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) {
      ++h.buckets[i];
      break;
    }
  }
}

namespace {
std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
void Family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += " ";
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += " ";
  out += type;
  out += "\n";
}

// A family with one unlabelled sample.
void Scalar(std::string& out, const char* name, const char* type, const char* help, uint64_t value) {
  Family(out, name, type, help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}
}  // namespace

std::string Metrics::RenderPrometheus(const BackendStatus& backend) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Family(out, "cairn_http_requests_total", "counter", "HTTP requests by route and status code.");
    for (const auto& [key, n] : requests_) {
      out += "cairn_http_requests_total{path=\"" + key.first + "\",code=\"" + std::to_string(key.second) + "\"} " +
             std::to_string(n) + "\n";
    }
    Family(out, "cairn_http_request_duration_seconds", "histogram",
           "Time from a complete request to its response, by route.");
    for (const auto& [route, h] : latency_) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += h.buckets[i];
        out += "cairn_http_request_duration_seconds_bucket{path=\"" + route + "\",le=\"" + Num(kLatencyBuckets[i]) +
               "\"} " + std::to_string(cumulative) + "\n";
      }
      out += "cairn_http_request_duration_seconds_bucket{path=\"" + route + "\",le=\"+Inf\"} " +
             std::to_string(h.count) + "\n";
      out += "cairn_http_request_duration_seconds_sum{path=\"" + route + "\"} " + Num(h.sum) + "\n";
      out += "cairn_http_request_duration_seconds_count{path=\"" + route + "\"} " + std::to_string(h.count) + "\n";
    }
  }
  Family(out, "cairn_http_connections_open", "gauge", "Open HTTP connections.");
  out += "cairn_http_connections_open " + std::to_string(connections_open_.load()) + "\n";
  Family(out, "cairn_http_connections_total", "counter", "HTTP connections accepted.");
  out += "cairn_http_connections_total " + std::to_string(connections_total_.load()) + "\n";
  Family(out, "cairn_http_connections_rejected_total", "counter",
         "HTTP connections refused because the connection cap was reached.");
  out += "cairn_http_connections_rejected_total " + std::to_string(connections_rejected_.load()) + "\n";
  Family(out, "cairn_http_read_timeouts_total", "counter",
         "Connections closed because a request header or body did not arrive in time.");
  out += "cairn_http_read_timeouts_total " + std::to_string(read_timeouts_.load()) + "\n";
  Family(out, "cairn_transactions_total", "counter", "Transactions committed through this node since it started.");
  out += "cairn_transactions_total " + std::to_string(backend.transactions) + "\n";
  Family(out, "cairn_datoms", "gauge", "Datoms stored, history included.");
  out += "cairn_datoms " + std::to_string(backend.datoms) + "\n";
  Family(out, "cairn_db_size_bytes", "gauge", "On-disk size of the database, WAL included.");
  out += "cairn_db_size_bytes " + std::to_string(backend.size_bytes) + "\n";
  Family(out, "cairn_latest_t", "gauge", "The latest committed transaction time t.");
  out += "cairn_latest_t " + std::to_string(backend.latest_t.raw) + "\n";
  if (backend.mode == "cluster") {
    std::vector<const GroupStatusInfo*> groups;
    if (backend.meta) groups.push_back(&*backend.meta);
    for (const GroupStatusInfo& g : backend.groups) groups.push_back(&g);
    Scalar(out, "cairn_peer_auth_failures_total", "counter",
           "Peer connections refused because the handshake failed (wrong cluster secret).", backend.peer_auth_failures);
    Scalar(out, "cairn_peer_protocol_errors_total", "counter",
           "Peer connections closed for a malformed frame (magic, version, checksum, size).",
           backend.peer_protocol_errors);
    Scalar(out, "cairn_peer_connects_total", "counter", "Outbound peer connections established.",
           backend.peer_connects);
    Scalar(out, "cairn_remote_read_failures_total", "counter",
           "Remote read requests that failed at one replica of a group (the read then moves to the next).",
           backend.remote_read_failures);
    Scalar(out, "cairn_closes_total", "counter",
           "close(T) entries this node proposed as a leader (as-of reads of a time a shard had not closed).",
           backend.closes_proposed);
    Scalar(out, "cairn_driver_rounds_total", "counter",
           "Driver rounds that persisted Raft state (each one log save and fsync for every group).",
           backend.driver_rounds);
    Scalar(out, "cairn_driver_readies_total", "counter", "Group Ready batches those rounds carried.",
           backend.driver_readies);
    Scalar(out, "cairn_driver_entries_applied_total", "counter", "Committed Raft entries applied (every group).",
           backend.driver_entries_applied);
    Scalar(out, "cairn_raft_frames_sent_total", "counter", "Raft frames sent to peers (one per peer per round).",
           backend.driver_frames_sent);
    Scalar(out, "cairn_raft_messages_sent_total", "counter", "Raft messages those frames carried.",
           backend.driver_messages_sent);
    Scalar(out, "cairn_driver_batched_waits_total", "counter",
           "Rounds the saturated driver delayed to gather more work (round_batch_us).", backend.driver_batched_waits);
    Scalar(out, "cairn_driver_slow_rounds_total", "counter",
           "Driver loop iterations longer than slow_round_ms (100 ms): every group of the node waited.",
           backend.driver_slow_rounds);
    Family(out, "cairn_driver_round_seconds_max", "gauge", "The longest driver loop iteration since the node started.");
    out += "cairn_driver_round_seconds_max " + Num(static_cast<double>(backend.driver_round_us_max) / 1e6) + "\n";
    Family(out, "cairn_raft_leader", "gauge", "1 where this node leads the group (0 = meta, else the shard).");
    for (const GroupStatusInfo* g : groups) {
      out +=
          "cairn_raft_leader{group=\"" + std::to_string(g->group) + "\"} " + (g->role == "leader" ? "1" : "0") + "\n";
    }
    Family(out, "cairn_raft_term", "gauge", "The group's current Raft term on this node.");
    for (const GroupStatusInfo* g : groups) {
      out += "cairn_raft_term{group=\"" + std::to_string(g->group) + "\"} " + std::to_string(g->term) + "\n";
    }
    Family(out, "cairn_raft_commit_index", "gauge", "The group's commit index on this node.");
    for (const GroupStatusInfo* g : groups) {
      out += "cairn_raft_commit_index{group=\"" + std::to_string(g->group) + "\"} " + std::to_string(g->commit_index) +
             "\n";
    }
    Family(out, "cairn_raft_applied_index", "gauge", "The group's applied index on this node.");
    for (const GroupStatusInfo* g : groups) {
      out += "cairn_raft_applied_index{group=\"" + std::to_string(g->group) + "\"} " +
             std::to_string(g->applied_index) + "\n";
    }
    Family(out, "cairn_closed_t", "gauge",
           "The group's closed time on this node: every transaction with t <= it is applied here.");
    for (const GroupStatusInfo* g : groups) {
      out += "cairn_closed_t{group=\"" + std::to_string(g->group) + "\"} " + std::to_string(g->closed_t.raw) + "\n";
    }
    auto per_group = [&](const char* name, const char* type, const char* help, auto value) {
      Family(out, name, type, help);
      for (const GroupStatusInfo* g : groups) {
        out += std::string(name) + "{group=\"" + std::to_string(g->group) + "\"} " + std::to_string(value(*g)) + "\n";
      }
    };
    per_group("cairn_snapshot_index", "gauge", "The index of the latest snapshot the group's replica holds.",
              [](const GroupStatusInfo& g) { return g.snapshot_index; });
    per_group("cairn_snapshots_taken_total", "counter", "Snapshots the group's replica took since the node started.",
              [](const GroupStatusInfo& g) { return g.snapshots_taken; });
    per_group("cairn_snapshots_installed_total", "counter",
              "Snapshots the group's replica received from a leader and installed since the node started.",
              [](const GroupStatusInfo& g) { return g.snapshots_installed; });
    per_group("cairn_snapshot_failing", "gauge",
              "1 while the group's last snapshot copy failed (its log stays uncompacted; /v1/status says why).",
              [](const GroupStatusInfo& g) { return g.snapshot_error.empty() ? 0 : 1; });
  }
  return out;
}

}  // namespace cairn::server
