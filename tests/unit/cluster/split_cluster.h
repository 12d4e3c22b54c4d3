// SplitCluster (tests only): one reference store holding all data, and the
// same data split the way a cluster holds it — a meta store (system
// partition and its transactions) and one store per shard (the entities of
// its partitions) — all real DatomStore files with their memory indexes.
//
// Transactions run through the real transactor against the reference store;
// each committed transaction's datoms are then written, with the same t, to
// the stores that own them:
//  - system-partition entities -> meta, and a copy to every shard whose
//    entity ids are deliberately shifted (so reading a shard's copy would
//    show up as wrong rows), and the shards' refs to them shifted alike (as
//    a shard that received its schema in another order holds them);
//  - user entities -> the shard of their partition;
//  - the transaction entity -> every store that received any datom of it.
// So a query over ClusterSource(meta, shards) must equal the same query over
// the reference, in every view (current, as-of, since, history). Every store
// is read through shard::StoreSource, the view a shard Replica hands out.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "shard/store_source.h"
#include "cluster/cluster_source.h"
#include "cluster/shard_map.h"
#include "core/check.h"
#include "core/edn.h"
#include "shard/seq_allocator.h"
#include "shard/transactor.h"
#include "storage/datom_store.h"

namespace cairn::cluster::testing {

// The contract's partition -> shard function (shard_map.h).
inline uint32_t ContractShardOf(uint32_t partition, uint32_t shards) { return ShardOfPartition(partition, shards); }

// One real store: DatomStore file + current and history indexes + schema.
class TestStore {
 public:
  static std::unique_ptr<TestStore> Open(const std::string& path, uint32_t partitions) {
    storage::StoreOptions o;
    o.sync = false;
    o.partitions = partitions;
    auto store = storage::DatomStore::Open(path, o);
    CAIRN_CHECK_MSG(store.ok(), store.status().ToString().c_str());
    auto s = std::unique_ptr<TestStore>(new TestStore());
    s->store_ = std::move(store).value();
    s->current_ = std::make_shared<storage::CurrentIndex>();
    s->history_ = std::make_shared<storage::HistoryIndex>();
    s->schema_ = shard::LoadSchemaFromIndex(*s->current_, *s->store_->attrs());
    return s;
  }

  Status Commit(TxTime t, const std::vector<Datom>& datoms, const std::map<uint32_t, uint64_t>& next_seqs = {}) {
    storage::CommitBatch batch;
    batch.t = t;
    batch.datoms = datoms;
    batch.next_seqs = next_seqs;
    CAIRN_ASSIGN_OR_RETURN(std::vector<storage::IndexEntry> entries, store_->Commit(batch));
    // No view is held while loading, so the indexes are updated in place.
    current_->Apply(entries);
    history_->Apply(entries);
    schema_ = shard::LoadSchemaFromIndex(*current_, *store_->attrs());
    return Status::OK();
  }

  // kind: current / as-of t / since t / history.
  std::shared_ptr<const datalog::IndexSource> View(shard::StoreSource::Kind kind, TxTime t = TxTime{}) const {
    shard::Snapshot snap{store_->last_t(), current_, store_->attrs(), schema_};
    return std::make_shared<shard::StoreSource>(snap, kind, t, shard::HistoryState{history_, store_->attrs()});
  }

  storage::DatomStore& store() { return *store_; }
  TxTime last_t() const { return store_->last_t(); }

 private:
  TestStore() = default;
  std::unique_ptr<storage::DatomStore> store_;
  std::shared_ptr<storage::CurrentIndex> current_;
  std::shared_ptr<storage::HistoryIndex> history_;
  std::shared_ptr<const Schema> schema_;
};

class SplitCluster {
 public:
  // `shift_system_copies`: give the shards' copies of the system partition
  // other ids than the meta group's (true) or the same ids (false, as a
  // deterministic schema replay produces).
  SplitCluster(const std::string& name, uint32_t shards, uint32_t partitions, bool shift_system_copies = true)
      : shards_(shards), partitions_(partitions), shift_(shift_system_copies) {
    dir_ = (std::filesystem::temp_directory_path() / ("cairn_split_" + std::to_string(::getpid())) / name).string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    reference_ = TestStore::Open(dir_ + "/all.db", partitions);
    meta_ = TestStore::Open(dir_ + "/meta.db", partitions);
    for (uint32_t s = 1; s <= shards; ++s) shard_stores_.push_back(TestStore::Open(dir_ + "/shard" + std::to_string(s) + ".db", partitions));
  }
  ~SplitCluster() {
    reference_.reset();
    meta_.reset();
    shard_stores_.clear();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::remove(std::filesystem::path(dir_).parent_path(), ec);  // only if empty
  }

