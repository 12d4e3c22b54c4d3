// Coordinator: runs in every node; turns a client's transaction or read into
// work on the right Raft groups, wherever their leaders are (ARCHITECTURE §6,
// the cluster contract, docs/cluster.md).
//
// Transactions: Transact(tx_edn, request_id)
//   1. parses the EDN and classifies it: a *schema* transaction (it installs
//      or changes attributes or idents: the system partition) or a data
//      transaction; both at once is InvalidArgument;
//   2. data: finds the ONE shard its entities live on (RouteTransaction,
//      RouteTx as the fallback; see Reads and Routing below);
//      entities on two shards is InvalidArgument "cross_shard: ..." naming
//      the shards (the HTTP layer answers 400 cross_shard);
//   3. proposes it at that shard's leader: locally through NodeHost::Propose
//      when this node leads, else as a kRequest to the leader node, retrying
//      across NotLeader (following the hint), Unavailable and Timeout with
//      backoff until the request deadline, always with the same request id
//      so a retry is applied at most once;
//   4. schema: the same at the meta group first, then at every shard with
//      request id "schema:<meta t>:<shard>" (idempotent), acknowledged only
//      when every shard applied it.
// An empty request id gets a fresh one (unique across restarts).
//
// Reads: ClusterView() is a ClusterSource (cluster_source.h) over every
// group: the system partition (attributes, idents) from the meta group only,
// every other entity from its shard. A group this node hosts is read with
// NodeHost::Read (ReadIndex: linearizable) on the local replica; any other
// group through a RemoteSource (scan_codec.h) on a live replica, which
// serves each request after a ReadIndex of its own. This node serves those
// requests (payloads starting with the scan codec's magic 0xC5) from its
// local replicas. Every view kind is served: current, as-of T, since T and
// history (ViewSpec, scan_codec.h) — each replica keeps the embedded store's
// history index and views (shard/store_source.h); ClusterView(deadline,
// spec) merges the groups' views of one kind. As-of T reads each group with
// NodeHost::ReadAt(T) (the group closes T first: every transaction with
// t <= T that will ever commit there is in); Diff reads every group's
// history at T2 closed (docs/cluster.md "Time travel across shards").
//
// Routing: RouteTransaction (tx_router.h), a dry run of the transactor over
// the local replicas' latest applied state (remote groups as above), and
// again over ClusterView() if that fails; when the dry run writes nothing (a retry of an applied
// request), the static RouteTx below decides, so a retry goes where the
// first attempt went.
//
// The shard map (replica sets, leader hints, nodes) comes from a
// ShardMapCache that follows the meta group's records (RefreshMap, called
// by the node's background thread); which groups this node hosts comes from
// its host. A remote read moves to the group's next replica when the one
// serving it fails (RemoteSource, scan_codec.h).
//
// Requests between coordinators (payload of NodeHost requests): see
// docs/cluster.md "Peer requests". A node never forwards a forwarded
// request again: it proposes locally or answers NotLeader with its hint.
//
// Thread-safety: every public method may be called from many threads at
// once (HTTP workers); none may be called from the host's driver thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/datom.h"
#include "cairn/status.h"
#include "cluster/node_host.h"
#include "cluster/scan_codec.h"
#include "cluster/shard_map.h"
#include "cluster/shard_map_cache.h"
#include "core/edn.h"
#include "core/schema.h"
#include "datalog/index_source.h"

namespace cairn::cluster {

struct CoordinatorOptions {
  int request_timeout_ms = 10'000;  // a whole Transact or read, retries included
  int hop_timeout_ms = 5'000;       // one forwarded attempt
  int backoff_ms_min = 5;
  int backoff_ms_max = 200;
  int map_request_timeout_ms = 1'000;  // one ask of a meta member for the shard map
};

struct TxOutcome {
  TxTime t;
  std::map<std::string, EntityId> tempids;
  std::vector<Datom> datoms;
  bool duplicate = false;  // the request id had applied before
  uint64_t group = 0;      // where it applied (0: a schema transaction, meta's t)
};

// Where a transaction goes.
struct TxRoute {
  bool schema = false;  // installs/changes attributes or idents: meta + every shard
  uint64_t group = 0;   // data: the shard
};

// Classifies and routes EDN tx-data by the placement rules of
// shard/transactor.h (existing ids, lookup refs and identity values, hints,
// the transaction's anchor, else each tempid's own partition), using
// `schema` for identity attributes. InvalidArgument for malformed forms,
// schema mixed with data, or entities on more than one shard ("cross_shard:
// ..."). A transaction whose entities cannot be placed statically (no id,
// lookup ref, identity value, hint or tempid) goes to shard 1.
Result<TxRoute> RouteTx(const Edn& tx, const Schema& schema, const ShardMap& map);

class Coordinator {
 public:
  using Clock = std::chrono::steady_clock;

