// PeerTransport: authenticated, framed TCP links between Cairn nodes.
//
// Each node listens on one port and dials every peer it sends to; a node sends
// on the connection it dialed and receives on the connections it accepted
// (one stream per direction, as etcd's rafthttp does), so all groups'
// messages to one peer share one connection and are written in batches: every
// write coalesces whatever is queued for that peer, up to write_bytes_max.
//
// Both directions authenticate with the HMAC handshake of net/auth.h before
// any other frame; a wrong secret, a bad frame (magic, version, checksum) or a
// frame over frame_bytes_max closes the connection. A handshake that does not
// finish within handshake_timeout_ms is closed too, so half-open clients
// cannot pin resources.
//
// Outbound frames wait in a per-peer queue bounded by queue_bytes_max: Send
// returns Unavailable when it is full (back-pressure; Raft retransmits). A
// broken link reconnects with exponential backoff between reconnect_ms_min and
// reconnect_ms_max; frames queued meanwhile are sent after the reconnect.
//
// Thread-safety: Send, SetPeer and stats may be called from any thread. The
// handler runs on the transport's single I/O thread and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cairn/status.h"
#include "net/frame.h"

namespace cairn::net {

struct TransportOptions {
  uint32_t node_id = 0;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 0;  // 0 picks a free port; see PeerTransport::port()
  std::string cluster_secret;
  size_t frame_bytes_max = kDefaultFrameBytesMax;
  size_t queue_bytes_max = 64u << 20;
  size_t write_bytes_max = 1u << 20;
  int reconnect_ms_min = 20;
  int reconnect_ms_max = 1000;
  int handshake_timeout_ms = 3000;
};

struct TransportStats {
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t writes = 0;            // socket writes; frames_sent / writes = batching
  uint64_t auth_failures = 0;
  uint64_t protocol_errors = 0;
  uint64_t connects = 0;          // successful outbound handshakes
  uint64_t rejected_queue_full = 0;
};

class PeerTransport {
 public:
  // Called on the I/O thread for each frame received from an authenticated peer.
  using Handler = std::function<void(uint32_t from_node, Frame frame)>;

  // Binds, listens and starts the I/O thread. IOError if the address cannot be bound.
  static Result<std::unique_ptr<PeerTransport>> Start(const TransportOptions& options, Handler handler);
  ~PeerTransport();  // stops the I/O thread and closes every connection

  uint16_t port() const;
  // Adds or re-addresses a peer (a test may route it through a proxy).
  void SetPeer(uint32_t node_id, const std::string& host, uint16_t port);
  // Queues `frame` for `node_id`. NotFound for an unknown peer; Unavailable
  // when its queue is full. OK means queued, not delivered.
  Status Send(uint32_t node_id, Frame frame);
  TransportStats stats() const;

  struct Impl;

 private:
  explicit PeerTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::net
