// Shard map and node config. nlohmann::json stays in this file.
#include "cluster/shard_map.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/check.h"

namespace cairn::cluster {

uint32_t ShardOfPartition(uint32_t partition, uint32_t shards) {
  CAIRN_CHECK(shards >= 1);
  if (partition == 0) return 0;
  return 1 + (partition - 1) % shards;
}

std::vector<uint32_t> ShardReplicas(uint32_t shard, const std::vector<uint32_t>& node_ids, uint32_t replication) {
  std::vector<uint32_t> out;
  if (shard == 0 || node_ids.empty()) return out;
  size_t n = node_ids.size();
  size_t count = std::min<size_t>(replication, n);
  for (size_t k = 0; k < count; ++k) out.push_back(node_ids[(shard - 1 + k) % n]);
  return out;
}

std::vector<uint32_t> MetaVoters(const std::vector<uint32_t>& node_ids) {
  return std::vector<uint32_t>(node_ids.begin(), node_ids.begin() + std::min<size_t>(3, node_ids.size()));
}

Status SplitHostPort(std::string_view text, std::string_view what, std::string* host, uint16_t* port,
                     bool allow_zero_port) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument(std::string(what) + ": expected HOST:PORT, got '" + std::string(text) + "' (" +
                                   std::string(why) + ")");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view h = text.substr(0, colon);
  std::string_view p = text.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') {
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return bad("an IPv6 host needs brackets");
  }
  if (h.empty()) return bad("empty host");
  if (p.empty() || p.size() > 5) return bad("bad port");
  uint32_t value = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return bad("bad port");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535 || (value == 0 && !allow_zero_port)) return bad("port out of range");
  *host = std::string(h);
  *port = static_cast<uint16_t>(value);
  return Status::OK();
}

ShardMap::ShardMap(uint32_t shards, uint32_t replication, uint32_t partitions, std::vector<NodeAddress> nodes)
    : shards_(shards), replication_(replication), partitions_(partitions), nodes_(std::move(nodes)) {
  CAIRN_CHECK(shards_ >= 1 && replication_ >= 1 && partitions_ > shards_ && !nodes_.empty());
  std::sort(nodes_.begin(), nodes_.end(), [](const NodeAddress& a, const NodeAddress& b) { return a.id < b.id; });
  std::vector<uint32_t> ids = node_ids();
  groups_[kMetaGroup] = MetaVoters(ids);
  for (uint32_t s = 1; s <= shards_; ++s) groups_[s] = ShardReplicas(s, ids, replication_);
}

std::vector<uint32_t> ShardMap::node_ids() const {
  std::vector<uint32_t> ids;
  for (const NodeAddress& n : nodes_) ids.push_back(n.id);
  return ids;
}

