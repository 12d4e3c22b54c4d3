// The client's side of the HTTP API's bodies (docs/http.md): JSON request
// bodies carrying EDN text, and EDN responses (`Accept: application/edn`)
// parsed back into the public types.
//
// Every parse function returns InvalidArgument naming what was malformed when
// the server's body does not have the documented shape (a server of another
// version, a proxy's error page), never crashes.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/database.h"
#include "cairn/datom.h"
#include "cairn/query.h"
#include "cairn/status.h"

namespace cairn::client {

// `s` as a JSON string literal (quotes included).
std::string JsonString(std::string_view s);

// {"tx-data": "<EDN>", "request-id": "<id>", "min-t": t}; min-t only if
// min_t is valid (nonzero).
std::string TransactBody(std::string_view tx_edn, std::string_view request_id, TxTime min_t = {});

struct QueryParams {
  std::optional<TxTime> as_of;
  std::optional<TxTime> since;
  bool history = false;
  std::string consistency;  // empty: the server's default
};
// {"query": "<EDN>", "args": ["<EDN>", ...], "as-of": t, ...}
std::string QueryBody(std::string_view query, const std::vector<std::string>& args, const QueryParams& params);

// An error response: {:error {:code "..." :message "..."}} (EDN or JSON). The
// code decides the StatusCode; an unknown or missing code falls back to the
// HTTP status (4xx InvalidArgument, 404 NotFound, 409 Conflict, 503
// Unavailable, 504 Timeout, else Internal). The message is the server's.
Status ErrorFromResponse(int http_status, std::string_view body);

// {:t T :tempids {"a" 1} :tx-data [[e :a v t added] ...] :duplicate bool}
Result<TxReport> ParseTxReport(std::string_view body);

// The EDN a query printed (QueryResult::ToEdn) back into a QueryResult; the
// shape, columns and key kind come from parsing `query` itself.
Result<QueryResult> ParseQueryResult(std::string_view query, std::string_view body);

// {:index :eavt :truncated bool :datoms [[e :a v t added] ...]}
Result<std::vector<Datom>> ParseDatoms(std::string_view body);

// The integer under `key` (e.g. "latest-t") in a flat EDN or JSON status map;
// InvalidArgument if absent.
Result<uint64_t> StatusNumber(std::string_view body, std::string_view key);

// Percent-encodes a query-string component.
std::string UrlEncode(std::string_view s);

}  // namespace cairn::client
