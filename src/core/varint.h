// Unsigned LEB128 varints and varint-length-prefixed byte strings: the one
// encoder behind every binary payload (Raft messages, replica commands, peer
// requests and scans). Decoders stay with their formats, which differ in how
// they report a bad byte.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

inline void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void AppendLengthPrefixed(std::string* out, std::string_view bytes) {
  AppendVarint(out, bytes.size());
  out->append(bytes);
}

}  // namespace cairn
