#include "shard/raft_codec.h"

#include <memory>

#include "core/varint.h"

namespace cairn::shard {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::Message;
using raft::MessageType;

constexpr uint8_t kFlagReject = 1;
constexpr uint8_t kFlagQuiesce = 2;
constexpr uint8_t kFlagSnapshot = 4;
constexpr uint8_t kFlagsKnown = kFlagReject | kFlagQuiesce | kFlagSnapshot;
constexpr uint8_t kLastMessageType = static_cast<uint8_t>(MessageType::kReadIndexResp);
constexpr uint8_t kLastEntryType = static_cast<uint8_t>(EntryType::kConfChange);

void PutVarint(uint64_t v, std::string* out) { AppendVarint(out, v); }

void PutBytes(std::string_view b, std::string* out) { AppendLengthPrefixed(out, b); }

void PutIds(const std::vector<raft::NodeId>& ids, std::string* out) {
  PutVarint(ids.size(), out);
  for (raft::NodeId id : ids) PutVarint(id.value(), out);
}

void EncodeBody(const Message& m, std::string* out) {
  out->push_back(static_cast<char>(m.type));
  for (uint64_t v : {m.group.value(), m.from.value(), m.to.value(), m.term.value(), m.index.value(),
                     m.log_term.value(), m.commit.value(), m.reject_hint.value(), m.context}) {
    PutVarint(v, out);
  }
  uint8_t flags = (m.reject ? kFlagReject : 0) | (m.quiesce ? kFlagQuiesce : 0) | (m.snapshot ? kFlagSnapshot : 0);
  out->push_back(static_cast<char>(flags));
  PutVarint(m.entries.size(), out);
  for (const Entry& e : m.entries) {
    PutVarint(e.term.value(), out);
    PutVarint(e.index.value(), out);
    out->push_back(static_cast<char>(e.type));
    PutBytes(e.data, out);
  }
  if (m.snapshot) {
    const raft::SnapshotChunk& c = *m.snapshot;
    PutVarint(c.meta.index.value(), out);
    PutVarint(c.meta.term.value(), out);
    PutIds(c.meta.conf.voters, out);
    PutIds(c.meta.conf.learners, out);
    PutVarint(c.offset_bytes, out);
    PutVarint(c.total_bytes, out);
    out->push_back(c.done ? 1 : 0);
    PutBytes(c.data, out);
  }
}

// A bounds-checked cursor over untrusted bytes. The first error sticks.
class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return b_.size() - pos_; }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  void Fail(std::string_view what) {
    if (status_.ok()) {
      status_ = Status::InvalidArgument("raft message: " + std::string(what) + " at byte " + std::to_string(pos_));
    }
  }

  uint8_t Byte(std::string_view what) {
    if (!ok()) return 0;
    if (remaining() < 1) {
      Fail(std::string("truncated ") + std::string(what));
      return 0;
    }
    return static_cast<uint8_t>(b_[pos_++]);
  }

  uint64_t Varint(std::string_view what) {
    if (!ok()) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 10; ++i) {
      if (remaining() < 1) {
        Fail(std::string("truncated ") + std::string(what));
        return 0;
      }
      uint8_t byte = static_cast<uint8_t>(b_[pos_++]);
      if (i == 9 && byte > 1) {
        Fail(std::string(what) + " overflows 64 bits");
        return 0;
      }
      v |= uint64_t{byte & 0x7Fu} << (7 * i);
      if ((byte & 0x80) == 0) return v;
    }
    Fail(std::string(what) + " varint longer than 10 bytes");
    return 0;
  }

  // A count of items that each take at least `min_bytes`; refuses counts the
  // remaining input cannot hold, so a forged count never drives allocation.
  uint64_t Count(std::string_view what, size_t min_bytes) {
    uint64_t n = Varint(what);
    if (ok() && n > remaining() / min_bytes) {
      Fail(std::string(what) + " " + std::to_string(n) + " exceeds the remaining " + std::to_string(remaining()) +
           " bytes");
      return 0;
    }
    return n;
  }

  std::string_view Bytes(std::string_view what) {
    uint64_t n = Varint(what);
    if (!ok()) return {};
    if (n > remaining()) {
      Fail(std::string(what) + " length " + std::to_string(n) + " exceeds the remaining " +
           std::to_string(remaining()) + " bytes");
      return {};
    }
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  Status status_;
};

bool ReadIds(Reader& r, std::string_view what, std::vector<raft::NodeId>* out) {
  uint64_t n = r.Count(what, 1);
  out->reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    raft::NodeId id(r.Varint(what));
    if (!r.ok()) return false;
    if (id.IsZero() || (!out->empty() && !(out->back() < id))) {
      r.Fail(std::string(what) + " not sorted, unique and non-zero");
      return false;
    }
    out->push_back(id);
  }
  return r.ok();
}

