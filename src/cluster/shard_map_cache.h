// ShardMapCache: the shard map a node routes with, followed from the meta
// group (ARCHITECTURE §5: "every node caches it and follows its changes";
// docs/cluster.md, "The shard map cache").
//
// Bootstrap writes the membership and the shard map into the meta group as
// datoms (`:cairn.node/{id,peer,http}`, `:cairn.shard/{id,replicas,leader,
// partitions}`, `:cairn.cluster/{shards,partitions,replication}`). A node
// starts with the map computed from its config (ShardMap) and, once it has
// read the meta group's records, uses theirs:
//   - the node list: the meta group's node ids; addresses from this node's
//     config where it lists the node (each config says how THIS node reaches
//     its peers, e.g. through a test proxy), else the recorded ones;
//   - each shard's replica set and leader hint (the preferred node to send
//     its writes to first);
// and keeps from the config what cannot change without moving data: the
// shard, partition and replication counts and the meta group's voters (a
// record that disagrees is reported, not followed). Nothing here moves data
// or creates replicas: a node hosts the groups it was started with.
//
// MetaRecords are what the meta group holds; ReadMetaRecords reads them from
// a meta view; Encode/DecodeMetaRecords carry them over the peer wire (a
// node without a meta replica asks a meta member). Apply installs records
// read at a meta applied index (the cache's version) if newer.
//
// Thread-safety: ShardMapCache is safe to use from any thread; map() hands
// out an immutable snapshot. The free functions are pure.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "cluster/shard_map.h"
#include "datalog/index_source.h"

namespace cairn::cluster {

struct MetaRecords {
  // :cairn.cluster/*; 0 = not recorded.
  uint32_t shards = 0;
  uint32_t partitions = 0;
  uint32_t replication = 0;
  // :cairn.node/* (peer/http as recorded; host/port split when they parse).
  std::vector<NodeAddress> nodes;
  struct Shard {
    uint32_t id = 0;
    std::vector<uint32_t> replicas;  // ascending (a cardinality-many attribute)
    uint32_t leader = 0;             // :cairn.shard/leader, 0 = none
    friend bool operator==(const Shard&, const Shard&) = default;
  };
  std::vector<Shard> shard_records;  // by id
  friend bool operator==(const MetaRecords&, const MetaRecords&) = default;
};

// The records in a meta group view. NotFound if the meta group has no
// shard records yet (bootstrap has not run); errors of the view's scans.
Result<MetaRecords> ReadMetaRecords(const datalog::IndexSource& meta);

std::string EncodeMetaRecords(const MetaRecords& r);
// InvalidArgument naming the field and byte offset for bad bytes.
Result<MetaRecords> DecodeMetaRecords(std::string_view bytes);

class ShardMapCache {
 public:
  // `self`: this node's id (for log lines). `config_map`: the map computed
  // from the config, used until the meta group's records are read.
  ShardMapCache(uint32_t self, ShardMap config_map);

  std::shared_ptr<const ShardMap> map() const;
  const ShardMap& config_map() const { return config_; }
  // The meta group's applied index the map was read at; 0 while the map is
  // the config's.
  uint64_t version() const;
  bool from_meta() const;

  // Installs `records`, read from the meta group at applied index
  // `version`, if `version` is newer than the cached one. Returns true if
  // the map changed. The first install logs (stderr) a warning for every
  // way the meta group's map differs from the config's (the meta copy
  // wins); every later change is logged as well.
  bool Apply(const MetaRecords& records, uint64_t version);

  // The map `records` describe over `config` (pure; see the header
  // comment). `differences`, if given, receives one line per difference
  // from `config`, including those not followed.
  static ShardMap Merge(const ShardMap& config, const MetaRecords& records, std::vector<std::string>* differences);

 private:
  const uint32_t self_;
  const ShardMap config_;
  mutable std::mutex mu_;
  std::shared_ptr<const ShardMap> map_;
  uint64_t version_ = 0;
};

}  // namespace cairn::cluster