  // Runs `tx_edn` on the reference and distributes its datoms. Returns the
  // transactor's result (tempids) or its error (then nothing was written).
  Result<shard::TxResult> Transact(std::string_view tx_edn) {
    CAIRN_ASSIGN_OR_RETURN(Edn tx, ReadEdn(tx_edn));
    TxTime t{next_t_};
    shard::SeqAllocator ids(reference_->store().next_seqs(), partitions_);
    shard::TransactorOptions topts;
    topts.partitions = partitions_;
    topts.tx_instant_ms = 1700000000000 + static_cast<int64_t>(next_t_);
    shard::Transactor transactor(topts);
    auto view = reference_->View(shard::StoreSource::Kind::kCurrent);
    CAIRN_ASSIGN_OR_RETURN(shard::TxResult r, transactor.Prepare(tx, *view, t, ids));
    view.reset();
    CAIRN_RETURN_IF_ERROR(reference_->Commit(t, r.datoms, ids.advanced()));
    ++next_t_;
    ts_.push_back(t);

    std::vector<Datom> to_meta;
    std::vector<std::vector<Datom>> to_shard(shards_);
    std::vector<Datom> tx_datoms;
    for (const Datom& d : r.datoms) {
      if (d.e.is_tx()) {
        tx_datoms.push_back(d);
      } else if (d.e.partition() == EntityId::kSystemPartition) {
        to_meta.push_back(d);
        for (uint32_t s = 1; s <= shards_; ++s) {
          Datom copy = d;
          if (shift_ && copy.e.seq() >= Schema::kFirstUserSeq) copy.e = EntityId::Make(0, copy.e.seq() + 5000 * s);
          to_shard[s - 1].push_back(copy);
        }
      } else {
        uint32_t s = ContractShardOf(d.e.partition(), shards_);
        Datom copy = d;
        // The shard's data names idents by the shard's own ids.
        if (shift_ && copy.v.type() == ValueType::kRef && !copy.v.as_ref().is_tx() &&
            copy.v.as_ref().partition() == 0 && copy.v.as_ref().seq() >= Schema::kFirstUserSeq)
          copy.v = Value::Ref(EntityId::Make(0, copy.v.as_ref().seq() + 5000 * s));
        to_shard[s - 1].push_back(copy);
      }
    }
    bool schema_tx = !to_meta.empty();
    // A transaction that changed nothing else still writes its entity
    // somewhere (the router sends it to shard 1).
    bool any = schema_tx;
    for (const auto& v : to_shard) any = any || !v.empty();
    if (!any) to_shard[0] = tx_datoms, tx_datoms.clear();
    if (schema_tx) {
      for (const Datom& d : tx_datoms) to_meta.push_back(d);
    }
    if (!to_meta.empty()) CAIRN_RETURN_IF_ERROR(meta_->Commit(t, to_meta));
    for (uint32_t s = 1; s <= shards_; ++s) {
      std::vector<Datom>& v = to_shard[s - 1];
      if (v.empty()) continue;
      if (!schema_tx) v.insert(v.begin(), tx_datoms.begin(), tx_datoms.end());
      CAIRN_RETURN_IF_ERROR(shard_stores_[s - 1]->Commit(t, v));
    }
    return r;
  }

  // The cluster's view of `kind` (same kind on every store).
  std::shared_ptr<ClusterSource> ClusterView(shard::StoreSource::Kind kind, TxTime t = TxTime{}) const {
    std::vector<std::shared_ptr<const datalog::IndexSource>> shards;
    for (const auto& s : shard_stores_) shards.push_back(s->View(kind, t));
    uint32_t n = shards_;
    auto cluster = std::make_shared<ClusterSource>(meta_->View(kind, t), std::move(shards), partitions_,
                                                   [n](uint32_t p) { return ContractShardOf(p, n); });
    if (kind == shard::StoreSource::Kind::kSince) {
      std::vector<std::shared_ptr<const datalog::IndexSource>> current;
      for (const auto& s : shard_stores_) current.push_back(s->View(shard::StoreSource::Kind::kCurrent));
      cluster->SetIdentViews(meta_->View(shard::StoreSource::Kind::kCurrent), std::move(current));
    }
    return cluster;
  }
  // One shard's own current view (what its transactor reads).
  std::shared_ptr<const datalog::IndexSource> ShardView(uint32_t s) const {
    return shard_stores_[s - 1]->View(shard::StoreSource::Kind::kCurrent);
  }
  std::shared_ptr<const datalog::IndexSource> ReferenceView(shard::StoreSource::Kind kind, TxTime t = TxTime{}) const {
    return reference_->View(kind, t);
  }

  TestStore& meta() { return *meta_; }
  TestStore& shard(uint32_t s) { return *shard_stores_[s - 1]; }
  uint32_t shards() const { return shards_; }
  uint32_t partitions() const { return partitions_; }
  // t of the n-th successful transaction (0-based).
  const std::vector<TxTime>& ts() const { return ts_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  uint32_t shards_;
  uint32_t partitions_;
  bool shift_;
  uint64_t next_t_ = 1000;
  std::vector<TxTime> ts_;
  std::unique_ptr<TestStore> reference_;
  std::unique_ptr<TestStore> meta_;
  std::vector<std::unique_ptr<TestStore>> shard_stores_;
};

}  // namespace cairn::cluster::testing
