#include "cluster/scan_codec.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "core/check.h"
#include "core/varint.h"
#include "storage/value_codec.h"

namespace cairn::cluster {

using datalog::DatomPattern;

namespace {

constexpr uint8_t kRequestMagic = 0xC5;
constexpr uint8_t kReplyMagic = 0xC6;
constexpr uint8_t kVersion = 1;
constexpr size_t kKeywordBytesMax = 4096;

constexpr uint8_t kHasE = 1, kHasA = 2, kHasV = 4, kHasTx = 8, kHasAdded = 16, kAddedTrue = 32, kHasRange = 64;
constexpr uint8_t kPatternFlags = kHasE | kHasA | kHasV | kHasTx | kHasAdded | kAddedTrue | kHasRange;
constexpr uint8_t kLo = 1, kHi = 2, kLoInclusive = 4, kHiInclusive = 8;
constexpr uint8_t kRangeFlags = kLo | kHi | kLoInclusive | kHiInclusive;
constexpr uint8_t kMore = 1;

constexpr uint32_t kFirstBatch = 256;
constexpr uint32_t kBatchGrowth = 8;

void PutVarint(uint64_t v, std::string* out) { AppendVarint(out, v); }

void PutBytes(std::string_view b, std::string* out) { AppendLengthPrefixed(out, b); }

void PutValue(const Value& v, std::string* out) { PutBytes(storage::EncodeValue(v), out); }

// A bounds-checked cursor over untrusted bytes; the first error sticks.
class Reader {
 public:
  Reader(std::string_view b, const char* what) : b_(b), what_(what) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  size_t remaining() const { return b_.size() - pos_; }