  // `host` must outlive the coordinator. Installs the request handler.
  Coordinator(NodeHost* host, ShardMap map, CoordinatorOptions options = {});
  ~Coordinator();

  // The shard map this node routes with: the meta group's copy once read
  // (RefreshMap), else the config's (shard_map_cache.h).
  std::shared_ptr<const ShardMap> map() const { return maps_->map(); }
  const ShardMapCache& map_cache() const { return *maps_; }

  // Follows the meta group's shard map: if the meta group's applied index
  // moved since the cached version, reads its records — from the local meta
  // replica (no round trip) if this node hosts one, else from a meta member
  // over the peer request path (kind 2; "unchanged" when its applied index
  // equals ours) — and installs them. Returns whether the map changed.
  // Errors: the meta group has no records yet (NotFound), no member
  // answered (Unavailable), bad bytes (InvalidArgument).
  Result<bool> RefreshMap();

  // Commits `tx_edn` to the meta group only (the admin path: edits of the
  // :cairn.node/* and :cairn.shard/* records that every node's map follows).
  // Nothing is routed or pushed to the shards — a schema transaction sent
  // here reaches the shards through the background schema repair.
  // InvalidArgument (nothing committed) for forms other than :db/add,
  // :db/retract and maps, attributes other than :cairn.node/*,
  // :cairn.shard/* and schema, or a :cairn.shard/replicas value that is not
  // a known node.
  Result<TxOutcome> MetaTransact(std::string_view tx_edn, std::string request_id);
  uint32_t node_id() const;

  Result<TxOutcome> Transact(std::string_view tx_edn, std::string request_id);
  using TxDone = std::function<void(Result<TxOutcome>)>;
  // Transact without waiting for the leader: parses and routes on the
  // calling thread, then calls `done` exactly once — on the host's driver or
  // transport I/O thread (it must not block), or on the calling thread for
  // an error found before proposing and for a schema transaction (which
  // runs synchronously: meta, then every shard).
  void TransactAsync(std::string_view tx_edn, std::string request_id, TxDone done);
  // TransactAsync when it can start without blocking (this node hosts every
  // group, so the routing dry run reads only local replicas' latest applied
  // state, succeeds, and the transaction is data, not schema): returns true
  // and takes `done`. Else returns false and leaves `done` alone: the caller
  // goes the TransactAsync way on a thread that may block.
  bool TryTransactNow(std::string_view tx_edn, std::string request_id, TxDone& done);

  // Proposes `tx_edn` to `group` at its leader wherever it is, retrying
  // until `deadline` with the same request id (see the header comment).
  Result<TxOutcome> ProposeAt(uint64_t group, const std::string& request_id, const std::string& tx_edn,
                              Clock::time_point deadline);
  // The same without waiting: `done` runs once, on the host's driver or
  // transport I/O thread (or on the calling thread if no attempt could be
  // made); every retry is scheduled by the host (NodeHost::PostAfter).
  void ProposeAtAsync(uint64_t group, std::string request_id, std::string tx_edn, Clock::time_point deadline,
                      TxDone done);

  // A linearizable database value of one group: the local replica's
  // (ReadIndex) if this node hosts it, else a RemoteSource reading a live
  // replica on another node (each of its requests is a ReadIndex read there).
  Result<std::shared_ptr<const datalog::IndexSource>> GroupView(uint64_t group, Clock::time_point deadline);
  // The ClusterSource over every group (see the header comment), in the
  // view `spec` (current by default; as-of T, since T, history;
  // InvalidArgument for history-after, which only Diff reads).
  Result<std::shared_ptr<const datalog::IndexSource>> ClusterView(Clock::time_point deadline,
                                                                   const ViewSpec& spec = {});

  // The datoms asserted and retracted with t1 < t <= t2 across the cluster,
  // in t order (within one t: attribute name, e, v, retraction first); empty
  // unless t1 < t2. Read from every group's history view at t2 closed, so
  // every node answers the same.
  Result<std::vector<Datom>> Diff(TxTime t1, TxTime t2, Clock::time_point deadline);

  // Writes the membership and shard map into the meta group as datoms
  // (:cairn.node/*, :cairn.shard/*, :cairn.cluster/*), idempotently (request
  // ids "bootstrap-schema", "bootstrap"). Retries until `deadline`.
  Status Bootstrap(Clock::time_point deadline);

  // Re-sends the meta group's schema to `shards` (empty: every shard) as one
  // upserting transaction (idempotent: "schema:<meta t>:<shard>", meta t =
  // the latest t of the meta view read), so a shard that missed a schema
  // transaction (its push failed half-way) catches up.
  Status ReconcileSchema(Clock::time_point deadline, std::vector<uint64_t> shards = {});

