// ApiRouter: the HTTP API's endpoints (ARCHITECTURE §7, docs/http.md) as a
// pure function from a parsed request to a response, independent of the
// transport (http_server.cc owns sockets, Beast and timeouts).
//
// Bodies are EDN with `Content-Type: application/edn`, else JSON (so curl -d
// works without a header);
// responses are JSON unless the request says `Accept: application/edn`.
// Errors are {"error": {"code": "...", "message": "..."}} (EDN:
// {:error {:code "..." :message "..."}}) with the status mapped from the
// Backend's Status; malformed JSON or EDN names line:column. A request that
// fails never changes stored data.
//
// Thread-safety: Handle() may be called from many threads at once; the
// Backend and Metrics must outlive the router.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "server/backend.h"
#include "server/metrics.h"

namespace cairn::server {

struct HttpRequest {
  std::string method;        // "GET", "POST", ...
  std::string target;        // "/v1/diff?from=1&to=2"
  std::string content_type;  // header value, may be empty
  std::string accept;        // header value, may be empty
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Allow, ...)
  std::string route = "other";                               // metrics label: the matched route
};

class ApiRouter {
 public:
  ApiRouter(Backend* backend, Metrics* metrics);
  HttpResponse Handle(const HttpRequest& request);
  // The same, answering through `done` exactly once: at once for every
  // endpoint but POST /v1/transact, which answers when the backend does
  // (Backend::TransactAsync; possibly later, from a backend thread).
  void HandleAsync(const HttpRequest& request, std::function<void(HttpResponse)> done);
  // HandleAsync for a request that can start without blocking the calling
  // (I/O) thread — a well-formed POST /v1/transact the backend can start at
  // once (Backend::TryTransactNow): returns true and takes `done`. Else
  // false, `done` untouched: hand the request to HandleAsync on a worker.
  bool TryHandleNow(const HttpRequest& request, std::function<void(HttpResponse)>& done);

  // The metrics label of a request target: its route, or "other".
  static std::string RouteOf(std::string_view target);

  // An error response (for transport-level failures: 413, 400, 503...).
  // `edn` selects the EDN error shape.
  static HttpResponse Error(int status, std::string_view code, std::string_view message, bool edn = false);

 private:
  // The answer to a transact (or cluster meta) request; `send_t` adds the
  // Cairn-T header.
  HttpResponse TransactResponse(const Result<TransactResult>& result, bool want_edn, std::string route, bool send_t);
  // The backend callback that answers a POST /v1/transact through `done`.
  Backend::TransactDone TransactAnswer(bool want_edn, std::function<void(HttpResponse)> done);

  Backend* backend_;
  Metrics* metrics_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace cairn::server
