// ReplicaSource: the current database value of a shard replica, as the
// datalog::IndexSource the transactor (and later queries) read.
//
// It reads one immutable state (memory index + attribute table + schema), so
// a value handed out stays valid while the replica applies more entries.
// LoadSchemaFromIndex rebuilds the schema from the attribute entities of a
// current index (used when a replica reopens its DatomStore).
//
// Thread-safety: immutable; safe to read concurrently.
#pragma once

#include <memory>

#include "core/schema.h"
#include "datalog/index_source.h"
#include "storage/datom_store.h"
#include "storage/memory_index.h"

namespace cairn::shard {

class ReplicaSource final : public datalog::IndexSource {
 public:
  ReplicaSource(std::shared_ptr<const storage::CurrentIndex> index, std::shared_ptr<const storage::AttrTable> attrs,
                std::shared_ptr<const Schema> schema)
      : index_(std::move(index)), attrs_(std::move(attrs)), schema_(std::move(schema)) {}

  const Schema& schema() const override { return *schema_; }
  bool is_history() const override { return false; }
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override;

 private:
  // False if nothing can match (unknown attribute, added=false).
  bool ToBounds(const datalog::DatomPattern& p, storage::IndexBounds* b) const;

  std::shared_ptr<const storage::CurrentIndex> index_;
  std::shared_ptr<const storage::AttrTable> attrs_;
  std::shared_ptr<const Schema> schema_;
};

std::shared_ptr<const Schema> LoadSchemaFromIndex(const storage::CurrentIndex& index,
                                                  const storage::AttrTable& attrs);

}  // namespace cairn::shard
