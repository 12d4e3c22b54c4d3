// ClusterBackend: the Backend over a cluster node's coordinator.
#include <algorithm>
#include <atomic>
#include <optional>

#include "api/db_impl.h"
#include "cluster/node.h"
#include "server/backend.h"

namespace cairn::server {

struct ClusterBackend::Counters {
  std::atomic<uint64_t> transactions{0};
};

ClusterBackend::ClusterBackend(cluster::Node* node) : node_(node), counters_(std::make_unique<Counters>()) {}
ClusterBackend::~ClusterBackend() = default;

namespace {
TransactResult ToTransactResult(cluster::TxOutcome out) {
  TransactResult r;
  r.report.t = out.t;
  r.report.tempids = std::move(out.tempids);
  r.report.datoms = std::move(out.datoms);
  r.duplicate = out.duplicate;
  return r;
}
}  // namespace

Result<TransactResult> ClusterBackend::Transact(const TransactRequest& request) {
  // Causality (ARCHITECTURE §3): every proposal this node makes or forwards
  // from now on carries a t above what the client has seen.
  CAIRN_RETURN_IF_ERROR(node_->host().ObserveTime(request.min_t).WithContext("transact: 'min-t'"));
  CAIRN_ASSIGN_OR_RETURN(cluster::TxOutcome out, node_->coordinator().Transact(request.tx_edn, request.request_id));
  counters_->transactions.fetch_add(1, std::memory_order_relaxed);
  return ToTransactResult(std::move(out));
}

namespace {
// The coordinator's outcome as the backend's answer (counted if committed).
cluster::Coordinator::TxDone Answer(std::atomic<uint64_t>* committed, Backend::TransactDone done) {
  return [committed, done = std::move(done)](Result<cluster::TxOutcome> out) {
    if (!out.ok()) return done(out.status());
    committed->fetch_add(1, std::memory_order_relaxed);
    done(ToTransactResult(std::move(*out)));
  };
}
}  // namespace

void ClusterBackend::TransactAsync(const TransactRequest& request, TransactDone done) {
  if (Status s = node_->host().ObserveTime(request.min_t); !s.ok()) return done(s.WithContext("transact: 'min-t'"));
  // The counters outlive the node's threads (the server stops first).
  node_->coordinator().TransactAsync(request.tx_edn, request.request_id,
                                     Answer(&counters_->transactions, std::move(done)));
}

bool ClusterBackend::TryTransactNow(const TransactRequest& request, TransactDone& done) {
  if (!node_->host().ObserveTime(request.min_t).ok()) return false;  // the slow path reports it
  cluster::Coordinator::TxDone answer = Answer(&counters_->transactions, done);
  if (!node_->coordinator().TryTransactNow(request.tx_edn, request.request_id, answer)) return false;
  done = nullptr;  // taken (a copy lives in `answer`)
  return true;
}

Result<TransactResult> ClusterBackend::MetaTransact(const TransactRequest& request) {
  CAIRN_ASSIGN_OR_RETURN(cluster::TxOutcome out,
                         node_->coordinator().MetaTransact(request.tx_edn, request.request_id));
  return ToTransactResult(std::move(out));
}

namespace {

// The view a query or datoms request reads. As on the embedded server
// (EmbeddedBackend applies as-of, then since, then history, each building a
// fresh view of the database), the last one given wins.
cluster::ViewSpec SpecOf(const std::optional<TxTime>& as_of, const std::optional<TxTime>& since, bool history) {
  using Kind = cluster::ViewSpec::Kind;
  if (history) return {Kind::kHistory, TxTime{}};
  if (since) return {Kind::kSince, *since};
  if (as_of) return {Kind::kAsOf, *as_of};
  return {};
}

}  // namespace

Result<QueryResult> ClusterBackend::Query(const QueryRequest& request) {
  cluster::Coordinator& c = node_->coordinator();
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> view,
                         c.ClusterView(c.Deadline(), SpecOf(request.as_of, request.since, request.history)));
  // Db::q is the one query glue (parse, inputs, :timeout, the engine).
  auto impl = std::make_shared<internal::DbImpl>();
  impl->source = view;
  impl->make_view = [view](int, TxTime) { return view; };
  return Db(std::move(impl)).q(request.query, request.args);
}

Result<DatomsResult> ClusterBackend::Datoms(const DatomsRequest& request) {
  cluster::Coordinator& c = node_->coordinator();
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> view,
                         c.ClusterView(c.Deadline(), SpecOf(request.as_of, std::nullopt, false)));
  // Components are a prefix of the index's order: bind them in a pattern.
  static constexpr int kOrder[4][3] = {{0, 1, 2}, {1, 0, 2}, {1, 2, 0}, {2, 1, 0}};  // eavt aevt avet vaet
  int which = static_cast<int>(request.index);
  datalog::DatomPattern p;
  for (size_t i = 0; i < request.components.size() && i < 3; ++i) {
    const Value& v = request.components[i];
    switch (kOrder[which][i]) {
      case 0:
        if (v.type() != ValueType::kRef) return Status::InvalidArgument("datoms: e must be an entity id");
        p.e = v.as_ref();
        break;
      case 1:
        if (v.type() != ValueType::kKeyword) return Status::InvalidArgument("datoms: a must be a keyword");
        p.a = v.as_keyword();
        break;
      default:
        p.v = v;
    }
  }
  std::vector<Datom> datoms;
  CAIRN_RETURN_IF_ERROR(view->Scan(p, [&](const Datom& d) {
    datoms.push_back(d);
    return true;
  }));
  auto key = [&](const Datom& d, int part) -> Value {
    switch (part) {
      case 0: return Value::Ref(d.e);
      case 1: return Value::String(std::string(d.a.str()));
      default: return d.v;
    }
  };
  std::sort(datoms.begin(), datoms.end(), [&](const Datom& x, const Datom& y) {
    for (int i = 0; i < 3; ++i) {
      int cmp = key(x, kOrder[which][i]).Compare(key(y, kOrder[which][i]));
      if (cmp != 0) return cmp < 0;
    }
    return false;
  });
  DatomsResult r;
  if (datoms.size() > request.limit) {
    datoms.resize(request.limit);
    r.truncated = true;
  }
  r.datoms = std::move(datoms);
  return r;
}

