// HttpServer: Boost.Beast stays in this file (and this module).
#include "server/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "server/api_router.h"
#include "server/metrics.h"

namespace cairn::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

// Sent (without reading anything) to a connection over the cap.
const std::string& BusyResponse() {
  static const std::string response = [] {
    std::string body = ApiRouter::Error(503, "unavailable", "too many connections; retry later").body;
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  }();
  return response;
}

}  // namespace

struct HttpServer::Impl {
  Impl(Backend* backend, const HttpServerOptions& options)
      : backend(backend), options(options), router(backend, &metrics) {}

  void Accept();
  void Reject(tcp::socket socket);

  Backend* backend;
  HttpServerOptions options;
  // Declared before the io_context: sessions owned by its pending handlers
  // report to `metrics` when the io_context destroys them.
  Metrics metrics;
  ApiRouter router;
  // Owned by pointer so Stop() can destroy it, and with it every connection.
  std::unique_ptr<asio::io_context> ioc = std::make_unique<asio::io_context>();
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> accept_retry;
  std::unique_ptr<asio::thread_pool> workers;
  std::vector<std::thread> io_threads;
  uint16_t port = 0;
  bool started = false;
  bool stopped = false;
  // Requests handed to the router whose answer has not been posted back yet
  // (an asynchronous transaction may answer from a backend thread after its
  // worker returned): Stop() waits for them before destroying the io_context.
  std::mutex inflight_mu;
  std::condition_variable inflight_cv;
  size_t inflight = 0;
  // A request handed to the router: one answer owed, until its answer
  // callback runs (Paid) or it is not taken after all (Paid too).
  void Owe() {
    std::lock_guard<std::mutex> lock(inflight_mu);
    ++inflight;
  }
  void Paid() {
    std::lock_guard<std::mutex> lock(inflight_mu);
    if (--inflight == 0) inflight_cv.notify_all();
  }
};

namespace {

// One HTTP connection: read header, read body, hand to a worker, write the
// response, repeat while keep-alive. Everything runs on the connection's
// strand except the router call.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::Impl* server) : stream_(std::move(socket)), server_(server) {
    server_->metrics.ConnectionOpened();
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  ~Session() { server_->metrics.ConnectionClosed(); }

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

