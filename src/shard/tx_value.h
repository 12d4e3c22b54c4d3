// Helpers shared by the transactor stages: the :db/* keywords it knows,
// conversion of EDN values to attribute values with type checks, and error
// messages that name the EDN position.
//
// Thread-safety: pure functions; the keyword table is built once
// (thread-safe static initialisation) and never changes.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cairn/status.h"
#include "cairn/value.h"
#include "core/edn.h"
#include "core/schema.h"

namespace cairn::shard {

struct TxKeywords {
  Keyword db_id, db_ident, value_type, cardinality, unique, index, is_component, doc, tuple_attrs, tuple_types,
      tuple_type, tx_instant, partition, current_tx, add, retract, cas, cas_fn, retract_entity, retract_entity_fn;
  Keyword card_one, card_many, unique_identity, unique_value;
};
const TxKeywords& Kws();

// True for the attributes that define schema (:db/valueType, :db/cardinality,
// :db/unique, :db/index, :db/isComponent, :db/doc, :db/tupleAttrs,
// :db/tupleTypes, :db/tupleType).
bool IsSchemaKey(Keyword k);

// "L:C: message", the format of every transactor error.
Status ErrorAt(StatusCode code, const Edn* where, std::string_view message);
// Adds `context` to an error made by ErrorAt, after its "L:C: " prefix.
Status AddContext(const Status& status, std::string_view context);
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

// A per-transaction memo over a Schema: Schema::Find compares keyword text in
// a std::map, and a transaction asks about the same few attributes for every
// datom. References returned stay valid for the view's lifetime.
// Thread-safety: none (one transaction's scratch state).
class TxSchemaView {
 public:
  explicit TxSchemaView(const Schema& schema);
  TxSchemaView(const TxSchemaView&) = delete;  // recent_ points into cache_
  TxSchemaView& operator=(const TxSchemaView&) = delete;
  // The declared attribute, or an implicit untyped cardinality-one one.
  const Attribute& Get(Keyword k);
  // nullptr if not declared.
  const Attribute* Find(Keyword k) { return Lookup(k).declared; }
  bool IsMany(Keyword k) { return Get(k).is_many(); }
  bool IsComponent(Keyword k) { return Get(k).is_component; }
  // Composite tuple attributes having `k` among their :db/tupleAttrs.
  const std::vector<const Attribute*>& CompositesContaining(Keyword k);
  bool has_composites() const { return has_composites_; }
  const Schema& schema() const { return schema_; }

 private:
  struct Entry {
    const Attribute* declared = nullptr;
    Attribute implicit;
    bool composites_known = false;
    std::vector<const Attribute*> composites;
  };
  Entry& Lookup(Keyword k) {
    // A transaction uses a few attributes over and over: a handful of recent
    // answers, compared by pointer, spare most hash lookups.
    for (const Recent& r : recent_) {
      if (r.k == k && r.entry != nullptr) return *r.entry;
    }
    Entry& e = LookupSlow(k);
    recent_[next_recent_] = Recent{k, &e};
    next_recent_ = (next_recent_ + 1) % kRecent;
    return e;
  }
  Entry& LookupSlow(Keyword k);

  struct Recent {
    Keyword k;
    Entry* entry = nullptr;  // null: unused
  };
  static constexpr size_t kRecent = 8;

  const Schema& schema_;
  bool has_composites_ = false;
  // Entries never move (node-based map), so recent_ may point into it.
  std::unordered_map<Keyword, Entry> cache_;
  Recent recent_[kRecent];
  size_t next_recent_ = 0;
};

// True if `v` conforms to `attr`'s declared type (always true if untyped).
bool ValueConforms(const Attribute& attr, const Value& v);

}  // namespace cairn::shard
