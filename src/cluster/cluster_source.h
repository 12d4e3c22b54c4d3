// ClusterSource: one database value (IndexSource) over a whole cluster: the
// meta group's view plus one view per shard (docs/cluster.md, "Reads across
// shards").
//
// Every view it merges must be of the same kind (all current, all as-of the
// same T, all since T, or all history): the caller builds them (local replica
// views, or RemoteSource for shards held elsewhere). ClusterSource itself does
// no I/O beyond calling them.
//
// Where datoms come from. The id space is split so that every datom is read
// from exactly one place:
//  - system-partition entities (partition 0: attributes, idents) and
//    transaction entities come from the meta group; the shards' copies of
//    the system partition (whose attribute entity ids may differ) are never
//    read, and the meta group's own user-partition entities (if any) are not
//    shown;
//  - entities of user partition p come from shard shard_of(p) only;
//  - transaction entities (EntityId::ForTx) are read from the meta group and
//    from every shard (each shard writes its own transactions' entities);
//    identical datoms from two places are shown once.
// A known wrinkle: a shard's copy of a schema transaction is a transaction of
// its own, so its entity (with :db/txInstant) is visible too.
//
// Ident ids. A shard's data refers to idents (enum entities, attributes) by
// the shard's own ids, queries by the meta group's. Where the two differ
// (the shard received partition-0 transactions in another order), values
// read from a shard that are refs to system-partition entities are
// translated to the meta group's ids, and a bound system-ref value is
// translated to the shard's id before the shard is asked, both by :db/ident
// (the map is built on first need, one :db/ident scan per source). Refs to
// built-in attributes never need it (their ids are fixed).
//
// Fan-out: e bound -> the one source holding e (all sources for a
// transaction entity); otherwise meta and every shard.
// Order (the IndexSource contract): with e bound, the holder's EAVT order;
// with the attribute bound, datoms of all sources are k-way merged on
// (e, v, tx, added) — (v, e, tx, added) when the value is bound (AVET/VAET).
// The merge pulls each source in windows (first 256 datoms, then 8x more on
// every refill, restarting the source's scan and skipping what was taken), so
// a caller that stops early reads little and memory stays bounded by what was
// actually needed. With neither e nor the attribute bound (a whole-database
// scan), the matches are collected and sorted by (attribute name, e, v, tx,
// added): attribute ids are local to each store, so no common order exists to
// merge on.
//
// Errors: a source's error is returned with the source named ("shard 3: ...").
// Thread-safety: immutable; concurrent const calls are safe if the sources
// allow them (the IndexSource contract).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cluster/shard_map.h"
#include "datalog/index_source.h"

namespace cairn::cluster {

// A source that can start a scan after its first `skip` datoms without
// producing them (RemoteSource asks the serving node to skip), and wants to
// know how many datoms the caller expects to take (`limit_hint`, 0 = all) so
// it can size its requests. ClusterSource's merge uses it when a source
// offers it; otherwise it restarts Scan and drops the first `skip` datoms.
// `range` (may be null) restricts values as ScanRange does.
class ResumableSource {
 public:
  virtual ~ResumableSource() = default;
  virtual Status ScanFrom(const datalog::DatomPattern& p, const datalog::ValueRange* range, uint64_t skip,
                          uint64_t limit_hint, const std::function<bool(const Datom&)>& fn) const = 0;
};

class ClusterSource final : public datalog::IndexSource {
 public:
  // Maps a user partition (1..partitions-1) to its shard (1..shards).
  using ShardOfFn = std::function<uint32_t(uint32_t partition)>;

  // `meta`: the meta group's view; `shards[s - 1]`: shard s's view (s in
  // 1..shards.size()). `partitions`: the cluster's partition count.
  // REQUIRES: every source non-null and of the same view kind as `meta`
  // (is_history() equal); shard_of returns values in 1..shards.size().
  ClusterSource(std::shared_ptr<const datalog::IndexSource> meta,
                std::vector<std::shared_ptr<const datalog::IndexSource>> shards, uint32_t partitions,
                ShardOfFn shard_of);
  // The same with the cluster's shard map (its partitions and ShardOf).
  ClusterSource(std::shared_ptr<const datalog::IndexSource> meta,
                std::vector<std::shared_ptr<const datalog::IndexSource>> shards, const ShardMap& map);
  // Views to build the ident maps from (see "Ident ids" above), if not this
  // view's sources: a since(T) view hides :db/ident datoms asserted before
  // T, so give since views the current views here. Call before any read.
  // REQUIRES: meta non-null, one view per shard.
  void SetIdentViews(std::shared_ptr<const datalog::IndexSource> meta,
                     std::vector<std::shared_ptr<const datalog::IndexSource>> shards);
  ClusterSource(const ClusterSource&) = delete;
  ClusterSource& operator=(const ClusterSource&) = delete;

