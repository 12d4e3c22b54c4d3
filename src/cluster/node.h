// Node: one cluster node = a NodeHost (the replicas of the meta group and of
// the shards this node holds, over the peer transport) + a Coordinator, set
// up from a ClusterConfig (`cairn serve --config`; docs/cluster.md).
//
// Start() opens <dir>/raft.db and the datom files, binds the peer port and
// returns; a background thread then, once the meta group has a leader,
// writes the membership and shard map into it (Coordinator::Bootstrap,
// idempotent) and re-sends the meta group's schema to every shard
// (Coordinator::ReconcileSchema), retrying until both succeed or Stop().
// The shard map itself is taken from the config (identical on every node);
// the meta group's copy is for clients and operators.
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
  // Run the bootstrap / schema reconcile thread (tests may turn it off).
  bool bootstrap = true;
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
  const ShardMap& map() const { return coordinator_->map(); }
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
};

}  // namespace cairn::cluster
