// HttpServer: the node's HTTP/1.1 listener (Boost.Beast, hidden behind a
// pimpl so no Beast or Asio header leaks out of src/server).
//
// Connections are accepted on I/O threads; each request is parsed with size
// limits and read deadlines, then handed to ApiRouter on a worker pool so a
// slow transaction or query never stalls the I/O threads.
//
// Protection against slow or hostile clients:
//   - the request header must arrive within header_timeout_ms of the
//     connection opening or of the previous response (this is also the
//     keep-alive idle timeout), the body within body_timeout_ms after that,
//     and a response must drain within write_timeout_ms; else the connection
//     is closed;
//   - headers over header_bytes_max get 431, bodies over body_bytes_max get
//     413 (before the body is read when Content-Length says so), malformed
//     HTTP gets 400; each of these closes the connection;
//   - a request not answered within request_timeout_ms gets 504;
//   - at most connections_max connections are open; more get an immediate
//     503 and are closed.
//
// Thread-safety: Start and Stop from one thread; port() from any thread
// after Start. The Backend passed in must outlive the server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/status.h"
#include "server/backend.h"

namespace cairn::server {

class Metrics;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port; see HttpServer::port()
  size_t body_bytes_max = size_t{8} << 20;
  size_t header_bytes_max = size_t{16} << 10;
  int header_timeout_ms = 10'000;
  int body_timeout_ms = 30'000;
  int write_timeout_ms = 30'000;
  // A request whose handler has not answered by then gets 504 (the work
  // goes on and may still apply) and its connection is closed. 0 = none.
  int request_timeout_ms = 60'000;
  size_t connections_max = 1024;
  int io_threads = 2;
  int worker_threads = 4;
};

class HttpServer {
 public:
  HttpServer(Backend* backend, HttpServerOptions options);
  ~HttpServer();  // Stop()s
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the threads. IOError if the address cannot be
  // bound, InvalidArgument if it does not parse.
  Status Start();
  // Closes the listener and every connection and joins the threads. Requests
  // already handed to a worker finish first (their responses are dropped).
  // Idempotent.
  void Stop();

  // The bound port (the real one when options.port was 0).
  uint16_t port() const;
  const HttpServerOptions& options() const { return options_; }
  Metrics& metrics();

  struct Impl;  // defined in http_server.cc

 private:
  HttpServerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::server
