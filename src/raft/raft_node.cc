#include "raft/raft_node.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "core/check.h"

namespace cairn::raft {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

RestoredState RaftNode::Bootstrap(const ConfState& conf) {
  RestoredState s;
  s.snapshot = Snapshot{SnapshotMeta{LogIndex(1), Term(1), conf},
                        std::make_shared<const std::string>()};
  s.hard_state = HardState{Term(1), kNoNode, LogIndex(1)};
  return s;
}

RaftNode::RaftNode(const Config& config, RestoredState restored)
    : config_(config), rng_(config.seed ^ (config.id.value() * 0x9e3779b97f4a7c15ULL)) {
  CAIRN_CHECK(!config_.id.IsZero());
  CAIRN_CHECK(config_.election_ticks_min < config_.election_ticks_max);
  CAIRN_CHECK(config_.heartbeat_ticks < config_.election_ticks_min);
  CAIRN_CHECK(config_.inflight_msgs_max > 0 && config_.entries_per_msg_max > 0 && config_.apply_entries_per_ready_max > 0);
  if (restored.snapshot) {
    snapshot_ = *restored.snapshot;
    log_.Reset(snapshot_.meta.index, snapshot_.meta.term);
    conf_base_ = snapshot_.meta.conf;
  } else {
    snapshot_.data = std::make_shared<const std::string>();
  }
  conf_ = conf_base_;
  // Entries already covered by the snapshot may linger in storage if a crash
  // hit between saving the snapshot and compacting; skip them.
  std::vector<Entry> entries;
  for (Entry& e : restored.entries) {
    if (e.index > log_.base_index()) entries.push_back(std::move(e));
  }
  CAIRN_CHECK_MSG(entries.empty() || entries.front().index == log_.first_index(),
                  "restored log does not continue the snapshot");
  log_.RestoreStable(std::move(entries));
  for (LogIndex i = log_.first_index(); i <= log_.last_index(); i = i.Next()) {
    OnEntryAppended(log_.At(i));
  }
  term_ = std::max(restored.hard_state.term, snapshot_.meta.term);
  vote_ = restored.hard_state.term == term_ ? restored.hard_state.vote : kNoNode;
  commit_ = std::max(restored.hard_state.commit, log_.base_index());
  commit_ = std::min(commit_, log_.last_index());
  applied_ = log_.base_index();
  persisted_hs_ = HardState{term_, vote_, commit_};
  // Only leases depend on a restarted node honouring a lease it may have
  // promised before the crash; without them, voting at once is safe.
  restart_guard_ = config_.lease_reads;
  ResetElectionTimer();
}

// ---------------------------------------------------------------------------
// Role transitions

void RaftNode::ResetElectionTimer() {
  election_elapsed_ = 0;
  randomized_election_ticks_ = static_cast<uint32_t>(
      rng_.Range(config_.election_ticks_min, config_.election_ticks_max - 1));
}

void RaftNode::ResetForTerm(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  ResetElectionTimer();
  heartbeat_elapsed_ = 0;
  AbortTransfer();
  granted_.clear();
  rejected_.clear();
  pending_reads_.clear();
  reads_awaiting_commit_.clear();
  lease_revoked_ = false;
  uncommitted_bytes_ = 0;
  idle_rounds_ = 0;
  quiesced_ = false;
  incoming_.reset();
  progress_.clear();
}

void RaftNode::BecomeFollower(Term term, NodeId lead) {
  ResetForTerm(term);
  role_ = Role::kFollower;
  lead_ = lead;
}

void RaftNode::BecomeLeader() {
  CAIRN_CHECK(role_ == Role::kCandidate || role_ == Role::kPreCandidate);
  ResetForTerm(term_);
  role_ = Role::kLeader;
  lead_ = config_.id;
  std::vector<NodeId> members = conf_.voters;
  members.insert(members.end(), conf_.learners.begin(), conf_.learners.end());
  std::sort(members.begin(), members.end());
  for (NodeId id : members) {
    progress_.emplace_back(id, log_.last_index().Next());
    if (id == config_.id) {
      progress_.back().MaybeUpdate(log_.stable_last());
      progress_.back().BecomeReplicate();
      progress_.back().recent_active = true;
    }
  }
  pending_conf_index_ = conf_history_.empty() ? LogIndex() : conf_history_.back().first;
  AppendLocal(EntryType::kNoop, std::string());
  noop_index_ = log_.last_index();
}

void RaftNode::Campaign() {
  CheckNotInReady();
  Unquiesce();
  CampaignAs(config_.pre_vote ? CampaignKind::kPreVote : CampaignKind::kElection);
}

void RaftNode::CampaignAs(CampaignKind kind) {
  if (!Promotable()) return;
  MessageType type;
  Term vote_term;
  if (kind == CampaignKind::kPreVote) {
    // Neither the term nor the vote changes: nothing to persist, and a failed
    // pre-campaign leaves the rest of the group undisturbed.
    role_ = Role::kPreCandidate;
    lead_ = kNoNode;
    ResetElectionTimer();
    granted_.clear();
    rejected_.clear();
    type = MessageType::kPreVote;
    vote_term = term_.Next();
  } else {
    ResetForTerm(term_.Next());
    role_ = Role::kCandidate;
    vote_ = config_.id;
    type = MessageType::kVote;
    vote_term = term_;
  }
  granted_.push_back(config_.id);
  if (granted_.size() >= Quorum()) {
    if (kind == CampaignKind::kPreVote) {
      CampaignAs(CampaignKind::kElection);
    } else {
      BecomeLeader();
    }
    return;
  }
  for (NodeId peer : conf_.voters) {
    if (peer == config_.id) continue;
    Message m;
    m.type = type;
    m.to = peer;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.context = kind == CampaignKind::kTransfer ? kCampaignTransfer : 0;
    Send(std::move(m));
  }
}

// ---------------------------------------------------------------------------
// Inputs

void RaftNode::Tick() {
  CheckNotInReady();
  now_ticks_++;
  if (quiesced_) return;
  election_elapsed_++;
  if (role_ == Role::kLeader) {
    heartbeat_elapsed_++;
    if (election_elapsed_ >= config_.election_ticks_min) {
      election_elapsed_ = 0;
      if (config_.check_quorum) {
        size_t active = 0;
        for (Progress& pr : progress_) {
          if (conf_.IsVoter(pr.id()) && (pr.recent_active || pr.id() == config_.id)) active++;
          if (pr.id() != config_.id) pr.recent_active = false;
        }
        if (active < Quorum()) {
          BecomeFollower(term_, kNoNode);
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned
      // so the group accepts proposals again.
      AbortTransfer();
    }
    if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      BroadcastHeartbeat();
    }
    return;
  }
  if (restart_guard_ && election_elapsed_ >= config_.election_ticks_min) restart_guard_ = false;
  if (Promotable() && election_elapsed_ >= randomized_election_ticks_) {
    CampaignAs(config_.pre_vote ? CampaignKind::kPreVote : CampaignKind::kElection);
  }
}

Status RaftNode::Step(const Message& m) {
  CheckNotInReady();
  if (m.from.IsZero() || m.from == config_.id) return Status::InvalidArgument("bad sender");
  if (m.type == MessageType::kSnapshot && !m.snapshot) {
    return Status::InvalidArgument("snapshot message without chunk");
  }
  if (m.type == MessageType::kAppend) {
    // A peer's bytes are input, not an invariant: refuse a malformed append
    // instead of tripping the log's checks.
    LogIndex expect = m.index.Next();
    Term prev = m.log_term;
    if (prev > m.term) return Status::InvalidArgument("append: previous term above message term");
    for (const Entry& e : m.entries) {
      if (e.index != expect || e.term < prev || e.term > m.term) {
        return Status::InvalidArgument("append: entries not contiguous or terms out of order");
      }
      expect = expect.Next();
      prev = e.term;
    }
  }
  // The last idle heartbeat round and its answers do not wake the group.
  if (quiesced_ && !(m.type == MessageType::kHeartbeat && m.quiesce) &&
      m.type != MessageType::kHeartbeatResp) {
    Unquiesce();
  }

  if (m.term > term_) {
    const bool vote_request = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
    if (vote_request) {
      const bool force = m.context == kCampaignTransfer;
      const bool in_lease = config_.check_quorum && (!lead_.IsZero() || restart_guard_) &&
                            election_elapsed_ < config_.election_ticks_min;
      if (!force && in_lease) return Status::OK();  // leader stickiness
    }
    if (m.type == MessageType::kPreVote) {
      // Asking costs nothing: our term stays.
    } else if (m.type == MessageType::kPreVoteResp && !m.reject) {
      // A grant carries the term we would campaign in; handled below.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A deposed leader that missed the election: tell it the term so it
      // steps down instead of retrying forever.
      Message r;
      r.type = MessageType::kAppendResp;
      r.to = m.from;
      r.term = term_;
      Send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResp;
      r.to = m.from;
      r.term = term_;
      r.reject = true;
      Send(std::move(r));
    }
    return Status::OK();
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::OK();
  }
  switch (role_) {
    case Role::kLeader: StepLeader(m); break;
    case Role::kCandidate:
    case Role::kPreCandidate: StepCandidate(m); break;
    case Role::kFollower: StepFollower(m); break;
  }
  return Status::OK();
}

void RaftNode::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  const bool can_vote = vote_ == m.from || (vote_.IsZero() && lead_.IsZero()) ||
                        (pre && m.term > term_);
  const bool log_ok = log_.IsUpToDate(m.index, m.log_term) ||
                      (pre && config_.mutations.prevote_skips_log_check);
  Message r;
  r.type = pre ? MessageType::kPreVoteResp : MessageType::kVoteResp;
  r.to = m.from;
  if (can_vote && log_ok) {
    // A PreVote grant answers in the term asked about so the candidate can
    // tell it from a stale answer.
    r.term = m.term;
    if (!pre) {
      vote_ = m.from;
      ResetElectionTimer();
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  Send(std::move(r));
}

void RaftNode::StepCandidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return;
    case MessageType::kSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshotChunk(m);
      return;
    case MessageType::kVoteResp:
    case MessageType::kPreVoteResp: {
      const bool mine = (m.type == MessageType::kVoteResp && role_ == Role::kCandidate) ||
                        (m.type == MessageType::kPreVoteResp && role_ == Role::kPreCandidate);
      if (!mine || !conf_.IsVoter(m.from)) return;
      auto& list = m.reject ? rejected_ : granted_;
      if (std::find(granted_.begin(), granted_.end(), m.from) != granted_.end() ||
          std::find(rejected_.begin(), rejected_.end(), m.from) != rejected_.end()) {
        return;  // duplicate
      }
      list.push_back(m.from);
      if (granted_.size() >= Quorum()) {
        if (role_ == Role::kPreCandidate) {
          CampaignAs(CampaignKind::kElection);
        } else {
          BecomeLeader();
        }
      } else if (rejected_.size() >= Quorum()) {
        BecomeFollower(term_, kNoNode);
      }
      return;
    }
    default:
      return;
  }
}

void RaftNode::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      ResetElectionTimer();
      lead_ = m.from;
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      ResetElectionTimer();
      lead_ = m.from;
      HandleHeartbeat(m);
      return;
    case MessageType::kSnapshot:
      ResetElectionTimer();
      lead_ = m.from;
      HandleSnapshotChunk(m);
      return;
    case MessageType::kTimeoutNow:
      // The leader chose us: campaign at once, without PreVote, and ask voters
      // to set aside their stickiness.
      CampaignAs(CampaignKind::kTransfer);
      return;
    case MessageType::kReadIndexResp:
      read_states_.push_back(ReadState{m.context, m.index});
      return;
    default:
      return;
  }
}

