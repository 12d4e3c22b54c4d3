// Shard map and node configuration of a Cairn cluster (docs/cluster.md,
// the cluster contract).
//
// Groups: group 0 is the meta group; groups 1..S are the shards (shard id s
// is Raft group s). Partition 0 (the system partition: attributes, idents)
// lives in the meta group and is copied to every shard; user partition p in
// 1..partitions-1 belongs to shard ShardOfPartition(p, S) = 1 + (p-1) % S.
// Shard s is replicated on nodes[(s - 1 + k) % n] for k in 0..replication-1
// (nodes sorted by id); the meta group's voters are the first min(3, n)
// nodes. That is the map a cluster starts with (computed from the config,
// the same on every node); bootstrap records it in the meta group, and from
// then on every node follows the meta group's copy (shard_map_cache.h).
// Nothing re-balances.
//
// ClusterConfig is `cairn serve --config node.json` parsed and validated
// (nlohmann stays in shard_map.cc). Errors name the key at fault.
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/ids.h"
#include "cairn/status.h"

namespace cairn::cluster {

inline constexpr uint64_t kMetaGroup = 0;

// The shard (Raft group) of partition `partition` among `shards` shards; 0
// (the meta group) for the system partition. REQUIRES: shards >= 1.
uint32_t ShardOfPartition(uint32_t partition, uint32_t shards);

// The nodes holding shard `shard` (1..), in placement order (the first is
// the preferred leader): nodes[(shard - 1 + k) % n], k < min(replication, n).
// `node_ids` must be sorted ascending.
std::vector<uint32_t> ShardReplicas(uint32_t shard, const std::vector<uint32_t>& node_ids, uint32_t replication);

// The meta group's voters: the first min(3, n) of the sorted `node_ids`.
std::vector<uint32_t> MetaVoters(const std::vector<uint32_t>& node_ids);

// "HOST:PORT" or "[v6]:PORT" split; InvalidArgument naming `what` if it
// does not parse (missing port, port out of 1..65535, empty host). Port 0 is
// allowed only when `allow_zero_port`.
Status SplitHostPort(std::string_view text, std::string_view what, std::string* host, uint16_t* port,
                     bool allow_zero_port = false);

struct NodeAddress {
  uint32_t id = 0;
  std::string peer;  // "HOST:PORT" (as written in the config)
  std::string http;
  std::string peer_host;
  uint16_t peer_port = 0;
  std::string http_host;
  uint16_t http_port = 0;
  friend bool operator==(const NodeAddress&, const NodeAddress&) = default;
};

// The cluster's layout: which groups exist and which nodes hold them.
class ShardMap {
 public:
  ShardMap() = default;
  // REQUIRES: shards >= 1, replication >= 1, partitions > shards, nodes
  // non-empty with unique non-zero ids (ClusterConfig validates all that).
  ShardMap(uint32_t shards, uint32_t replication, uint32_t partitions, std::vector<NodeAddress> nodes);

  uint32_t shards() const { return shards_; }
  uint32_t replication() const { return replication_; }
  uint32_t partitions() const { return partitions_; }
  // Sorted by id.
  const std::vector<NodeAddress>& nodes() const { return nodes_; }
  std::vector<uint32_t> node_ids() const;
  const NodeAddress* node(uint32_t id) const;

  uint32_t ShardOf(uint32_t partition) const { return ShardOfPartition(partition, shards_); }
  // The group holding an entity: 0 for the system partition (and tx
  // entities, whose partition reads as 0), else its partition's shard.
  uint64_t GroupOfEntity(EntityId e) const { return ShardOf(e.partition()); }
  // The partitions shard `shard` owns (1..S); empty for 0 or out of range.
  std::vector<uint32_t> PartitionsOf(uint32_t shard) const;
  bool Owns(uint32_t shard, uint32_t partition) const {
    return partition != 0 && partition < partitions_ && ShardOf(partition) == shard;
  }

  // Every group 0..S with its voters.
  std::map<uint64_t, std::vector<uint32_t>> Groups() const;
  // Voters of one group; empty if it does not exist.
  std::vector<uint32_t> ReplicasOf(uint64_t group) const;
  // The groups with a replica on `node_id`.
  std::vector<uint64_t> GroupsOn(uint32_t node_id) const;
  // The node the meta group names as a shard's preferred leader (0: none).
  uint32_t LeaderHint(uint64_t group) const;

  // Edits for a map followed from the meta group (shard_map_cache.h); the
  // shard and partition counts never change.
  // REQUIRES: `nodes` non-empty with unique non-zero ids.
  void SetNodes(std::vector<NodeAddress> nodes);
  // REQUIRES: `group` exists (0..shards), `replicas` non-empty.
  void SetReplicas(uint64_t group, std::vector<uint32_t> replicas);
  void SetLeaderHint(uint64_t group, uint32_t node);

  friend bool operator==(const ShardMap&, const ShardMap&) = default;

 private:
  uint32_t shards_ = 0;
  uint32_t replication_ = 0;
  uint32_t partitions_ = 0;
  std::vector<NodeAddress> nodes_;
  std::map<uint64_t, std::vector<uint32_t>> groups_;
  std::map<uint64_t, uint32_t> leader_hints_;
};

// `cairn serve --config node.json` (format: docs/cluster.md).
struct ClusterConfig {
  uint32_t node_id = 0;
  std::string dir;
  std::string http;  // where this node's HTTP API listens
  std::string http_host;
  uint16_t http_port = 0;
  std::string peer;  // where this node's peer transport listens
  std::string peer_host;
  uint16_t peer_port = 0;
  std::string cluster_secret;       // inline, or read from cluster_secret_file
  std::string cluster_secret_file;  // empty if given inline
  uint32_t shards = 0;
  uint32_t replication = 3;
  uint32_t partitions = 256;
  std::vector<NodeAddress> nodes;  // as this node reaches them, sorted by id
  int tick_ms = 10;
  bool sync = true;
  uint64_t snapshot_entries = 100000;
  std::string log_level = "info";
  // Simulated clock skew (tests): this node's wall clock reads the system
  // clock plus this many ms. |offset| <= 1 day.
  int64_t clock_offset_ms = 0;

  // Parses and validates config JSON. `where` (a file name) prefixes errors.
  // InvalidArgument names the key: unknown keys, missing required keys,
  // wrong types, bad addresses, node_id not in nodes, duplicate ids,
  // replication > nodes, partitions <= shards. Reads cluster_secret_file
  // (IOError if unreadable, InvalidArgument if empty).
  static Result<ClusterConfig> Parse(std::string_view json_text, std::string_view where = "config");
  // Reads and parses a file.
  static Result<ClusterConfig> Load(const std::string& path);

  ShardMap map() const { return ShardMap(shards, replication, partitions, nodes); }
};

}  // namespace cairn::cluster