  void Fail(const std::string& why) {
    if (status_.ok()) status_ = Status::InvalidArgument(std::string(what_) + ": " + why + " at byte " + std::to_string(pos_));
  }
  // The magic byte naming the payload `kind`, then the format version.
  void Header(uint8_t magic, const char* kind) {
    if (Byte() != magic && ok()) Fail(std::string("not a ") + kind + " (bad magic)");
    uint8_t version = Byte();
    if (ok() && version != kVersion) Fail("unsupported version " + std::to_string(version));
  }
  uint8_t Byte() {
    if (!ok()) return 0;
    if (pos_ >= b_.size()) {
      Fail("truncated");
      return 0;
    }
    return static_cast<uint8_t>(b_[pos_++]);
  }
  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t byte = Byte();
      if (!ok()) return 0;
      if (shift == 63 && byte > 1) {
        Fail("varint overflows 64 bits");
        return 0;
      }
      v |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    Fail("varint longer than 10 bytes");
    return 0;
  }
  std::string_view Bytes(size_t max) {
    uint64_t n = Varint();
    if (!ok()) return {};
    if (n > remaining()) {
      Fail("length " + std::to_string(n) + " beyond the end");
      return {};
    }
    if (n > max) {
      Fail("length " + std::to_string(n) + " over the limit " + std::to_string(max));
      return {};
    }
    std::string_view s = b_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  Keyword Kw() {
    std::string_view s = Bytes(kKeywordBytesMax);
    if (!ok()) return Keyword();
    if (s.empty() || s[0] == ':') {
      Fail("bad keyword");
      return Keyword();
    }
    return Keyword::Intern(s);
  }
  Value Val() {
    std::string_view s = Bytes(b_.size());
    if (!ok()) return Value();
    Result<Value> v = storage::DecodeValue(s);
    if (!v.ok()) {
      Fail("bad value (" + v.status().message() + ")");
      return Value();
    }
    return std::move(v).value();
  }
  void End() {
    if (ok() && pos_ != b_.size()) Fail(std::to_string(remaining()) + " trailing bytes");
  }

 private:
  std::string_view b_;
  const char* what_;
  size_t pos_ = 0;
  Status status_;
};

void PutPattern(const DatomPattern& p, const std::optional<datalog::ValueRange>& range, std::string* out) {
  uint8_t flags = (p.e ? kHasE : 0) | (p.a ? kHasA : 0) | (p.v ? kHasV : 0) | (p.tx ? kHasTx : 0) |
                  (p.added ? kHasAdded : 0) | (p.added && *p.added ? kAddedTrue : 0) | (range ? kHasRange : 0);
  out->push_back(static_cast<char>(flags));
  if (p.e) PutVarint(p.e->raw, out);
  if (p.a) PutBytes(p.a->str(), out);
  if (p.v) PutValue(*p.v, out);
  if (p.tx) PutVarint(p.tx->raw, out);
  if (range) {
    uint8_t rf = (range->lo ? kLo : 0) | (range->hi ? kHi : 0) | (range->lo_inclusive ? kLoInclusive : 0) |
                 (range->hi_inclusive ? kHiInclusive : 0);
    out->push_back(static_cast<char>(rf));
    if (range->lo) PutValue(*range->lo, out);
    if (range->hi) PutValue(*range->hi, out);
  }
}

DatomPattern ReadPattern(Reader& r, std::optional<datalog::ValueRange>* range) {
  DatomPattern p;
  uint8_t flags = r.Byte();
  if ((flags & ~kPatternFlags) != 0 || ((flags & kAddedTrue) && !(flags & kHasAdded))) {
    r.Fail("bad pattern flags");
    return p;
  }
  if (flags & kHasE) p.e = EntityId{r.Varint()};
  if (flags & kHasA) p.a = r.Kw();
  if (flags & kHasV) p.v = r.Val();
  if (flags & kHasTx) p.tx = TxTime{r.Varint()};
  if (flags & kHasAdded) p.added = (flags & kAddedTrue) != 0;
  if (flags & kHasRange) {
    datalog::ValueRange v;
    uint8_t rf = r.Byte();
    if (r.ok() && (rf & ~kRangeFlags) != 0) r.Fail("bad range flags");
    v.lo_inclusive = (rf & kLoInclusive) != 0;
    v.hi_inclusive = (rf & kHiInclusive) != 0;
    if (rf & kLo) v.lo = r.Val();
    if (rf & kHi) v.hi = r.Val();
    *range = std::move(v);
  }
  return p;
}

// Attributes repeat: each reply names each one once, then by index.
using AttrTable = std::unordered_map<Keyword, uint64_t>;

void PutDatom(const Datom& d, AttrTable* table, std::string* out) {
  PutVarint(d.e.raw, out);
  auto [it, added] = table->try_emplace(d.a, table->size());
  PutVarint(it->second, out);
  if (added) PutBytes(d.a.str(), out);
  PutValue(d.v, out);
  PutVarint(d.tx.raw, out);
  out->push_back(static_cast<char>(d.added ? 1 : 0));
}

bool ValidOp(uint8_t op) { return op >= 1 && op <= 4; }

}  // namespace

std::string EncodeScanRequest(const ScanRequest& r) {
  std::string out;
  out.push_back(static_cast<char>(kRequestMagic));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(r.op));
  PutVarint(r.shard, &out);
  out.push_back(static_cast<char>(r.view.kind));
  PutVarint(r.view.t.raw, &out);
  switch (r.op) {
    case ScanRequest::Op::kScan:
    case ScanRequest::Op::kCount:
      PutPattern(r.pattern, r.range, &out);
      if (r.op == ScanRequest::Op::kScan) {
        PutVarint(r.skip, &out);
        PutVarint(r.limit, &out);
      }
      break;
    case ScanRequest::Op::kDistinct:
      PutBytes(r.attr.str(), &out);
      out.push_back(static_cast<char>(r.position));
      break;
    case ScanRequest::Op::kLookup:
      PutBytes(r.attr.str(), &out);
      PutValue(r.value, &out);
      break;
  }
  return out;
}

Result<ScanRequest> DecodeScanRequest(std::string_view bytes) {
  Reader r(bytes, "scan request");
  ScanRequest q;
  r.Header(kRequestMagic, "scan request");
  uint8_t op = r.Byte();
  if (r.ok() && !ValidOp(op)) r.Fail("unknown operation " + std::to_string(op));
  q.op = static_cast<ScanRequest::Op>(op);
  uint64_t shard = r.Varint();
  if (r.ok() && shard > UINT32_MAX) r.Fail("shard out of range");
  q.shard = static_cast<uint32_t>(shard);
  uint8_t kind = r.Byte();
  if (r.ok() && kind > 4) r.Fail("unknown view " + std::to_string(kind));
  q.view.kind = static_cast<ViewSpec::Kind>(kind);
  q.view.t = TxTime{r.Varint()};
  if (!r.ok()) return r.status();
  switch (q.op) {
    case ScanRequest::Op::kScan:
    case ScanRequest::Op::kCount:
      q.pattern = ReadPattern(r, &q.range);
      if (q.op == ScanRequest::Op::kScan) {
        q.skip = r.Varint();
        uint64_t limit = r.Varint();
        if (r.ok() && (limit < 1 || limit > kScanBatchMax)) r.Fail("limit " + std::to_string(limit) + " not in 1.." + std::to_string(kScanBatchMax));
        q.limit = static_cast<uint32_t>(limit);
      }
      break;
    case ScanRequest::Op::kDistinct: {
      q.attr = r.Kw();
      uint8_t pos = r.Byte();
      if (r.ok() && pos != 0 && pos != 2) r.Fail("position must be 0 or 2");
      q.position = pos;
      break;
    }
    case ScanRequest::Op::kLookup:
      q.attr = r.Kw();
      q.value = r.Val();
      break;
  }
  r.End();
  if (!r.ok()) return r.status();
  return q;
}