// ---------------------------------------------------------------------------
// Follower side of replication

void RaftNode::HandleAppend(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  r.term = term_;
  if (m.index < commit_) {
    // Everything up to commit already matches the leader.
    r.index = commit_;
    Send(std::move(r));
    return;
  }
  if (log_.Matches(m.index, m.log_term)) {
    AppendFromLeader(m.entries);
    const LogIndex last_new = m.index.Plus(m.entries.size());
    const LogIndex new_commit = std::min(m.commit, last_new);
    if (new_commit > commit_) commit_ = new_commit;
    r.index = last_new;
    Send(std::move(r));
    return;
  }
  // Conflict. Hint the largest index whose term is <= the leader's term at
  // m.index, and that term, so the leader can skip a whole term per round
  // trip in either direction.
  const LogIndex hint = log_.LastIndexWithTermAtMost(m.index, m.log_term);
  r.reject = true;
  r.index = m.index;
  r.reject_hint = hint;
  r.log_term = log_.HasTerm(hint) ? log_.TermAt(hint) : Term();
  Send(std::move(r));
}

void RaftNode::AppendFromLeader(const std::vector<Entry>& entries) {
  for (const Entry& e : entries) {
    if (e.index <= log_.last_index()) {
      if (e.index <= log_.base_index() || log_.TermAt(e.index) == e.term) continue;
      // A conflicting suffix was never committed (log matching + leader
      // completeness); replace it.
      CAIRN_CHECK_MSG(e.index > commit_, "leader overwrote a committed entry");
      log_.TruncateFrom(e.index);
      RollbackConfFrom(e.index);
    }
    log_.Append(e);
    OnEntryAppended(e);
  }
}

