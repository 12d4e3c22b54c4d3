// NodeHost: one Cairn node's shard replicas, driven over real TCP.
//
// A node hosts one replica of each group (shard) it is a member of. All of
// them share one Raft log database (<dir>/raft.db, one RaftLogStore), each
// has its own datom file (<dir>/datoms_<group>.db), and all their messages to
// one peer node travel in one net::PeerTransport connection.
//
// One driver thread owns every replica (Replica has no locking) and loops:
//   1. take what the transport's I/O thread queued (decoded raft messages),
//      the proposals and the tasks other threads queued;
//   2. step the messages (RaftNode::Step itself wakes a quiesced group for
//      anything but the idle heartbeat round and its answers),
//      propose the proposals at the local leader;
//   3. every tick_ms, tick every replica that is not quiesced; when the
//      transport made a new outbound connection (a peer came back) or a
//      peer's liveness changed, wake every quiesced group first;
//   4. collect every replica's Ready and persist them all with ONE
//      RaftLogStore::Save (one SQLite transaction, one fsync: group commit);
//   5. send every Ready's messages, batched per peer node: one kRaft frame
//      per peer per round (shard/raft_codec.h batch);
//   6. apply (Replica::FinishReady) and complete the proposals whose request
//      id now has an outcome.
// Liveness: quiesced groups send no heartbeats, so a follower could not tell
// that its leader's node died. The host therefore sends every peer node an
// empty kRaft frame every heartbeat interval (tick_ms x heartbeat_ticks),
// one per peer whatever the number of groups, and counts a peer lost after
// an election timeout (tick_ms x election_ticks_min) without any frame from
// it. A peer lost or regained wakes the quiesced groups.
//
// The driver sleeps until the next tick or until the transport queues
// something, whichever comes first.
//
// Proposals: Propose() may be called from any thread. The callback runs on
// the driver thread (it must not block or call back into the host
// synchronously waiting for the driver) exactly once: with the apply outcome
// when the entry applies on this node; NotLeader (leader filled in when
// known) when this replica does not lead, or as soon as a leader change
// drops the entry from the log; Timeout after propose_timeout_ms
// (the entry may still commit later; a retry with the same request id is
// applied at most once); Cancelled at Stop().
//
// A failed Save (I/O) stops the driver: the host cannot promise anything it
// has not persisted. status() reports it; pending proposals fail with it.
//
// Time (ARCHITECTURE §3, docs/cluster.md "Time"): one HybridClock per node.
// Every transaction this node proposes as a leader takes its proposed t from
// it; it observes every t the node learns: each hosted replica's closed time
// (its last applied t or close) after every applied batch and at start, and
// what callers pass to ObserveTime() (a client's min-t, the t carried by a
// forwarded request) and the clock every peer request and reply carries
// (so after reading from a peer, this node's clock is at least every t the
// reply's data holds). So a proposal made after ObserveTime(x) applies with a
// t > x, whatever the leader's wall clock says.
// ReadAt(group, T) is a Read that also guarantees every transaction with
// t <= T that will ever commit on the group is in the value: if the replica
// has not closed T at the read point, it has the leader propose close(T)
// (shard/replica_command.h) — directly when this node leads, else as a
// close request to the leader (a kRequest payload starting with 0xC7, served
// by NodeHost itself, not by the request handler) — and serves once that
// close is applied here.
//
// Requests: besides Raft, peers exchange node-to-node requests (forwarded
// transactions, remote scans, schema pushes) as kRequest/kResponse frames on
// the same authenticated connections. SendRequest() tags each request with a
// fresh id and keeps it in a bounded pending map until the reply with the
// same id arrives or its timeout passes; the receiving host runs the handler
// set with SetRequestHandler() on one of its request worker threads (the
// handler may block, e.g. on a proposal) and sends back what it answers.
// Envelopes (docs/cluster.md):
//   kRequest:  version:u8(=2) varint(id) varint(clock) payload
//   kResponse: version:u8(=2) varint(id) varint(clock) code:u8 varint(len) message payload
// `clock` is the sender's hybrid clock (see Time below), observed by the
// receiver (unless more than max_observed_ahead_ms ahead of its wall clock);
// version 1 (no clock) is still accepted.
//
// Thread-safety: every public method may be called from any thread except
// the callbacks' own (driver) thread for the blocking ones (LogDatoms, Stop).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "core/clock.h"
#include "datalog/index_source.h"
#include "net/peer_transport.h"
#include "raft/config.h"
#include "raft/raft_node.h"
#include "storage/datom_store.h"