const NodeAddress* ShardMap::node(uint32_t id) const {
  for (const NodeAddress& n : nodes_) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

std::vector<uint32_t> ShardMap::PartitionsOf(uint32_t shard) const {
  std::vector<uint32_t> out;
  if (shard == 0 || shard > shards_) return out;
  for (uint32_t p = shard; p < partitions_; p += shards_) out.push_back(p);
  return out;
}

std::map<uint64_t, std::vector<uint32_t>> ShardMap::Groups() const { return groups_; }

std::vector<uint32_t> ShardMap::ReplicasOf(uint64_t group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? std::vector<uint32_t>{} : it->second;
}

std::vector<uint64_t> ShardMap::GroupsOn(uint32_t node_id) const {
  std::vector<uint64_t> out;
  for (const auto& [g, voters] : groups_) {
    if (std::find(voters.begin(), voters.end(), node_id) != voters.end()) out.push_back(g);
  }
  return out;
}

uint32_t ShardMap::LeaderHint(uint64_t group) const {
  auto it = leader_hints_.find(group);
  return it == leader_hints_.end() ? 0 : it->second;
}

void ShardMap::SetNodes(std::vector<NodeAddress> nodes) {
  CAIRN_CHECK(!nodes.empty());
  std::sort(nodes.begin(), nodes.end(), [](const NodeAddress& a, const NodeAddress& b) { return a.id < b.id; });
  nodes_ = std::move(nodes);
}

void ShardMap::SetReplicas(uint64_t group, std::vector<uint32_t> replicas) {
  CAIRN_CHECK(group <= shards_ && !replicas.empty());
  groups_[group] = std::move(replicas);
}

void ShardMap::SetLeaderHint(uint64_t group, uint32_t node) {
  if (node == 0) {
    leader_hints_.erase(group);
  } else {
    leader_hints_[group] = node;
  }
}

// ---------------------------------------------------------------- config

namespace {

using Json = nlohmann::json;

Status KeyError(std::string_view where, std::string_view key, std::string_view why) {
  return Status::InvalidArgument(std::string(where) + ": '" + std::string(key) + "' " + std::string(why));
}

Result<uint64_t> GetUint(const Json& obj, std::string_view where, const std::string& key, uint64_t min, uint64_t max) {
  const Json& v = obj.at(key);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
    return KeyError(where, key, "must be a non-negative integer, got " + v.dump());
  }
  uint64_t x = v.get<uint64_t>();
  if (x < min || x > max) {
    return KeyError(where, key, "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " + v.dump());
  }
  return x;
}

Result<std::string> GetString(const Json& obj, std::string_view where, const std::string& key) {
  const Json& v = obj.at(key);
  if (!v.is_string()) return KeyError(where, key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

}  // namespace

Result<ClusterConfig> ClusterConfig::Parse(std::string_view json_text, std::string_view where) {
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string(where) + ": malformed JSON: " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(std::string(where) + ": the config must be a JSON object");

  static const std::set<std::string> kKnown = {
      "node_id", "dir",  "http",    "peer",    "cluster_secret",   "cluster_secret_file", "shards",
      "replication", "partitions", "nodes", "tick_ms", "sync", "snapshot_entries", "log_level",
      "clock_offset_ms"};
  for (const auto& [k, v] : j.items()) {
    if (!kKnown.count(k)) return KeyError(where, k, "is not a known key");
  }
  for (const char* required : {"node_id", "dir", "http", "peer", "shards", "nodes"}) {
    if (!j.contains(required)) return KeyError(where, required, "is missing");
  }

  ClusterConfig c;
  CAIRN_ASSIGN_OR_RETURN(uint64_t node_id, GetUint(j, where, "node_id", 1, UINT32_MAX));
  c.node_id = static_cast<uint32_t>(node_id);
  CAIRN_ASSIGN_OR_RETURN(c.dir, GetString(j, where, "dir"));
  if (c.dir.empty()) return KeyError(where, "dir", "must not be empty");
  CAIRN_ASSIGN_OR_RETURN(c.http, GetString(j, where, "http"));
  CAIRN_RETURN_IF_ERROR(SplitHostPort(c.http, std::string(where) + ": 'http'", &c.http_host, &c.http_port, true));
  CAIRN_ASSIGN_OR_RETURN(c.peer, GetString(j, where, "peer"));
  CAIRN_RETURN_IF_ERROR(SplitHostPort(c.peer, std::string(where) + ": 'peer'", &c.peer_host, &c.peer_port, true));

  CAIRN_ASSIGN_OR_RETURN(uint64_t shards, GetUint(j, where, "shards", 1, 4096));
  c.shards = static_cast<uint32_t>(shards);
  if (j.contains("replication")) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t r, GetUint(j, where, "replication", 1, 15));
    c.replication = static_cast<uint32_t>(r);
  }
  if (j.contains("partitions")) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t p, GetUint(j, where, "partitions", 2, EntityId::kMaxPartitions - 1));
    c.partitions = static_cast<uint32_t>(p);
  }
  if (c.partitions <= c.shards) {
    return KeyError(where, "partitions",
                    "must exceed 'shards' (" + std::to_string(c.shards) +
                        ") so that every shard owns a user partition, got " + std::to_string(c.partitions));
  }
  if (j.contains("tick_ms")) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t t, GetUint(j, where, "tick_ms", 1, 1000));
    c.tick_ms = static_cast<int>(t);
  }
  if (j.contains("sync")) {
    if (!j["sync"].is_boolean()) return KeyError(where, "sync", "must be true or false");
    c.sync = j["sync"].get<bool>();
  }
  if (j.contains("snapshot_entries")) {
    CAIRN_ASSIGN_OR_RETURN(c.snapshot_entries, GetUint(j, where, "snapshot_entries", 1, UINT64_MAX >> 1));
  }
  if (j.contains("clock_offset_ms")) {
    const Json& v = j["clock_offset_ms"];
    constexpr int64_t kDayMs = 86'400'000;
    bool ok = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(kDayMs)
                                     : v.is_number_integer() && v.get<int64_t>() >= -kDayMs;
    if (!ok) {
      return KeyError(where, "clock_offset_ms", "must be an integer number of ms within +-86400000");
    }
    c.clock_offset_ms = v.get<int64_t>();
  }
  if (j.contains("log_level")) {
    CAIRN_ASSIGN_OR_RETURN(c.log_level, GetString(j, where, "log_level"));
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (!kLevels.count(c.log_level)) {
      return KeyError(where, "log_level", "must be trace, debug, info, warn, error, critical or off");
    }
  }

  // The secret: exactly one of inline or file.
  bool inline_secret = j.contains("cluster_secret");
  bool file_secret = j.contains("cluster_secret_file");
  if (inline_secret == file_secret) {
    return Status::InvalidArgument(std::string(where) +
                                   ": exactly one of 'cluster_secret' and 'cluster_secret_file' must be given");
  }
  if (inline_secret) {
    CAIRN_ASSIGN_OR_RETURN(c.cluster_secret, GetString(j, where, "cluster_secret"));
    if (c.cluster_secret.empty()) return KeyError(where, "cluster_secret", "must not be empty");
  } else {
    CAIRN_ASSIGN_OR_RETURN(c.cluster_secret_file, GetString(j, where, "cluster_secret_file"));
    std::ifstream in(c.cluster_secret_file, std::ios::binary);
    if (!in) {
      return Status::IOError(std::string(where) + ": 'cluster_secret_file': cannot read " + c.cluster_secret_file);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    c.cluster_secret = ss.str();
    while (!c.cluster_secret.empty() && (c.cluster_secret.back() == '\n' || c.cluster_secret.back() == '\r')) {
      c.cluster_secret.pop_back();
    }
    if (c.cluster_secret.empty()) {
      return KeyError(where, "cluster_secret_file", "names an empty file: " + c.cluster_secret_file);
    }
  }

  const Json& nodes = j["nodes"];
  if (!nodes.is_array() || nodes.empty()) return KeyError(where, "nodes", "must be a non-empty array");
  std::set<uint32_t> ids;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string at = std::string(where) + ": nodes[" + std::to_string(i) + "]";
    const Json& n = nodes[i];
    if (!n.is_object()) return Status::InvalidArgument(at + ": must be an object {\"id\", \"peer\", \"http\"}");
    for (const auto& [k, v] : n.items()) {
      if (k != "id" && k != "peer" && k != "http") return KeyError(at, k, "is not a known key (id, peer, http)");
    }
    for (const char* required : {"id", "peer", "http"}) {
      if (!n.contains(required)) return KeyError(at, required, "is missing");
    }
    NodeAddress a;
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, GetUint(n, at, "id", 1, UINT32_MAX));
    a.id = static_cast<uint32_t>(id);
    if (!ids.insert(a.id).second) return KeyError(at, "id", "repeats node id " + std::to_string(a.id));
    CAIRN_ASSIGN_OR_RETURN(a.peer, GetString(n, at, "peer"));
    CAIRN_RETURN_IF_ERROR(SplitHostPort(a.peer, at + ": 'peer'", &a.peer_host, &a.peer_port));
    CAIRN_ASSIGN_OR_RETURN(a.http, GetString(n, at, "http"));
    CAIRN_RETURN_IF_ERROR(SplitHostPort(a.http, at + ": 'http'", &a.http_host, &a.http_port));
    c.nodes.push_back(std::move(a));
  }
  std::sort(c.nodes.begin(), c.nodes.end(), [](const NodeAddress& a, const NodeAddress& b) { return a.id < b.id; });
  if (!ids.count(c.node_id)) {
    return KeyError(where, "node_id", "is " + std::to_string(c.node_id) + ", which is not in 'nodes'");
  }
  if (c.replication > c.nodes.size()) {
    return KeyError(where, "replication",
                    "is " + std::to_string(c.replication) + " but 'nodes' lists only " +
                        std::to_string(c.nodes.size()) + " nodes");
  }
  return c;
}

Result<ClusterConfig> ClusterConfig::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read config file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

}  // namespace cairn::cluster
