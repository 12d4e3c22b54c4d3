#include "cluster/shard_map_cache.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "cluster/wire.h"

namespace cairn::cluster {

namespace {

// Every datom of attribute `attr` in `meta` as entity -> values. An
// attribute the meta schema does not know yet has none.
Result<std::map<uint64_t, std::vector<Value>>> ByEntity(const datalog::IndexSource& meta, const char* attr) {
  std::map<uint64_t, std::vector<Value>> out;
  Keyword a = Keyword::Intern(attr);
  if (meta.schema().Find(a) == nullptr) return out;
  datalog::DatomPattern p;
  p.a = a;
  CAIRN_RETURN_IF_ERROR(meta.Scan(p, [&](const Datom& d) {
    out[d.e.raw].push_back(d.v);
    return true;
  }));
  return out;
}

std::optional<uint64_t> OneLong(const std::map<uint64_t, std::vector<Value>>& m, uint64_t e) {
  auto it = m.find(e);
  if (it == m.end() || it->second.empty() || it->second.front().type() != ValueType::kLong) return std::nullopt;
  int64_t v = it->second.front().as_long();
  if (v < 0) return std::nullopt;
  return static_cast<uint64_t>(v);
}

std::optional<std::string> OneString(const std::map<uint64_t, std::vector<Value>>& m, uint64_t e) {
  auto it = m.find(e);
  if (it == m.end() || it->second.empty() || it->second.front().type() != ValueType::kString) return std::nullopt;
  return std::string(it->second.front().as_string());
}

uint32_t Small(uint64_t v) { return v > UINT32_MAX ? 0 : static_cast<uint32_t>(v); }

std::string Ids(const std::vector<uint32_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return out + "]";
}

NodeAddress Address(uint32_t id, std::string peer, std::string http) {
  NodeAddress n;
  n.id = id;
  n.peer = std::move(peer);
  n.http = std::move(http);
  if (!SplitHostPort(n.peer, "peer", &n.peer_host, &n.peer_port).ok()) n.peer_host.clear(), n.peer_port = 0;
  if (!SplitHostPort(n.http, "http", &n.http_host, &n.http_port).ok()) n.http_host.clear(), n.http_port = 0;
  return n;
}

}  // namespace

Result<MetaRecords> ReadMetaRecords(const datalog::IndexSource& meta) {
  CAIRN_ASSIGN_OR_RETURN(auto shard_ids, ByEntity(meta, "cairn.shard/id"));
  if (shard_ids.empty()) return Status::NotFound("the meta group holds no shard records yet (bootstrap has not run)");
  CAIRN_ASSIGN_OR_RETURN(auto replicas, ByEntity(meta, "cairn.shard/replicas"));
  CAIRN_ASSIGN_OR_RETURN(auto leaders, ByEntity(meta, "cairn.shard/leader"));
  CAIRN_ASSIGN_OR_RETURN(auto node_ids, ByEntity(meta, "cairn.node/id"));
  CAIRN_ASSIGN_OR_RETURN(auto peers, ByEntity(meta, "cairn.node/peer"));
  CAIRN_ASSIGN_OR_RETURN(auto https, ByEntity(meta, "cairn.node/http"));
  CAIRN_ASSIGN_OR_RETURN(auto shards, ByEntity(meta, "cairn.cluster/shards"));
  CAIRN_ASSIGN_OR_RETURN(auto partitions, ByEntity(meta, "cairn.cluster/partitions"));
  CAIRN_ASSIGN_OR_RETURN(auto replication, ByEntity(meta, "cairn.cluster/replication"));

  MetaRecords r;
  // One cluster entity; the first one found if several.
  for (const auto& [e, vs] : shards) {
    r.shards = Small(OneLong(shards, e).value_or(0));
    r.partitions = Small(OneLong(partitions, e).value_or(0));
    r.replication = Small(OneLong(replication, e).value_or(0));
    break;
  }
  for (const auto& [e, vs] : node_ids) {
    std::optional<uint64_t> id = OneLong(node_ids, e);
    if (!id || *id == 0 || *id > UINT32_MAX) continue;
    r.nodes.push_back(
        Address(static_cast<uint32_t>(*id), OneString(peers, e).value_or(""), OneString(https, e).value_or("")));
  }
  std::sort(r.nodes.begin(), r.nodes.end(), [](const NodeAddress& a, const NodeAddress& b) { return a.id < b.id; });
  for (const auto& [e, vs] : shard_ids) {
    std::optional<uint64_t> id = OneLong(shard_ids, e);
    if (!id || *id == 0 || *id > UINT32_MAX) continue;
    MetaRecords::Shard s;
    s.id = static_cast<uint32_t>(*id);
    std::set<uint32_t> set;
    if (auto it = replicas.find(e); it != replicas.end()) {
      for (const Value& v : it->second) {
        if (v.type() == ValueType::kLong && v.as_long() > 0 && v.as_long() <= UINT32_MAX) {
          set.insert(static_cast<uint32_t>(v.as_long()));
        }
      }
    }
    s.replicas.assign(set.begin(), set.end());
    s.leader = Small(OneLong(leaders, e).value_or(0));
    r.shard_records.push_back(std::move(s));
  }
  std::sort(r.shard_records.begin(), r.shard_records.end(),
            [](const MetaRecords::Shard& a, const MetaRecords::Shard& b) { return a.id < b.id; });
  return r;
}

std::string EncodeMetaRecords(const MetaRecords& r) {
  std::string out;
  wire::PutU8(&out, 1);  // version
  wire::PutVarint(&out, r.shards);
  wire::PutVarint(&out, r.partitions);
  wire::PutVarint(&out, r.replication);
  wire::PutVarint(&out, r.nodes.size());
  for (const NodeAddress& n : r.nodes) {
    wire::PutVarint(&out, n.id);
    wire::PutBytes(&out, n.peer);
    wire::PutBytes(&out, n.http);
  }
  wire::PutVarint(&out, r.shard_records.size());
  for (const MetaRecords::Shard& s : r.shard_records) {
    wire::PutVarint(&out, s.id);
    wire::PutVarint(&out, s.leader);
    wire::PutVarint(&out, s.replicas.size());
    for (uint32_t id : s.replicas) wire::PutVarint(&out, id);
  }
  return out;
}

Result<MetaRecords> DecodeMetaRecords(std::string_view bytes) {
  wire::Reader in(bytes, "meta records");
  auto small = [&](std::string_view field) -> Result<uint32_t> {
    CAIRN_ASSIGN_OR_RETURN(uint64_t v, in.Varint(field));
    if (v > UINT32_MAX) {
      return Status::InvalidArgument("meta records: " + std::string(field) + " " + std::to_string(v) +
                                     " out of range at byte " + std::to_string(in.offset()));
    }
    return static_cast<uint32_t>(v);
  };
  // A count can never exceed the bytes left (every item takes one at least).
  auto count = [&](std::string_view field) -> Result<uint64_t> {
    CAIRN_ASSIGN_OR_RETURN(uint64_t n, in.Varint(field));
    if (n > bytes.size() - in.offset()) {
      return Status::InvalidArgument("meta records: " + std::string(field) + " " + std::to_string(n) +
                                     " exceeds the bytes left at byte " + std::to_string(in.offset()));
    }
    return n;
  };
  CAIRN_ASSIGN_OR_RETURN(uint8_t version, in.U8("version"));
  if (version != 1) return Status::InvalidArgument("meta records: unsupported version " + std::to_string(version));
  MetaRecords r;
  CAIRN_ASSIGN_OR_RETURN(r.shards, small("shards"));
  CAIRN_ASSIGN_OR_RETURN(r.partitions, small("partitions"));
  CAIRN_ASSIGN_OR_RETURN(r.replication, small("replication"));
  CAIRN_ASSIGN_OR_RETURN(uint64_t nodes, count("node count"));
  for (uint64_t i = 0; i < nodes; ++i) {
    CAIRN_ASSIGN_OR_RETURN(uint32_t id, small("node id"));
    CAIRN_ASSIGN_OR_RETURN(std::string_view peer, in.Bytes("node peer"));
    CAIRN_ASSIGN_OR_RETURN(std::string_view http, in.Bytes("node http"));
    r.nodes.push_back(Address(id, std::string(peer), std::string(http)));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t shards, count("shard count"));
  for (uint64_t i = 0; i < shards; ++i) {
    MetaRecords::Shard s;
    CAIRN_ASSIGN_OR_RETURN(s.id, small("shard id"));
    CAIRN_ASSIGN_OR_RETURN(s.leader, small("shard leader"));
    CAIRN_ASSIGN_OR_RETURN(uint64_t n, count("replica count"));
    for (uint64_t k = 0; k < n; ++k) {
      CAIRN_ASSIGN_OR_RETURN(uint32_t id, small("replica"));
      s.replicas.push_back(id);
    }
    r.shard_records.push_back(std::move(s));
  }
  CAIRN_RETURN_IF_ERROR(in.Done());
  return r;
}

ShardMapCache::ShardMapCache(uint32_t self, ShardMap config_map)
    : self_(self), config_(std::move(config_map)), map_(std::make_shared<const ShardMap>(config_)) {}

std::shared_ptr<const ShardMap> ShardMapCache::map() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_;
}

