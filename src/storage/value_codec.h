// Value codec: the compact, order-preserving byte encoding of a Value.
//
// For any two values a, b: memcmp order of Encode(a), Encode(b) equals
// a.Compare(b) (lexicographic bytes, shorter prefix first). This lets any
// byte-ordered index (a SQLite BLOB column, a sorted file) sort values the
// way Cairn does. docs/storage.md documents the format:
//
//   tag byte = ValueType rank + 1 (so 0x00 can end a tuple)
//   nil          tag
//   bool         tag, 0x00|0x01
//   long,instant tag, 8 bytes big-endian with the sign bit flipped
//   double       tag, 8 bytes: IEEE bits big-endian, sign bit flipped for
//                positives, all bits flipped for negatives; one NaN (after
//                +inf) and -0.0 written as 0.0, as Value order has them
//   string,bytes tag, bytes with 0x00 written as 0x00 0xFF, then 0x00 0x01
//   keyword      tag, its text "ns/name" escaped like a string
//   ref          tag, 8 bytes big-endian
//   uuid         tag, 16 bytes big-endian (hi, lo)
//   tuple        tag, each element encoded, then 0x00
//   map          tag, k0 v0 k1 v1 ... encoded, then 0x00
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn::storage {

// Appends the encoding of `v` to `out`.
void EncodeValue(const Value& v, std::string* out);
std::string EncodeValue(const Value& v);

// Decodes exactly one value filling all of `bytes`. Corruption if the bytes
// are not a valid encoding (never crashes on bad input).
Result<Value> DecodeValue(std::string_view bytes);

}  // namespace cairn::storage
