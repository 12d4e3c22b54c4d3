#include "cluster/node_host.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>

#include "cluster/shard_map.h"
#include "cluster/wire.h"
#include "core/hlc.h"
#include "net/peer_transport.h"
#include "shard/raft_codec.h"
#include "shard/raft_log_store.h"
#include "shard/replica.h"
#include "storage/sqlite.h"

namespace cairn::cluster {

using Clock = std::chrono::steady_clock;

struct NodeHost::Impl {
  struct Proposal {
    uint64_t group;
    std::string request_id;
    std::string tx_edn;
    ProposeCallback done;
  };
  struct Pending {
    uint64_t group;
    std::string request_id;
    ProposeCallback done;
    Clock::time_point deadline;
    raft::LogIndex index;  // where the entry was appended
    raft::Term term;       // in which term
    // Filled by the replica's on_applied hook when this entry applies it.
    std::map<std::string, EntityId> tempids;
    std::vector<Datom> datoms;
  };

  NodeHostOptions options;
  std::unique_ptr<storage::Sqlite> log_db;
  std::unique_ptr<shard::RaftLogStore> log_store;
  std::map<uint64_t, std::unique_ptr<shard::Replica>> replicas;
  std::unique_ptr<net::PeerTransport> transport;
  std::thread driver;
  // Request ids this host makes up must never repeat an id applied before a
  // restart (it would be deduplicated), hence the random boot id.
  uint64_t boot_id = 0;

  // Shared between the driver, the transport's I/O thread and callers.
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  bool driver_done = false;
  std::vector<raft::Message> inbox_msgs;
  std::vector<Proposal> inbox_proposals;
  std::vector<std::function<void()>> inbox_tasks;
  // Log entries the last round persisted or applied (driver thread only).
  // Round batching waits only after a round with at least kBatchMinEntries:
  // the heartbeats of reads, and a lone write, never wait.
  static constexpr size_t kBatchMinEntries = 2;
  size_t last_round_entries = 0;
  // PostAfter's tasks by due time (run by the driver loop, which wakes at
  // least every tick_ms).
  std::multimap<Clock::time_point, std::function<void()>> timers;
  struct ReadRequest {
    uint64_t group;
    TxTime at;  // ReadAt's T; zero for a plain Read
    ReadCallback done;
  };
  std::vector<ReadRequest> inbox_reads;
  std::map<uint64_t, GroupStatus> statuses;
  std::map<uint32_t, bool> published_live;
  // Each group's latest applied value, republished when applied moves.
  std::map<uint64_t, std::shared_ptr<const datalog::IndexSource>> published_dbs;
  struct Published {
    std::optional<std::chrono::steady_clock::time_point> at;  // when published_dbs[g] was taken
    uint64_t applied = 0;                                      // the applied index it shows
    const void* schema = nullptr;                              // the replica's schema object it shows
  };
  std::map<uint64_t, Published> published;
  Status health;
  std::map<uint32_t, Clock::time_point> last_heard;  // any frame from the peer
  NodeHostStats stats;
  std::unique_ptr<OffsetClock> offset_clock;  // with options.clock_offset_ms
  std::unique_ptr<HybridClock> hlc;  // thread-safe on its own

  // Driver thread only: node-level liveness (see the header).
  std::map<uint32_t, bool> peer_alive;
  Clock::time_point next_liveness;

  // Driver thread only.
  struct PendingRead {
    uint64_t group;
    ReadCallback done;
    Clock::time_point deadline;
    TxTime at;            // ReadAt's T; zero for a plain Read
    int closes = 0;       // close(T) attempts made for it
    bool closing = false;  // waiting for a close, not for a read index
    uint32_t leader = 0;  // the leader when the read index / close was asked
  };
  // By read request id (a ReadIndex id, or while closing a fresh id of the
  // same sequence that no ReadIndex uses).
  std::map<uint64_t, PendingRead> pending_reads;
  // close(T) entries proposed here as the leader (ReadAt, close requests),
  // each completed once the replica's closed time reaches `want`.
  struct PendingClose {
    uint64_t group;
    TxTime want;      // what the waiter needs closed
    TxTime proposed;  // the close entry's T (>= want)
    raft::LogIndex index;
    raft::Term term;
    Clock::time_point deadline;
    std::function<void(Status)> done;
  };
  std::vector<PendingClose> pending_closes;
  bool shutting_down = false;
  uint64_t next_read_id = 0;  // starts at the boot id: fresh across restarts
  std::vector<Pending> pending;
  uint64_t next_request = 0;
  uint64_t seen_connects = 0;

  // Node-to-node requests. req_mu guards everything here.
  struct OutRequest {
    RequestReply done;
    Clock::time_point deadline;
    uint32_t node;
  };
  struct InRequest {
    uint32_t from;
    uint64_t id;
    std::string payload;
  };
  std::mutex req_mu;
  std::condition_variable req_cv;
  RequestHandler handler;
  std::function<bool(std::string_view)> inline_handler;  // SetRequestHandler's run_inline
  bool requests_open = true;  // false once stopping: no more sends or replies
  uint64_t next_out_id = 0;
  std::map<uint64_t, OutRequest> out_requests;
  std::vector<InRequest> in_requests;  // waiting for a worker
  size_t in_running = 0;               // being handled
  std::vector<std::thread> workers;

  void OnRequest(uint32_t from_node, std::string_view payload);
  void OnResponse(uint32_t from_node, std::string_view payload);
  void Reply(uint32_t to, uint64_t id, const Result<std::string>& r);
  RequestReply ReplyTo(uint32_t from, uint64_t id);
  // Removes and returns the pending outgoing requests `match` selects.
  std::vector<std::pair<uint64_t, OutRequest>> TakeRequests(const std::function<bool(const OutRequest&)>& match);
  void Worker();
  void SweepRequests(Clock::time_point now);
  void FailAllRequests(const Status& why);
  void FailRequestsTo(uint32_t peer);
  bool PostAfter(std::chrono::milliseconds delay, std::function<void()> task);
  void SendRequest(uint32_t node, std::string payload, int timeout_ms, RequestReply done);
  // Queues `task` for the driver; false if the driver is gone.
  bool Post(std::function<void()> task);
  void HandleCloseRequest(uint32_t from, std::string_view payload, RequestReply reply);
  // hlc->Observe(t) unless t is too far ahead of the wall clock.
  Status ObserveBounded(TxTime t);
  bool ReadEnvelope(wire::Reader& in, uint64_t* id);