std::string EncodeScanReply(const ScanReply& r) {
  std::string out;
  out.push_back(static_cast<char>(kReplyMagic));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(r.status.code()));
  if (!r.status.ok()) {
    PutBytes(r.status.message(), &out);
    return out;
  }
  out.push_back(static_cast<char>(r.op));
  switch (r.op) {
    case ScanRequest::Op::kScan: {
      out.push_back(static_cast<char>(r.more ? kMore : 0));
      PutVarint(r.datoms.size(), &out);
      AttrTable table;
      for (const Datom& d : r.datoms) PutDatom(d, &table, &out);
      break;
    }
    case ScanRequest::Op::kCount:
    case ScanRequest::Op::kDistinct:
      PutVarint(r.count, &out);
      break;
    case ScanRequest::Op::kLookup:
      out.push_back(static_cast<char>(r.entity ? 1 : 0));
      if (r.entity) PutVarint(r.entity->raw, &out);
      break;
  }
  return out;
}

Result<ScanReply> DecodeScanReply(std::string_view bytes) {
  Reader r(bytes, "scan reply");
  ScanReply out;
  r.Header(kReplyMagic, "scan reply");
  uint8_t code = r.Byte();
  if (r.ok() && code > static_cast<uint8_t>(StatusCode::kInternal)) r.Fail("unknown status code " + std::to_string(code));
  if (!r.ok()) return r.status();
  if (code != 0) {
    std::string_view message = r.Bytes(bytes.size());
    r.End();
    if (!r.ok()) return r.status();
    out.status = Status(static_cast<StatusCode>(code), std::string(message));
    return out;
  }
  uint8_t op = r.Byte();
  if (r.ok() && !ValidOp(op)) r.Fail("unknown operation " + std::to_string(op));
  out.op = static_cast<ScanRequest::Op>(op);
  if (!r.ok()) return r.status();
  switch (out.op) {
    case ScanRequest::Op::kScan: {
      uint8_t flags = r.Byte();
      if (r.ok() && (flags & ~kMore) != 0) r.Fail("bad reply flags");
      out.more = (flags & kMore) != 0;
      uint64_t n = r.Varint();
      // Every datom takes at least 5 bytes: never trust a count beyond that.
      if (r.ok() && n > r.remaining() / 5) r.Fail("datom count " + std::to_string(n) + " beyond the end");
      if (r.ok() && n > kScanBatchMax) r.Fail("datom count " + std::to_string(n) + " over the limit");
      std::vector<Keyword> table;
      out.datoms.reserve(r.ok() ? n : 0);
      for (uint64_t i = 0; i < n && r.ok(); ++i) {
        Datom d;
        d.e = EntityId{r.Varint()};
        uint64_t a = r.Varint();
        if (r.ok() && a == table.size()) {
          table.push_back(r.Kw());
        } else if (r.ok() && a > table.size()) {
          r.Fail("attribute index " + std::to_string(a) + " not yet named");
        }
        if (!r.ok()) break;
        d.a = table[a];
        d.v = r.Val();
        d.tx = TxTime{r.Varint()};
        uint8_t added = r.Byte();
        if (r.ok() && added > 1) r.Fail("bad added flag");
        d.added = added == 1;
        out.datoms.push_back(std::move(d));
      }
      break;
    }
    case ScanRequest::Op::kCount:
    case ScanRequest::Op::kDistinct:
      out.count = r.Varint();
      break;
    case ScanRequest::Op::kLookup: {
      uint8_t has = r.Byte();
      if (r.ok() && has > 1) r.Fail("bad lookup flag");
      if (has == 1) out.entity = EntityId{r.Varint()};
      break;
    }
  }
  r.End();
  if (!r.ok()) return r.status();
  return out;
}

