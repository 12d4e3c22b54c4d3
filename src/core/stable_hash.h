// StableHasher: the hash behind Value::StableHash (docs/edn.md, "StableHash").
//
// FNV-1a-64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over a
// canonical byte encoding that is the same on every machine, process and
// version: integers big-endian, text as an 8-byte big-endian length followed
// by its UTF-8 bytes. Placement (ARCHITECTURE §2) depends on it: never change
// the encoding of an existing type.
//
// Thread-safety: a value; no shared state.
#pragma once

#include <cstdint>
#include <string_view>

#include "cairn/value.h"

namespace cairn::internal {

class StableHasher {
 public:
  static constexpr uint64_t kOffsetBasis = 0xcbf29ce484222325ull;
  static constexpr uint64_t kPrime = 0x100000001b3ull;

  void Byte(uint8_t b) {
    h_ ^= b;
    h_ *= kPrime;
  }
  void U64(uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) Byte(static_cast<uint8_t>(v >> shift));
  }
  void Text(std::string_view s) {
    U64(s.size());
    for (unsigned char c : s) Byte(c);
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = kOffsetBasis;
};

// Appends v's canonical encoding: one type byte (the ValueType number), then
// the payload (see docs/edn.md).
void AppendStableEncoding(StableHasher* h, const Value& v);

}  // namespace cairn::internal