  // Background schema repair, one round (the node calls it every few
  // seconds): compares the schema of every shard replica this node hosts
  // (its latest applied state) with the meta group's (local replica, or a
  // remote read), and re-sends the meta group's schema to a shard found
  // behind in this round and the previous one (a push in flight gets one
  // round to land), once per meta schema (a difference the upserting
  // re-send cannot fix, e.g. a property retracted in the meta group, is not
  // re-sent every round). Returns the shards it repaired. Not thread-safe with
  // itself: one caller (the node's background thread).
  Result<std::vector<uint64_t>> RepairSchemaRound(Clock::time_point deadline);

  // Remote read requests that failed at one replica (the read then moved
  // to the next one, if any).
  uint64_t remote_read_failures() const { return remote_read_failures_.load(); }

  Clock::time_point Deadline() const { return Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms); }

 private:
  struct ProposeOp;  // one ProposeAtAsync (coordinator.cc)
  // A data or schema transaction routed, with its request id (fresh if none).
  struct PlannedTx {
    TxRoute route;
    std::string text;  // the tx-data to propose (the router's rewrite)
    std::string request_id;
  };
  // stale_only: route over the local replicas' latest applied state only,
  // without parsing ahead or any read that may block; fails (the caller takes
  // the full way) where the full way would read linearizably.
  Result<PlannedTx> PlanTransact(std::string_view tx_edn, std::string request_id, Clock::time_point deadline,
                                 bool stale_only);
  void HandleRequest(uint32_t from, std::string payload, NodeHost::RequestReply reply);
  Result<std::string> ServeMetaMap(uint64_t known_version) const;
  std::string FreshRequestId();
  bool PeerLive(uint32_t node) const;
  bool Hosts(uint64_t group) const;
  // How BuildClusterView reads the groups this node hosts: linearizably,
  // their latest applied state falling back to a linearizable read when none
  // is published yet, or that state only (fails without it: never blocks).
  enum class LocalReads { kLinearizable, kStaleFirst, kStaleOnly };
  Result<std::shared_ptr<const datalog::IndexSource>> BuildClusterView(Clock::time_point deadline, LocalReads local);
  // LocalView in two halves, so that the read indexes of several groups are
  // asked at once: Start asks the first one, Finish waits for it (and asks
  // again, with backoff, while it fails retryably).
  struct LocalRead {
    uint64_t group = 0;
    std::optional<TxTime> close_at;
    uint32_t leader = 0;  // the leader known when the read was asked
    std::future<NodeHost::DbResult> first;
  };
  LocalRead StartLocalView(uint64_t group, const ViewSpec& spec, std::optional<TxTime> close_at);
  Result<std::shared_ptr<const datalog::IndexSource>> FinishLocalView(LocalRead read, Clock::time_point deadline,
                                                                      const ViewSpec& spec);
  // The local replica's value after a linearizable read, in view `spec`;
  // with `close_at` (implied by an as-of spec: its T) the read is a
  // NodeHost::ReadAt, so the value holds every t <= close_at that will ever
  // commit on the group.
  Result<std::shared_ptr<const datalog::IndexSource>> LocalView(uint64_t group, Clock::time_point deadline,
                                                                const ViewSpec& spec = {},
                                                                std::optional<TxTime> close_at = std::nullopt);
  // ClusterView of a time view (as-of, since, history), every group read at
  // `close_at` closed if set (as-of: its T).
  Result<std::shared_ptr<const datalog::IndexSource>> BuildTimeView(Clock::time_point deadline, const ViewSpec& spec,
                                                                    std::optional<TxTime> close_at);
  std::shared_ptr<const datalog::IndexSource> RemoteView(uint64_t group, std::shared_ptr<const Schema> schema,
                                                         Clock::time_point deadline, const ViewSpec& spec = {});
  std::shared_ptr<const Schema> RoutingSchema() const;
  // To `shards` (empty: every shard).
  Result<TxOutcome> PushSchema(const std::string& tx_edn, const TxOutcome& meta, Clock::time_point deadline,
                               std::vector<uint64_t> shards = {});

  NodeHost* host_;
  std::shared_ptr<ShardMapCache> maps_;
  std::set<uint64_t> hosted_;
  std::set<uint64_t> behind_last_round_;  // RepairSchemaRound's state
  std::map<uint64_t, std::string> repaired_against_;  // shard -> the meta schema it was last repaired to  // the groups this node's host holds (fixed at start)
  CoordinatorOptions options_;
  uint64_t boot_id_ = 0;
  std::atomic<uint64_t> next_id_{0};
  std::atomic<uint64_t> remote_read_failures_{0};
};

}  // namespace cairn::cluster
