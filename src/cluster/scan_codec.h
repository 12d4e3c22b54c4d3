// Scan codec: reading a shard held on another node (docs/cluster.md, "Reads
// across shards" — the byte format is written up there).
//
//  - ScanRequest / ScanReply and their encodings: one request asks one
//    shard's view (current, as-of t, since t, history, history after t)
//    for a datom scan (pattern, skip, limit), an EstimateCount, an
//    EstimateDistinct or a Lookup; the reply carries the datoms (at most `limit`, at most about
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
// Thread-safety: functions are pure; a RemoteSource is safe to use
// concurrently if its RequestFn is (its only state, the replica to try
// first, is atomic).
#pragma once

#include <atomic>
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
  // kHistoryAfter: the history view's datoms with tx > t only, filtered by
  // the serving node (a diff ships only the changes it asks for; the view
  // provider hands out the history view for it).
  enum class Kind : uint8_t { kCurrent = 0, kAsOf = 1, kSince = 2, kHistory = 3, kHistoryAfter = 4 };
  Kind kind = Kind::kCurrent;
  TxTime t;  // kAsOf, kSince, kHistoryAfter
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

// Whether a request that failed with `code` at one replica may succeed at
// another: the transport's failures (Unavailable, Timeout, Cancelled) and the
// serving node's "not here / not now" answers (Unavailable: no replica of
// the group or no leader known; Timeout: its ReadIndex did not confirm;
// NotLeader). Anything else (InvalidArgument, a storage error, ...) is the
// answer itself.
bool RetryOnAnotherReplica(StatusCode code);

// A shard's view read over the peer wire. Scans fetch in batches: the
// first asks for 256 datoms (or the caller's limit hint), each next for 8x
// more up to kScanBatchMax, so a caller that stops early transfers little.
// `schema` is the schema the coordinator reads with (the meta group's).
//
// Replica failover: the source knows every replica of the shard (`nodes`,
// the preferred one first). A request that fails at one replica with
// RetryOnAnotherReplica(code) goes to the next (each serving node answers
// after a ReadIndex of its own, so the next replica's answer is as fresh as
// the failed one's would have been), and later requests start at the
// replica that answered; only when every replica failed does the call fail,
// naming each node's error. A scan continues where it stopped after a
// failover: every continuation batch asks for the datoms from the last one
// delivered (skip - 1) and checks that this datom comes first. Replicas
// apply the same log, so scan order and positions agree unless the shard
// changed between the batches (on one replica or across two); if the check
// fails, the scan runs again from the start, drops everything up to and
// including the last delivered datom, and goes on after it (so nothing is
// delivered twice or out of order; a datom inserted earlier in the order
// meanwhile is not shown, as if it had committed after the scan passed).
// If that datom is gone (retracted meanwhile) the scan fails Unavailable
// ("retry the query"). Estimates and lookups simply move to the next replica.
class RemoteSource final : public datalog::IndexSource, public ResumableSource {
 public:
  RemoteSource(uint32_t node, uint32_t shard, ViewSpec view, std::shared_ptr<const Schema> schema, RequestFn send);
  // REQUIRES: `nodes` non-empty.
  RemoteSource(std::vector<uint32_t> nodes, uint32_t shard, ViewSpec view, std::shared_ptr<const Schema> schema,
               RequestFn send);

  // The replica the next request goes to first (the last one that answered).
  uint32_t current_node() const { return nodes_[current_.load() % nodes_.size()]; }
  // Requests that were sent to another replica after one failed (tests).
  uint64_t failovers() const { return failovers_.load(); }

  const Schema& schema() const override { return *schema_; }
  bool is_history() const override {
    return view_.kind == ViewSpec::Kind::kHistory || view_.kind == ViewSpec::Kind::kHistoryAfter;
  }
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
  // Sends `r` to the current replica, then to each other one in turn (see
  // the class comment); `*served` = the node that answered.
  Result<ScanReply> Call(const ScanRequest& r, uint32_t* served = nullptr) const;
  Result<ScanReply> CallOne(uint32_t node, const ScanRequest& r) const;

  std::vector<uint32_t> nodes_;
  mutable std::atomic<size_t> current_{0};
  mutable std::atomic<uint64_t> failovers_{0};
  uint32_t shard_;
  ViewSpec view_;
  std::shared_ptr<const Schema> schema_;
  RequestFn send_;
};

}  // namespace cairn::cluster
