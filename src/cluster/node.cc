#include "cluster/node.h"

#include <algorithm>
#include <cstdio>

namespace cairn::cluster {

Result<std::unique_ptr<Node>> Node::Start(const NodeOptions& options) {
  const ClusterConfig& c = options.config;
  std::unique_ptr<Node> node(new Node(options));
  ShardMap map = c.map();

  NodeHostOptions ho;
  ho.node_id = c.node_id;
  ho.dir = c.dir;
  for (uint64_t g : map.GroupsOn(c.node_id)) ho.groups[g] = map.ReplicasOf(g);
  for (const NodeAddress& n : c.nodes) {
    if (n.id != c.node_id) ho.peers[n.id] = {n.peer_host, n.peer_port};
  }
  ho.listen_host = c.peer_host;
  ho.listen_port = c.peer_port;
  ho.cluster_secret = c.cluster_secret;
  ho.tick_ms = c.tick_ms;
  ho.propose_timeout_ms = options.propose_timeout_ms;
  ho.raft = options.raft;
  ho.sync_log = c.sync;
  // Only the Raft log is fsynced on every write. A replica's datom file runs
  // synchronous=NORMAL (a kill -9 loses nothing; a power loss may lose its
  // last commits): its applied index commits with its datoms, so at open it
  // re-applies the committed entries after it from the durable log, or
  // installs the snapshot the log store kept if the log was compacted past it.
  ho.store.sync = false;
  ho.store.partitions = c.partitions;
  ho.snapshot_entries = c.snapshot_entries;
  ho.clock_offset_ms = c.clock_offset_ms;  // simulated skew (tests)
  // The shard ownership guard (shard/replica.h): a shard refuses user
  // partitions the map gives another shard. The meta group is not guarded.
  ho.owns_partition = [shards = map.shards()](uint64_t group, uint32_t partition) {
    return group == 0 || ShardOfPartition(partition, shards) == group;
  };
  CAIRN_ASSIGN_OR_RETURN(node->host_, NodeHost::Start(ho));
  node->coordinator_ = std::make_unique<Coordinator>(node->host_.get(), std::move(map), options.coordinator);
  if (options.bootstrap) {
    Node* raw = node.get();
    node->background_ = std::thread([raw] { raw->Background(); });
  }
  return node;
}


void Node::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // The host first: it fails pending proposals and requests (later calls
  // fail at once), which releases the background thread and any caller
  // blocked in the coordinator.
  if (host_) host_->Stop();
  if (background_.joinable()) background_.join();
}

Node::~Node() {
  Stop();
  coordinator_.reset();
  host_.reset();
}

void Node::Background() {
  auto wait = [&](int ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
  };
  int wait_ms = 50;
  while (!bootstrapped_) {
    if (wait(wait_ms)) return;
    Result<GroupStatus> meta = host_->status(kMetaGroup);
    bool meta_known = meta.ok() ? meta->leader != 0 : true;  // not hosted: ask the others
    if (!meta_known) continue;
    auto deadline = Coordinator::Clock::now() + std::chrono::seconds(5);
    Status s = coordinator_->Bootstrap(deadline);
    if (s.ok()) s = coordinator_->ReconcileSchema(deadline);
    if (s.ok()) {
      bootstrapped_ = true;
      break;
    }
    std::fprintf(stderr, "cairn node %u: bootstrap not done yet: %s\n", id(), s.ToString().c_str());
    wait_ms = std::min(1000, wait_ms * 2);
  }
  // Follow the meta group until Stop().
  const int poll_ms = std::max(10, options_.map_poll_ms);
  const int repair_ms = std::max(poll_ms, options_.schema_repair_interval_ms);
  auto next_repair = Coordinator::Clock::now() + std::chrono::milliseconds(repair_ms);
  std::string last_map_error, last_repair_error;
  while (!wait(poll_ms)) {
    Result<bool> changed = coordinator_->RefreshMap();
    std::string err = changed.ok() ? "" : changed.status().ToString();
    if (err != last_map_error && !err.empty()) {
      std::fprintf(stderr, "cairn node %u: shard map not refreshed from the meta group: %s\n", id(), err.c_str());
    }
    last_map_error = err;
    if (Coordinator::Clock::now() < next_repair) continue;
    next_repair = Coordinator::Clock::now() + std::chrono::milliseconds(repair_ms);
    Result<std::vector<uint64_t>> repaired =
        coordinator_->RepairSchemaRound(Coordinator::Clock::now() + std::chrono::seconds(5));
    err = repaired.ok() ? "" : repaired.status().ToString();
    if (repaired.ok() && !repaired->empty()) {
      schema_repairs_.fetch_add(1);
      std::string shards;
      for (uint64_t g : *repaired) shards += " " + std::to_string(g);
      std::fprintf(stderr, "cairn node %u: schema repair: re-sent the meta group's schema to shard(s)%s\n", id(),
                   shards.c_str());
    }
    if (err != last_repair_error && !err.empty()) {
      std::fprintf(stderr, "cairn node %u: schema repair round failed: %s\n", id(), err.c_str());
    }
    last_repair_error = err;
  }
}

Status Node::Health() const {
  if (!host_) return Status::Unavailable("node " + std::to_string(id()) + " is stopped");
  CAIRN_RETURN_IF_ERROR(host_->health());
  if (host_->stopped()) return Status::Unavailable("node " + std::to_string(id()) + " is stopping");
  for (uint64_t g : host_->groups()) {
    Result<GroupStatus> st = host_->status(g);
    if (!st.ok()) return st.status();
    std::string name = g == kMetaGroup ? "meta group" : "shard " + std::to_string(g);
    if (!st->error.ok()) return Status::Unavailable(name + " replica failed: " + st->error.ToString());
    if (st->leader == 0) return Status::Unavailable(name + " has no known leader");
  }
  return Status::OK();
}

}  // namespace cairn::cluster