void RaftNode::HandleHeartbeat(const Message& m) {
  const LogIndex c = std::min(m.commit, log_.last_index());
  if (c > commit_) commit_ = c;
  if (m.quiesce && config_.quiesce_after_idle_rounds > 0 && commit_ == log_.last_index()) {
    quiesced_ = true;
  }
  Message r;
  r.type = MessageType::kHeartbeatResp;
  r.to = m.from;
  r.term = term_;
  r.context = m.context;
  Send(std::move(r));
}

void RaftNode::HandleSnapshotChunk(const Message& m) {
  const SnapshotChunk& chunk = *m.snapshot;
  const SnapshotMeta& meta = chunk.meta;
  if (meta.index <= commit_) {
    Message r;
    r.type = MessageType::kAppendResp;
    r.to = m.from;
    r.term = term_;
    r.index = commit_;
    Send(std::move(r));
    return;
  }
  if (chunk.offset_bytes == 0) incoming_ = IncomingSnapshot{meta, std::string(), 0};
  auto ask_from = [&](uint64_t offset) {
    Message r;
    r.type = MessageType::kSnapshotResp;
    r.to = m.from;
    r.term = term_;
    r.index = meta.index;
    r.reject = true;
    r.context = offset;
    Send(std::move(r));
  };
  if (!incoming_ || incoming_->meta.index != meta.index || incoming_->meta.term != meta.term ||
      incoming_->received != chunk.offset_bytes) {
    // Out of order (a lost or reordered chunk): say where we are.
    ask_from(incoming_ && incoming_->meta.index == meta.index ? incoming_->received : 0);
    return;
  }
  if (config_.write_snapshot_chunk) {
    // The host could not store it (a full disk?): no answer, so the leader
    // sends it again after the next heartbeat, not at once.
    if (!config_.write_snapshot_chunk(meta, chunk.offset_bytes, chunk.data)) return;
  } else {
    incoming_->data += chunk.data;
  }
  incoming_->received += chunk.data.size();
  if (!chunk.done) {
    Message r;
    r.type = MessageType::kSnapshotResp;
    r.to = m.from;
    r.term = term_;
    r.index = meta.index;
    r.context = incoming_->received;
    Send(std::move(r));
    return;
  }
  // Streamed to the host: it holds the bytes, the Ready carries none.
  Snapshot snap{incoming_->meta, config_.write_snapshot_chunk
                                     ? nullptr
                                     : std::make_shared<const std::string>(std::move(incoming_->data))};
  incoming_.reset();
  if (log_.Matches(meta.index, meta.term)) {
    // We already hold the snapshot's last entry, so the log is a superset.
    commit_ = meta.index;
  } else {
    log_.Reset(meta.index, meta.term);
    commit_ = meta.index;
    conf_history_.clear();
    conf_base_ = meta.conf;
    SetConf(conf_base_);
    snapshot_ = snap;
    pending_install_ = snap;
  }
  Message r;
  r.type = MessageType::kAppendResp;
  r.to = m.from;
  r.term = term_;
  r.index = meta.index;
  Send(std::move(r));
}