  // Runs on the transport's I/O thread: decode (cheap) and queue.
  void OnFrame(uint32_t from_node, net::Frame frame) {
    if (frame.type == net::FrameType::kRequest) return OnRequest(from_node, frame.payload);
    if (frame.type == net::FrameType::kResponse) return OnResponse(from_node, frame.payload);
    if (frame.type != net::FrameType::kRaft) return;
    if (frame.payload.empty()) {  // a liveness beat
      std::lock_guard<std::mutex> lock(mu);
      last_heard[from_node] = Clock::now();
      return;
    }
    Result<std::vector<raft::Message>> msgs = shard::DecodeBatch(frame.payload);
    if (!msgs.ok()) {
      std::fprintf(stderr, "cairn node %u: dropping a raft frame from node %u: %s\n", options.node_id, from_node,
                   msgs.status().ToString().c_str());
      return;
    }
    std::lock_guard<std::mutex> lock(mu);
    last_heard[from_node] = Clock::now();
    for (raft::Message& m : *msgs) {
      // The link is authenticated as `from_node`; a message claiming another
      // sender or addressed elsewhere is not ours to trust.
      if (m.from.value() != from_node || m.to.value() != options.node_id) continue;
      inbox_msgs.push_back(std::move(m));
    }
    cv.notify_one();
  }

