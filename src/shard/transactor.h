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
// Placement (ARCHITECTURE §2, functions in tx_placement.h). A new entity goes
//  1. to EntityId::kSystemPartition if it gets a :db/ident (attributes, idents);
//  2. else, if it has a :db.unique/identity value, to
//     UniqueIdentityPartition(attr, value) (so [attr value] routes to one shard);
//  3. else to its :db/partition hint (a partition number, or an entity whose
//     partition it shares);
//  4. else to the partition of the transaction's first existing entity (in
//     form order), or failing that of its first new entity placed by 2-3, so
//     a transaction stays on one shard when it can;
//  5. else to TempidPartition(first such tempid): every entity left unplaced
//     goes with the first of them, so a transaction stays on one shard.
// Ordinary entities never land in the system partition when there is more
// than one partition. Ids are allocated only once the transaction is known to
// be valid (a failed Prepare consumes no ids), in order of first appearance.
//
// Errors (nothing is produced): InvalidArgument (malformed form, mistyped
// value, unknown :db/* attribute, tempid used only as a value, two values for
// a cardinality-one attribute, a datom both asserted and retracted, unsafe
// schema definition), NotFound (lookup ref or ident naming no entity),
// Conflict (:db/cas mismatch, uniqueness violation, a tempid upserting to two
// entities, a schema change the stored data forbids); IOError/Corruption from
// reading `db`. docs/transactions.md has the details.
//
// Thread-safety: a Transactor is stateless between calls and may be shared;
// one call at a time per IdAllocator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
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
  // Returns an id in `partition` never handed out before and not used by
  // any entity, including the built-in attributes' fixed ids at the start of
  // the system partition (Schema). Called only by a Prepare that succeeds.
  virtual EntityId Allocate(uint32_t partition) = 0;
};

struct TxResult {
  TxTime t;
  // In the order produced: first [tx :db/txInstant ...], then per form; a
  // cardinality-one replacement's retraction just before its assertion.
  // Redundant assertions and retractions of absent datoms are omitted.
  std::vector<Datom> datoms;
  std::map<std::string, EntityId> tempids;  // user tempid string -> entity
  // Full new definitions (with Attribute::id) of the attributes installed or
  // changed; the caller Put()s them into its schema when it commits.
  std::vector<Attribute> schema_changes;
};

struct TransactorOptions {
  uint32_t partitions = 256;  // 1 .. EntityId::kMaxPartitions - 1
  int64_t tx_instant_ms = 0;  // :db/txInstant; 0 = t.physical_ms()
  // Which user partitions this transactor's store holds (null = all). An
  // integer entity id in a VALUE position (a ref) whose partition is not owned
  // is accepted without an existence check: the cluster coordinator resolved
  // it on the shard that owns it (a cross-shard ref). Ids in entity position,
  // and value ids in owned partitions or the system partition, must exist.
  std::function<bool(uint32_t partition)> owns_partition;
};

class Transactor {
 public:
  explicit Transactor(TransactorOptions options) : options_(std::move(options)) {}

  // `tx_data` must be an EDN vector (or list) of forms; `db` is the current
  // database value (a non-history view) and its schema; `t` (valid) is the new
  // transaction's time; `ids` hands out fresh ids for new entities. Returns
  // the datoms to write (tx = t), the tempids and the schema changes, or an
  // error. Reads `db` only; writes nothing.
  Result<TxResult> Prepare(const Edn& tx_data, const datalog::IndexSource& db, TxTime t, IdAllocator& ids) const;

 private:
  TransactorOptions options_;
};

}  // namespace cairn::shard
