// `cairn status --connect HOST:PORT`: a node's GET /v1/status as tables.
// nlohmann stays in this file (and the other JSON-handling CLI files).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cairn/client.h"
#include "cli/cluster_info.h"
#include "cli/commands.h"

namespace cairn::cli {

namespace {

using Json = nlohmann::json;

// A JSON scalar as a table cell (missing -> "-").
Value Cell(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Value::String("-");
  if (it->is_boolean()) return Value::String(it->get<bool>() ? "yes" : "no");
  if (it->is_number_integer()) return Value::Long(it->get<int64_t>());
  if (it->is_number()) return Value::Double(it->get<double>());
  if (it->is_string()) return Value::String(it->get<std::string>());
  return Value::String(it->dump());
}

// The same value under the contract's snake_case key or the embedded
// server's kebab-case one.
const char* Key(const Json& obj, const char* snake, const char* kebab) { return obj.contains(snake) ? snake : kebab; }

void PrintTable(const char* title, std::vector<std::string> columns, std::vector<std::vector<Value>> rows) {
  QueryResult r;
  r.columns = std::move(columns);
  r.rows = std::move(rows);
  std::printf("\n%s\n%s", title, FormatResult(r, "table").c_str());
}

Value Leader(const Json& g) {
  auto it = g.find("leader");
  if (it != g.end() && it->is_number_integer() && it->get<int64_t>() == 0) return Value::String("none");
  return Cell(g, "leader");
}

Result<Json> FetchStatus(const Client& client) {
  CAIRN_ASSIGN_OR_RETURN(std::string body, client.status_json());
  try {
    return Json::parse(body);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(std::string("malformed /v1/status: ") + e.what());
  }
}

}  // namespace

Result<ClusterShape> FetchClusterShape(const Client& client) {
  CAIRN_ASSIGN_OR_RETURN(Json s, FetchStatus(client));
  ClusterShape shape;
  shape.cluster = s.value("mode", "") == "cluster";
  if (!shape.cluster) return shape;
  uint32_t max_shard = 0;
  if (auto it = s.find("shards"); it != s.end() && it->is_array()) {
    for (const auto& sh : *it) {
      if (sh.is_object() && sh.contains("shard") && sh["shard"].is_number_unsigned()) {
        max_shard = std::max(max_shard, sh["shard"].get<uint32_t>());
      }
    }
  }
  for (const char* k : {"shard_count", "shards_total"}) {
    if (s.contains(k) && s[k].is_number_unsigned()) max_shard = s[k].get<uint32_t>();
  }
  if (max_shard > 0) shape.shards = max_shard;
  if (s.contains("partitions") && s["partitions"].is_number_unsigned()) {
    shape.partitions = std::max(1u, s["partitions"].get<uint32_t>());
  }
  return shape;
}

int RunStatus(const std::string& endpoints, bool json) {
  ClientOptions options;
  options.timeout_ms = 10'000;
  auto client = Client::connect(SplitEndpoints(endpoints), options);
  if (!client.ok()) {
    std::fprintf(stderr, "cairn: %s\n", client.status().ToString().c_str());
    return 1;
  }
  if (json) {
    auto body = (*client)->status_json();
    if (!body.ok()) {
      std::fprintf(stderr, "cairn: %s\n", body.status().ToString().c_str());
      return 1;
    }
    std::printf("%s", body->c_str());
    return 0;
  }
  auto parsed = FetchStatus(**client);
  if (!parsed.ok()) {
    std::fprintf(stderr, "cairn: %s\n", parsed.status().ToString().c_str());
    return 1;
  }
  const Json& s = *parsed;
  if (!s.is_object()) {
    std::fprintf(stderr, "cairn: /v1/status is not a JSON object\n");
    return 1;
  }
  std::string mode = s.value("mode", "?");
  std::printf("Cairn status from %s: mode %s", endpoints.c_str(), mode.c_str());
  if (s.contains("node")) std::printf(", node %s", s["node"].dump().c_str());
  const char* latest = Key(s, "latest_t", "latest-t");
  if (s.contains(latest)) std::printf(", latest t %s", s[latest].dump().c_str());
  std::printf("\n");

  if (auto it = s.find("nodes"); it != s.end() && it->is_array()) {
    std::vector<std::vector<Value>> rows;
    for (const auto& n : *it) rows.push_back({Cell(n, "id"), Cell(n, "http"), Cell(n, "peer"), Cell(n, "live")});
    PrintTable("Nodes", {"id", "http", "peer", "live"}, std::move(rows));
  }
  std::vector<std::vector<Value>> groups;
  std::vector<std::vector<Value>> replicas;
  auto group_row = [&](const Json& g, Value name) {
    groups.push_back({std::move(name), Leader(g), Cell(g, "role"), Cell(g, "term"),
                      Cell(g, Key(g, "commit_index", "commit-index")),
                      Cell(g, Key(g, "applied_index", "applied-index"))});
  };
  if (auto it = s.find("meta"); it != s.end() && it->is_object()) group_row(*it, Value::String("meta"));
  if (auto it = s.find("shards"); it != s.end() && it->is_array()) {
    for (const auto& sh : *it) {
      group_row(sh, Cell(sh, "shard"));
      if (auto r = sh.find("replicas"); r != sh.end() && r->is_array()) {
        for (const auto& rep : *r) {
          replicas.push_back({Cell(sh, "shard"), Cell(rep, "node"), Cell(rep, "match_index"), Cell(rep, "lag")});
        }
      }
    }
  }
  if (!groups.empty()) {
    PrintTable("Raft groups (as this node sees them)", {"group", "leader", "role", "term", "commit", "applied"},
               std::move(groups));
  }
  if (!replicas.empty()) {
    PrintTable("Replication (shards this node leads)", {"shard", "node", "match", "lag"}, std::move(replicas));
  }
  if (mode != "cluster") {
    std::vector<std::vector<Value>> rows;
    for (const char* k : {"path", "datoms", "transactions", "size-bytes", "uptime-s", "connections"}) {
      if (s.contains(k)) rows.push_back({Value::String(k), Cell(s, k)});
    }
    if (!rows.empty()) PrintTable("Database", {"field", "value"}, std::move(rows));
  }
  return 0;
}

}  // namespace cairn::cli