  void Run();
  bool Round();
  void HandleProposal(Proposal p);
  void CompletePending();
  // ReadAt/Read machinery (driver thread).
  void StartRead(PendingRead pr);
  void ServeRead(PendingRead pr, shard::Replica& r);
  void CloseFor(PendingRead pr, shard::Replica& r);
  void OnCloseDone(uint64_t id, Status s);
  // Leader side of close(T): done(OK) once the replica's closed time >= want.
  void ProposeClose(uint64_t group, TxTime want, Clock::time_point deadline, std::function<void(Status)> done);
  Status CheckFuture(TxTime t) const;
  void PublishStatus();
  void Shutdown();
  bool CheckLiveness(Clock::time_point now);
};

namespace {

ProposeResult Applied(const shard::ApplyOutcome& o) {
  ProposeResult r;
  r.status = o.status;
  r.index = o.index.value();
  r.t = o.t;
  r.tempids = o.tempids;
  return r;
}

ProposeResult Failed(Status s, uint32_t leader = 0) {
  ProposeResult r;
  r.status = std::move(s);
  r.leader = leader;
  return r;
}

// A payload starting with this byte is a close request, served by the host
// itself: u8(0xC7) u8(version=1) varint(group) varint(T). Reply: empty once
// the leader's replica closed T; else the error (NotLeader, Timeout, ...).
constexpr uint8_t kCloseRequestKind = 0xC7;
constexpr uint8_t kCloseRequestVersion = 1;
constexpr int kMaxClosesPerRead = 3;

std::string GroupText(uint64_t g) { return "group " + std::to_string(g); }
std::string TimeText(TxTime t) { return std::to_string(t.raw); }

}  // namespace

void NodeHost::Impl::HandleProposal(Proposal p) {
  auto it = replicas.find(p.group);
  if (it == replicas.end()) {
    p.done(Failed(Status::NotFound("node " + std::to_string(options.node_id) + " hosts no group " +
                                   std::to_string(p.group))));
    return;
  }
  shard::Replica& r = *it->second;
  const raft::RaftNode& node = r.raft();
  if (node.role() != raft::Role::kLeader) {
    uint32_t leader = static_cast<uint32_t>(node.leader().value());
    p.done(Failed(Status::NotLeader("group " + std::to_string(p.group) + ": node " +
                                        std::to_string(options.node_id) + " is not the leader; leader: " +
                                        (leader ? "node " + std::to_string(leader) : std::string("unknown"))),
                  leader));
    return;
  }
  if (p.request_id.empty()) {
    p.request_id = "n" + std::to_string(options.node_id) + "-" + std::to_string(boot_id) + "-" +
                   std::to_string(++next_request);
  } else if (std::optional<shard::ApplyOutcome> o = r.Outcome(p.request_id)) {
    // A retry of a request already applied: its first outcome stands.
    ProposeResult res = Applied(*o);
    res.duplicate = true;
    p.done(std::move(res));
    return;
  }
  // Above every t this node learned (applied entries, clients' min-t).
  shard::ReplicaCommand cmd{p.request_id, hlc->Now(), std::move(p.tx_edn)};
  Result<raft::LogIndex> index = r.Propose(cmd);
  if (!index.ok()) {
    p.done(Failed(index.status(), static_cast<uint32_t>(node.leader().value())));
    return;
  }
  pending.push_back(Pending{p.group, std::move(p.request_id), std::move(p.done),
                            Clock::now() + std::chrono::milliseconds(options.propose_timeout_ms), *index,
                            node.term(), {}, {}});
}

void NodeHost::Impl::CompletePending() {
  Clock::time_point now = Clock::now();
  std::vector<Pending> keep;
  keep.reserve(pending.size());
  for (Pending& p : pending) {
    shard::Replica& r = *replicas.at(p.group);
    if (std::optional<shard::ApplyOutcome> o = r.Outcome(p.request_id)) {
      ProposeResult res = Applied(*o);
      // Applied by an earlier entry with the same id: this one was a retry.
      res.duplicate = o->index != p.index;
      if (!res.duplicate) {
        res.tempids = std::move(p.tempids);
        res.datoms = std::move(p.datoms);
      }
      p.done(std::move(res));
      continue;
    }
    // The entry can never commit once the log holds another term at its
    // index, or a committed log ends before it: fail fast, so the client
    // retries at the new leader instead of waiting for the timeout.
    const raft::RaftLog& log = r.raft().log();
    bool lost = (log.HasTerm(p.index) && log.TermAt(p.index) != p.term) ||
                (p.index > log.last_index() && r.raft().term() != p.term);
    if (lost) {
      uint32_t leader = static_cast<uint32_t>(r.raft().leader().value());
      p.done(Failed(Status::NotLeader("group " + std::to_string(p.group) + ": request " + p.request_id +
                                      " was dropped by a leader change; leader: " +
                                      (leader ? "node " + std::to_string(leader) : std::string("unknown"))),
                    leader));
      continue;
    }
    if (now >= p.deadline) {
      p.done(Failed(Status::Timeout("group " + std::to_string(p.group) + ": request " + p.request_id +
                                    " did not apply within " + std::to_string(options.propose_timeout_ms) +
                                    " ms (it may still apply)"),
                    static_cast<uint32_t>(r.raft().leader().value())));
      continue;
    }
    keep.push_back(std::move(p));
  }
  pending.swap(keep);
  std::vector<PendingClose> closes;
  closes.swap(pending_closes);
  for (PendingClose& c : closes) {
    shard::Replica& r = *replicas.at(c.group);
    if (r.closed_t() >= c.want) {
      c.done(Status::OK());
      continue;
    }
    const raft::RaftLog& log = r.raft().log();
    bool lost = (log.HasTerm(c.index) && log.TermAt(c.index) != c.term) ||
                (c.index > log.last_index() && r.raft().term() != c.term);
    if (lost) {
      uint32_t leader = static_cast<uint32_t>(r.raft().leader().value());
      c.done(Status::NotLeader(GroupText(c.group) + ": close(" + TimeText(c.proposed) +
                               ") was dropped by a leader change; leader: " +
                               (leader ? "node " + std::to_string(leader) : std::string("unknown"))));
      continue;
    }
    if (now >= c.deadline) {
      c.done(Status::Timeout(GroupText(c.group) + ": close(" + TimeText(c.proposed) + ") did not apply within " +
                             std::to_string(options.propose_timeout_ms) + " ms (retry)"));
      continue;
    }
    pending_closes.push_back(std::move(c));
  }
  for (auto it = pending_reads.begin(); it != pending_reads.end();) {
    // A read index or close asked of a leader that has since been replaced
    // may never be answered: fail it now (retryable), not at the timeout.
    uint32_t leader_now = static_cast<uint32_t>(replicas.at(it->second.group)->raft().leader().value());
    if (it->second.leader != 0 && leader_now != 0 && leader_now != it->second.leader) {
      PendingRead pr = std::move(it->second);
      it = pending_reads.erase(it);
      pr.done(Status::NotLeader(GroupText(pr.group) + ": the leader moved from node " + std::to_string(pr.leader) +
                                " to node " + std::to_string(leader_now) + " while a read waited (retry)"));
      continue;
    }
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    PendingRead pr = std::move(it->second);
    it = pending_reads.erase(it);
    pr.done(Status::Timeout(GroupText(pr.group) +
                            (pr.closing ? ": closing time " + TimeText(pr.at) + " for a read" : ": read index") +
                            " not confirmed within " + std::to_string(options.propose_timeout_ms) + " ms (retry)"));
  }
}

Status NodeHost::Impl::CheckFuture(TxTime t) const {
  int64_t now_ms = std::max<int64_t>(options.clock->NowMs(), static_cast<int64_t>(hlc->Last().physical_ms()));
  if (static_cast<int64_t>(t.physical_ms()) > now_ms + options.read_at_max_future_ms) {
    return Status::InvalidArgument("time " + TimeText(t) + " (" + std::to_string(t.physical_ms()) +
                                   " ms) is more than " + std::to_string(options.read_at_max_future_ms) +
                                   " ms ahead of node " + std::to_string(options.node_id) + "'s clock (" +
                                   std::to_string(now_ms) + " ms): a read at a future time is refused");
  }
  if (t >= TxTime::Max()) return Status::InvalidArgument("time " + TimeText(t) + " is out of range");
  return Status::OK();
}

void NodeHost::Impl::StartRead(PendingRead pr) {
  auto it = replicas.find(pr.group);
  if (it == replicas.end()) {
    pr.done(Status::NotFound("node " + std::to_string(options.node_id) + " hosts no group " +
                             std::to_string(pr.group)));
    return;
  }
  uint64_t id = ++next_read_id;
  Status s = it->second->ReadIndex(id);
  if (!s.ok()) {
    pr.done(Status(s.code(), GroupText(pr.group) + ": " + s.message()));
    return;
  }
  pr.closing = false;
  pr.leader = static_cast<uint32_t>(it->second->raft().leader().value());
  pending_reads.emplace(id, std::move(pr));
}

// The read index is applied here: answer, or close T first.
void NodeHost::Impl::ServeRead(PendingRead pr, shard::Replica& r) {
  if (!pr.at.valid() || r.closed_t() >= pr.at) {
    pr.done(r.db());
    return;
  }
  CloseFor(std::move(pr), r);
}

void NodeHost::Impl::CloseFor(PendingRead pr, shard::Replica& r) {
  if (pr.closes >= kMaxClosesPerRead) {
    pr.done(Status::Unavailable(GroupText(pr.group) + ": time " + TimeText(pr.at) + " is still not closed after " +
                                std::to_string(pr.closes) + " close attempts (retry)"));
    return;
  }
  ++pr.closes;
  pr.closing = true;
  const uint64_t group = pr.group;
  const TxTime at = pr.at;
  const Clock::time_point deadline = pr.deadline;
  pr.leader = static_cast<uint32_t>(r.raft().leader().value());
  uint64_t id = ++next_read_id;
  pending_reads.emplace(id, std::move(pr));
  if (r.raft().role() == raft::Role::kLeader) {
    ProposeClose(group, at, deadline, [this, id](Status s) { OnCloseDone(id, std::move(s)); });
    return;
  }
  uint32_t leader = static_cast<uint32_t>(r.raft().leader().value());
  if (leader == 0) {
    OnCloseDone(id, Status::Unavailable(GroupText(group) + ": no leader known to close time " + TimeText(at)));
    return;
  }
  std::string req;
  wire::PutU8(&req, kCloseRequestKind);
  wire::PutU8(&req, kCloseRequestVersion);
  wire::PutVarint(&req, group);
  wire::PutVarint(&req, at.raw);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  int timeout = static_cast<int>(std::max<int64_t>(1, left));
  {
    std::lock_guard<std::mutex> lock(mu);
    ++stats.close_requests_sent;
  }
  // The reply comes on the I/O thread (or this one): back to the driver.
  SendRequest(leader, std::move(req), timeout, [this, id, leader](Result<std::string> reply) {
    Status s = reply.ok() ? Status::OK() : reply.status().WithContext("close request to node " + std::to_string(leader));
    (void)Post([this, id, s] { OnCloseDone(id, s); });
  });
}

void NodeHost::Impl::OnCloseDone(uint64_t id, Status s) {
  if (shutting_down) return;  // Shutdown fails the read
  auto it = pending_reads.find(id);
  if (it == pending_reads.end()) return;  // timed out already
  PendingRead pr = std::move(it->second);
  pending_reads.erase(it);
  if (!s.ok()) {
    pr.done(Status(s.code(), GroupText(pr.group) + ": closing time " + TimeText(pr.at) + " for a read: " + s.message()));
    return;
  }
  shard::Replica& r = *replicas.at(pr.group);
  // The close committed after the read began (and this replica had applied
  // the read index then): if it is applied here, the value answers the read.
  if (r.closed_t() >= pr.at) {
    pr.done(r.db());
    return;
  }
  StartRead(std::move(pr));  // a new read index covers the close entry
}

void NodeHost::Impl::ProposeClose(uint64_t group, TxTime want, Clock::time_point deadline,
                                  std::function<void(Status)> done) {
  if (shutting_down) return done(Status::Cancelled("node " + std::to_string(options.node_id) + " stopped"));
  auto it = replicas.find(group);
  if (it == replicas.end()) {
    return done(Status::NotFound("node " + std::to_string(options.node_id) + " hosts no group " +
                                 std::to_string(group)));
  }
  if (Status f = CheckFuture(want); !f.ok()) return done(f);
  shard::Replica& r = *it->second;
  if (r.closed_t() >= want) return done(Status::OK());
  const raft::RaftNode& node = r.raft();
  if (node.role() != raft::Role::kLeader) {
    uint32_t leader = static_cast<uint32_t>(node.leader().value());
    return done(Status::NotLeader(GroupText(group) + ": node " + std::to_string(options.node_id) +
                                  " is not the leader; leader: " +
                                  (leader ? "node " + std::to_string(leader) : std::string("unknown"))));
  }
  // One close entry serves every waiter for a time it covers.
  for (const PendingClose& c : pending_closes) {
    if (c.group == group && c.term == node.term() && c.proposed >= want) {
      PendingClose w = c;
      w.want = want;
      w.deadline = deadline;
      w.done = std::move(done);
      pending_closes.push_back(std::move(w));
      return;
    }
  }
  // Closing up to the leader's clock now costs nothing (its later proposals
  // are above it anyway) and spares later reads at earlier times a close.
  TxTime at = std::max(want, hlc->Now());
  Result<raft::LogIndex> index = r.Propose(shard::ReplicaCommand::Close(at));
  if (!index.ok()) return done(index.status());
  {
    std::lock_guard<std::mutex> lock(mu);
    ++stats.closes_proposed;
  }
  pending_closes.push_back(PendingClose{group, want, at, *index, node.term(), deadline, std::move(done)});
}

bool NodeHost::Impl::Post(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu);
  if (driver_done || stopping) return false;
  inbox_tasks.push_back(std::move(task));
  cv.notify_one();
  return true;
}

