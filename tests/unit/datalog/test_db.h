// TestDb: a tiny, test-only transaction loader over MemoryIndex. It is NOT
// the transactor (src/shard): it understands map forms with tempids (strings
// or negative ints), nested maps and card-many vectors, [:db/add e a v],
// [:db/retract e a v], [:db/retractEntity e], lookup refs, :db.unique/identity
// upserts and cardinality-one replacement — enough to set up query tests.
//
// Entity ids are small integers (1, 2, ...) so expected rows stay readable;
// transaction n (1-based) has TxTime{n}.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/status.h"
#include "core/edn.h"
#include "core/schema.h"
#include "datalog/memory_index.h"

namespace cairn::datalog::testing {

class TestDb {
 public:
  TestDb() : schema_(std::make_shared<Schema>()) {}

  // DataScript-style schema map {:attr {:db/cardinality :db.cardinality/many ...}}.
  Status InstallSchema(const Edn& schema_map);
  Status Transact(const Edn& tx_data);
  Status Transact(std::string_view tx_edn);

  std::shared_ptr<MemoryIndex> View(MemoryIndex::View view = MemoryIndex::View::kCurrent, TxTime t = TxTime{}) const;
  const std::map<std::string, EntityId>& tempids() const { return tempids_; }
  uint64_t last_tx() const { return tx_; }
  const std::vector<Datom>& log() const { return log_; }
  std::shared_ptr<const Schema> schema() const { return schema_; }

 private:
  Status InstallAttr(Keyword ident, const Edn& props);
  Result<EntityId> ResolveEntity(const Edn& e, bool allow_new);
  Result<EntityId> AddMap(const Edn& m);
  Status AddValue(EntityId e, Keyword a, const Edn& v);
  void Assert(EntityId e, Keyword a, Value v);
  void Retract(EntityId e, Keyword a, const Value& v);
  std::vector<Value>& Current(EntityId e, Keyword a) { return current_[{e.raw, a}]; }

  std::shared_ptr<Schema> schema_;
  std::vector<Datom> log_;
  std::map<std::pair<uint64_t, Keyword>, std::vector<Value>> current_;
  std::map<std::string, EntityId> tempids_;
  uint64_t next_entity_ = 1;
  uint64_t tx_ = 0;
};

}  // namespace cairn::datalog::testing