std::string ServeScanRequest(std::string_view request, const ViewProvider& views, size_t reply_bytes_max) {
  ScanReply reply;
  Result<ScanRequest> req = DecodeScanRequest(request);
  if (!req.ok()) {
    reply.status = req.status();
    return EncodeScanReply(reply);
  }
  reply.op = req->op;
  Result<std::shared_ptr<const datalog::IndexSource>> view = views(req->shard, req->view);
  if (!view.ok() || *view == nullptr) {
    reply.status = view.ok() ? Status::Unavailable("no view of group " + std::to_string(req->shard)) : view.status();
    return EncodeScanReply(reply);
  }
  const datalog::IndexSource& db = **view;
  switch (req->op) {
    case ScanRequest::Op::kScan: {
      // Encoded as it is scanned, so the byte bound is exact.
      uint64_t seen = 0, n = 0;
      bool more = false;
      std::string body;
      AttrTable table;
      const bool after = req->view.kind == ViewSpec::Kind::kHistoryAfter;
      auto take = [&](const Datom& d) {
        if (after && d.tx <= req->view.t) return true;  // not part of this view's stream
        if (seen++ < req->skip) return true;
        if (n >= req->limit || body.size() >= reply_bytes_max) {
          more = true;  // one more exists: stop before it
          return false;
        }
        PutDatom(d, &table, &body);
        ++n;
        return true;
      };
      Status st = req->range ? db.ScanRange(req->pattern, *req->range, take) : db.Scan(req->pattern, take);
      if (!st.ok()) {
        ScanReply err;
        err.status = st;
        return EncodeScanReply(err);
      }
      std::string out = EncodeScanReply(reply);  // header of an empty reply: ... flags, count 0
      out.resize(out.size() - 2);
      out.push_back(static_cast<char>(more ? kMore : 0));
      PutVarint(n, &out);
      out += body;
      return out;
    }
    case ScanRequest::Op::kCount:
      reply.count = req->range ? db.EstimateRange(req->pattern, *req->range) : db.EstimateCount(req->pattern);
      break;
    case ScanRequest::Op::kDistinct:
      reply.count = db.EstimateDistinct(req->attr, req->position);
      break;
    case ScanRequest::Op::kLookup:
      reply.entity = db.Lookup(req->attr, req->value);
      break;
  }
  return EncodeScanReply(reply);
}

bool RetryOnAnotherReplica(StatusCode code) {
  return code == StatusCode::kUnavailable || code == StatusCode::kTimeout || code == StatusCode::kCancelled ||
         code == StatusCode::kNotLeader;
}

RemoteSource::RemoteSource(uint32_t node, uint32_t shard, ViewSpec view, std::shared_ptr<const Schema> schema,
                           RequestFn send)
    : RemoteSource(std::vector<uint32_t>{node}, shard, view, std::move(schema), std::move(send)) {}

RemoteSource::RemoteSource(std::vector<uint32_t> nodes, uint32_t shard, ViewSpec view,
                           std::shared_ptr<const Schema> schema, RequestFn send)
    : nodes_(std::move(nodes)), shard_(shard), view_(view), schema_(std::move(schema)), send_(std::move(send)) {
  CAIRN_CHECK(!nodes_.empty());
  CAIRN_CHECK(schema_ != nullptr);
  CAIRN_CHECK(send_ != nullptr);
}

Result<ScanReply> RemoteSource::CallOne(uint32_t node, const ScanRequest& r) const {
  std::string where = "node " + std::to_string(node) + " (shard " + std::to_string(shard_) + ")";
  Result<std::string> bytes = send_(node, EncodeScanRequest(r));
  if (!bytes.ok()) return bytes.status().WithContext(where);
  Result<ScanReply> reply = DecodeScanReply(*bytes);
  if (!reply.ok()) return reply.status().WithContext(where);
  if (!reply->status.ok()) return reply->status.WithContext(where);
  if (reply->op != r.op) return Status::InvalidArgument(where + ": reply to another operation");
  return reply;
}

Result<ScanReply> RemoteSource::Call(const ScanRequest& r, uint32_t* served) const {
  const size_t first = current_.load();
  Status failed;
  std::string errors;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    size_t at = (first + i) % nodes_.size();
    uint32_t node = nodes_[at];
    if (i > 0) failovers_.fetch_add(1);
    Result<ScanReply> reply = CallOne(node, r);
    if (reply.ok()) {
      if (i > 0) current_.store(at);
      if (served != nullptr) *served = node;
      return reply;
    }
    if (!RetryOnAnotherReplica(reply.status().code())) return reply.status();
    if (nodes_.size() == 1) return reply.status();
    errors += (errors.empty() ? "" : "; ") + reply.status().ToString();
    failed = reply.status();
  }
  return Status(failed.code(), "shard " + std::to_string(shard_) + ": every replica failed: " + errors);
}