 private:
  const HttpServerOptions& opts() const { return server_->options; }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(opts().header_bytes_max));
    parser_->body_limit(opts().body_bytes_max);
    stream_.expires_after(milliseconds(opts().header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec, "header");
    const auto& req = parser_->get();
    auto expect = req.find(http::field::expect);
    if (expect != req.end() && beast::iequals(expect->value(), "100-continue")) {
      // curl waits for this before sending bodies over 1 KiB.
      continue_ = std::make_shared<http::response<http::empty_body>>(http::status::continue_, req.version());
      stream_.expires_after(milliseconds(opts().write_timeout_ms));
      http::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code wec, size_t) {
        self->continue_.reset();
        if (wec) return self->Close();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnBody({});
    stream_.expires_after(milliseconds(opts().body_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBody(ec); });
  }

  void OnReadError(beast::error_code ec, const char* phase) {
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::connection_reset) {
      return Close();
    }
    if (ec == beast::error::timeout) {
      server_->metrics.ReadTimedOut();
      spdlog::info("http: closing connection peer={} reason=\"{} read timed out\"", peer_, phase);
      return;  // tcp_stream already closed the socket
    }
    if (ec == http::error::body_limit) {
      return WriteError(413, "payload_too_large",
                        "request body exceeds the limit of " + std::to_string(opts().body_bytes_max) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return WriteError(431, "header_too_large",
                        "request header exceeds the limit of " + std::to_string(opts().header_bytes_max) + " bytes");
    }
    if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
      return WriteError(400, "bad_request", std::string("malformed HTTP request: ") + ec.message());
    }
    spdlog::debug("http: read failed peer={} error=\"{}\"", peer_, ec.message());
    Close();
  }

  void OnBody(beast::error_code ec) {
    if (ec) return OnReadError(ec, "body");
    http::request<http::string_body> req = parser_->release();
    parser_.reset();
    version_ = req.version();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.content_type = std::string(req[http::field::content_type]);
    r.accept = std::string(req[http::field::accept]);
    r.body = std::move(req.body());
    auto start = std::chrono::steady_clock::now();
    const uint64_t seq = ++request_seq_;
    answered_ = false;
    if (opts().request_timeout_ms > 0) {
      deadline_.emplace(stream_.get_executor(), milliseconds(opts().request_timeout_ms));
      deadline_->async_wait(
          [self = shared_from_this(), seq, route = ApiRouter::RouteOf(r.target)](beast::error_code ec) {
            if (ec || self->request_seq_ != seq || self->answered_) return;
            self->answered_ = true;
            self->server_->metrics.RecordRequest(route, 504, self->opts().request_timeout_ms / 1e3);
            spdlog::warn("http: request timed out peer={} route={} timeout_ms={}", self->peer_, route,
                         self->opts().request_timeout_ms);
            // The late response must not be sent on this connection: close it.
            self->Write(
                ApiRouter::Error(504, "timeout",
                                 "the request did not finish within " +
                                     std::to_string(self->opts().request_timeout_ms) + " ms; it may still take effect"),
                false);
          });
    }
    // A transaction that can start without blocking starts here, on the I/O
    // thread (ApiRouter::TryHandleNow); anything else goes to a worker. Either
    // way the answer may come later from a backend thread.
    server_->Owe();
    std::function<void(HttpResponse)> done = Answerer(shared_from_this(), start, seq, r.method, r.target);
    if (server_->router.TryHandleNow(r, done)) return;
    server_->Paid();  // not taken: owed again by the worker (Stop drops queued tasks)
    asio::post(*server_->workers, [self = shared_from_this(), r = std::move(r), start, seq]() mutable {
      self->server_->Owe();
      self->server_->router.HandleAsync(r, Answerer(self, start, seq, r.method, r.target));
    });
  }

  // The callback that answers request `seq` (once; counted in `inflight`):
  // records it, then writes the response on the connection's executor unless
  // the 504 went first.
  static std::function<void(HttpResponse)> Answerer(std::shared_ptr<Session> self,
                                                    std::chrono::steady_clock::time_point start, uint64_t seq,
                                                    std::string method, std::string target) {
    return [self = std::move(self), start, seq, method = std::move(method),
            target = std::move(target)](HttpResponse resp) mutable {
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      self->server_->metrics.RecordRequest(resp.route, resp.status, seconds);
      spdlog::debug("http: request peer={} method={} target={} status={} ms={:.3f}", self->peer_, method, target,
                    resp.status, seconds * 1e3);
      HttpServer::Impl* server = self->server_;
      asio::post(self->stream_.get_executor(), [self, seq, resp = std::move(resp)]() mutable {
        if (self->request_seq_ != seq || self->answered_) return;  // 504 already sent
        self->answered_ = true;
        if (self->deadline_) self->deadline_->cancel();
        self->Write(std::move(resp), self->keep_alive_);
      });
      self.reset();
      server->Paid();
    };
  }

  void WriteError(int status, std::string_view code, const std::string& message) {
    spdlog::info("http: rejecting request peer={} status={} reason=\"{}\"", peer_, status, message);
    server_->metrics.RecordRequest("other", status, 0);
    // After a framing error the rest of the stream cannot be trusted: close.
    Write(ApiRouter::Error(status, code, message), false);
  }

  void Write(HttpResponse resp, bool keep_alive) {
    res_ = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(resp.status), version_);
    res_->set(http::field::server, "cairn/0.1.0");
    res_->set(http::field::content_type, resp.content_type);
    for (const auto& [name, value] : resp.headers) res_->set(name, value);
    res_->body() = std::move(resp.body);
    res_->keep_alive(keep_alive);
    res_->prepare_payload();
    stream_.expires_after(milliseconds(opts().write_timeout_ms));
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      bool again = !ec && self->res_->keep_alive();
      self->res_.reset();
      if (!again) return self->Close();
      self->ReadHeader();
    });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl* server_;
  std::string peer_ = "?";
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<http::response<http::empty_body>> continue_;
  std::shared_ptr<http::response<http::string_body>> res_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  // The request being handled, and whether it has been answered (by the
  // worker's response or by the 504 of `deadline_`, whichever came first).
  uint64_t request_seq_ = 0;
  bool answered_ = true;
  std::optional<asio::steady_timer> deadline_;
};

}  // namespace