// ---------------------------------------------------------------------------
// Leader side

Progress* RaftNode::FindProgress(NodeId id) {
  auto it = std::lower_bound(progress_.begin(), progress_.end(), id,
                             [](const Progress& p, NodeId v) { return p.id() < v; });
  return it != progress_.end() && it->id() == id ? &*it : nullptr;
}

const Progress* RaftNode::progress(NodeId id) const {
  return const_cast<RaftNode*>(this)->FindProgress(id);
}

void RaftNode::StepLeader(const Message& m) {
  Progress* pr = FindProgress(m.from);
  if (pr == nullptr) return;  // not a member (any more)
  pr->recent_active = true;
  switch (m.type) {
    case MessageType::kAppendResp: HandleAppendResp(pr, m); break;
    case MessageType::kHeartbeatResp: HandleHeartbeatResp(pr, m); break;
    case MessageType::kSnapshotResp: HandleSnapshotResp(pr, m); break;
    case MessageType::kReadIndex: HandleReadRequest(m.context, m.from); break;
    default: break;
  }
}

void RaftNode::HandleAppendResp(Progress* pr, const Message& m) {
  if (m.reject) {
    // Ignore rejections of messages we no longer care about.
    if (pr->state() == Progress::State::kReplicate && m.index <= pr->match()) return;
    if (pr->state() == Progress::State::kProbe && m.index != pr->next().Prev()) return;
    if (pr->state() == Progress::State::kSnapshot) return;
    LogIndex next = m.reject_hint.Next();
    if (!m.log_term.IsZero()) {
      next = log_.LastIndexWithTermAtMost(m.reject_hint, m.log_term).Next();
    }
    next = std::min(next, m.index);  // strictly below the rejected probe
    pr->BecomeProbe(next);
    SendAppend(pr, /*allow_empty=*/true);
    return;
  }
  if (pr->MaybeUpdate(m.index)) {
    if (pr->state() == Progress::State::kProbe) {
      pr->BecomeReplicate();
    } else if (pr->state() == Progress::State::kSnapshot && pr->match() >= pr->snapshot_index()) {
      pr->BecomeReplicate();
    }
    if (MaybeCommit()) need_broadcast_append_ = true;
    if (m.from == lead_transferee_ && pr->match() == log_.last_index()) SendTimeoutNow(m.from);
  }
  if (pr->state() != Progress::State::kSnapshot) SendAppendsWhileOpen(pr);
}

void RaftNode::HandleHeartbeatResp(Progress* pr, const Message& m) {
  if (m.context > pr->acked_round) pr->acked_round = m.context;
  ReleaseReads();
  switch (pr->state()) {
    case Progress::State::kSnapshot:
      SendSnapshotChunk(pr);  // resend the unacknowledged chunk
      return;
    case Progress::State::kProbe:
      pr->ResumeProbe();
      if (pr->match() < log_.last_index()) SendAppend(pr, true);
      return;
    case Progress::State::kReplicate:
      // An empty append at next: if appends were lost, the follower rejects it
      // and we fall back to probing; otherwise it simply acknowledges.
      if (pr->match() < log_.last_index()) {
        if (pr->InflightFull(config_.inflight_msgs_max, config_.inflight_bytes_max)) {
          pr->BecomeProbe(pr->match().Next());
        }
        SendAppend(pr, true);
      }
      return;
  }
}

void RaftNode::HandleSnapshotResp(Progress* pr, const Message& m) {
  if (pr->state() != Progress::State::kSnapshot || m.index != pr->snapshot_index()) return;
  pr->set_snapshot_offset_bytes(m.context);
  SendSnapshotChunk(pr);
}