void DecodeBody(Reader& r, Message* m) {
  uint8_t type = r.Byte("message type");
  if (r.ok() && type > kLastMessageType) {
    r.Fail("unknown message type " + std::to_string(type));
    return;
  }
  m->type = static_cast<MessageType>(type);
  m->group = raft::GroupId(r.Varint("group"));
  m->from = raft::NodeId(r.Varint("from"));
  m->to = raft::NodeId(r.Varint("to"));
  m->term = raft::Term(r.Varint("term"));
  m->index = raft::LogIndex(r.Varint("index"));
  m->log_term = raft::Term(r.Varint("log_term"));
  m->commit = raft::LogIndex(r.Varint("commit"));
  m->reject_hint = raft::LogIndex(r.Varint("reject_hint"));
  m->context = r.Varint("context");
  uint8_t flags = r.Byte("flags");
  if (r.ok() && (flags & ~kFlagsKnown) != 0) {
    r.Fail("unknown flags " + std::to_string(flags));
    return;
  }
  m->reject = flags & kFlagReject;
  m->quiesce = flags & kFlagQuiesce;
  // An entry takes at least 4 bytes (term, index, type, data length).
  uint64_t n = r.Count("entry count", 4);
  m->entries.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    Entry e;
    e.term = raft::Term(r.Varint("entry term"));
    e.index = raft::LogIndex(r.Varint("entry index"));
    uint8_t et = r.Byte("entry type");
    if (r.ok() && et > kLastEntryType) {
      r.Fail("unknown entry type " + std::to_string(et));
      return;
    }
    e.type = static_cast<EntryType>(et);
    e.data = std::string(r.Bytes("entry data"));
    if (r.ok()) m->entries.push_back(std::move(e));
  }
  if (r.ok() && (flags & kFlagSnapshot)) {
    auto c = std::make_shared<raft::SnapshotChunk>();
    c->meta.index = raft::LogIndex(r.Varint("snapshot index"));
    c->meta.term = raft::Term(r.Varint("snapshot term"));
    if (!ReadIds(r, "snapshot voters", &c->meta.conf.voters)) return;
    if (!ReadIds(r, "snapshot learners", &c->meta.conf.learners)) return;
    c->offset_bytes = r.Varint("snapshot offset");
    c->total_bytes = r.Varint("snapshot total");
    uint8_t done = r.Byte("snapshot done");
    if (r.ok() && done > 1) {
      r.Fail("snapshot done flag " + std::to_string(done));
      return;
    }
    c->done = done == 1;
    c->data = std::string(r.Bytes("snapshot data"));
    if (r.ok() && (c->offset_bytes > c->total_bytes || c->data.size() > c->total_bytes - c->offset_bytes)) {
      r.Fail("snapshot chunk past its total size");
      return;
    }
    m->snapshot = std::move(c);
  }
}

Status CheckVersion(Reader& r) {
  uint8_t v = r.Byte("version");
  if (r.ok() && v != kRaftCodecVersion) r.Fail("unsupported version " + std::to_string(v));
  return r.status();
}

}  // namespace

void EncodeMessage(const Message& m, std::string* out) {
  out->push_back(static_cast<char>(kRaftCodecVersion));
  EncodeBody(m, out);
}

std::string EncodeMessage(const Message& m) {
  std::string out;
  EncodeMessage(m, &out);
  return out;
}

Result<Message> DecodeMessage(std::string_view bytes) {
  Reader r(bytes);
  CAIRN_RETURN_IF_ERROR(CheckVersion(r));
  Message m;
  DecodeBody(r, &m);
  if (r.ok() && r.remaining() != 0) r.Fail(std::to_string(r.remaining()) + " trailing bytes");
  if (!r.ok()) return r.status();
  return m;
}

std::string EncodeBatch(const std::vector<Message>& msgs) {
  std::string out;
  out.push_back(static_cast<char>(kRaftCodecVersion));
  PutVarint(msgs.size(), &out);
  std::string body;
  for (const Message& m : msgs) {
    body.clear();
    EncodeBody(m, &body);
    PutBytes(body, &out);
  }
  return out;
}

Result<std::vector<Message>> DecodeBatch(std::string_view bytes) {
  Reader r(bytes);
  CAIRN_RETURN_IF_ERROR(CheckVersion(r));
  // A body takes at least 1 length byte + 12 bytes of fixed fields.
  uint64_t n = r.Count("message count", 13);
  std::vector<Message> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    size_t start = r.pos();
    std::string_view body = r.Bytes("message body");
    if (!r.ok()) break;
    Reader br(body);
    Message m;
    DecodeBody(br, &m);
    if (br.ok() && br.remaining() != 0) br.Fail(std::to_string(br.remaining()) + " trailing bytes in body");
    if (!br.ok()) {
      return Status::InvalidArgument("raft batch: message " + std::to_string(i) + " (at byte " +
                                     std::to_string(start) + "): " + br.status().message());
    }
    out.push_back(std::move(m));
  }
  if (r.ok() && r.remaining() != 0) r.Fail(std::to_string(r.remaining()) + " trailing bytes after the batch");
  if (!r.ok()) return r.status();
  return out;
}

}  // namespace cairn::shard
