// HttpConnection: one blocking HTTP/1.1 keep-alive connection to one
// endpoint, with deadlines (Boost.Beast hidden behind a pimpl).
//
// Roundtrip() connects lazily (and again after any failure), sends one
// request and reads one response. Every step is bounded by the deadline given
// (and the connect step by connect_timeout_ms as well). Errors:
//   - Unavailable "HOST:PORT: <what>": the connection could not be made or
//     broke (refused, reset, closed before a full response); the request may
//     or may not have reached the server;
//   - Timeout "HOST:PORT: ...": the deadline passed first.
// After an error the connection is closed; the next Roundtrip reconnects.
//
// Thread-safety: none; one caller at a time (the Client pools connections).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "cairn/status.h"

namespace cairn::client {

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string cairn_t;  // the Cairn-T header (docs/http.md), empty if absent
};

class HttpConnection {
 public:
  HttpConnection(std::string host, uint16_t port, int connect_timeout_ms);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // `method` is "GET" or "POST"; `body` is sent as application/json when not
  // empty; `accept` is the Accept header.
  Result<HttpReply> Roundtrip(const std::string& method, const std::string& target, const std::string& body,
                              const std::string& accept, std::chrono::steady_clock::time_point deadline);

  // True once a request succeeded on the current TCP connection: a failure
  // on such a connection may just be the server having closed an idle
  // keep-alive connection, worth one immediate retry on a fresh one.
  bool reused() const { return reused_; }
  bool open() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  bool reused_ = false;
};

}  // namespace cairn::client