bool RaftNode::SendAppend(Progress* pr, bool allow_empty) {
  if (pr->id() == config_.id) return false;
  if (pr->state() == Progress::State::kSnapshot) return false;
  const LogIndex prev = pr->next().Prev();
  if (!log_.HasTerm(prev)) {
    // The entries it needs were compacted away.
    if (snapshot_.meta.index.IsZero() || !SnapshotSendable()) return false;
    pr->BecomeSnapshot(snapshot_.meta.index);
    SendSnapshotChunk(pr);
    return true;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = pr->id();
  m.term = term_;
  m.index = prev;
  m.log_term = log_.TermAt(prev);
  m.commit = commit_;
  if (pr->next() <= log_.last_index()) {
    m.entries = log_.Slice(pr->next(), log_.last_index(), config_.bytes_per_msg_max,
                           config_.entries_per_msg_max);
  }
  if (m.entries.empty() && !allow_empty) return false;
  const LogIndex last = m.entries.empty() ? prev : m.entries.back().index;
  pr->OnSent(last, m.SizeBytes());
  Send(std::move(m));
  return true;
}

void RaftNode::SendAppendsWhileOpen(Progress* pr) {
  while (!pr->IsPaused(config_.inflight_msgs_max, config_.inflight_bytes_max) &&
         pr->next() <= log_.last_index()) {
    if (!SendAppend(pr, false)) return;
    if (pr->state() != Progress::State::kReplicate) return;
  }
}

bool RaftNode::SnapshotSendable() const { return snapshot_.data != nullptr || config_.read_snapshot_chunk; }

void RaftNode::SendSnapshotChunk(Progress* pr) {
  if (pr->snapshot_index() != snapshot_.meta.index) pr->BecomeSnapshot(snapshot_.meta.index);
  auto chunk = std::make_shared<SnapshotChunk>();
  chunk->meta = snapshot_.meta;
  // The bytes held, or the host's reader: the chunk at `offset`, and the total.
  auto read = [&](uint64_t offset) -> std::optional<uint64_t> {
    if (!snapshot_.data) {
      if (!config_.read_snapshot_chunk) return std::nullopt;
      return config_.read_snapshot_chunk(snapshot_.meta, offset, config_.snapshot_chunk_bytes, &chunk->data);
    }
    const std::string& data = *snapshot_.data;
    chunk->data = offset < data.size() ? data.substr(offset, config_.snapshot_chunk_bytes) : std::string();
    return data.size();
  };
  uint64_t offset = pr->snapshot_offset_bytes();
  std::optional<uint64_t> total = read(offset);
  if (total && offset > *total) total = read(offset = 0);  // asked past the end: start over
  // Unreadable now: the next heartbeat round tries again.
  if (!total || chunk->data.size() > *total - offset) return;
  chunk->offset_bytes = offset;
  chunk->total_bytes = *total;
  chunk->done = chunk->offset_bytes + chunk->data.size() == chunk->total_bytes;
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = pr->id();
  m.term = term_;
  m.snapshot = std::move(chunk);
  Send(std::move(m));
}

void RaftNode::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  m.term = term_;
  Send(std::move(m));
}

void RaftNode::BroadcastAppend() {
  for (Progress& pr : progress_) {
    if (pr.id() == config_.id || pr.state() == Progress::State::kSnapshot) continue;
    if (pr.next() <= log_.last_index()) {
      SendAppendsWhileOpen(&pr);
    } else if (!pr.IsPaused(config_.inflight_msgs_max, config_.inflight_bytes_max)) {
      SendAppend(&pr, /*allow_empty=*/true);  // carries the new commit index
    }
  }
}

void RaftNode::BroadcastHeartbeat() {
  bool idle = config_.quiesce_after_idle_rounds > 0 && commit_ == log_.last_index() &&
              pending_reads_.empty() && reads_awaiting_commit_.empty() &&
              lead_transferee_.IsZero();
  for (const Progress& pr : progress_) {
    if (pr.match() != log_.last_index()) idle = false;
  }
  idle_rounds_ = idle ? idle_rounds_ + 1 : 0;
  const bool quiesce = idle && idle_rounds_ >= config_.quiesce_after_idle_rounds;
  hb_round_++;
  round_ticks_.emplace_back(hb_round_, now_ticks_);
  size_t stale = 0;
  while (round_ticks_.size() - stale > 2 &&
         round_ticks_[stale].second + config_.election_ticks_max < now_ticks_) {
    stale++;
  }
  round_ticks_.erase(round_ticks_.begin(), round_ticks_.begin() + stale);
  for (Progress& pr : progress_) {
    if (pr.id() == config_.id) {
      pr.acked_round = hb_round_;
      continue;
    }
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = pr.id();
    m.term = term_;
    m.commit = std::min(pr.match(), commit_);
    m.context = hb_round_;
    m.quiesce = quiesce;
    Send(std::move(m));
  }
  if (quiesce) quiesced_ = true;
}

