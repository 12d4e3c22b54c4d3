#include "net/peer_transport.h"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "net/auth.h"

namespace cairn::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

namespace {

struct Counters {
  std::atomic<uint64_t> frames_sent{0}, frames_received{0}, writes{0}, auth_failures{0}, protocol_errors{0},
      connects{0}, rejected_queue_full{0};
};

// Reads one frame (header then payload) and calls `done(status, frame)`.
template <typename Done>
void AsyncReadFrame(tcp::socket& socket, std::array<uint8_t, kFrameHeaderBytes>& header, std::string& payload,
                    size_t frame_bytes_max, Done done) {
  asio::async_read(socket, asio::buffer(header), [&socket, &header, &payload, frame_bytes_max, done](ErrorCode ec,
                                                                                                      size_t) mutable {
    if (ec) return done(Status::IOError(ec.message()), Frame{});
    FrameType type;
    uint32_t len, crc;
    Status s = DecodeFrameHeader(header.data(), frame_bytes_max, &type, &len, &crc);
    if (!s.ok()) return done(s, Frame{});
    payload.resize(len);
    asio::async_read(socket, asio::buffer(payload), [&payload, type, crc, done](ErrorCode ec2, size_t) mutable {
      if (ec2) return done(Status::IOError(ec2.message()), Frame{});
      if (Crc32c(payload) != crc) return done(Status::Corruption("frame checksum mismatch"), Frame{});
      Frame f;
      f.type = type;
      f.payload = std::move(payload);
      done(Status::OK(), std::move(f));
    });
  });
}

}  // namespace

struct PeerTransport::Impl {
  TransportOptions options;
  Handler handler;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread thread;
  Counters counters;
  uint16_t port = 0;

  // An accepted connection: handshake as server, then read frames forever.
  struct Inbound : std::enable_shared_from_this<Inbound> {
    Impl* impl;
    tcp::socket socket;
    asio::steady_timer deadline;
    std::array<uint8_t, kFrameHeaderBytes> header{};
    std::string payload;
    std::string server_nonce = RandomNonce();
    std::string out;
    uint32_t peer = 0;
    Inbound(Impl* i, tcp::socket s) : impl(i), socket(std::move(s)), deadline(i->io) {}

    void Start() {
      auto self = shared_from_this();
      deadline.expires_after(std::chrono::milliseconds(impl->options.handshake_timeout_ms));
      deadline.async_wait([self](ErrorCode ec) {
        if (!ec) self->Close();
      });
      out.clear();
      EncodeFrame(Frame{FrameType::kHello, EncodeHello(impl->options.node_id, server_nonce)}, &out);
      asio::async_write(socket, asio::buffer(out), [self](ErrorCode ec, size_t) {
        if (ec) return self->Close();
        AsyncReadFrame(self->socket, self->header, self->payload, 4096, [self](Status s, Frame f) {
          if (!s.ok() || f.type != FrameType::kAuth) {
            self->impl->counters.protocol_errors++;
            return self->Close();
          }
          std::string client_nonce;
          Status v = VerifyAuth(self->impl->options.cluster_secret, f.payload, self->server_nonce, &self->peer,
                                &client_nonce);
          if (!v.ok()) {
            self->impl->counters.auth_failures++;
            return self->Close();
          }
          self->out.clear();
          EncodeFrame(Frame{FrameType::kAuthOk,
                            EncodeAuthOk(self->impl->options.cluster_secret, self->impl->options.node_id, client_nonce)},
                      &self->out);
          asio::async_write(self->socket, asio::buffer(self->out), [self](ErrorCode ec2, size_t) {
            if (ec2) return self->Close();
            self->deadline.cancel();
            self->ReadLoop();
          });
        });
      });
    }

    void ReadLoop() {
      auto self = shared_from_this();
      AsyncReadFrame(socket, header, payload, impl->options.frame_bytes_max, [self](Status s, Frame f) {
        if (!s.ok()) {
          if (s.code() != StatusCode::kIOError) self->impl->counters.protocol_errors++;
          return self->Close();
        }
        self->impl->counters.frames_received++;
        self->impl->handler(self->peer, std::move(f));
        self->ReadLoop();
      });
    }

    void Close() {
      ErrorCode ignored;
      deadline.cancel();
      socket.close(ignored);
    }
  };

