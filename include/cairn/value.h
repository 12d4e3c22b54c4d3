// Keyword and Value: the atoms of Cairn's data model (ARCHITECTURE §2).
//
// Keyword: an interned `:ns/name`. Interning is process-wide and thread-safe;
// a Keyword is a pointer, so copies and equality are O(1). Ordering is by text
// (stable across processes); id() is a process-local number for hashing only.
//
// Value: one of nil, bool, long (int64), double, instant (ms since epoch),
// string, keyword, ref (EntityId), uuid, bytes, tuple, map. Datoms hold any
// type but nil and map; nil and map appear only in query and pull results.
// Values of different types order by type rank (the order of ValueType), so
// every index sorts; within a type by value (NaN sorts after all doubles).
//
// Thread-safety: Value is a value type; const methods are safe to call
// concurrently.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/ids.h"

namespace cairn {

class Keyword {
 public:
  Keyword() = default;  // the invalid keyword
  // `text` is "ns/name" or "name", without the leading colon.
  static Keyword Intern(std::string_view text);

  bool valid() const { return rep_ != nullptr; }
  std::string_view str() const;   // "ns/name" (no colon); "" if invalid
  std::string_view ns() const;    // "ns", or "" without a namespace
  std::string_view name() const;  // "name"
  std::string ToString() const;   // ":ns/name"
  uint32_t id() const;            // process-local; 0 if invalid

  friend bool operator==(Keyword a, Keyword b) { return a.rep_ == b.rep_; }
  friend std::strong_ordering operator<=>(Keyword a, Keyword b);

  struct Rep;

 private:
  explicit Keyword(const Rep* rep) : rep_(rep) {}
  const Rep* rep_ = nullptr;
  friend class Value;
};

struct Uuid {
  uint64_t hi = 0;
  uint64_t lo = 0;
  // Parses "8-4-4-4-12" hex form; returns false on malformed input.
  static bool Parse(std::string_view text, Uuid* out);
  std::string ToString() const;
  friend constexpr auto operator<=>(const Uuid&, const Uuid&) = default;
};

// Declaration order is the cross-type sort order.
enum class ValueType : uint8_t {
  kNil = 0,
  kBool,
  kLong,
  kDouble,
  kInstant,
  kString,
  kKeyword,
  kRef,
  kUuid,
  kBytes,
  kTuple,
  kMap,
};
std::string_view ValueTypeName(ValueType t);  // "long", "string", ...

class Value {
 public:
  Value() = default;  // nil
  static Value Bool(bool b);
  static Value Long(int64_t i);
  static Value Double(double d);
  static Value Instant(int64_t ms_since_epoch);
  static Value String(std::string s);
  static Value Kw(Keyword k);
  static Value Kw(std::string_view text) { return Kw(Keyword::Intern(text)); }
  static Value Ref(EntityId e);
  static Value UuidValue(Uuid u);
  static Value Bytes(std::string bytes);
  static Value Tuple(std::vector<Value> items);
  static Value Map(std::vector<std::pair<Value, Value>> entries);

  ValueType type() const { return type_; }
  bool is_nil() const { return type_ == ValueType::kNil; }

  // Accessors REQUIRE the matching type (CAIRN_CHECK).
  bool as_bool() const;
  int64_t as_long() const;
  double as_double() const;
  int64_t as_instant() const;
  const std::string& as_string() const;  // string or bytes
  Keyword as_keyword() const;
  EntityId as_ref() const;
  Uuid as_uuid() const;
  const std::vector<Value>& as_tuple() const;
  const std::vector<std::pair<Value, Value>>& as_map() const;

  // Total order: type rank, then value.
  int Compare(const Value& other) const;
  friend bool operator==(const Value& a, const Value& b) { return a.Compare(b) == 0; }
  friend bool operator<(const Value& a, const Value& b) { return a.Compare(b) < 0; }
  friend bool operator!=(const Value& a, const Value& b) { return a.Compare(b) != 0; }

  // Fast process-local hash (keywords hash by intern id).
  size_t Hash() const;
  // Hash stable across processes and versions: FNV-1a-64 over a canonical
  // encoding. Used for placement (partition = StableHash(attr, v) % n).
  uint64_t StableHash() const;

  // EDN text: "x" 42 1.5 #inst "..." :kw #uuid "..." #bytes "base64" [..] {..} nil.
  // Refs print as their number.
  std::string ToString() const;

 private:
  ValueType type_ = ValueType::kNil;
  // 32 bytes: scalars inline; string/bytes (std::string), uuid (Uuid), tuple
  // (std::vector<Value>) and map (vector of pairs) live in an immutable,
  // shared heap block so copies are cheap.
  union {
    bool b_;
    int64_t i_;
    double d_;
    uint64_t u_;
    const Keyword::Rep* k_;
  } scalar_{};
  std::shared_ptr<const void> heap_;
  friend class Keyword;
};

// Placement hash of an (attribute, value) pair (ARCHITECTURE §2): FNV-1a-64
// over the attribute's text (8-byte big-endian length + bytes) followed by the
// value's canonical encoding (docs/edn.md). Stable across processes.
uint64_t StableHashOf(Keyword attr, const Value& v);

}  // namespace cairn

template <>
struct std::hash<cairn::Value> {
  size_t operator()(const cairn::Value& v) const noexcept { return v.Hash(); }
};
template <>
struct std::hash<cairn::Keyword> {
  size_t operator()(cairn::Keyword k) const noexcept { return std::hash<uint32_t>()(k.id()); }
};
