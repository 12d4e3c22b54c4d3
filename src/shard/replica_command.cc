#include "shard/replica_command.h"

#include "core/varint.h"

namespace cairn::shard {
namespace {


void PutVarint(uint64_t v, std::string* out) { AppendVarint(out, v); }

bool GetVarint(std::string_view b, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int i = 0; i < 10 && *pos < b.size(); ++i) {
    uint8_t byte = static_cast<uint8_t>(b[(*pos)++]);
    if (i == 9 && byte > 1) return false;
    *v |= uint64_t{byte & 0x7Fu} << (7 * i);
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool GetBytes(std::string_view b, size_t* pos, std::string* out) {
  uint64_t n;
  if (!GetVarint(b, pos, &n) || n > b.size() - *pos) return false;
  out->assign(b.substr(*pos, n));
  *pos += n;
  return true;
}

}  // namespace

std::string ReplicaCommand::Encode() const {
  std::string out;
  out.reserve(tx_edn.size() + request_id.size() + 16);
  out.push_back(static_cast<char>(kind));
  PutVarint(proposed_t.raw, &out);
  if (kind == Kind::kClose) return out;
  PutVarint(request_id.size(), &out);
  out.append(request_id);
  PutVarint(tx_edn.size(), &out);
  out.append(tx_edn);
  return out;
}

Result<ReplicaCommand> ReplicaCommand::Decode(std::string_view b) {
  if (b.empty()) return Status::InvalidArgument("replica command: empty");
  uint8_t kind = static_cast<uint8_t>(b[0]);
  size_t pos = 1;
  ReplicaCommand c;
  if (kind == static_cast<uint8_t>(Kind::kClose)) {
    c.kind = Kind::kClose;
    if (!GetVarint(b, &pos, &c.proposed_t.raw)) return Status::InvalidArgument("replica command: bad close time");
    if (pos != b.size()) return Status::InvalidArgument("replica command: trailing bytes after close");
    return c;
  }
  if (kind != static_cast<uint8_t>(Kind::kTransact)) {
    return Status::InvalidArgument("replica command: unknown kind/version " + std::to_string(kind));
  }
  if (!GetVarint(b, &pos, &c.proposed_t.raw)) return Status::InvalidArgument("replica command: bad proposed t");
  if (!GetBytes(b, &pos, &c.request_id)) return Status::InvalidArgument("replica command: bad request id");
  if (!GetBytes(b, &pos, &c.tx_edn)) return Status::InvalidArgument("replica command: bad tx data");
  if (pos != b.size()) return Status::InvalidArgument("replica command: trailing bytes");
  return c;
}

std::string EncodeTempids(const std::map<std::string, EntityId>& tempids) {
  std::string out;
  PutVarint(tempids.size(), &out);
  for (const auto& [name, e] : tempids) {
    PutVarint(name.size(), &out);
    out.append(name);
    PutVarint(e.raw, &out);
  }
  return out;
}

Result<std::map<std::string, EntityId>> DecodeTempids(std::string_view b) {
  std::map<std::string, EntityId> out;
  size_t pos = 0;
  uint64_t n;
  if (!GetVarint(b, &pos, &n) || n > b.size()) return Status::Corruption("tempids: bad count");
  for (uint64_t i = 0; i < n; ++i) {
    std::string name;
    EntityId e;
    if (!GetBytes(b, &pos, &name) || !GetVarint(b, &pos, &e.raw)) {
      return Status::Corruption("tempids: entry " + std::to_string(i) + " is truncated");
    }
    if (!out.empty() && !(out.rbegin()->first < name)) {
      return Status::Corruption("tempids: entry " + std::to_string(i) + " is out of order");
    }
    out.emplace_hint(out.end(), std::move(name), e);
  }
  if (pos != b.size()) return Status::Corruption("tempids: trailing bytes");
  return out;
}

}  // namespace cairn::shard