bool NodeHost::Impl::PostAfter(std::chrono::milliseconds delay, std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu);
  if (driver_done || stopping) return false;
  timers.emplace(Clock::now() + delay, std::move(task));
  return true;
}

void NodeHost::Impl::HandleCloseRequest(uint32_t from, std::string_view payload, RequestReply reply) {
  wire::Reader in(payload, "close request from node " + std::to_string(from));
  Result<uint8_t> kind = in.U8("kind");
  Result<uint8_t> version = kind.ok() ? in.U8("version") : kind;
  if (!version.ok()) return reply(version.status());
  if (*version != kCloseRequestVersion) {
    return reply(Status::InvalidArgument("close request: unsupported version " + std::to_string(*version)));
  }
  Result<uint64_t> group = in.Varint("group");
  Result<uint64_t> t = group.ok() ? in.Varint("t") : group;
  if (!t.ok()) return reply(t.status());
  if (Status s = in.Done(); !s.ok()) return reply(s);
  Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options.propose_timeout_ms);
  auto shared_reply = std::make_shared<RequestReply>(std::move(reply));
  bool posted = Post([this, g = *group, at = TxTime{*t}, deadline, shared_reply] {
    ProposeClose(g, at, deadline, [shared_reply](Status s) {
      (*shared_reply)(s.ok() ? Result<std::string>(std::string()) : Result<std::string>(std::move(s)));
    });
  });
  if (!posted) (*shared_reply)(Status::Cancelled("node " + std::to_string(options.node_id) + " is stopped"));
}

// Sends a liveness beat to every peer and returns true if a peer was lost or
// came back since the last check. Quiesced groups send no heartbeats of their
// own, so without this a follower would never notice its leader's node died.
bool NodeHost::Impl::CheckLiveness(Clock::time_point now) {
  if (now < next_liveness) return false;
  const auto beat = std::chrono::milliseconds(options.tick_ms * std::max<uint32_t>(1, options.raft.heartbeat_ticks));
  const auto dead_after = std::chrono::milliseconds(options.tick_ms * options.raft.election_ticks_min);
  next_liveness = now + beat;
  std::map<uint32_t, Clock::time_point> heard;
  {
    std::lock_guard<std::mutex> lock(mu);
    heard = last_heard;
  }
  bool changed = false;
  for (auto& [peer, alive] : peer_alive) {
    (void)transport->Send(peer, net::Frame{net::FrameType::kRaft, std::string()});
    auto it = heard.find(peer);
    bool now_alive = it != heard.end() && now - it->second < dead_after;
    if (now_alive != alive) changed = true;
    if (alive && !now_alive) FailRequestsTo(peer);
    alive = now_alive;
  }
  return changed;
}

void NodeHost::Impl::PublishStatus() {
  std::lock_guard<std::mutex> lock(mu);
  const auto now = std::chrono::steady_clock::now();
  published_live = peer_alive;
  for (auto& [g, r] : replicas) {
    const raft::RaftNode& n = r->raft();
    GroupStatus& s = statuses[g];
    s.role = n.role();
    s.leader = static_cast<uint32_t>(n.leader().value());
    s.term = n.term().value();
    s.commit = n.commit().value();
    s.quiesced = n.quiesced();
    Published& pub = published[g];
    const uint64_t applied = r->applied_index().value();
    // The meta group (shard map records, the schema routing reads) and a
    // schema change anywhere are published at once: a client that committed
    // a schema must see the next transaction routed by it.
    if (!pub.at || (pub.applied != applied && (g == kMetaGroup || r->schema().get() != pub.schema ||
                                               now - *pub.at >= std::chrono::milliseconds(options.stale_publish_ms)))) {
      published_dbs[g] = r->db(/*with_history=*/false);
      pub.at = now;
      pub.applied = applied;
      pub.schema = r->schema().get();
    }
    s.applied = r->applied_index().value();
    s.last_t = r->last_t();
    s.closed_t = r->closed_t();
    s.snapshot_index = n.snapshot().meta.index.value();
    s.snapshots_taken = r->snapshots_taken();
    s.snapshots_installed = r->snapshots_installed();
    if (!r->snapshot_error().ok() && s.snapshot_error.ToString() != r->snapshot_error().ToString()) {
      std::fprintf(stderr,
                   "cairn node %u group %llu: warning: a snapshot failed (a copy is retried later and "
                   "the log stays uncompacted until one succeeds; a chunk received is asked for again): %s\n",
                   options.node_id, static_cast<unsigned long long>(g), r->snapshot_error().ToString().c_str());
    }
    s.snapshot_error = r->snapshot_error();
    s.replicas.clear();
    if (n.role() == raft::Role::kLeader) {
      for (raft::NodeId v : n.conf().voters) {
        const raft::Progress* pr = n.progress(v);
        uint64_t match = v == n.id() ? n.log().last_index().value() : (pr ? pr->match().value() : 0);
        s.replicas.push_back(ReplicaProgress{static_cast<uint32_t>(v.value()), match});
      }
    }
  }
}

