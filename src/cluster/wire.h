// Wire helpers for the cluster's peer payloads: unsigned LEB128 varints,
// length-prefixed byte strings and datoms, with a reader that checks every
// length against the bytes that remain (a forged length never drives an
// allocation) and reports InvalidArgument naming the field and offset.
//
// Thread-safety: values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"

namespace cairn::cluster::wire {

void PutVarint(std::string* out, uint64_t v);
void PutBytes(std::string* out, std::string_view bytes);
void PutU8(std::string* out, uint8_t v);
// e, attribute text, value (storage value codec), tx, added.
void PutDatom(std::string* out, const Datom& d);

class Reader {
 public:
  // `what` names the payload in errors ("transact reply").
  Reader(std::string_view bytes, std::string_view what) : bytes_(bytes), what_(what) {}

  Result<uint64_t> Varint(std::string_view field);
  Result<uint8_t> U8(std::string_view field);
  Result<std::string_view> Bytes(std::string_view field);
  Result<Datom> ReadDatom(std::string_view field);
  // The bytes not read yet (consumes them).
  std::string_view Rest();
  // InvalidArgument if bytes remain.
  Status Done() const;
  size_t offset() const { return pos_; }

 private:
  Status Error(std::string_view field, std::string_view why) const;
  std::string_view bytes_;
  std::string what_;
  size_t pos_ = 0;
};

}  // namespace cairn::cluster::wire
