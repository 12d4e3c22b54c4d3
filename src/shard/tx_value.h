// Helpers shared by the transactor stages: the :db/* keywords it knows,
// conversion of EDN values to attribute values with type checks, and error
// messages that name the EDN position.
//
// Thread-safety: pure functions; the keyword table is built once
// (thread-safe static initialisation) and never changes.
#pragma once

#include <string>
#include <string_view>

#include "cairn/status.h"
#include "cairn/value.h"
#include "core/edn.h"
#include "core/schema.h"

namespace cairn::shard {

struct TxKeywords {
  Keyword db_id, db_ident, value_type, cardinality, unique, index, is_component, doc, tuple_attrs,
      tuple_types, tuple_type, tx_instant, partition, current_tx, add, retract, cas, cas_fn,
      retract_entity, retract_entity_fn;
  Keyword card_one, card_many, unique_identity, unique_value;
};
const TxKeywords& Kws();

// True for the attributes that define schema (:db/valueType, :db/cardinality,
// :db/unique, :db/index, :db/isComponent, :db/doc, :db/tupleAttrs,
// :db/tupleTypes, :db/tupleType).
bool IsSchemaKey(Keyword k);

// "L:C: message", the format of every transactor error.
Status ErrorAt(StatusCode code, const Edn* where, std::string_view message);
// The EDN text of a node for messages, shortened to about 60 characters.
std::string Snippet(const Edn& node);
// "string", "integer", "vector", ... for messages.
std::string_view EdnKindName(const Edn& node);

// Converts `node` to a value of the (non-ref) attribute `attr`, checking the
// declared :db/valueType (and tuple types). Untyped attributes accept any
// EDN value a datom can hold. Errors: InvalidArgument naming the attribute,
// the value and its line:column. For ref attributes only plain entity ids
// (positive integers) are converted here; tempids, lookup refs and idents are
// the expander's job.
Result<Value> ConvertValue(const Attribute& attr, const Edn& node);

// Converts the value of a schema key (:db/valueType ...), checking it is one
// of the allowed keywords/booleans/strings.
Result<Value> ConvertSchemaValue(Keyword key, const Edn& node);

// True if `v` conforms to `attr`'s declared type (always true if untyped).
bool ValueConforms(const Attribute& attr, const Value& v);

}  // namespace cairn::shard
