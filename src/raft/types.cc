#include "raft/types.h"

#include <algorithm>
#include <charconv>

namespace cairn::raft {

namespace {

bool Contains(const std::vector<NodeId>& sorted, NodeId id) {
  return std::binary_search(sorted.begin(), sorted.end(), id);
}

void Insert(std::vector<NodeId>* sorted, NodeId id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it == sorted->end() || *it != id) sorted->insert(it, id);
}

void Erase(std::vector<NodeId>* sorted, NodeId id) {
  auto it = std::lower_bound(sorted->begin(), sorted->end(), id);
  if (it != sorted->end() && *it == id) sorted->erase(it);
}

}  // namespace

bool ConfState::IsVoter(NodeId id) const { return Contains(voters, id); }
bool ConfState::IsLearner(NodeId id) const { return Contains(learners, id); }

// Encoding: one letter for the type, then the decimal node id ("V3", "L4",
// "R2"). Readable in transcripts and logs; the data is tiny.
std::string ConfChange::Encode() const {
  char c = type == Type::kAddVoter ? 'V' : type == Type::kAddLearner ? 'L' : 'R';
  return std::string(1, c) + std::to_string(node.value());
}

bool ConfChange::Decode(const std::string& data, ConfChange* out) {
  if (data.size() < 2) return false;
  switch (data[0]) {
    case 'V': out->type = Type::kAddVoter; break;
    case 'L': out->type = Type::kAddLearner; break;
    case 'R': out->type = Type::kRemoveNode; break;
    default: return false;
  }
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(data.data() + 1, data.data() + data.size(), v);
  if (ec != std::errc() || ptr != data.data() + data.size() || v == 0) return false;
  out->node = NodeId(v);
  return true;
}

ConfState ConfChange::ApplyTo(const ConfState& conf) const {
  ConfState next = conf;
  switch (type) {
    case Type::kAddVoter:
      Erase(&next.learners, node);
      Insert(&next.voters, node);
      break;
    case Type::kAddLearner:
      // Demoting a voter to a learner is one step too: it leaves the voters.
      Erase(&next.voters, node);
      Insert(&next.learners, node);
      break;
    case Type::kRemoveNode:
      Erase(&next.voters, node);
      Erase(&next.learners, node);
      break;
  }
  return next;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kAppend: return "Append";
    case MessageType::kAppendResp: return "AppendResp";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatResp: return "HeartbeatResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResp: return "VoteResp";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResp: return "PreVoteResp";
    case MessageType::kSnapshot: return "Snapshot";
    case MessageType::kSnapshotResp: return "SnapshotResp";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResp: return "ReadIndexResp";
  }
  return "?";
}

uint64_t Message::SizeBytes() const {
  uint64_t n = 64;
  for (const Entry& e : entries) n += e.SizeBytes();
  if (snapshot) n += snapshot->data.size();
  return n;
}

}  // namespace cairn::raft