void RaftNode::FlushBroadcasts() {
  if (role_ != Role::kLeader) {
    need_broadcast_append_ = need_broadcast_heartbeat_ = false;
    return;
  }
  if (need_broadcast_heartbeat_) {
    need_broadcast_heartbeat_ = false;
    BroadcastHeartbeat();
  }
  if (need_broadcast_append_) {
    need_broadcast_append_ = false;
    BroadcastAppend();
  }
}

bool RaftNode::MaybeCommit() {
  std::vector<LogIndex> matches;
  matches.reserve(conf_.voters.size());
  for (NodeId v : conf_.voters) {
    const Progress* pr = FindProgress(v);
    matches.push_back(pr ? pr->match() : LogIndex());
  }
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  const LogIndex candidate = matches[Quorum() - 1];
  if (candidate <= commit_ || !log_.HasTerm(candidate)) return false;
  // Raft §5.4.2: counting replicas commits only entries of the current term;
  // older entries commit with them. Counting older entries is figure 8's bug.
  if (log_.TermAt(candidate) != term_ && !config_.mutations.commit_previous_term) return false;
  const LogIndex old = commit_;
  commit_ = candidate;
  OnCommitAdvanced(old);
  return true;
}

void RaftNode::OnCommitAdvanced(LogIndex old_commit) {
  for (LogIndex i = old_commit.Next(); i <= commit_; i = i.Next()) {
    if (i < log_.first_index()) continue;
    const Entry& e = log_.At(i);
    if (e.term == term_) {
      uncommitted_bytes_ -= std::min(uncommitted_bytes_, e.SizeBytes());
    }
  }
  if (CommittedInTerm() && !reads_awaiting_commit_.empty()) {
    auto waiting = std::move(reads_awaiting_commit_);
    reads_awaiting_commit_.clear();
    for (auto& [id, from] : waiting) HandleReadRequest(id, from);
  }
  // A leader that removed itself hands over once the change is committed.
  if (!conf_.IsVoter(config_.id) && commit_ >= pending_conf_index_) {
    NodeId best;
    LogIndex best_match;
    for (const Progress& pr : progress_) {
      if (pr.id() != config_.id && conf_.IsVoter(pr.id()) && pr.match() >= best_match) {
        best = pr.id();
        best_match = pr.match();
      }
    }
    if (!best.IsZero() && best_match == log_.last_index()) SendTimeoutNow(best);
    // Tell followers the commit index before going quiet.
    BroadcastAppend();
    BecomeFollower(term_, kNoNode);
  }
}

bool RaftNode::CommittedInTerm() const {
  return role_ == Role::kLeader && commit_ >= noop_index_ && !noop_index_.IsZero();
}

// ---------------------------------------------------------------------------
// Reads

Status RaftNode::ReadIndex(uint64_t request_id) {
  CheckNotInReady();
  Unquiesce();
  if (role_ == Role::kLeader) {
    HandleReadRequest(request_id, config_.id);
    return Status::OK();
  }
  if (lead_.IsZero()) return Status::Unavailable("no leader");
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.term = term_;
  m.context = request_id;
  Send(std::move(m));
  return Status::OK();
}

void RaftNode::HandleReadRequest(uint64_t request_id, NodeId from) {
  if (config_.mutations.read_without_read_index) {
    ReleaseRead(request_id, commit_, from);
    return;
  }
  if (!CommittedInTerm()) {
    // Our commit index may lag the previous leader's until our no-op commits.
    reads_awaiting_commit_.emplace_back(request_id, from);
    return;
  }
  if (conf_.voters.size() == 1 && conf_.IsVoter(config_.id)) {
    ReleaseRead(request_id, commit_, from);
    return;
  }
  if (LeaseValid()) {
    ReleaseRead(request_id, commit_, from);
    return;
  }
  pending_reads_.push_back(PendingRead{request_id, commit_, hb_round_ + 1, from});
  need_broadcast_heartbeat_ = true;
}

uint64_t RaftNode::QuorumAckedRound() const {
  std::vector<uint64_t> rounds;
  for (NodeId v : conf_.voters) {
    const Progress* pr = progress(v);
    rounds.push_back(pr ? pr->acked_round : 0);
  }
  if (rounds.empty()) return 0;
  std::sort(rounds.begin(), rounds.end(), std::greater<>());
  return rounds[Quorum() - 1];
}

void RaftNode::ReleaseReads() {
  if (pending_reads_.empty()) return;
  const uint64_t confirmed = QuorumAckedRound();
  size_t done = 0;
  while (done < pending_reads_.size() && pending_reads_[done].round <= confirmed) {
    const PendingRead& r = pending_reads_[done];
    ReleaseRead(r.request_id, r.index, r.from);
    done++;
  }
  pending_reads_.erase(pending_reads_.begin(), pending_reads_.begin() + done);
}

