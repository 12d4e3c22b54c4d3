// Vocabulary of the Raft core: strong ids, log entries, hard state, snapshots
// and the messages replicas exchange.
//
// Every id is a distinct type (STYLE 9) so a LogIndex is never passed where a
// Term or a count is expected. All types here are plain values: copyable,
// comparable, no shared mutable state. Thread-safety: values only.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cairn::raft {

// A 64-bit id with its own type. `Tag` only distinguishes the types.
template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool IsZero() const { return v_ == 0; }
  constexpr auto operator<=>(const StrongId&) const = default;

 private:
  uint64_t v_ = 0;
};

struct TermTag {};
struct NodeIdTag {};
struct GroupIdTag {};

// Election term. Zero means "no term yet".
class Term : public StrongId<TermTag> {
 public:
  using StrongId::StrongId;
  constexpr Term Next() const { return Term(value() + 1); }
};

// Position in the replicated log, 1-based. Zero means "before the first entry".
class LogIndex : public StrongId<struct LogIndexTag> {
 public:
  using StrongId::StrongId;
  constexpr LogIndex Next() const { return LogIndex(value() + 1); }
  constexpr LogIndex Prev() const { return LogIndex(value() - 1); }
  constexpr LogIndex Plus(uint64_t n) const { return LogIndex(value() + n); }
  // Number of entries in (from, to]; zero if to <= from.
  static constexpr uint64_t Count(LogIndex from, LogIndex to) {
    return to.value() > from.value() ? to.value() - from.value() : 0;
  }
};

// A replica's identity within a group; in Cairn, the node that hosts it.
// Zero means "none" (no leader, no vote).
using NodeId = StrongId<NodeIdTag>;
// One Raft group (a shard or the meta group).
using GroupId = StrongId<GroupIdTag>;

constexpr NodeId kNoNode{};

enum class EntryType : uint8_t {
  kNormal = 0,      // a command for the state machine
  kNoop = 1,        // appended by a new leader so it can commit in its own term
  kConfChange = 2,  // data holds an encoded ConfChange
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes counted against in-flight, batching and uncommitted-tail bounds.
  uint64_t SizeBytes() const { return data.size() + 24; }
  bool operator==(const Entry&) const = default;
};

// What must survive a crash besides the log. Persisted (durably) before any
// message produced in the same Ready is sent.
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;
  bool operator==(const HardState&) const = default;
};

// Group membership. Voters elect and form quorums; learners only receive the
// log. Both lists are sorted and disjoint.
struct ConfState {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;

  bool IsVoter(NodeId id) const;
  bool IsLearner(NodeId id) const;
  bool IsMember(NodeId id) const { return IsVoter(id) || IsLearner(id); }
  bool operator==(const ConfState&) const = default;
};

// One membership step. Changes are applied one at a time (see raft_node.h).
struct ConfChange {
  enum class Type : uint8_t { kAddVoter, kAddLearner, kRemoveNode };
  Type type = Type::kAddVoter;
  NodeId node;

  std::string Encode() const;
  // Returns false if `data` is not an encoded ConfChange.
  static bool Decode(const std::string& data, ConfChange* out);
  // The membership after applying this change to `conf`.
  ConfState ApplyTo(const ConfState& conf) const;
};

struct SnapshotMeta {
  LogIndex index;  // last entry the snapshot covers
  Term term;       // term of that entry
  ConfState conf;  // membership as of `index`
};

// A state-machine image supplied by the application. The data is shared, not
// copied, when sent to several followers.
struct Snapshot {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
};

enum class MessageType : uint8_t {
  kAppend,         // index/log_term: previous entry; entries; commit
  kAppendResp,     // index: last matching index, or rejected prev index; reject hints
  kHeartbeat,      // commit; context: heartbeat round (ReadIndex and lease)
  kHeartbeatResp,  // context: echoed round
  kVote,           // index/log_term: candidate's last entry; context: kCampaignTransfer
  kVoteResp,
  kPreVote,  // term: the term the candidate would campaign in
  kPreVoteResp,
  kSnapshot,      // one chunk of an InstallSnapshot; see SnapshotChunk
  kSnapshotResp,  // index: next chunk offset expected by the follower (bytes)
  kTimeoutNow,    // leadership transfer: campaign now, skipping PreVote
  kReadIndex,     // follower -> leader; context: request id
  kReadIndexResp, // leader -> follower; index: read index; context: request id
};

const char* MessageTypeName(MessageType t);

// One chunk of an InstallSnapshot. The follower takes chunks in order
// (assembled in memory, or handed to Config::write_snapshot_chunk) and
// installs the snapshot when `done` arrives.
struct SnapshotChunk {
  SnapshotMeta meta;
  uint64_t offset_bytes = 0;
  uint64_t total_bytes = 0;
  std::string data;
  bool done = false;
};

// The vote context that lets a leadership-transfer campaign bypass the
// followers' leader stickiness.
constexpr uint64_t kCampaignTransfer = 1;

struct Message {
  MessageType type = MessageType::kAppend;
  GroupId group;
  NodeId from;
  NodeId to;
  Term term;
  LogIndex index;
  Term log_term;
  LogIndex commit;
  std::vector<Entry> entries;
  bool reject = false;
  LogIndex reject_hint;  // kAppendResp: first index the follower may be missing
  uint64_t context = 0;
  bool quiesce = false;  // kHeartbeat: the leader is idle; stop ticking until woken
  std::shared_ptr<const SnapshotChunk> snapshot;  // kSnapshot only

  uint64_t SizeBytes() const;
};

}  // namespace cairn::raft