// One loop round: steps 4-6 of the header. Returns false if the host failed.
bool NodeHost::Impl::Round() {
  std::vector<std::pair<shard::Replica*, raft::Ready>> readies;
  for (auto& [g, r] : replicas) {
    if (std::optional<raft::Ready> rd = r->TakeReady()) readies.emplace_back(r.get(), std::move(*rd));
  }
  if (readies.empty()) {
    last_round_entries = 0;
    return true;
  }

  std::vector<shard::RaftLogStore::GroupWrite> writes;
  writes.reserve(readies.size());
  for (auto& [r, rd] : readies) writes.push_back({r->group(), &rd, r->prepared_snapshot_file()});
  Status saved = log_store->Save(writes);
  if (!saved.ok()) {
    std::lock_guard<std::mutex> lock(mu);
    health = Status(saved.code(), "node " + std::to_string(options.node_id) +
                                      ": saving the raft log failed: " + saved.message());
    return false;
  }

  // Durable: the messages may leave, one frame per peer node.
  std::map<uint32_t, std::vector<raft::Message>> by_peer;
  uint64_t messages = 0;
  for (auto& [r, rd] : readies) {
    messages += rd.messages.size();
    for (raft::Message& m : rd.messages) by_peer[static_cast<uint32_t>(m.to.value())].push_back(std::move(m));
    rd.messages.clear();
  }
  for (auto& [peer, batch] : by_peer) {
    // Unavailable (queue full) or NotFound (unknown peer): Raft retransmits.
    (void)transport->Send(peer, net::Frame{net::FrameType::kRaft, shard::EncodeBatch(batch)});
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ++stats.rounds;
    ++stats.saves;
    stats.readies_saved += readies.size();
    stats.frames_sent += by_peer.size();
    stats.messages_sent += messages;
    last_round_entries = 0;
    for (auto& [r, rd] : readies) {
      stats.entries_applied += rd.committed_entries.size();
      last_round_entries += rd.entries.size() + rd.committed_entries.size();
    }
  }

  for (auto& [r, rd] : readies) {
    Status s = r->FinishReady(rd, [](std::vector<raft::Message>) {});
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      statuses[r->group().value()].error = s;
      continue;
    }
    // Every t applied here (and every close) bounds this node's proposals.
    hlc->Observe(r->closed_t());
    std::vector<uint64_t> servable = r->TakeServableReads();
    for (uint64_t id : servable) {
      auto it = pending_reads.find(id);
      if (it == pending_reads.end()) continue;  // timed out already
      PendingRead pr = std::move(it->second);
      pending_reads.erase(it);
      ServeRead(std::move(pr), *r);
    }
  }
  CompletePending();
  return true;
}

void NodeHost::Impl::Run() {
  const auto tick = std::chrono::milliseconds(options.tick_ms);
  Clock::time_point next_tick = Clock::now() + tick;
  Clock::time_point last_round = Clock::now();
  while (true) {
    std::vector<raft::Message> msgs;
    std::vector<Proposal> proposals;
    std::vector<std::function<void()>> tasks;
    std::vector<ReadRequest> reads;
    {
      std::unique_lock<std::mutex> lock(mu);
      auto has_work = [&] {
        return stopping || !inbox_msgs.empty() || !inbox_proposals.empty() || !inbox_tasks.empty() ||
               !inbox_reads.empty();
      };
      if (!has_work()) {
        cv.wait_until(lock, next_tick, has_work);
      } else if (options.round_batch_us > 0 && last_round_entries >= kBatchMinEntries) {
        // Saturated: let more work gather for this round (round_batch_us).
        Clock::time_point until = std::min(last_round + std::chrono::microseconds(options.round_batch_us), next_tick);
        if (until > Clock::now()) {
          ++stats.batched_waits;
          cv.wait_until(lock, until, [&] { return stopping; });
        }
      }
      if (stopping) break;
      last_round = Clock::now();
      msgs.swap(inbox_msgs);
      proposals.swap(inbox_proposals);
      tasks.swap(inbox_tasks);
      reads.swap(inbox_reads);
      const Clock::time_point due = Clock::now();
      while (!timers.empty() && timers.begin()->first <= due) {
        tasks.push_back(std::move(timers.begin()->second));
        timers.erase(timers.begin());
      }
    }
    for (auto& task : tasks) task();

    for (const raft::Message& m : msgs) {
      auto it = replicas.find(m.group.value());
      if (it == replicas.end()) continue;  // a group this node does not host
      shard::Replica& r = *it->second;
      // No Unquiesce() here: RaftNode::Step wakes a quiesced group itself for
      // every message except the idle heartbeat round and its answers, which
      // must not wake it (else a group could never stay quiesced).
      Status s = r.Step(m);
      if (!s.ok()) {
        std::fprintf(stderr, "cairn node %u group %llu: dropping a message from node %llu: %s\n",
                     options.node_id, static_cast<unsigned long long>(m.group.value()),
                     static_cast<unsigned long long>(m.from.value()), s.ToString().c_str());
      }
    }
    for (Proposal& p : proposals) HandleProposal(std::move(p));
    for (ReadRequest& rq : reads) {
      PendingRead pr{rq.group, std::move(rq.done),
                     Clock::now() + std::chrono::milliseconds(options.propose_timeout_ms), rq.at};
      StartRead(std::move(pr));
    }

    Clock::time_point now = Clock::now();
    if (now >= next_tick) {
      // A peer we had lost is reachable again: wake idle groups so they
      // notice (a quiesced group does not tick, so it would not).
      uint64_t connects = transport->stats().connects;
      bool reconnected = connects != seen_connects;
      seen_connects = connects;
      if (CheckLiveness(now)) reconnected = true;
      for (auto& [g, r] : replicas) {
        // Deferred datom commits: an idle group commits within a tick too.
        if (Status f = r->MaybeFlush(); !f.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          statuses[g].error = f;
        }
        if (r->raft().quiesced()) {
          if (!reconnected) continue;
          r->mutable_raft().Unquiesce();
        }
        r->Tick();
      }
      next_tick += tick;
      if (next_tick <= now) next_tick = now + tick;  // fell behind: do not burst
      CompletePending();
      SweepRequests(now);
    }

    bool ok = Round();
    {
      const auto busy = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - last_round).count();
      std::lock_guard<std::mutex> lock(mu);
      stats.round_us_max = std::max(stats.round_us_max, static_cast<uint64_t>(busy));
      if (busy > int64_t{options.slow_round_ms} * 1000) ++stats.slow_rounds;
    }
    PublishStatus();
    if (!ok) break;
  }
  Shutdown();
}

// Driver exit: nothing queued or pending may wait forever.
void NodeHost::Impl::Shutdown() {
  std::vector<Proposal> proposals;
  std::vector<std::function<void()>> tasks;
  std::vector<ReadRequest> reads;
  Status why;
  shutting_down = true;
  {
    std::lock_guard<std::mutex> lock(mu);
    driver_done = true;
    proposals.swap(inbox_proposals);
    tasks.swap(inbox_tasks);
    for (auto& [at, task] : timers) tasks.push_back(std::move(task));
    timers.clear();
    reads.swap(inbox_reads);
    why = health.ok() ? Status::Cancelled("node " + std::to_string(options.node_id) + " stopped") : health;
  }
  for (auto& task : tasks) task();  // replicas are still open
  for (Proposal& p : proposals) p.done(Failed(why));
  for (Pending& p : pending) p.done(Failed(why));
  pending.clear();
  for (ReadRequest& rq : reads) rq.done(why);
  for (auto& [id, r] : pending_reads) r.done(why);
  pending_reads.clear();
  for (PendingClose& c : pending_closes) c.done(why);
  pending_closes.clear();
}