  // The connection this node dialed to one peer, with its send queue.
  struct Outbound : std::enable_shared_from_this<Outbound> {
    Impl* impl;
    uint32_t peer;
    std::string host;
    uint16_t port;
    tcp::socket socket;
    asio::steady_timer timer;
    std::array<uint8_t, kFrameHeaderBytes> header{};
    std::string payload;
    std::string handshake_out;
    std::string client_nonce;
    bool connected = false;
    bool connecting = false;
    bool writing = false;
    int backoff_ms = 0;
    std::string batch;  // the bytes of the write in flight
    size_t batch_frames = 0;
    std::minstd_rand jitter{std::random_device{}()};
    uint64_t generation = 0;  // bumps per connection attempt; stale callbacks check it
    char probe = 0;

    std::mutex mu;  // guards queue and queued_bytes (Send runs on any thread)
    std::deque<std::string> queue;
    size_t queued_bytes = 0;

    Outbound(Impl* i, uint32_t p, std::string h, uint16_t po)
        : impl(i), peer(p), host(std::move(h)), port(po), socket(i->io), timer(i->io) {}

    void Kick() {  // on the I/O thread
      if (!connected) {
        if (!connecting) Connect();
        return;
      }
      if (!writing) WriteSome();
    }

    void Connect() {
      connecting = true;
      ++generation;
      auto self = shared_from_this();
      ErrorCode ec;
      auto addr = asio::ip::make_address(host, ec);
      if (ec) {
        // Resolve names; loopback tests use literal addresses.
        tcp::resolver resolver(impl->io);
        auto results = resolver.resolve(host, std::to_string(port), ec);
        if (ec || results.empty()) return Retry();
        addr = results.begin()->endpoint().address();
      }
      socket = tcp::socket(impl->io);
      socket.async_connect(tcp::endpoint(addr, port), [self](ErrorCode ec2) {
        if (ec2) return self->Retry();
        self->socket.set_option(tcp::no_delay(true), ec2);
        AsyncReadFrame(self->socket, self->header, self->payload, 4096, [self](Status s, Frame f) {
          uint32_t server_id = 0;
          std::string server_nonce;
          if (!s.ok() || f.type != FrameType::kHello || !DecodeHello(f.payload, &server_id, &server_nonce).ok()) {
            return self->Retry();
          }
          self->client_nonce = RandomNonce();
          self->handshake_out.clear();
          EncodeFrame(Frame{FrameType::kAuth, EncodeAuth(self->impl->options.cluster_secret,
                                                         self->impl->options.node_id, self->client_nonce, server_nonce)},
                      &self->handshake_out);
          asio::async_write(self->socket, asio::buffer(self->handshake_out), [self, server_id](ErrorCode ec3, size_t) {
            if (ec3) return self->Retry();
            AsyncReadFrame(self->socket, self->header, self->payload, 4096, [self, server_id](Status s2, Frame f2) {
              if (!s2.ok() || f2.type != FrameType::kAuthOk ||
                  !VerifyAuthOk(self->impl->options.cluster_secret, f2.payload, server_id, self->client_nonce).ok()) {
                self->impl->counters.auth_failures++;
                return self->Retry();
              }
              self->connected = true;
              self->connecting = false;
              self->backoff_ms = 0;
              self->impl->counters.connects++;
              self->WatchForClose();
              self->WriteSome();
            });
          });
        });
      });
    }

    // The peer never sends on this stream, so any completed read means the
    // connection closed: reconnect now instead of at the next failed write.
    void WatchForClose() {
      auto self = shared_from_this();
      uint64_t gen = generation;
      socket.async_read_some(asio::buffer(&probe, 1), [self, gen](ErrorCode ec, size_t) {
        if (ec == asio::error::operation_aborted || gen != self->generation || !self->connected) return;
        self->Retry();
      });
    }

    void Retry() {
      ErrorCode ignored;
      socket.close(ignored);
      connected = false;
      writing = false;
      backoff_ms = backoff_ms == 0 ? impl->options.reconnect_ms_min
                                   : std::min(backoff_ms * 2, impl->options.reconnect_ms_max);
      int wait = backoff_ms / 2 + static_cast<int>(jitter() % static_cast<unsigned>(backoff_ms / 2 + 1));
      // A batch that was being written is resent after the reconnect: Raft
      // tolerates duplicates, and losing it would only cost a retransmit.
      if (!batch.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        queue.push_front(std::move(batch));
        queued_bytes += queue.front().size();
        batch.clear();
      }
      auto self = shared_from_this();
      timer.expires_after(std::chrono::milliseconds(wait));
      timer.async_wait([self](ErrorCode ec) {
        if (ec) return;
        self->connecting = false;
        bool pending;
        {
          std::lock_guard<std::mutex> lock(self->mu);
          pending = !self->queue.empty();
        }
        if (pending) self->Connect();
      });
    }

