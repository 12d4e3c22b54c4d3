// Schema: attribute definitions installed as data (ARCHITECTURE §2).
//
// An attribute is an entity with :db/ident plus :db/valueType,
// :db/cardinality, :db/unique, :db/index, :db/isComponent, :db/doc and for
// tuples :db/tupleAttrs (composite, maintained by the transactor),
// :db/tupleTypes or :db/tupleType. An attribute nobody declared is accepted
// as cardinality-one and untyped (value_type = kNil), as DataScript does.
//
// Thread-safety: a Schema is immutable once published; copy-on-write updates.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/ids.h"
#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn {

enum class Cardinality : uint8_t { kOne, kMany };
enum class Uniqueness : uint8_t { kNone, kIdentity, kValue };

struct Attribute {
  Keyword ident;
  EntityId id;                          // the attribute's entity
  ValueType value_type = ValueType::kNil;  // kNil: untyped (undeclared)
  Cardinality cardinality = Cardinality::kOne;
  Uniqueness unique = Uniqueness::kNone;
  bool indexed = false;       // AVET kept (always true for unique)
  bool is_component = false;  // refs only
  bool declared = false;      // false: an implicit, untyped attribute
  std::string doc;
  std::vector<Keyword> tuple_attrs;     // composite tuple
  std::vector<ValueType> tuple_types;   // heterogeneous fixed tuple
  ValueType tuple_type = ValueType::kNil;  // homogeneous variable tuple

  bool is_ref() const { return value_type == ValueType::kRef; }
  bool is_many() const { return cardinality == Cardinality::kMany; }
  bool in_avet() const { return indexed || unique != Uniqueness::kNone; }
};

class Schema {
 public:
  // Contains the built-in :db/* attributes: :db/ident (keyword, unique
  // identity), :db/valueType, :db/cardinality, :db/unique (keywords),
  // :db/index, :db/isComponent, :db/noHistory (booleans), :db/doc (string),
  // :db/txInstant (instant, indexed), :db/tupleAttrs and :db/tupleTypes
  // (tuples of keywords), :db/tupleType (keyword). Their entity ids are
  // EntityId::Make(kSystemPartition, 1..12) in that order (see schema.cc);
  // seqs below kFirstUserSeq in the system partition are reserved for them.
  Schema();
  static constexpr uint64_t kFirstUserSeq = 64;

  // nullptr if the attribute was never declared.
  const Attribute* Find(Keyword ident) const;
  // The declared attribute, or an implicit untyped cardinality-one one.
  Attribute Get(Keyword ident) const;
  bool IsRef(Keyword ident) const;
  bool IsMany(Keyword ident) const;
  bool IsComponent(Keyword ident) const;
  // Composite tuple attributes that include `ident` in their :db/tupleAttrs.
  std::vector<const Attribute*> CompositesContaining(Keyword ident) const;

  // Installs or replaces attr (marked declared) and bumps version().
  // REQUIRES: attr.ident.valid(). Validation is the transactor's job.
  void Put(Attribute attr);
  const std::map<Keyword, Attribute>& attributes() const { return attrs_; }
  uint64_t version() const { return version_; }

  // True for the built-in keywords (:db/ident, :db/valueType, ...).
  static bool IsBuiltin(Keyword ident);
  // Parses :db.type/string etc. into a ValueType; :db.type/ref -> kRef.
  // :db.type/float reads as double; :db.type/bigint, bigdec, uri and symbol
  // are InvalidArgument ("unsupported"), anything else "unknown value type".
  static Result<ValueType> ParseValueType(Keyword k);
  // The canonical :db.type/* keyword of t; invalid for kNil and kMap.
  static Keyword ValueTypeKeyword(ValueType t);
  // OK if v may be stored under attr: never nil or a map; the declared type
  // (if any); tuple arity and element types (nil elements allowed).
  // InvalidArgument "attribute :a expects a long, got "x" (string)" otherwise.
  static Status CheckValue(const Attribute& attr, const Value& v);

 private:
  std::map<Keyword, Attribute> attrs_;
  uint64_t version_ = 0;
};

}  // namespace cairn