void RaftNode::ReleaseRead(uint64_t request_id, LogIndex index, NodeId from) {
  if (from == config_.id) {
    read_states_.push_back(ReadState{request_id, index});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResp;
  m.to = from;
  m.term = term_;
  m.index = index;
  m.context = request_id;
  Send(std::move(m));
}

bool RaftNode::LeaseValid() const {
  if (!config_.lease_reads || !config_.check_quorum || role_ != Role::kLeader ||
      lease_revoked_ || quiesced_ || !CommittedInTerm()) {
    return false;
  }
  const uint64_t round = QuorumAckedRound();
  if (round == 0) return false;
  for (const auto& [r, tick] : round_ticks_) {
    if (r == round) {
      const uint64_t span = config_.election_ticks_min > config_.lease_clock_drift_ticks
                                ? config_.election_ticks_min - config_.lease_clock_drift_ticks
                                : 0;
      return now_ticks_ < tick + span;
    }
  }
  return false;  // the round is too old to remember: no lease
}

// ---------------------------------------------------------------------------
// Proposals, membership, transfer, compaction

void RaftNode::AppendLocal(EntryType type, std::string data) {
  Entry e;
  e.term = term_;
  e.index = log_.last_index().Next();
  e.type = type;
  e.data = std::move(data);
  uncommitted_bytes_ += e.SizeBytes();
  log_.Append(e);
  OnEntryAppended(e);
  need_broadcast_append_ = true;
}

Result<LogIndex> RaftNode::Propose(std::string data) {
  CheckNotInReady();
  Unquiesce();
  if (role_ != Role::kLeader) {
    return Status::NotLeader("leader=" + std::to_string(lead_.value()));
  }
  if (!lead_transferee_.IsZero()) return Status::Unavailable("leadership transfer in progress");
  const uint64_t size = data.size() + 24;
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + size > config_.uncommitted_bytes_max) {
    return Status::Unavailable("uncommitted tail full");
  }
  AppendLocal(EntryType::kNormal, std::move(data));
  return log_.last_index();
}

Result<LogIndex> RaftNode::ProposeConfChange(const ConfChange& cc) {
  CheckNotInReady();
  Unquiesce();
  if (role_ != Role::kLeader) {
    return Status::NotLeader("leader=" + std::to_string(lead_.value()));
  }
  if (!lead_transferee_.IsZero()) return Status::Unavailable("leadership transfer in progress");
  if (!CommittedInTerm()) return Status::Unavailable("leader has not committed in its term");
  if (pending_conf_index_ > commit_) return Status::Unavailable("a membership change is pending");
  if (cc.node.IsZero()) return Status::InvalidArgument("no node");
  const ConfState next = cc.ApplyTo(conf_);
  if (next == conf_) return Status::InvalidArgument("change has no effect");
  if (next.voters.empty()) return Status::InvalidArgument("cannot remove the last voter");
  AppendLocal(EntryType::kConfChange, cc.Encode());
  return log_.last_index();
}

void RaftNode::OnEntryAppended(const Entry& e) {
  if (e.type != EntryType::kConfChange) return;
  ConfChange cc;
  if (!ConfChange::Decode(e.data, &cc)) return;
  ConfState next = cc.ApplyTo(conf_);
  conf_history_.emplace_back(e.index, next);
  SetConf(next);
  pending_conf_index_ = e.index;
}

void RaftNode::RollbackConfFrom(LogIndex index) {
  bool changed = false;
  while (!conf_history_.empty() && conf_history_.back().first >= index) {
    conf_history_.pop_back();
    changed = true;
  }
  if (changed) SetConf(conf_history_.empty() ? conf_base_ : conf_history_.back().second);
}

ConfState RaftNode::ConfAt(LogIndex index) const {
  ConfState c = conf_base_;
  for (const auto& [i, conf] : conf_history_) {
    if (i <= index) c = conf;
  }
  return c;
}

void RaftNode::SetConf(const ConfState& conf) {
  conf_ = conf;
  if (role_ != Role::kLeader) return;
  std::vector<NodeId> members = conf_.voters;
  members.insert(members.end(), conf_.learners.begin(), conf_.learners.end());
  std::sort(members.begin(), members.end());
  std::vector<Progress> next;
  for (NodeId id : members) {
    Progress* old = FindProgress(id);
    if (old != nullptr) {
      next.push_back(*old);
    } else {
      next.emplace_back(id, log_.last_index().Next());
      next.back().recent_active = true;  // give a new member one timeout to answer
      need_broadcast_append_ = true;
    }
  }
  // The leader keeps its own progress while it is being removed: the change
  // is in force, but it still replicates it until it commits.
  if (!conf_.IsMember(config_.id)) {
    if (Progress* self = FindProgress(config_.id)) {
      next.push_back(*self);
      std::sort(next.begin(), next.end(),
                [](const Progress& a, const Progress& b) { return a.id() < b.id(); });
    }
  }
  progress_ = std::move(next);
}