uint64_t ShardMapCache::version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return version_;
}

bool ShardMapCache::from_meta() const { return version() != 0; }

ShardMap ShardMapCache::Merge(const ShardMap& config, const MetaRecords& r, std::vector<std::string>* differences) {
  auto note = [&](std::string line) {
    if (differences != nullptr) differences->push_back(std::move(line));
  };
  ShardMap m = config;
  if (r.shards != 0 && r.shards != config.shards()) {
    note("the meta group records " + std::to_string(r.shards) + " shards, the config " +
         std::to_string(config.shards()) + " (not followed: changing it needs data movement)");
  }
  if (r.partitions != 0 && r.partitions != config.partitions()) {
    note("the meta group records " + std::to_string(r.partitions) + " partitions, the config " +
         std::to_string(config.partitions()) + " (not followed: changing it needs data movement)");
  }
  if (r.replication != 0 && r.replication != config.replication()) {
    note("the meta group records replication " + std::to_string(r.replication) + ", the config " +
         std::to_string(config.replication()) + " (the recorded replica sets are followed)");
  }
  if (!r.nodes.empty()) {
    std::vector<NodeAddress> nodes;
    for (const NodeAddress& n : r.nodes) {
      const NodeAddress* known = config.node(n.id);
      nodes.push_back(known != nullptr ? *known : n);  // how THIS node reaches it, if its config says
      if (known == nullptr) note("node " + std::to_string(n.id) + " is in the meta group's records, not in the config");
    }
    for (const NodeAddress& n : config.nodes()) {
      bool recorded = std::any_of(r.nodes.begin(), r.nodes.end(), [&](const NodeAddress& x) { return x.id == n.id; });
      if (!recorded) note("node " + std::to_string(n.id) + " is in the config, not in the meta group's records");
    }
    m.SetNodes(std::move(nodes));
  }
  for (const MetaRecords::Shard& s : r.shard_records) {
    if (s.id == 0 || s.id > config.shards()) {
      note("the meta group records shard " + std::to_string(s.id) + ", which the config does not have (ignored)");
      continue;
    }
    std::vector<uint32_t> was = config.ReplicasOf(s.id);
    if (!s.replicas.empty()) {
      std::vector<uint32_t> sorted_was = was;
      std::sort(sorted_was.begin(), sorted_was.end());
      std::vector<uint32_t> now = was;  // the same set keeps the config's placement order
      if (sorted_was != s.replicas) {
        // Another set: the leader hint first, then ascending.
        now = s.replicas;
        if (auto it = std::find(now.begin(), now.end(), s.leader); it != now.end()) std::rotate(now.begin(), it, it + 1);
        note("shard " + std::to_string(s.id) + " replicas " + Ids(now) + " in the meta group, " + Ids(was) +
             " by the config");
      }
      m.SetReplicas(s.id, std::move(now));
    }
    if (s.leader != 0) {
      m.SetLeaderHint(s.id, s.leader);
      note("shard " + std::to_string(s.id) + " leader hint: node " + std::to_string(s.leader));
    }
  }
  return m;
}

bool ShardMapCache::Apply(const MetaRecords& records, uint64_t version) {
  std::vector<std::string> differences;
  ShardMap merged = Merge(config_, records, &differences);
  std::lock_guard<std::mutex> lock(mu_);
  if (version <= version_) return false;
  bool first = version_ == 0;
  version_ = version;
  if (!first && merged == *map_) return false;
  bool changed = !(merged == *map_);
  if (first) {
    for (const std::string& d : differences) {
      std::fprintf(stderr, "cairn node %u: warning: the meta group's shard map differs from the config; following "
                   "the meta group: %s\n", self_, d.c_str());
    }
  } else {
    std::fprintf(stderr, "cairn node %u: the shard map changed in the meta group (applied index %llu)\n", self_,
                 static_cast<unsigned long long>(version));
    for (const std::string& d : differences) std::fprintf(stderr, "cairn node %u:   %s\n", self_, d.c_str());
  }
  map_ = std::make_shared<const ShardMap>(std::move(merged));
  return changed;
}

}  // namespace cairn::cluster