NodeHost::NodeHost(const NodeHostOptions& options) : options_(options), impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}

NodeHost::~NodeHost() { Stop(); }

Result<std::unique_ptr<NodeHost>> NodeHost::Start(const NodeHostOptions& options) {
  if (options.node_id == 0) return Status::InvalidArgument("NodeHost: node_id must not be 0");
  if (options.tick_ms <= 0) return Status::InvalidArgument("NodeHost: tick_ms must be positive");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return Status::IOError("NodeHost: cannot create " + options.dir + ": " + ec.message());

  std::unique_ptr<NodeHost> host(new NodeHost(options));
  Impl& im = *host->impl_;
  im.boot_id = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  im.next_read_id = im.boot_id;
  if (im.options.clock == nullptr) im.options.clock = SystemClock::Default();
  if (im.options.clock_offset_ms != 0) {
    im.offset_clock = std::make_unique<OffsetClock>(im.options.clock, im.options.clock_offset_ms);
    im.options.clock = im.offset_clock.get();
  }
  im.hlc = std::make_unique<HybridClock>(im.options.clock);

  CAIRN_ASSIGN_OR_RETURN(im.log_db,
                         storage::Sqlite::Open(options.dir + "/raft.db", storage::Sqlite::OpenMode::kReadWriteCreate));
  CAIRN_RETURN_IF_ERROR(im.log_db->Exec(options.sync_log ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                                         : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  CAIRN_ASSIGN_OR_RETURN(im.log_store, shard::RaftLogStore::Open(im.log_db.get()));

  for (const auto& [g, voters] : options.groups) {
    shard::ReplicaOptions ro;
    ro.raft = options.raft;
    ro.raft.id = raft::NodeId(options.node_id);
    ro.raft.group = raft::GroupId(g);
    ro.raft.seed = options.raft.seed * 1000003u + options.node_id * 7919u + g;
    ro.datoms_path = options.dir + "/datoms_" + std::to_string(g) + ".db";
    ro.store = options.store;
    ro.snapshot_entries = options.snapshot_entries;
    ro.snapshot_bytes = options.snapshot_bytes;
    ro.snapshot_in_background = true;  // a large shard's copy must not stall every group of the node
    ro.commit_interval_ms = options.datom_commit_interval_ms;
    if (options.owns_partition) {
      ro.owns_partition = [owns = options.owns_partition, g](uint32_t p) { return owns(g, p); };
    }
    raft::ConfState conf;
    for (uint32_t v : voters) conf.voters.push_back(raft::NodeId(v));
    // Raft keeps voters sorted by id (placement order is the caller's).
    std::sort(conf.voters.begin(), conf.voters.end());
    ro.bootstrap = conf;
    Impl* hook_impl = &im;
    ro.on_applied = [hook_impl, g](const std::string& request_id, const shard::TxResult& result) {
      for (Impl::Pending& p : hook_impl->pending) {
        if (p.group == g && p.request_id == request_id) {
          p.tempids = result.tempids;
          p.datoms = result.datoms;
        }
      }
    };
    Result<std::unique_ptr<shard::Replica>> r = shard::Replica::Open(ro, im.log_db.get(), im.log_store.get());
    if (!r.ok()) {
      return Status(r.status().code(), "node " + std::to_string(options.node_id) + " group " + std::to_string(g) +
                                           ": " + r.status().message());
    }
    im.hlc->Observe((*r)->closed_t());  // never propose below what is on disk
    im.replicas[g] = std::move(*r);
    im.statuses[g] = GroupStatus{};
  }

  net::TransportOptions to;
  to.node_id = options.node_id;
  to.listen_host = options.listen_host;
  to.listen_port = options.listen_port;
  to.cluster_secret = options.cluster_secret;
  Impl* raw = &im;
  CAIRN_ASSIGN_OR_RETURN(im.transport, net::PeerTransport::Start(to, [raw](uint32_t from, net::Frame frame) {
                           raw->OnFrame(from, std::move(frame));
                         }));
  for (const auto& [id, addr] : options.peers) im.transport->SetPeer(id, addr.first, addr.second);
  im.seen_connects = im.transport->stats().connects;
  for (const auto& [g, voters] : options.groups) {
    for (uint32_t v : voters) {
      // Assume alive at start: a peer that never answers counts as lost
      // after one election timeout, which wakes the groups once.
      if (v != options.node_id) im.peer_alive[v] = true;
      im.last_heard[v] = Clock::now();
    }
  }
  im.PublishStatus();
  im.driver = std::thread([raw] { raw->Run(); });
  for (int i = 0; i < std::max(1, options.request_workers); ++i) im.workers.emplace_back([raw] { raw->Worker(); });
  return host;
}

void NodeHost::Stop() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_one();
  if (impl_->driver.joinable()) impl_->driver.join();
  // Requests: no more sends or replies; waiting senders and workers wake up.
  // Handlers blocked on a proposal were released by the driver's Shutdown.
  impl_->FailAllRequests(Status::Cancelled("node " + std::to_string(options_.node_id) + " stopped"));
  for (std::thread& w : impl_->workers) w.join();
  impl_->workers.clear();
  // The transport first: its I/O thread may still queue into the inbox.
  // Taken out under req_mu (readers of it hold that lock), destroyed
  // outside it (its I/O thread may be waiting for req_mu).
  std::unique_ptr<net::PeerTransport> transport;
  {
    std::lock_guard<std::mutex> lock(impl_->req_mu);
    transport = std::move(impl_->transport);
  }
  transport.reset();
  impl_->replicas.clear();
  impl_->log_store.reset();
  impl_->log_db.reset();
}

uint16_t NodeHost::port() const { return impl_->transport ? impl_->transport->port() : 0; }

void NodeHost::SetPeer(uint32_t node_id, const std::string& host, uint16_t port) {
  if (impl_->transport) impl_->transport->SetPeer(node_id, host, port);
}

void NodeHost::Propose(uint64_t group, std::string request_id, std::string tx_edn, ProposeCallback done) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->driver_done && !impl_->stopping) {
      impl_->inbox_proposals.push_back(Impl::Proposal{group, std::move(request_id), std::move(tx_edn), std::move(done)});
      impl_->cv.notify_one();
      return;
    }
  }
  done(Failed(Status::Cancelled("node " + std::to_string(options_.node_id) + " is stopped")));
}

std::future<ProposeResult> NodeHost::Propose(uint64_t group, std::string request_id, std::string tx_edn) {
  auto promise = std::make_shared<std::promise<ProposeResult>>();
  std::future<ProposeResult> f = promise->get_future();
  Propose(group, std::move(request_id), std::move(tx_edn),
          [promise](ProposeResult r) { promise->set_value(std::move(r)); });
  return f;
}

