// Transaction router: which group a transaction goes to, found by running the
// real transactor as a dry run over the cluster view (docs/cluster.md,
// "Routing transactions").
//
// RouteTransaction(tx_edn, cluster_view, shards, partitions, shard_of):
//  1. runs shard::Transactor::Prepare over `cluster_view` (a ClusterSource,
//     ideally linearizable) with an allocator that hands out placeholder ids
//     in the partition the transactor asks for; Prepare writes nothing, so
//     the dry run changes nothing anywhere. Placement is therefore exactly
//     the transactor's (upserts, lookup refs, hints, the transaction's
//     anchor entity, tempid hashing), with every shard's data visible;
//  2. collects the partition of every datom's entity (the transaction
//     entity and its metadata are ignored);
//  3. system-partition entities only (attributes, idents) -> kSchema (the
//     meta group, then every shard); user entities on exactly one shard ->
//     kData for that shard; nothing but the transaction entity (every
//     assertion redundant) -> the shard of the first entity the forms name,
//     else shard 1;
//  4. for kData, rewrites lookup refs in VALUE positions of ref attributes
//     ([:db/add e :ref [:u/email "x"]], map values, cas old/new values) that
//     resolve to an entity on another shard into that entity's id, so the
//     target shard's transactor does not need the other shard's data. Ident
//     keywords (and lookup refs resolving to system entities) stay as
//     written: every shard holds the system partition and resolves them to
//     its own ids, which ClusterSource translates to the meta group's.
//     The rewrite re-writes the parsed EDN with the core EDN writer;
//     everything else stays as it was (ReadEdn(rewritten) equals the input
//     except for those nodes).
//
// Errors (nothing is sent anywhere):
//  - the dry run's error, as the transactor reports it (InvalidArgument with
//    the EDN line:column, NotFound for a lookup ref naming no entity,
//    Conflict for a failed :db/cas...). The view may be older than the
//    shard's state when it applies: the shard's transactor decides again;
//  - InvalidArgument "cross_shard: the transaction's entities live on shards
//    1, 2 (...)" when they span shards (IsCrossShard() tells it apart; the
//    HTTP layer answers 400 cross_shard);
//  - InvalidArgument when schema (system-partition) datoms are mixed with
//    ordinary data, naming one entity of each.
//
// Thread-safety: a pure function of its arguments (reads the view only).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "cairn/status.h"
#include "cluster/shard_map.h"
#include "datalog/index_source.h"

namespace cairn::cluster {

struct RoutedTransaction {
  enum class Kind : uint8_t { kSchema, kData };
  Kind kind = Kind::kData;
  uint32_t shard = 0;   // kData: the shard (1..S); kSchema: 0 (the meta group)
  std::string tx_edn;   // what to send: the input, or its rewrite (rewritten)
  bool rewritten = false;
  // The dry run wrote nothing but the transaction entity (every assertion
  // already true, e.g. a retry of an applied request): `shard` was then
  // picked from current state; a caller that must send a retry where the
  // first attempt went should place it by the request's text instead.
  bool redundant = false;
};

// Maps a user partition to its shard (1..shards).
using PartitionToShard = std::function<uint32_t(uint32_t partition)>;

Result<RoutedTransaction> RouteTransaction(std::string_view tx_edn, const datalog::IndexSource& cluster_view,
                                           uint32_t shards, uint32_t partitions, const PartitionToShard& shard_of);
// The same with the cluster's shard map.
Result<RoutedTransaction> RouteTransaction(std::string_view tx_edn, const datalog::IndexSource& cluster_view,
                                           const ShardMap& map);

// True for the router's cross-shard refusal.
bool IsCrossShard(const Status& s);

}  // namespace cairn::cluster
