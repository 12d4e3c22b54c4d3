// PeerTransport over real TCP on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "net/auth.h"
#include "net/frame.h"
#include "net/peer_transport.h"

namespace cairn::net {
namespace {

using namespace std::chrono_literals;

// Collects received frames; WaitFor blocks until n have arrived or 10 s pass.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<uint32_t, std::string>> frames;
  PeerTransport::Handler handler() {
    return [this](uint32_t from, Frame f) {
      std::lock_guard<std::mutex> lock(mu);
      frames.emplace_back(from, std::move(f.payload));
      cv.notify_all();
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, timeout, [&] { return frames.size() >= n; });
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu);
    return frames.size();
  }
};

TransportOptions Opts(uint32_t id, const std::string& secret = "s3cret") {
  TransportOptions o;
  o.node_id = id;
  o.cluster_secret = secret;
  o.reconnect_ms_min = 5;
  o.reconnect_ms_max = 50;
  o.handshake_timeout_ms = 300;
  return o;
}

TEST(Frame, RoundTripsAndDetectsCorruption) {
  std::string wire;
  EncodeFrame(Frame{FrameType::kRaft, "hello raft"}, &wire);
  Frame out;
  auto n = DecodeFrame(wire, kDefaultFrameBytesMax, &out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, wire.size());
  EXPECT_EQ(out.payload, "hello raft");
  EXPECT_EQ(out.type, FrameType::kRaft);

  auto partial = DecodeFrame(std::string_view(wire).substr(0, wire.size() - 1), kDefaultFrameBytesMax, &out);
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial, 0u);

  std::string flipped = wire;
  flipped.back() ^= 0x01;
  auto bad = DecodeFrame(flipped, kDefaultFrameBytesMax, &out);
  EXPECT_EQ(bad.status().code(), StatusCode::kCorruption);

  auto big = DecodeFrame(wire, 4, &out);
  EXPECT_EQ(big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(big.status().message().find("exceeds the limit"), std::string::npos);

  std::string version = wire;
  version[3] = 9;
  auto v = DecodeFrame(version, kDefaultFrameBytesMax, &out);
  EXPECT_NE(v.status().message().find("protocol version 9"), std::string::npos);
}

TEST(Frame, Crc32cMatchesKnownVector) {
  // The CRC-32C check value of "123456789" is 0xE3069283.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
}

// The instruction-based CRC (where the CPU has SSE4.2) and the table agree on
// every length and alignment, and when continued from a previous value.
TEST(Frame, Crc32cAgreesWithThePortableTable) {
  std::string data(1000, '\0');
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (char& c : data) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = static_cast<char>(x);
  }
  EXPECT_EQ(Crc32cPortable("123456789"), 0xE3069283u);
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t len : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 500, 991}) {
      std::string_view v(data.data() + offset, len);
      ASSERT_EQ(Crc32c(v), Crc32cPortable(v)) << "offset " << offset << " length " << len;
      const size_t half = len / 3;
      EXPECT_EQ(Crc32c(v.substr(half), Crc32c(v.substr(0, half))), Crc32cPortable(v)) << "continued, length " << len;
    }
  }
}

TEST(Auth, RejectsWrongSecretAndAcceptsRightOne) {
  std::string server_nonce = RandomNonce(), client_nonce = RandomNonce();
  std::string auth = EncodeAuth("right", 7, client_nonce, server_nonce);
  uint32_t id = 0;
  std::string got_nonce;
  EXPECT_TRUE(VerifyAuth("right", auth, server_nonce, &id, &got_nonce).ok());
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(got_nonce, client_nonce);
  EXPECT_FALSE(VerifyAuth("wrong", auth, server_nonce, &id, &got_nonce).ok());
  // A proof over another server nonce (a replay) fails.
  EXPECT_FALSE(VerifyAuth("right", auth, RandomNonce(), &id, &got_nonce).ok());
}

TEST(PeerTransport, DeliversManyFramesInOrderInBatches) {
  Inbox inbox_a, inbox_b;
  auto a = PeerTransport::Start(Opts(1), inbox_a.handler());
  auto b = PeerTransport::Start(Opts(2), inbox_b.handler());
  ASSERT_TRUE(a.ok() && b.ok());
  (*a)->SetPeer(2, "127.0.0.1", (*b)->port());
  (*b)->SetPeer(1, "127.0.0.1", (*a)->port());
  constexpr int kFrames = 20000;
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_TRUE((*a)->Send(2, Frame{FrameType::kRaft, std::to_string(i)}).ok());
  }
  ASSERT_TRUE((*b)->Send(1, Frame{FrameType::kRaft, "pong"}).ok());
  ASSERT_TRUE(inbox_b.WaitFor(kFrames));
  ASSERT_TRUE(inbox_a.WaitFor(1));
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(inbox_b.frames[i].first, 1u);
    ASSERT_EQ(inbox_b.frames[i].second, std::to_string(i));
  }
  EXPECT_EQ(inbox_a.frames[0].second, "pong");
  auto stats = (*a)->stats();
  EXPECT_EQ(stats.frames_sent, static_cast<uint64_t>(kFrames));
  EXPECT_LT(stats.writes, stats.frames_sent);  // frames were coalesced
}

