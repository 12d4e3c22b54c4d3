#include "cluster/wire.h"

#include "core/varint.h"
#include "storage/value_codec.h"

namespace cairn::cluster::wire {

void PutVarint(std::string* out, uint64_t v) { AppendVarint(out, v); }

void PutBytes(std::string* out, std::string_view bytes) { AppendLengthPrefixed(out, bytes); }

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }

void PutDatom(std::string* out, const Datom& d) {
  PutVarint(out, d.e.raw);
  PutBytes(out, d.a.str());
  PutBytes(out, storage::EncodeValue(d.v));
  PutVarint(out, d.tx.raw);
  PutU8(out, d.added ? 1 : 0);
}

Status Reader::Error(std::string_view field, std::string_view why) const {
  return Status::InvalidArgument(what_ + ": " + std::string(field) + " at byte " + std::to_string(pos_) + ": " +
                                 std::string(why));
}

Result<uint64_t> Reader::Varint(std::string_view field) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos_ >= bytes_.size()) return Error(field, "truncated varint");
    uint8_t b = static_cast<uint8_t>(bytes_[pos_++]);
    if (shift == 63 && (b & 0x7E) != 0) return Error(field, "varint past 64 bits");
    v |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return Error(field, "varint longer than 10 bytes");
}

Result<uint8_t> Reader::U8(std::string_view field) {
  if (pos_ >= bytes_.size()) return Error(field, "truncated");
  return static_cast<uint8_t>(bytes_[pos_++]);
}

Result<std::string_view> Reader::Bytes(std::string_view field) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, Varint(field));
  if (n > bytes_.size() - pos_) return Error(field, "length " + std::to_string(n) + " past the end");
  std::string_view s = bytes_.substr(pos_, n);
  pos_ += n;
  return s;
}

Result<Datom> Reader::ReadDatom(std::string_view field) {
  Datom d;
  CAIRN_ASSIGN_OR_RETURN(uint64_t e, Varint(field));
  d.e = EntityId{e};
  CAIRN_ASSIGN_OR_RETURN(std::string_view a, Bytes(field));
  if (a.empty()) return Error(field, "empty attribute");
  d.a = Keyword::Intern(a);
  CAIRN_ASSIGN_OR_RETURN(std::string_view v, Bytes(field));
  Result<Value> value = storage::DecodeValue(v);
  if (!value.ok()) return Error(field, value.status().message());
  d.v = std::move(*value);
  CAIRN_ASSIGN_OR_RETURN(uint64_t tx, Varint(field));
  d.tx = TxTime{tx};
  CAIRN_ASSIGN_OR_RETURN(uint8_t added, U8(field));
  if (added > 1) return Error(field, "added flag must be 0 or 1");
  d.added = added == 1;
  return d;
}

std::string_view Reader::Rest() {
  std::string_view s = bytes_.substr(pos_);
  pos_ = bytes_.size();
  return s;
}

Status Reader::Done() const {
  if (pos_ != bytes_.size()) {
    return Status::InvalidArgument(what_ + ": " + std::to_string(bytes_.size() - pos_) + " trailing bytes at byte " +
                                   std::to_string(pos_));
  }
  return Status::OK();
}

}  // namespace cairn::cluster::wire