Result<std::vector<Datom>> ClusterBackend::Diff(TxTime from, TxTime to) {
  if (from > to) {
    return Status::InvalidArgument("diff: from (" + std::to_string(from.raw) + ") is after to (" +
                                   std::to_string(to.raw) + ")");
  }
  cluster::Coordinator& c = node_->coordinator();
  return c.Diff(from, to, c.Deadline());
}

namespace {

std::string RoleText(raft::Role r) {
  switch (r) {
    case raft::Role::kLeader: return "leader";
    case raft::Role::kFollower: return "follower";
    case raft::Role::kCandidate: return "candidate";
    case raft::Role::kPreCandidate: return "pre-candidate";
    default: return "other";
  }
}

GroupStatusInfo Info(uint64_t group, const cluster::GroupStatus& st) {
  GroupStatusInfo g;
  g.group = group;
  g.leader = st.leader;
  g.role = RoleText(st.role);
  g.term = st.term;
  g.commit_index = st.commit;
  g.applied_index = st.applied;
  g.last_t = st.last_t;
  g.closed_t = st.closed_t;
  g.snapshot_index = st.snapshot_index;
  g.snapshots_taken = st.snapshots_taken;
  g.snapshots_installed = st.snapshots_installed;
  if (!st.snapshot_error.ok()) g.snapshot_error = st.snapshot_error.ToString();
  uint64_t last = 0;
  for (const cluster::ReplicaProgress& p : st.replicas) last = std::max(last, p.match);
  for (const cluster::ReplicaProgress& p : st.replicas) g.replicas.push_back({p.node, p.match, last - p.match});
  return g;
}

}  // namespace

BackendStatus ClusterBackend::GetStatus() {
  BackendStatus s;
  s.mode = "cluster";
  s.node_id = node_->id();
  s.transactions = counters_->transactions.load(std::memory_order_relaxed);
  cluster::NodeHost& host = node_->host();
  std::map<uint32_t, bool> live = host.peers_live();
  std::shared_ptr<const cluster::ShardMap> map = node_->map();
  MapStatus ms;
  ms.version = node_->coordinator().map_cache().version();
  for (uint32_t sh = 1; sh <= map->shards(); ++sh) ms.shards.push_back({sh, map->ReplicasOf(sh), map->LeaderHint(sh)});
  s.map = std::move(ms);
  for (const cluster::NodeAddress& n : map->nodes()) {
    NodeStatus ns;
    ns.id = n.id;
    ns.http = n.http;
    ns.peer = n.peer;
    ns.live = n.id == node_->id() || (live.count(n.id) && live[n.id]);
    s.nodes.push_back(std::move(ns));
  }
  net::TransportStats ts = host.transport_stats();
  s.peer_auth_failures = ts.auth_failures;
  s.peer_protocol_errors = ts.protocol_errors;
  s.peer_connects = ts.connects;
  s.remote_read_failures = node_->coordinator().remote_read_failures();
  const cluster::NodeHostStats hs = host.stats();
  s.closes_proposed = hs.closes_proposed;
  s.driver_rounds = hs.rounds;
  s.driver_readies = hs.readies_saved;
  s.driver_entries_applied = hs.entries_applied;
  s.driver_frames_sent = hs.frames_sent;
  s.driver_messages_sent = hs.messages_sent;
  s.driver_batched_waits = hs.batched_waits;
  s.driver_slow_rounds = hs.slow_rounds;
  s.driver_round_us_max = hs.round_us_max;
  for (uint64_t g : host.groups()) {
    Result<cluster::GroupStatus> st = host.status(g);
    if (!st.ok()) continue;
    GroupStatusInfo info = Info(g, *st);
    if (info.last_t > s.latest_t) s.latest_t = info.last_t;
    if (g == cluster::kMetaGroup) {
      s.meta = std::move(info);
    } else {
      s.groups.push_back(std::move(info));
      ShardStatus sh;
      sh.shard = static_cast<uint32_t>(g);
      sh.leader = st->role == raft::Role::kLeader;
      sh.term = st->term;
      sh.commit_index = st->commit;
      sh.applied_index = st->applied;
      s.shards.push_back(sh);
    }
  }
  return s;
}

Status ClusterBackend::Health() { return node_->Health(); }

// The node's hybrid clock: at least every t applied here and every peer's
// clock in the replies this node read (docs/cluster.md "Time").
TxTime ClusterBackend::KnownTime() { return node_->host().LatestTime(); }

}  // namespace cairn::server