TEST(PeerTransport, WrongClusterSecretIsRefused) {
  Inbox inbox;
  auto server = PeerTransport::Start(Opts(1, "right"), inbox.handler());
  auto client = PeerTransport::Start(Opts(2, "wrong"), [](uint32_t, Frame) {});
  ASSERT_TRUE(server.ok() && client.ok());
  (*client)->SetPeer(1, "127.0.0.1", (*server)->port());
  ASSERT_TRUE((*client)->Send(1, Frame{FrameType::kRaft, "let me in"}).ok());
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(inbox.size(), 0u);
  EXPECT_GT((*server)->stats().auth_failures, 0u);
  EXPECT_EQ((*client)->stats().connects, 0u);
}

TEST(PeerTransport, QueuedFramesArriveAfterThePeerRestarts) {
  Inbox inbox1;
  auto a = PeerTransport::Start(Opts(1), [](uint32_t, Frame) {});
  ASSERT_TRUE(a.ok());
  uint16_t port;
  {
    auto b = PeerTransport::Start(Opts(2), inbox1.handler());
    ASSERT_TRUE(b.ok());
    port = (*b)->port();
    (*a)->SetPeer(2, "127.0.0.1", port);
    ASSERT_TRUE((*a)->Send(2, Frame{FrameType::kRaft, "before"}).ok());
    ASSERT_TRUE(inbox1.WaitFor(1));
  }  // b is gone
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*a)->Send(2, Frame{FrameType::kRaft, "after" + std::to_string(i)}).ok());
  std::this_thread::sleep_for(100ms);
  Inbox inbox2;
  auto opts = Opts(2);
  opts.listen_port = port;
  auto b2 = PeerTransport::Start(opts, inbox2.handler());
  ASSERT_TRUE(b2.ok()) << b2.status().ToString();
  // A retry may resend the batch that was in flight when b died: at least
  // every "after" frame arrives, in order.
  ASSERT_TRUE(inbox2.WaitFor(10));
  std::vector<std::string> got;
  for (auto& [from, p] : inbox2.frames) got.push_back(p);
  EXPECT_EQ(got.back(), "after9");
}

TEST(PeerTransport, FullQueueGivesBackPressure) {
  auto opts = Opts(1);
  opts.queue_bytes_max = 1000;
  auto a = PeerTransport::Start(opts, [](uint32_t, Frame) {});
  ASSERT_TRUE(a.ok());
  (*a)->SetPeer(9, "127.0.0.1", 1);  // nobody listens on port 1
  Status s;
  int accepted = 0;
  for (int i = 0; i < 100 && s.ok(); ++i) {
    s = (*a)->Send(9, Frame{FrameType::kRaft, std::string(100, 'x')});
    if (s.ok()) ++accepted;
  }
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_LT(accepted, 10);
  EXPECT_EQ((*a)->Send(42, Frame{}).code(), StatusCode::kNotFound);
}

int RawConnect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads until the server closes (EOF or reset: true) or the 5 s receive
// timeout passes (false).
bool ReadsToEof(int fd) {
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

TEST(PeerTransport, GarbageAndSilentClientsAreDisconnectedAndServiceContinues) {
  Inbox inbox;
  auto server = PeerTransport::Start(Opts(1), inbox.handler());
  ASSERT_TRUE(server.ok());
  int garbage = RawConnect((*server)->port());
  ASSERT_GE(garbage, 0);
  std::string junk(64, 'Z');
  ASSERT_EQ(::write(garbage, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  EXPECT_TRUE(ReadsToEof(garbage));
  ::close(garbage);

  int silent = RawConnect((*server)->port());  // never answers the hello
  ASSERT_GE(silent, 0);
  EXPECT_TRUE(ReadsToEof(silent));  // closed by the handshake timeout
  ::close(silent);

  auto client = PeerTransport::Start(Opts(2), [](uint32_t, Frame) {});
  ASSERT_TRUE(client.ok());
  (*client)->SetPeer(1, "127.0.0.1", (*server)->port());
  ASSERT_TRUE((*client)->Send(1, Frame{FrameType::kRaft, "still serving"}).ok());
  ASSERT_TRUE(inbox.WaitFor(1));
  EXPECT_EQ(inbox.frames[0].second, "still serving");
  EXPECT_GT((*server)->stats().protocol_errors, 0u);
}

}  // namespace
}  // namespace cairn::net