    void WriteSome() {
      {
        std::lock_guard<std::mutex> lock(mu);
        batch.clear();
        batch_frames = 0;
        while (!queue.empty() && (batch.empty() || batch.size() + queue.front().size() <= impl->options.write_bytes_max)) {
          queued_bytes -= queue.front().size();
          batch += queue.front();
          queue.pop_front();
          ++batch_frames;
        }
      }
      if (batch.empty()) {
        writing = false;
        return;
      }
      writing = true;
      auto self = shared_from_this();
      uint64_t gen = generation;
      asio::async_write(socket, asio::buffer(batch), [self, gen](ErrorCode ec, size_t) {
        if (gen != self->generation || !self->connected) return;
        if (ec) return self->Retry();
        self->impl->counters.writes++;
        self->impl->counters.frames_sent += self->batch_frames;
        self->batch.clear();
        self->WriteSome();
      });
    }
  };

  std::mutex peers_mu;
  std::map<uint32_t, std::shared_ptr<Outbound>> peers;

  void Accept() {
    acceptor.async_accept([this](ErrorCode ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) std::make_shared<Inbound>(this, std::move(socket))->Start();
      Accept();
    });
  }
};

Result<std::unique_ptr<PeerTransport>> PeerTransport::Start(const TransportOptions& options, Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  ErrorCode ec;
  auto addr = asio::ip::make_address(options.listen_host, ec);
  if (ec) return Status::InvalidArgument("bad listen address '" + options.listen_host + "': " + ec.message());
  tcp::endpoint endpoint(addr, options.listen_port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::IOError("cannot listen on " + options.listen_host + ":" + std::to_string(options.listen_port) +
                           ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    auto guard = asio::make_work_guard(raw->io);
    raw->io.run();
  });
  return std::unique_ptr<PeerTransport>(new PeerTransport(std::move(impl)));
}

PeerTransport::PeerTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerTransport::~PeerTransport() {
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t PeerTransport::port() const { return impl_->port; }

void PeerTransport::SetPeer(uint32_t node_id, const std::string& host, uint16_t port) {
  std::lock_guard<std::mutex> lock(impl_->peers_mu);
  auto link = std::make_shared<Impl::Outbound>(impl_.get(), node_id, host, port);
  auto it = impl_->peers.find(node_id);
  if (it != impl_->peers.end()) {
    auto old = it->second;
    asio::post(impl_->io, [old] {
      ErrorCode ignored;
      old->timer.cancel();
      old->socket.close(ignored);
    });
  }
  impl_->peers[node_id] = link;
}

Status PeerTransport::Send(uint32_t node_id, Frame frame) {
  std::shared_ptr<Impl::Outbound> link;
  {
    std::lock_guard<std::mutex> lock(impl_->peers_mu);
    auto it = impl_->peers.find(node_id);
    if (it == impl_->peers.end()) return Status::NotFound("unknown peer node " + std::to_string(node_id));
    link = it->second;
  }
  if (frame.payload.size() > impl_->options.frame_bytes_max) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.payload.size()) + " bytes exceeds the limit");
  }
  std::string bytes;
  EncodeFrame(frame, &bytes);
  {
    std::lock_guard<std::mutex> lock(link->mu);
    if (link->queued_bytes + bytes.size() > impl_->options.queue_bytes_max) {
      impl_->counters.rejected_queue_full++;
      return Status::Unavailable("send queue to node " + std::to_string(node_id) + " is full");
    }
    link->queued_bytes += bytes.size();
    link->queue.push_back(std::move(bytes));
  }
  asio::post(impl_->io, [link] { link->Kick(); });
  return Status::OK();
}

TransportStats PeerTransport::stats() const {
  const auto& c = impl_->counters;
  return TransportStats{c.frames_sent.load(),   c.frames_received.load(), c.writes.load(),
                        c.auth_failures.load(), c.protocol_errors.load(), c.connects.load(),
                        c.rejected_queue_full.load()};
}

}  // namespace cairn::net