Result<GroupStatus> NodeHost::status(uint64_t group) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->statuses.find(group);
  if (it == impl_->statuses.end()) {
    return Status::NotFound("node " + std::to_string(options_.node_id) + " hosts no group " + std::to_string(group));
  }
  return it->second;
}

bool NodeHost::stopped() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stopping || impl_->driver_done;
}

Status NodeHost::health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->health;
}

std::map<uint32_t, bool> NodeHost::peers_live() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->published_live;
}

std::vector<uint64_t> NodeHost::groups() const {
  std::vector<uint64_t> out;
  for (const auto& [g, voters] : options_.groups) out.push_back(g);
  return out;
}

void NodeHost::Read(uint64_t group, ReadCallback done) { ReadAt(group, TxTime{}, std::move(done)); }

void NodeHost::ReadAt(uint64_t group, TxTime t, ReadCallback done) {
  if (Status f = impl_->CheckFuture(t); !f.ok()) return done(Status(f.code(), GroupText(group) + ": " + f.message()));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->driver_done && !impl_->stopping) {
      impl_->inbox_reads.push_back(Impl::ReadRequest{group, t, std::move(done)});
      impl_->cv.notify_one();
      return;
    }
  }
  done(Status::Cancelled("node " + std::to_string(options_.node_id) + " is stopped"));
}

std::future<NodeHost::DbResult> NodeHost::ReadAt(uint64_t group, TxTime t) {
  auto promise = std::make_shared<std::promise<DbResult>>();
  std::future<DbResult> f = promise->get_future();
  ReadAt(group, t, [promise](DbResult r) { promise->set_value(std::move(r)); });
  return f;
}

Status NodeHost::ObserveTime(TxTime t) { return impl_->ObserveBounded(t); }

TxTime NodeHost::LatestTime() const { return impl_->hlc->Last(); }

NodeHost::DbResult NodeHost::StaleRead(uint64_t group) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->published_dbs.find(group);
  if (it == impl_->published_dbs.end()) {
    return Status::NotFound("node " + std::to_string(options_.node_id) + " hosts no group " + std::to_string(group));
  }
  return it->second;
}

std::future<NodeHost::DbResult> NodeHost::Read(uint64_t group) {
  auto promise = std::make_shared<std::promise<DbResult>>();
  std::future<DbResult> f = promise->get_future();
  Read(group, [promise](DbResult r) { promise->set_value(std::move(r)); });
  return f;
}

net::TransportStats NodeHost::transport_stats() const {
  std::lock_guard<std::mutex> lock(impl_->req_mu);
  return impl_->transport ? impl_->transport->stats() : net::TransportStats{};
}

NodeHostStats NodeHost::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

Result<std::vector<Datom>> NodeHost::LogDatoms(uint64_t group) {
  if (options_.groups.count(group) == 0) {
    return Status::NotFound("node " + std::to_string(options_.node_id) + " hosts no group " + std::to_string(group));
  }
  auto promise = std::make_shared<std::promise<Result<std::vector<Datom>>>>();
  std::future<Result<std::vector<Datom>>> f = promise->get_future();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->driver_done) {
      return Status::Unavailable("node " + std::to_string(options_.node_id) + " is stopped");
    }
    Impl* raw = impl_.get();
    impl_->inbox_tasks.push_back(
        [raw, group, promise] { promise->set_value(raw->replicas.at(group)->LogDatoms()); });
    impl_->cv.notify_one();
  }
  return f.get();
}

// ---------------------------------------------------------------- requests

namespace {
// Version 2 carries the sender's hybrid clock after the id; version 1 (no
// clock) is still accepted.
constexpr uint8_t kEnvelopeVersion = 2;
constexpr uint8_t kEnvelopeVersionNoClock = 1;
}

Status NodeHost::Impl::ObserveBounded(TxTime t) {
  const int64_t now_ms = options.clock->NowMs();
  const int64_t ahead = static_cast<int64_t>(t.physical_ms()) - now_ms;
  if (t >= TxTime::Max() || ahead > options.max_observed_ahead_ms) {
    return Status::InvalidArgument("time " + TimeText(t) + " is " + std::to_string(ahead) + " ms ahead of node " +
                                   std::to_string(options.node_id) + "'s clock (at most " +
                                   std::to_string(options.max_observed_ahead_ms) + " ms accepted)");
  }
  hlc->Observe(t);
  return Status::OK();
}

// Reads the envelope's version, id and (version 2) the sender's clock, which
// this node's clock observes: a reply's clock is at least every t its data
// holds, so what a node read from a peer bounds its later proposals.
bool NodeHost::Impl::ReadEnvelope(wire::Reader& in, uint64_t* id) {
  Result<uint8_t> version = in.U8("version");
  if (!version.ok() || (*version != kEnvelopeVersion && *version != kEnvelopeVersionNoClock)) return false;
  Result<uint64_t> v = in.Varint("id");
  if (!v.ok()) return false;
  *id = *v;
  if (*version == kEnvelopeVersion) {
    Result<uint64_t> clock = in.Varint("clock");
    if (!clock.ok()) return false;
    (void)ObserveBounded(TxTime{*clock});  // a peer far ahead: not followed
  }
  return true;
}

void NodeHost::Impl::OnRequest(uint32_t from_node, std::string_view payload) {
  wire::Reader in(payload, "request from node " + std::to_string(from_node));
  uint64_t request_id = 0;
  if (!ReadEnvelope(in, &request_id)) {
    std::fprintf(stderr, "cairn node %u: dropping a malformed request from node %u\n", options.node_id, from_node);
    return;
  }
  std::unique_lock<std::mutex> lock(req_mu);
  if (!requests_open) return;
  if (in_requests.size() + in_running >= options.requests_pending_max) {
    Reply(from_node, request_id,
          Status::Unavailable("node " + std::to_string(options.node_id) + ": too many requests in progress"));
    return;
  }
  const std::string_view rest = in.Rest();
  if (inline_handler && handler && inline_handler(rest)) {
    // Cheap and non-blocking (SetRequestHandler): handled here, on the I/O
    // thread, without a hand-off to a worker.
    ++in_running;
    RequestHandler h = handler;
    std::string body(rest);
    lock.unlock();
    h(from_node, std::move(body), ReplyTo(from_node, request_id));
    return;
  }
  in_requests.push_back(InRequest{from_node, request_id, std::string(rest)});
  req_cv.notify_one();
}

// The reply callback of an incoming request counted in in_running.
NodeHost::RequestReply NodeHost::Impl::ReplyTo(uint32_t from, uint64_t id) {
  return [this, from, id](Result<std::string> r) {
    std::lock_guard<std::mutex> lock(req_mu);
    --in_running;
    if (requests_open) Reply(from, id, r);
  };
}

