// Scan codec: reading a shard held on another node (docs/cluster.md, "Reads
// across shards" — the byte format is written up there).
//
//  - ScanRequest / ScanReply and their encodings: one request asks one
//    shard's view (current, as-of t, since t, history) for a datom scan
//    (pattern, skip, limit), an EstimateCount, an EstimateDistinct or a
//    Lookup; the reply carries the datoms (at most `limit`, at most about
//    reply_bytes_max bytes; `more` says the scan goes on: ask again with
//    skip + datoms.size()), the figure, or the serving node's error.
//  - ServeScanRequest: the serving side. Decodes a request, takes the view
//    from the caller's ViewProvider, runs it and encodes the reply. Every
//    failure (bad bytes, no such shard, a storage error) becomes an error
//    reply, so the node can always answer.
//  - RemoteSource: an IndexSource over a RequestFn (the node sends the bytes
//    as a kRequest frame to `node` and returns the kResponse payload), so a
//    unit test can serve from a local source with a loopback function.
//
// Decoding is for untrusted bytes: every length and count is checked
// against what remains, enums and flags are range-checked, and any bad input
// is InvalidArgument naming what and the byte offset — never a crash.
//
// Thread-safety: functions are pure; a RemoteSource is immutable and safe to
// use concurrently if its RequestFn is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "cluster/cluster_source.h"
#include "datalog/index_source.h"

namespace cairn::cluster {

// The database value a request reads.
struct ViewSpec {
  enum class Kind : uint8_t { kCurrent = 0, kAsOf = 1, kSince = 2, kHistory = 3 };
  Kind kind = Kind::kCurrent;
  TxTime t;  // kAsOf, kSince
  friend bool operator==(const ViewSpec&, const ViewSpec&) = default;
};

// Datoms per reply at most (a request's limit is capped to it).
inline constexpr uint32_t kScanBatchMax = 65536;
// A reply stops adding datoms once it is this large (the last datom may
// overshoot by its own size).
inline constexpr size_t kScanReplyBytesMax = 1u << 20;

struct ScanRequest {
  enum class Op : uint8_t { kScan = 1, kCount = 2, kDistinct = 3, kLookup = 4 };
  Op op = Op::kScan;
  uint32_t shard = 0;  // the Raft group to read (0 = the meta group)
  ViewSpec view;
  datalog::DatomPattern pattern;  // kScan, kCount
  std::optional<datalog::ValueRange> range;  // kScan, kCount: ScanRange / EstimateRange
  uint64_t skip = 0;              // kScan: leading datoms of the scan to skip
  uint32_t limit = kScanBatchMax; // kScan: datoms at most (1..kScanBatchMax)
  Keyword attr;                   // kDistinct, kLookup
  int position = 0;               // kDistinct: 0 (entities) or 2 (values)
  Value value;                    // kLookup
};

struct ScanReply {
  ScanRequest::Op op = ScanRequest::Op::kScan;  // which fields below are meaningful
  Status status;                  // not OK: the serving node's error (nothing else set)
  std::vector<Datom> datoms;      // kScan, in the view's Scan order
  bool more = false;              // kScan: more datoms follow (ask with skip + datoms.size())
  uint64_t count = 0;             // kCount, kDistinct
  std::optional<EntityId> entity; // kLookup
};

std::string EncodeScanRequest(const ScanRequest& r);
Result<ScanRequest> DecodeScanRequest(std::string_view bytes);
std::string EncodeScanReply(const ScanReply& r);
// Decodes a reply. Bad bytes: InvalidArgument. An error reply decodes fine:
// its status is in ScanReply::status.
Result<ScanReply> DecodeScanReply(std::string_view bytes);

// The view `spec` of group `shard` on this node; an error if this node does
// not hold it (Unavailable/WrongShard/NotFound, passed back to the reader).
using ViewProvider =
    std::function<Result<std::shared_ptr<const datalog::IndexSource>>(uint32_t shard, const ViewSpec& spec)>;

// Serves one request: always returns an encoded reply (errors included).
std::string ServeScanRequest(std::string_view request, const ViewProvider& views,
                             size_t reply_bytes_max = kScanReplyBytesMax);

// Sends `request` to node `node` and returns its reply bytes, or the
// transport's error (Unavailable, Timeout, ...).
using RequestFn = std::function<Result<std::string>(uint32_t node, std::string request)>;

// A shard's view read over the peer wire. Scans fetch in batches: the
// first asks for 256 datoms (or the caller's limit hint), each next for 8x
// more up to kScanBatchMax, so a caller that stops early transfers little.
// `schema` is the schema the coordinator reads with (the meta group's).
class RemoteSource final : public datalog::IndexSource, public ResumableSource {
 public:
  RemoteSource(uint32_t node, uint32_t shard, ViewSpec view, std::shared_ptr<const Schema> schema, RequestFn send);

  const Schema& schema() const override { return *schema_; }
  bool is_history() const override { return view_.kind == ViewSpec::Kind::kHistory; }
  // Errors: the transport's, or the serving node's (with "node N: " before
  // its message and the code it sent).
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  Status ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                   const std::function<bool(const Datom&)>& fn) const override;
  Status ScanFrom(const datalog::DatomPattern& p, const datalog::ValueRange* range, uint64_t skip,
                  uint64_t limit_hint, const std::function<bool(const Datom&)>& fn) const override;
  // The estimates cannot report errors: on one they answer as if unknown
  // (EstimateCount: 1, so the planner never takes it for empty).
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override;
  uint64_t EstimateRange(const datalog::DatomPattern& p, const datalog::ValueRange& r) const override;
  uint64_t EstimateDistinct(Keyword a, int position) const override;
  // nullopt on an error as well as on no match (the IndexSource contract has
  // no error here); the later Scan of the query reports the error.
  std::optional<EntityId> Lookup(Keyword attr, const Value& v) const override;

 private:
  Result<ScanReply> Call(const ScanRequest& r) const;

  uint32_t node_;
  uint32_t shard_;
  ViewSpec view_;
  std::shared_ptr<const Schema> schema_;
  RequestFn send_;
};

}  // namespace cairn::cluster
