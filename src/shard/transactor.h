// Transactor: expands transaction data into the datoms one transaction writes.
//
// Input: the EDN tx-data (a vector of list forms [:db/add e a v],
// [:db/retract e a v], [:db/cas e a old new], [:db/retractEntity e], and map
// forms {:db/id ... :attr v}), the database value it applies to (current view
// at the latest committed t), and the new transaction's time t.
// Output: the datoms to write (all with tx = t; retractions with added=false),
// tempid resolution, and schema changes. It resolves tempids, lookup refs,
// upserts on :db.unique/identity (unifying tempids), cardinality-one
// replacement, redundant-assertion elision, :db/cas, :db/retractEntity
// (cascading to components), composite tuples, and validates every value
// against the schema. The transaction entity EntityId::ForTx(t) gets
// :db/txInstant and any metadata asserted on the tempid "datomic.tx" / :db/current-tx.
//
// It never writes: the caller (embedded store or shard state machine)
// commits the result atomically. On any error nothing is produced, and the
// error names the form (EDN line:column), attribute and value at fault.
//
// Placement (ARCHITECTURE §2): a new entity with a :db.unique/identity value
// goes to partition StableHash(attr, value) % partitions; else to the
// partition hinted by :db/partition, else the partition of the transaction's
// first existing entity, else StableHash(tempid) % partitions.
//
// Thread-safety: a Transactor is stateless between calls; one call at a time
// per IdAllocator.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "core/edn.h"
#include "core/schema.h"
#include "datalog/index_source.h"

namespace cairn::shard {

// Hands out fresh entity ids. The embedded store persists the counters with
// the transaction that uses them.
class IdAllocator {
 public:
  virtual ~IdAllocator() = default;
  virtual EntityId Allocate(uint32_t partition) = 0;
};

struct TxResult {
  TxTime t;
  std::vector<Datom> datoms;                    // in the order produced
  std::map<std::string, EntityId> tempids;      // tempid string -> entity
  std::vector<Attribute> schema_changes;        // attributes installed/changed
};

struct TransactorOptions {
  uint32_t partitions = 256;
  int64_t tx_instant_ms = 0;  // :db/txInstant; 0 = t.physical_ms()
};

class Transactor {
 public:
  explicit Transactor(TransactorOptions options) : options_(options) {}

  // `tx_data` must be an EDN vector. `db` is the current database value.
  Result<TxResult> Prepare(const Edn& tx_data, const datalog::IndexSource& db, TxTime t,
                           IdAllocator& ids) const;

 private:
  TransactorOptions options_;
};

}  // namespace cairn::shard