// REQUIRES: req_mu held (keeps the transport alive while sending).
void NodeHost::Impl::Reply(uint32_t to, uint64_t id, const Result<std::string>& r) {
  if (!transport) return;
  std::string out;
  wire::PutU8(&out, kEnvelopeVersion);
  wire::PutVarint(&out, id);
  wire::PutVarint(&out, hlc->Last().raw);
  wire::PutU8(&out, static_cast<uint8_t>(r.ok() ? StatusCode::kOk : r.status().code()));
  wire::PutBytes(&out, r.ok() ? std::string_view() : std::string_view(r.status().message()));
  if (r.ok()) out += *r;
  (void)transport->Send(to, net::Frame{net::FrameType::kResponse, std::move(out)});
}

void NodeHost::Impl::OnResponse(uint32_t from_node, std::string_view payload) {
  wire::Reader in(payload, "response from node " + std::to_string(from_node));
  uint64_t response_id = 0;
  if (!ReadEnvelope(in, &response_id)) return;
  Result<uint8_t> code = in.U8("code");
  Result<std::string_view> message = code.ok() ? in.Bytes("message") : Result<std::string_view>(code.status());
  if (!message.ok()) return;
  RequestReply done;
  {
    std::lock_guard<std::mutex> lock(req_mu);
    auto it = out_requests.find(response_id);
    // Unknown id: timed out already, or not ours (the sender is checked too).
    if (it == out_requests.end() || it->second.node != from_node) return;
    done = std::move(it->second.done);
    out_requests.erase(it);
  }
  if (*code == static_cast<uint8_t>(StatusCode::kOk)) {
    done(std::string(in.Rest()));
  } else if (*code > static_cast<uint8_t>(StatusCode::kInternal)) {
    done(Status::Internal("node " + std::to_string(from_node) + " replied with unknown status code " +
                          std::to_string(*code)));
  } else {
    done(Status(static_cast<StatusCode>(*code), std::string(*message)));
  }
}

void NodeHost::Impl::Worker() {
  while (true) {
    InRequest req;
    RequestHandler h;
    {
      std::unique_lock<std::mutex> lock(req_mu);
      req_cv.wait(lock, [&] { return !requests_open || !in_requests.empty(); });
      if (!requests_open) return;
      req = std::move(in_requests.front());
      in_requests.erase(in_requests.begin());
      ++in_running;
      h = handler;
    }
    uint32_t from = req.from;
    RequestReply reply = ReplyTo(from, req.id);
    if (!req.payload.empty() && static_cast<uint8_t>(req.payload[0]) == kCloseRequestKind) {
      HandleCloseRequest(from, req.payload, std::move(reply));
      continue;
    }
    if (!h) {
      reply(Status::Unavailable("node " + std::to_string(options.node_id) + " is not serving requests yet"));
      continue;
    }
    h(from, std::move(req.payload), std::move(reply));
  }
}

std::vector<std::pair<uint64_t, NodeHost::Impl::OutRequest>> NodeHost::Impl::TakeRequests(
    const std::function<bool(const OutRequest&)>& match) {
  std::vector<std::pair<uint64_t, OutRequest>> taken;
  std::lock_guard<std::mutex> lock(req_mu);
  for (auto it = out_requests.begin(); it != out_requests.end();) {
    if (match(it->second)) {
      taken.emplace_back(it->first, std::move(it->second));
      it = out_requests.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

void NodeHost::Impl::SweepRequests(Clock::time_point now) {
  for (auto& [id, r] : TakeRequests([now](const OutRequest& r) { return now >= r.deadline; })) {
    r.done(Status::Timeout("request " + std::to_string(id) + " to node " + std::to_string(r.node) +
                           " got no reply in time"));
  }
}

// A peer counted lost will not answer: its pending requests fail now
// (Unavailable, retryable) instead of at their timeouts.
void NodeHost::Impl::FailRequestsTo(uint32_t peer) {
  for (auto& [id, r] : TakeRequests([peer](const OutRequest& r) { return r.node == peer; })) {
    r.done(Status::Unavailable("node " + std::to_string(peer) + " stopped answering (request " + std::to_string(id) +
                               ")"));
  }
}

void NodeHost::Impl::FailAllRequests(const Status& why) {
  std::map<uint64_t, OutRequest> out;
  {
    std::lock_guard<std::mutex> lock(req_mu);
    requests_open = false;
    out.swap(out_requests);
    in_requests.clear();
  }
  req_cv.notify_all();
  for (auto& [id, r] : out) r.done(why);
}

void NodeHost::SetRequestHandler(RequestHandler handler, std::function<bool(std::string_view)> run_inline) {
  std::lock_guard<std::mutex> lock(impl_->req_mu);
  impl_->handler = std::move(handler);
  impl_->inline_handler = std::move(run_inline);
}

bool NodeHost::PostAfter(std::chrono::milliseconds delay, std::function<void()> task) {
  return impl_->PostAfter(delay, std::move(task));
}

void NodeHost::SendRequest(uint32_t node, std::string payload, int timeout_ms, RequestReply done) {
  impl_->SendRequest(node, std::move(payload), timeout_ms, std::move(done));
}

void NodeHost::Impl::SendRequest(uint32_t node, std::string payload, int timeout_ms, RequestReply done) {
  Status refused;
  {
    // A peer the liveness check counts lost would leave the request waiting
    // for its timeout: refused at once (Unavailable; the caller retries
    // elsewhere or later).
    std::lock_guard<std::mutex> lock(mu);
    auto it = published_live.find(node);
    if (it != published_live.end() && !it->second) {
      refused = Status::Unavailable("node " + std::to_string(node) + " is not answering (liveness)");
    }
  }
  if (!refused.ok()) return done(refused);
  {
    std::lock_guard<std::mutex> lock(req_mu);
    if (!requests_open || !transport) {
      refused = Status::Unavailable("node " + std::to_string(options.node_id) + " is stopped");
    } else if (out_requests.size() >= options.requests_pending_max) {
      refused = Status::Unavailable("node " + std::to_string(options.node_id) + ": too many requests pending");
    } else {
      uint64_t id = ++next_out_id;
      std::string out;
      wire::PutU8(&out, kEnvelopeVersion);
      wire::PutVarint(&out, id);
      wire::PutVarint(&out, hlc->Last().raw);
      out += payload;
      Status sent = transport->Send(node, net::Frame{net::FrameType::kRequest, std::move(out)});
      if (!sent.ok()) {
        refused = Status::Unavailable("request to node " + std::to_string(node) + ": " + sent.message());
      } else {
        out_requests.emplace(id, OutRequest{std::move(done), Clock::now() + std::chrono::milliseconds(timeout_ms), node});
        return;
      }
    }
  }
  done(refused);
}

std::future<Result<std::string>> NodeHost::SendRequest(uint32_t node, std::string payload, int timeout_ms) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> f = promise->get_future();
  SendRequest(node, std::move(payload), timeout_ms,
              [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  return f;
}

}  // namespace cairn::cluster
