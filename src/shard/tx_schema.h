// TxSchemaPlanner: the schema half of a transaction ("schema as data").
//
// Attributes are entities with :db/ident plus the schema keys
// (:db/valueType, :db/cardinality, :db/unique, :db/index, :db/isComponent,
// :db/doc, :db/tupleAttrs, :db/tupleTypes, :db/tupleType). Before the
// transaction's data is expanded, the planner finds every schema key asserted
// or retracted in the tx-data, works out which attribute (ident) it belongs
// to, builds the new definitions and checks that each change is safe for the
// data already stored. The rest of the transaction is then checked against
// the resulting schema, so one transaction may declare an attribute and use it.
//
// Safe changes (anything else is refused):
//  - a new attribute; :db/doc, :db/index, :db/isComponent (refs only);
//  - cardinality one -> many; many -> one only if no entity has two values;
//  - adding :db/unique only if no two entities share a value; removing it;
//  - :db/valueType (or tuple types) of an attribute already in use only if
//    it was untyped before and every stored value already has the new type;
//  - :db/tupleAttrs is fixed once set.
// Errors: InvalidArgument for a malformed or impossible definition, Conflict
// when the stored data forbids the change; both name the attribute and the
// EDN position.
//
// Thread-safety: stateless; reads `db` through const calls only.
#pragma once

#include <map>
#include <memory>

#include "cairn/status.h"
#include "core/edn.h"
#include "core/schema.h"
#include "datalog/index_source.h"

namespace cairn::shard {

struct TxSchemaPlan {
  // New definitions of the attributes this transaction installs or changes
  // (Attribute::id is filled in by the transactor once entities resolve).
  std::map<Keyword, Attribute> changed;
  // The schema the transaction is checked against: db.schema() plus
  // `changed`; null when nothing changed (use db.schema()).
  std::shared_ptr<const Schema> schema;
};

class TxSchemaPlanner {
 public:
  // `tx_data` is the transaction's EDN vector.
  static Result<TxSchemaPlan> Plan(const Edn& tx_data, const datalog::IndexSource& db);
};

// True if the two definitions are the same (ignoring id).
bool SameDefinition(const Attribute& x, const Attribute& y);

}  // namespace cairn::shard