Status RaftNode::TransferLeadership(NodeId target) {
  CheckNotInReady();
  Unquiesce();
  if (role_ != Role::kLeader) return Status::NotLeader("leader=" + std::to_string(lead_.value()));
  if (target == config_.id) return Status::OK();
  if (!conf_.IsVoter(target)) return Status::InvalidArgument("transfer target is not a voter");
  Progress* pr = FindProgress(target);
  if (pr == nullptr) return Status::InvalidArgument("unknown target");
  lead_transferee_ = target;
  // The target may win votes from followers that still honour our lease.
  lease_revoked_ = true;
  election_elapsed_ = 0;
  if (pr->match() == log_.last_index()) {
    SendTimeoutNow(target);
  } else if (pr->state() != Progress::State::kSnapshot) {
    // Push now rather than waiting for the next heartbeat: an empty append at
    // next either extends the pipeline or exposes lost appends at once.
    if (pr->state() == Progress::State::kProbe) pr->ResumeProbe();
    SendAppend(pr, /*allow_empty=*/true);
  }
  return Status::OK();
}

Status RaftNode::Compact(LogIndex index, std::shared_ptr<const std::string> data) {
  CheckNotInReady();
  if (index > applied_) return Status::InvalidArgument("snapshot beyond applied index");
  if (index <= snapshot_.meta.index) return Status::OK();
  if (!log_.HasTerm(index)) return Status::InvalidArgument("snapshot index not in log");
  snapshot_ = Snapshot{SnapshotMeta{index, log_.TermAt(index), ConfAt(index)}, std::move(data)};
  LogIndex through = index.value() > config_.compaction_retain_entries
                         ? LogIndex(index.value() - config_.compaction_retain_entries)
                         : LogIndex();
  // Broken on purpose: discards applied entries the snapshot does not cover.
  if (config_.mutations.compact_past_snapshot) through = std::max(through, applied_);
  through = std::min(through, log_.stable_last());
  if (through > log_.base_index()) {
    log_.CompactThrough(through);
    pending_compaction_ = through;
  }
  return Status::OK();
}

void RaftNode::Unquiesce() {
  if (!quiesced_) return;
  quiesced_ = false;
  idle_rounds_ = 0;
  ResetElectionTimer();
  heartbeat_elapsed_ = 0;
}

// ---------------------------------------------------------------------------
// Ready / Advance

void RaftNode::Send(Message m) {
  m.group = config_.group;
  m.from = config_.id;
  msgs_.push_back(std::move(m));
}

void RaftNode::CheckNotInReady() const {
  CAIRN_CHECK_MSG(!in_ready_, "RaftNode input between GetReady() and Advance()");
}

bool RaftNode::HasReady() const {
  if (in_ready_) return false;
  if (!msgs_.empty() || !read_states_.empty() || pending_install_ || !pending_compaction_.IsZero()) {
    return true;
  }
  if (role_ == Role::kLeader && (need_broadcast_append_ || need_broadcast_heartbeat_)) return true;
  if (log_.unstable_from() <= log_.last_index()) return true;
  HardState hs{term_, vote_, commit_};
  if (config_.mutations.skip_persist_vote) hs.vote = persisted_hs_.vote;
  if (hs.term != persisted_hs_.term || hs.commit != persisted_hs_.commit) return true;
  if (!config_.mutations.skip_persist_vote && hs.vote != persisted_hs_.vote) return true;
  return std::min(commit_, log_.last_index()) > applied_;
}

Ready RaftNode::GetReady() {
  CheckNotInReady();
  FlushBroadcasts();
  Ready rd;
  rd.role = role_;
  rd.leader = lead_;
  rd.term = term_;
  HardState hs{term_, vote_, commit_};
  if (config_.mutations.skip_persist_vote) {
    // Broken on purpose: the vote never reaches disk.
    hs.vote = persisted_hs_.term == term_ ? persisted_hs_.vote : kNoNode;
  }
  if (!(hs == persisted_hs_)) rd.hard_state = hs;
  rd.snapshot = pending_install_;
  rd.entries = log_.UnstableEntries();
  rd.compacted_through = pending_compaction_;
  rd.messages = std::move(msgs_);
  msgs_.clear();
  LogIndex from = applied_;
  if (pending_install_) from = std::max(from, pending_install_->meta.index);
  const LogIndex to = std::min(commit_, log_.last_index());
  if (to > from) {
    rd.committed_entries =
        log_.Slice(from.Next(), to, config_.apply_bytes_per_ready_max, config_.apply_entries_per_ready_max);
  }
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  in_ready_ = true;
  return rd;
}

void RaftNode::Advance(const Ready& rd) {
  CAIRN_CHECK_MSG(in_ready_, "Advance() without GetReady()");
  in_ready_ = false;
  if (rd.hard_state) persisted_hs_ = *rd.hard_state;
  if (rd.snapshot) {
    applied_ = std::max(applied_, rd.snapshot->meta.index);
    pending_install_.reset();
  }
  if (!rd.entries.empty()) {
    log_.MarkStable(rd.entries.back().index);
    if (role_ == Role::kLeader) {
      if (Progress* self = FindProgress(config_.id)) {
        self->MaybeUpdate(log_.stable_last());
        if (MaybeCommit()) need_broadcast_append_ = true;
      }
    }
  }
  if (!rd.committed_entries.empty()) {
    applied_ = std::max(applied_, rd.committed_entries.back().index);
  }
  if (rd.compacted_through == pending_compaction_) pending_compaction_ = LogIndex();
}

}  // namespace cairn::raft
