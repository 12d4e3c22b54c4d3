// TxOp: one transaction operation after parsing, before entity resolution.
//
// The transactor works in stages (docs/transactions.md):
//   1. TxSchemaPlanner reads the schema definitions in the tx-data and builds
//      the schema the transaction is checked against;
//   2. TxExpander turns every list and map form into TxOps (values converted
//      and type-checked, entity positions still symbolic: TxEntityRef);
//   3. the Transactor resolves entity references (tempids, lookup refs,
//      idents, upserts), allocates ids and derives the datoms.
// Every TxOp keeps a pointer to the EDN node it came from, so any later error
// can name its line and column. The nodes belong to the caller's tx-data,
// which outlives the whole Prepare call.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/ids.h"
#include "cairn/value.h"
#include "core/edn.h"

namespace cairn::shard {

// An entity position as written: an id, a tempid, a lookup ref, an ident or
// the transaction itself.
struct TxEntityRef {
  enum class Kind : uint8_t { kId, kTempid, kLookup, kIdent, kTx };
  Kind kind = Kind::kId;
  EntityId id;            // kId
  std::string tempid;     // kTempid
  bool internal = false;  // kTempid made up for a map without :db/id (not reported)
  Keyword attr;           // kLookup: the unique attribute; kIdent: the ident
  Value value;            // kLookup: the value
  const Edn* where = nullptr;

  // For messages: "tempid \"a\"", "lookup ref [:user/email \"x\"]", "entity 42", ...
  std::string Describe() const;
};

struct TxOp {
  enum class Kind : uint8_t {
    kAdd,            // [:db/add e a v] and every map entry
    kRetract,        // [:db/retract e a v]
    kRetractAttr,    // [:db/retract e a]: every value of a on e
    kCas,            // [:db/cas e a old new]
    kRetractEntity,  // [:db/retractEntity e]
    kPartitionHint,  // :db/partition in a map: where a new e should be placed
  };
  Kind kind = Kind::kAdd;
  TxEntityRef e;
  Keyword a;
  // The value (new value for kCas). For a ref attribute it is an entity
  // reference (v_is_ref) resolved later; otherwise a checked Value.
  bool v_is_ref = false;
  Value v;
  TxEntityRef v_ref;
  // kCas: the expected current value; nil (and !old_is_ref) = must be absent.
  bool old_is_ref = false;
  Value old;
  TxEntityRef old_ref;
  // kPartitionHint: an explicit partition number (hint_partition >= 0) or an
  // entity whose partition to share (v_ref, v_is_ref).
  int64_t hint_partition = -1;

  const Edn* form = nullptr;    // the list form or map
  const Edn* v_node = nullptr;  // the value node (or the form when none)
};

}  // namespace cairn::shard