namespace cairn::cluster {

struct NodeHostOptions {
  uint32_t node_id = 0;
  std::string dir;  // raft.db and datoms_<group>.db live here (created if missing)
  // group -> its founding voters (node ids). Used to bootstrap a group the
  // log database has no state for yet; an existing group keeps its own.
  std::map<uint64_t, std::vector<uint32_t>> groups;
  // Peer node id -> "host", port. May also be set later with SetPeer().
  std::map<uint32_t, std::pair<std::string, uint16_t>> peers;

  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0 picks a free port; see port()
  std::string cluster_secret;

  int tick_ms = 10;
  int propose_timeout_ms = 5000;
  // Template for every replica's Raft config (timing, quiescence); id, group
  // and seed are filled in per replica.
  raft::Config raft;
  storage::StoreOptions store;
  // synchronous=FULL for the Raft log (durable); false = NORMAL (tests).
  bool sync_log = true;
  // Every replica snapshots its datom file and compacts its log every this
  // many applied entries (0 = never); see shard/replica.h.
  // Like etcd's --snapshot-count (100,000). The VACUUM INTO of the shard's
  // datom file runs on a thread of its own (ReplicaOptions::
  // snapshot_in_background); it still takes CPU and disk from the node.
  uint64_t snapshot_entries = 100000;
  uint64_t snapshot_bytes = uint64_t{64} << 20;  // ReplicaOptions::snapshot_bytes
  // Every replica commits its datom file at most this often (ms), not once
  // per round; the Raft log is the durable record and a restart replays it
  // (shard/replica.h "Applied state"). 0 = commit every round.
  int datom_commit_interval_ms = 20;
  // Whether shard `group` owns user partition `partition` (the shard map);
  // null = every group owns every partition (no guard). See
  // ReplicaOptions::owns_partition.
  std::function<bool(uint64_t group, uint32_t partition)> owns_partition;
  // Threads that run incoming requests' handler, and the bound on requests
  // waiting for a worker or for a reply (more are refused with Unavailable).
  int request_workers = 4;
  size_t requests_pending_max = 4096;
  // StaleRead's value of a group is refreshed at most this often (and only
  // when the replica applied something since). Publishing pins the replica's
  // index snapshot, so its next apply copies the chunks it touches; every 5 ms
  // (the old default) still cost a fifth of the throughput of one-datom
  // writes (bench/cluster/README.md). 0 = every round.
  int stale_publish_ms = 50;
  // A driver loop iteration longer than this counts in NodeHostStats::
  // slow_rounds (2/3 of the shortest election timeout at the defaults).
  int slow_round_ms = 100;
  // Round batching: when a round that persisted or applied at least two log
  // entries ends and work is already queued (the node is saturated with
  // writes), the next round starts no sooner than this many µs after the
  // previous one started, so one round — one Raft log save and fsync, one
  // datom transaction per group, one frame per peer — carries more
  // proposals and messages. A node that had to wait for work, and rounds of
  // heartbeats and read confirmations, go at once, so reads and light load
  // pay no latency for it. 0 = never wait.
  int round_batch_us = 2000;
  // The wall clock under the node's hybrid clock; null = the system clock.
  // Not owned; must outlive the host. Tests inject a ManualClock.
  cairn::Clock* clock = nullptr;
  // Added to `clock`'s reading (simulated clock skew for tests; 0 = none).
  int64_t clock_offset_ms = 0;
  // ReadAt refuses a T more than this many ms ahead of the node's hybrid
  // clock (InvalidArgument): closing far in the future would push every
  // later transaction's t there.
  int64_t read_at_max_future_ms = 5000;
  // ObserveTime refuses a t more than this many ms ahead of the node's wall
  // clock: one bad client value must not drag every later t into the future.
  int64_t max_observed_ahead_ms = 60'000;
};

struct ReplicaProgress {
  uint32_t node = 0;
  uint64_t match = 0;  // highest log index known replicated there
};

struct GroupStatus {
  raft::Role role = raft::Role::kFollower;
  uint32_t leader = 0;  // node id, 0 if unknown
  uint64_t term = 0;
  uint64_t commit = 0;
  uint64_t applied = 0;
  bool quiesced = false;
  Status error;  // the replica failed (I/O, snapshot to install)
  TxTime last_t;  // the last applied transaction's t
  // The shard's closed time as of the applied index (Replica::closed_t):
  // every transaction with t <= closed_t that will ever commit is applied.
  TxTime closed_t;
  uint64_t snapshot_index = 0;       // the Raft snapshot the log starts after
  uint64_t snapshots_taken = 0;      // by this replica since the node started
  uint64_t snapshots_installed = 0;  // received from a leader since the node started
  Status snapshot_error;             // why the last snapshot copy failed (OK once one succeeds)
  // Where this replica leads: every voter's progress (self included); else empty.
  std::vector<ReplicaProgress> replicas;
};

struct ProposeResult {
  Status status;        // OK, the transactor's error, NotLeader, Timeout, ...
  uint32_t leader = 0;  // with NotLeader: the leader's node id if known
  uint64_t index = 0;   // the entry that applied it
  TxTime t;             // the transaction's t (zero if it failed)
  // True when the request id had applied before (a retry): t, index and
  // tempids are the first outcome's; datoms are empty.
  bool duplicate = false;
  std::map<std::string, EntityId> tempids;  // when this proposal applied it
  std::vector<Datom> datoms;                // what it wrote (same)
};

// Counters since Start (group commit and batching show as ratios).
struct NodeHostStats {
  uint64_t rounds = 0;          // driver rounds that persisted something
  uint64_t saves = 0;           // RaftLogStore::Save calls (one per such round)
  uint64_t readies_saved = 0;   // group Ready batches those saves carried
  uint64_t frames_sent = 0;     // kRaft frames with messages (one per peer per round)
  uint64_t messages_sent = 0;   // raft messages those frames carried
  uint64_t closes_proposed = 0;  // close(T) entries this node proposed as a leader
  uint64_t close_requests_sent = 0;  // close requests sent to a leader by ReadAt
  uint64_t entries_applied = 0;  // committed log entries applied (every group)
  uint64_t batched_waits = 0;    // rounds delayed by round_batch_us (the node was saturated)
  // Driver loop iterations (inbox, ticks, one Round) that took longer than
  // NodeHostOptions::slow_round_ms, and the longest one since start: a long
  // one delays every group's heartbeats and answers on this node.
  uint64_t slow_rounds = 0;
  uint64_t round_us_max = 0;
};

class NodeHost {
 public:
  // Opens the log database and every replica, starts the transport and the
  // driver thread.
  static Result<std::unique_ptr<NodeHost>> Start(const NodeHostOptions& options);
  ~NodeHost();  // Stop()