void HttpServer::Impl::Reject(tcp::socket socket) {
  metrics.ConnectionRejected();
  beast::error_code ec;
  // A fresh socket's send buffer always holds this; never block an I/O thread.
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(BusyResponse()), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void HttpServer::Impl::Accept() {
  acceptor->async_accept(asio::make_strand(*ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor->is_open()) return;
    if (ec) {
      // E.g. EMFILE: back off briefly rather than spin.
      spdlog::warn("http: accept failed error=\"{}\"", ec.message());
      accept_retry.emplace(*ioc, milliseconds(50));
      accept_retry->async_wait([this](beast::error_code wec) {
        if (!wec) Accept();
      });
      return;
    }
    if (static_cast<size_t>(metrics.connections_open()) >= options.connections_max) {
      Reject(std::move(socket));
    } else {
      std::make_shared<Session>(std::move(socket), this)->Start();
    }
    Accept();
  });
}

HttpServer::HttpServer(Backend* backend, HttpServerOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(backend, options_)) {}

HttpServer::~HttpServer() { Stop(); }

Metrics& HttpServer::metrics() { return impl_->metrics; }

uint16_t HttpServer::port() const { return impl_->port; }

Status HttpServer::Start() {
  Impl& s = *impl_;
  if (s.started) return Status::Internal("HttpServer::Start called twice");
  beast::error_code ec;
  asio::ip::address address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    // A host name such as "localhost": take its first address.
    tcp::resolver resolver(*s.ioc);
    auto results = resolver.resolve(options_.address, "", ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("http: cannot resolve address '" + options_.address +
                                     "': " + (ec ? ec.message() : std::string("no addresses")));
    }
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, options_.port);
  std::string where = options_.address + ":" + std::to_string(options_.port);
  s.acceptor.emplace(*s.ioc);
  if (s.acceptor->open(endpoint.protocol(), ec); ec) return Status::IOError("http: socket: " + ec.message());
  if (s.acceptor->set_option(asio::socket_base::reuse_address(true), ec); ec) {
    return Status::IOError("http: setsockopt: " + ec.message());
  }
  if (s.acceptor->bind(endpoint, ec); ec) return Status::IOError("http: cannot bind " + where + ": " + ec.message());
  if (s.acceptor->listen(asio::socket_base::max_listen_connections, ec); ec) {
    return Status::IOError("http: cannot listen on " + where + ": " + ec.message());
  }
  s.port = s.acceptor->local_endpoint().port();
  s.workers = std::make_unique<asio::thread_pool>(std::max(1, options_.worker_threads));
  s.started = true;
  s.Accept();
  for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
    s.io_threads.emplace_back([&s] { s.ioc->run(); });
  }
  spdlog::info("http: listening address={} port={} body_bytes_max={} connections_max={}", options_.address, s.port,
               options_.body_bytes_max, options_.connections_max);
  return Status::OK();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopped) return;
  s.stopped = true;
  // Requests being handled finish; queued ones are dropped with their sessions.
  s.workers->stop();
  s.workers->join();
  {
    // Requests handed to the backend are answered (and their answers dropped
    // with the io_context) before it goes: a backend thread must not post to
    // a destroyed one. A cluster node answers every request by its deadline,
    // at once when it is stopped first.
    std::unique_lock<std::mutex> lock(s.inflight_mu);
    while (s.inflight > 0 && !s.inflight_cv.wait_for(lock, std::chrono::seconds(5), [&] { return s.inflight == 0; })) {
      spdlog::warn("http: stopping waits for {} request(s) the backend has not answered yet", s.inflight);
    }
  }
  s.ioc->stop();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
  s.workers.reset();
  s.accept_retry.reset();
  s.acceptor.reset();
  // Destroys the pending handlers, which own the sessions: closes every socket.
  s.ioc.reset();
  spdlog::info("http: stopped port={}", s.port);
}

}  // namespace cairn::server