  // The meta group's schema (the authoritative one).
  const Schema& schema() const override { return meta_->schema(); }
  bool is_history() const override { return meta_->is_history(); }
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  // The sources' ScanRange merged like Scan. REQUIRES of the sources: a
  // range comes in their Scan order (StoreSource, the default ScanRange and
  // RemoteSource do); a source that breaks it makes this an Internal error
  // naming it, never a wrong merge.
  Status ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                   const std::function<bool(const Datom&)>& fn) const override;
  // The sum over the sources Scan(p) would read.
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override;
  uint64_t EstimateRange(const datalog::DatomPattern& p, const datalog::ValueRange& r) const override;
  // Distinct entities: the sum over the shards (entities never span shards);
  // distinct values: the largest shard's figure (values may repeat across
  // shards); 0 when a shard does not know.
  uint64_t EstimateDistinct(Keyword a, int position) const override;
  // :db/ident -> the meta group. Other attributes: the shard of the value's
  // identity partition first (where an upsert would have placed the entity),
  // then the other shards (an entity may have been given the value later).
  std::optional<EntityId> Lookup(Keyword attr, const Value& v) const override;

  // The shard (1..) holding user partition `partition`; 0 for the system
  // partition; -1 if out of range.
  int ShardOfPartition(uint32_t partition) const;
  uint32_t shard_count() const { return static_cast<uint32_t>(shards_.size()); }
  uint32_t partitions() const { return partitions_; }

 private:
  // A source to read and what it may contribute.
  struct Target {
    const datalog::IndexSource* source;
    int shard;  // 0 = meta
    datalog::DatomPattern pattern;  // p, with a system-ref value in the source's ids
  };
  // A shard's system-partition ids that differ from the meta group's.
  struct IdentMap {
    Status status;                                // of building it
    std::unordered_map<uint64_t, uint64_t> to_meta;    // shard id -> meta id
    std::unordered_map<uint64_t, uint64_t> from_meta;  // meta id -> shard id (0: the shard lacks it)
  };
  const IdentMap& Idents(int shard) const;
  // Rewrites d.v to the meta group's id if it is a shard's system ref; true
  // if it changed.
  bool ToMeta(int shard, Datom* d) const;
  // False if `p` cannot match on `shard` (its system-ref value has no
  // counterpart there); else `out` is p in the shard's ids.
  bool ForShard(int shard, const datalog::DatomPattern& p, datalog::DatomPattern* out) const;
  std::vector<Target> Targets(const datalog::DatomPattern& p) const;
  // Scan (range null) or ScanRange over the targets.
  Status ScanImpl(const datalog::DatomPattern& p, const datalog::ValueRange* range,
                  const std::function<bool(const Datom&)>& fn) const;
  // True if a datom of entity e read from `shard` (0 = meta) belongs there.
  static bool Keeps(int shard, EntityId e);

  std::shared_ptr<const datalog::IndexSource> meta_;
  std::vector<std::shared_ptr<const datalog::IndexSource>> shards_;
  uint32_t partitions_;
  ShardOfFn shard_of_;
  // Lazily built, one per shard (index s - 1), and the meta group's idents.
  std::shared_ptr<const datalog::IndexSource> ident_meta_;
  std::vector<std::shared_ptr<const datalog::IndexSource>> ident_shards_;
  mutable std::unique_ptr<std::once_flag[]> ident_once_;
  mutable std::vector<IdentMap> idents_;
  mutable std::once_flag meta_idents_once_;
  mutable Status meta_idents_status_;
  mutable std::unordered_map<Keyword, uint64_t> meta_idents_;
};

}  // namespace cairn::cluster
