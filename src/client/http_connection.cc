// HttpConnection: Boost.Beast stays in this file (and this module).
#include "client/http_connection.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace cairn::client {

namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The largest response accepted (a big query result).
constexpr uint64_t kBodyBytesMax = uint64_t{1} << 30;
}  // namespace

struct HttpConnection::Impl {
  Impl(std::string h, uint16_t p, int timeout_ms)
      : host(std::move(h)), port(p), connect_timeout_ms(timeout_ms), stream(ioc) {}

  std::string Where() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  }

  void Close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    buffer.clear();
    connected = false;
  }

  // Runs the io_context until the operation started before it completes
  // (tcp_stream's expiry cancels it at the deadline).
  void Run() {
    ioc.restart();
    ioc.run();
  }

  Status Fail(const beast::error_code& ec, const char* step, bool deadline_bound) {
    Close();
    if (ec == beast::error::timeout) {
      if (deadline_bound) return Status::Timeout(Where() + ": " + step + ": deadline passed");
      return Status::Unavailable(Where() + ": " + step + ": timed out after " + std::to_string(connect_timeout_ms) +
                                 " ms");
    }
    return Status::Unavailable(Where() + ": " + step + ": " + ec.message());
  }

  Status Connect(Clock::time_point deadline) {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return Status::Unavailable(Where() + ": cannot resolve host: " + ec.message());
    auto budget = std::chrono::milliseconds(connect_timeout_ms);
    bool deadline_bound = deadline - Clock::now() < budget;
    stream.expires_at(std::min(deadline, Clock::now() + budget));
    stream.async_connect(endpoints, [&](const beast::error_code& e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec) return Fail(ec, "connect", deadline_bound);
    stream.socket().set_option(tcp::no_delay(true), ec);
    connected = true;
    return Status::OK();
  }

  std::string host;
  uint16_t port;
  int connect_timeout_ms;
  asio::io_context ioc;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
};

HttpConnection::HttpConnection(std::string host, uint16_t port, int connect_timeout_ms)
    : impl_(std::make_unique<Impl>(std::move(host), port, connect_timeout_ms)) {}

HttpConnection::~HttpConnection() {
  if (impl_->connected) impl_->Close();
}

bool HttpConnection::open() const { return impl_->connected; }

Result<HttpReply> HttpConnection::Roundtrip(const std::string& method, const std::string& target,
                                            const std::string& body, const std::string& accept,
                                            Clock::time_point deadline) {
  Impl& c = *impl_;
  if (Clock::now() >= deadline) return Status::Timeout(c.Where() + ": deadline passed before sending");
  if (!c.connected) {
    reused_ = false;
    CAIRN_RETURN_IF_ERROR(c.Connect(deadline));
  }

  http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get, target, 11};
  req.set(http::field::host, c.Where());
  req.set(http::field::user_agent, "cairn-client/0.1");
  req.set(http::field::accept, accept);
  req.keep_alive(true);
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();

  beast::error_code ec;
  c.stream.expires_at(deadline);
  http::async_write(c.stream, req, [&](const beast::error_code& e, size_t) { ec = e; });
  c.Run();
  if (ec) return c.Fail(ec, "send", true);

  http::response_parser<http::string_body> parser;
  parser.body_limit(kBodyBytesMax);
  http::async_read(c.stream, c.buffer, parser, [&](const beast::error_code& e, size_t) { ec = e; });
  c.Run();
  if (ec) return c.Fail(ec, "receive", true);

  http::response<http::string_body> res = parser.release();
  HttpReply reply;
  reply.status = static_cast<int>(res.result_int());
  reply.content_type = std::string(res[http::field::content_type]);
  reply.cairn_t = std::string(res["Cairn-T"]);
  reply.body = std::move(res.body());
  if (!res.keep_alive()) {
    c.Close();
  } else {
    reused_ = true;
  }
  return reply;
}

}  // namespace cairn::client