Status RemoteSource::Scan(const DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  return ScanFrom(p, nullptr, 0, 0, fn);
}

Status RemoteSource::ScanRange(const DatomPattern& p, const datalog::ValueRange& range,
                               const std::function<bool(const Datom&)>& fn) const {
  return ScanFrom(p, &range, 0, 0, fn);
}

Status RemoteSource::ScanFrom(const DatomPattern& p, const datalog::ValueRange* range, uint64_t skip,
                              uint64_t limit_hint, const std::function<bool(const Datom&)>& fn) const {
  ScanRequest r;
  r.op = ScanRequest::Op::kScan;
  r.shard = shard_;
  r.view = view_;
  r.pattern = p;
  if (range != nullptr) r.range = *range;
  r.skip = skip;  // datoms of the scan delivered (by this call or the caller's earlier ones)
  uint64_t batch = limit_hint > 0 ? limit_hint : kFirstBatch;
  // Continuations overlap by one datom: the last one delivered must come
  // first, else the positions moved (the shard changed, or another replica
  // answers with another state) and the scan seeks it from the start.
  std::optional<Datom> last;
  bool seeking = false;
  bool no_overlap = false;  // the overlap datom alone filled the last reply (a value near the byte bound)
  for (;;) {
    ScanRequest q = r;
    bool overlap = last.has_value() && !seeking && !no_overlap;
    no_overlap = false;
    if (overlap) q.skip = r.skip - 1;
    q.limit = static_cast<uint32_t>(std::min<uint64_t>(batch + (overlap ? 1 : 0), kScanBatchMax));
    uint32_t served = 0;
    CAIRN_ASSIGN_OR_RETURN(ScanReply reply, Call(q, &served));
    size_t from = 0;
    if (overlap && (reply.datoms.empty() || !(reply.datoms.front() == *last))) {
      // Positions moved: seek the last delivered datom from the start.
      seeking = true;
      r.skip = 0;
      continue;
    }
    if (overlap) from = 1;
    if (seeking) {
      for (; from < reply.datoms.size(); ++from) {
        if (reply.datoms[from] == *last) break;
      }
      if (from < reply.datoms.size()) {
        seeking = false;
        ++from;  // resume after it
      } else if (!reply.more) {
        return Status::Unavailable("node " + std::to_string(served) + " (shard " + std::to_string(shard_) +
                                   "): the shard changed between two batches of a scan (the last datom "
                                   "delivered is gone); retry the query");
      }
    }
    uint64_t received = reply.datoms.size();
    for (size_t i = from; i < reply.datoms.size() && !seeking; ++i) {
      if (!fn(reply.datoms[i])) return Status::OK();
      last = reply.datoms[i];
    }
    if (!reply.more) return Status::OK();
    if (reply.datoms.empty()) return Status::Internal("node " + std::to_string(served) + ": empty scan reply with more");
    if (overlap && received == 1) no_overlap = true;
    r.skip = q.skip + received;
    batch = std::min<uint64_t>(batch * kBatchGrowth, kScanBatchMax);
  }
}

uint64_t RemoteSource::EstimateCount(const DatomPattern& p) const {
  ScanRequest r;
  r.op = ScanRequest::Op::kCount;
  r.shard = shard_;
  r.view = view_;
  r.pattern = p;
  Result<ScanReply> reply = Call(r);
  return reply.ok() ? reply->count : 1;
}

uint64_t RemoteSource::EstimateRange(const DatomPattern& p, const datalog::ValueRange& range) const {
  ScanRequest r;
  r.op = ScanRequest::Op::kCount;
  r.shard = shard_;
  r.view = view_;
  r.pattern = p;
  r.range = range;
  Result<ScanReply> reply = Call(r);
  return reply.ok() ? reply->count : 1;
}

uint64_t RemoteSource::EstimateDistinct(Keyword a, int position) const {
  ScanRequest r;
  r.op = ScanRequest::Op::kDistinct;
  r.shard = shard_;
  r.view = view_;
  r.attr = a;
  r.position = position == 2 ? 2 : 0;
  Result<ScanReply> reply = Call(r);
  return reply.ok() ? reply->count : 0;
}

std::optional<EntityId> RemoteSource::Lookup(Keyword attr, const Value& v) const {
  ScanRequest r;
  r.op = ScanRequest::Op::kLookup;
  r.shard = shard_;
  r.view = view_;
  r.attr = attr;
  r.value = v;
  Result<ScanReply> reply = Call(r);
  return reply.ok() ? reply->entity : std::nullopt;
}

}  // namespace cairn::cluster
