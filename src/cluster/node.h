// Node: one cluster node = a NodeHost (the replicas of the meta group and of
// the shards this node holds, over the peer transport) + a Coordinator, set
// up from a ClusterConfig (`cairn serve --config`; docs/cluster.md).
//
// Start() opens <dir>/raft.db and the datom files, binds the peer port and
// returns; a background thread then, once the meta group has a leader,
// writes the membership and shard map into it (Coordinator::Bootstrap,
// idempotent) and re-sends the meta group's schema to every shard
// (Coordinator::ReconcileSchema), retrying until both succeed or Stop().
// From then on, until Stop(), the same thread follows the meta group:
//   - every map_poll_ms it refreshes the shard map cache
//     (Coordinator::RefreshMap: free when the meta group's applied index has
//     not moved; a local read if this node hosts a meta replica, else one
//     small request to a meta member);
//   - every schema_repair_interval_ms it runs a background schema repair
//     round (Coordinator::RepairSchemaRound).
// The config's map is used only until the meta group's copy is read.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cairn/status.h"
#include "cluster/coordinator.h"
#include "cluster/node_host.h"
#include "cluster/shard_map.h"

namespace cairn::cluster {

struct NodeOptions {
  ClusterConfig config;
  CoordinatorOptions coordinator;
  int propose_timeout_ms = 5000;
  // Raft timing template (ticks); defaults from raft::Config.
  raft::Config raft;
  // Run the bootstrap / schema reconcile / follow thread (tests may turn it off).
  bool bootstrap = true;
  int map_poll_ms = 100;
  int schema_repair_interval_ms = 2000;
};

class Node {
 public:
  static Result<std::unique_ptr<Node>> Start(const NodeOptions& options);
  ~Node();  // Stop(), then closes everything
  // Stops the host (pending and later proposals, reads and requests fail at
  // once, so callers blocked in the coordinator return) and the background
  // thread. The object stays usable for status calls until destroyed.
  // Idempotent.
  void Stop();

  uint32_t id() const { return options_.config.node_id; }
  uint16_t peer_port() const { return host_->port(); }
  // The shard map this node follows (Coordinator::map()).
  std::shared_ptr<const ShardMap> map() const { return coordinator_->map(); }
  const ClusterConfig& config() const { return options_.config; }
  NodeHost& host() { return *host_; }
  Coordinator& coordinator() { return *coordinator_; }
  // Re-addresses a peer (tests bind port 0 and wire peers afterwards).
  void SetPeer(uint32_t node_id, const std::string& host, uint16_t port) { host_->SetPeer(node_id, host, port); }

  // OK when the host is healthy and the meta group and every shard this
  // node holds know a leader; else Unavailable naming the first group
  // without one.
  Status Health() const;
  // True once Bootstrap and ReconcileSchema succeeded on this node.
  bool bootstrapped() const { return bootstrapped_.load(); }
  // Background schema repair rounds that re-sent the schema to a shard.
  uint64_t schema_repairs() const { return schema_repairs_.load(); }

 private:
  explicit Node(const NodeOptions& options) : options_(options) {}
  void Background();

  NodeOptions options_;
  std::unique_ptr<NodeHost> host_;
  std::unique_ptr<Coordinator> coordinator_;
  std::thread background_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> bootstrapped_{false};
  std::atomic<uint64_t> schema_repairs_{0};
};

}  // namespace cairn::cluster