  // Stops the driver, fails pending proposals with Cancelled, stops the
  // transport and closes every file. Idempotent.
  void Stop();

  uint32_t node_id() const { return options_.node_id; }
  uint16_t port() const;
  void SetPeer(uint32_t node_id, const std::string& host, uint16_t port);

  using ProposeCallback = std::function<void(ProposeResult)>;
  // Proposes `tx_edn` (an EDN vector of tx forms) to `group`. An empty
  // request id gets a fresh unique one (no deduplication across retries).
  void Propose(uint64_t group, std::string request_id, std::string tx_edn, ProposeCallback done);
  std::future<ProposeResult> Propose(uint64_t group, std::string request_id, std::string tx_edn);

  // Linearizable read on any replica of `group`, leader or follower: asks
  // Raft for a read index (ReadIndex), waits until this replica applied it,
  // then answers the database value as of then, which reflects every
  // transaction completed before Read was called. Unavailable if no leader is
  // known; NotLeader as soon as this replica learns that the leader it asked
  // was replaced (its answer may never come: retry); Timeout after
  // propose_timeout_ms. The callback runs on the driver thread.
  using DbResult = Result<std::shared_ptr<const datalog::IndexSource>>;
  using ReadCallback = std::function<void(DbResult)>;
  void Read(uint64_t group, ReadCallback done);
  std::future<DbResult> Read(uint64_t group);
  // A linearizable read (as Read) whose value also holds every transaction
  // with t <= T that will ever commit on `group` (an as-of(T) read filters
  // it by t): if at the read point neither the replica's last t nor its
  // closed time reaches T, close(T) is proposed through the leader (forwarded
  // as a close request from a follower) and the read is served once it is
  // applied here. A T more than options.read_at_max_future_ms ahead of the
  // node's hybrid clock is refused (InvalidArgument); a T at or below it is
  // closed at max(T, the leader's hybrid clock now). Errors as Read, plus
  // NotLeader/Unavailable/Timeout when the close could not be made (retry).
  // The callback runs on the driver thread.
  void ReadAt(uint64_t group, TxTime t, ReadCallback done);
  std::future<DbResult> ReadAt(uint64_t group, TxTime t);
  // The local replica's latest applied value without any round trip (a
  // stale read: it may miss recent transactions, and lags the replica by up
  // to stale_publish_ms plus one driver round). Current view only (no
  // as-of, since or history: it does not hold the history index). NotFound
  // if not hosted.
  DbResult StaleRead(uint64_t group) const;

  // Records a t learned elsewhere (a client's min-t, a forwarded request's
  // t): every later proposal of this node has a proposed t above it.
  // InvalidArgument (nothing recorded) if t is more than
  // options.max_observed_ahead_ms ahead of the node's wall clock.
  Status ObserveTime(TxTime t);
  // The node's hybrid clock's latest value (the largest t proposed or
  // observed here).
  TxTime LatestTime() const;

  // Status of one group (NotFound if not hosted), as of the last driver round.
  Result<GroupStatus> status(uint64_t group) const;
  // The host's own failure (a failed Save), OK otherwise.
  Status health() const;
  // True once Stop() began or the driver exited (a failed Save): every
  // later call fails at once.
  bool stopped() const;
  std::vector<uint64_t> groups() const;
  // Peer node id -> heard from within an election timeout (as of the last
  // liveness check).
  std::map<uint32_t, bool> peers_live() const;
  NodeHostStats stats() const;
  // The peer transport's counters (auth failures, protocol errors, ...).
  net::TransportStats transport_stats() const;

  // Every datom in the group's store, in commit order (runs on the driver).
  Result<std::vector<Datom>> LogDatoms(uint64_t group);

  // Node-to-node requests (see the header comment).
  using RequestReply = std::function<void(Result<std::string>)>;
  // Runs on a request worker thread; must call `reply` exactly once (it may
  // do so later, from any thread). An error reply reaches the sender as
  // that Status.
  using RequestHandler = std::function<void(uint32_t from_node, std::string payload, RequestReply reply)>;
  // Set before peers send requests; until then requests are answered
  // Unavailable. A request whose payload `run_inline` accepts is handled
  // directly on the transport's I/O thread instead of a worker: for cheap
  // handlers that never block (e.g. one that only proposes with a callback).
  void SetRequestHandler(RequestHandler handler, std::function<bool(std::string_view payload)> run_inline = {});
  // Runs `task` on the driver thread `delay` from now (the driver checks
  // every tick_ms, so late by up to one tick); false (nothing scheduled) once
  // the host stops. Tasks still waiting then run as the driver exits, when
  // every call into the host fails at once.
  bool PostAfter(std::chrono::milliseconds delay, std::function<void()> task);
  // Sends `payload` to `node` and calls `done` once with the reply payload,
  // the handler's error, Unavailable (unknown peer, queue full, too many
  // pending requests, host stopped, the peer counted lost by the liveness
  // check) or Timeout after `timeout_ms`. `done`
  // runs on the transport's I/O thread or the driver thread: it must not
  // block.
  void SendRequest(uint32_t node, std::string payload, int timeout_ms, RequestReply done);
  std::future<Result<std::string>> SendRequest(uint32_t node, std::string payload, int timeout_ms);

  struct Impl;

 private:
  explicit NodeHost(const NodeHostOptions& options);
  NodeHostOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::cluster
