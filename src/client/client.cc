// cairn::Client and cairn::ClientDb: requests, the connection pool and the
// retry loop (docs/client.md). No Beast here: see http_connection.cc.
#include "cairn/client.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "client/http_connection.h"
#include "client/wire.h"

namespace cairn {

using client::HttpConnection;
using client::HttpReply;
using Clock = std::chrono::steady_clock;

namespace {

struct Endpoint {
  std::string text;  // "host:port" as given (without http://)
  std::string host;
  uint16_t port = 0;
};

Result<Endpoint> ParseEndpoint(std::string_view text) {
  std::string_view s = text;
  if (s.substr(0, 7) == "http://") s.remove_prefix(7);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("endpoint '" + std::string(text) + "': " + why + " (expected HOST:PORT)");
  };
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view host = s.substr(0, colon);
  std::string_view port = s.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) return bad("no host");
  if (host.find_first_of("/ ") != std::string_view::npos) return bad("bad host");
  if (port.empty() || port.size() > 5) return bad("bad port");
  unsigned long p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad("bad port");
    p = p * 10 + static_cast<unsigned long>(c - '0');
  }
  if (p == 0 || p > 65535) return bad("port out of range");
  return Endpoint{std::string(s), std::string(host), static_cast<uint16_t>(p)};
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

struct Client::Impl {
  std::vector<Endpoint> endpoints;
  std::vector<std::string> endpoint_texts;
  ClientOptions options;
  std::string id_prefix;
  std::atomic<uint64_t> next_id{1};
  // The endpoint that answered last; calls start there.
  std::atomic<size_t> preferred{0};
  // The largest t seen (transact answers, observe_t): sent as min-t.
  std::atomic<uint64_t> max_t{0};

  void Observe(TxTime t) {
    uint64_t old = max_t.load(std::memory_order_relaxed);
    while (t.raw > old && !max_t.compare_exchange_weak(old, t.raw, std::memory_order_relaxed)) {
    }
  }

  std::mutex mu;
  std::vector<std::vector<std::unique_ptr<HttpConnection>>> idle;  // per endpoint; guarded by mu

  std::unique_ptr<HttpConnection> Take(size_t i) {
    {
      std::lock_guard<std::mutex> lock(mu);
      auto& pool = idle[i];
      if (!pool.empty()) {
        auto conn = std::move(pool.back());
        pool.pop_back();
        return conn;
      }
    }
    return std::make_unique<HttpConnection>(endpoints[i].host, endpoints[i].port, options.connect_timeout_ms);
  }

  void Give(size_t i, std::unique_ptr<HttpConnection> conn) {
    if (!conn->open()) return;
    std::lock_guard<std::mutex> lock(mu);
    constexpr size_t kIdleMax = 16;
    if (idle[i].size() < kIdleMax) idle[i].push_back(std::move(conn));
  }

  // One attempt on endpoint i. A failure on a kept-alive connection may be
  // the server having closed it while idle: that is retried once at once.
  Result<HttpReply> Attempt(size_t i, const std::string& method, const std::string& target, const std::string& body,
                            const std::string& accept, Clock::time_point deadline) {
    auto conn = Take(i);
    Result<HttpReply> reply = conn->Roundtrip(method, target, body, accept, deadline);
    if (!reply.ok() && reply.status().code() == StatusCode::kUnavailable && conn->reused()) {
      reply = conn->Roundtrip(method, target, body, accept, deadline);
    }
    if (reply.ok()) {
      // The node's known t after answering (query basis, ...): causality
      // covers what this client read, not only what it wrote.
      if (reply->status == 200 && !reply->cairn_t.empty()) {
        uint64_t t = 0;
        auto [end, ec] = std::from_chars(reply->cairn_t.data(), reply->cairn_t.data() + reply->cairn_t.size(), t);
        if (ec == std::errc() && end == reply->cairn_t.data() + reply->cairn_t.size() && t < TxTime::Max().raw) {
          Observe(TxTime{t});
        }
      }
      Give(i, std::move(conn));
    }
    return reply;
  }

  // Sends the request until an answer other than 503/504 arrives or the
  // deadline passes. `retry` false: one attempt on the first endpoint.
  Result<HttpReply> Call(const std::string& method, const std::string& target, const std::string& body,
                         const std::string& accept, bool retry) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::milliseconds(options.timeout_ms);
    const size_t n = endpoints.size();
    size_t i = retry ? preferred.load() % n : 0;
    int backoff_ms = std::max(1, options.backoff_ms_min);
    int attempts = 0;
    Status last;
    bool last_timed_out = false;
    for (;;) {
      ++attempts;
      auto attempt_deadline = deadline;
      if (retry && options.attempt_timeout_ms > 0) {
        attempt_deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(options.attempt_timeout_ms));
      }
      Result<HttpReply> reply = Attempt(i, method, target, body, accept, attempt_deadline);
      if (reply.ok() && reply->status != 503 && reply->status != 504) {
        preferred.store(i);
        return reply;
      }
      if (reply.ok()) {
        last = client::ErrorFromResponse(reply->status, reply->body).WithContext(endpoints[i].text);
        last_timed_out = reply->status == 504;
      } else {
        last = reply.status();
        last_timed_out = reply.status().code() == StatusCode::kTimeout;
      }
      if (!retry) return last;
      auto now = Clock::now();
      if (now + std::chrono::milliseconds(backoff_ms) >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, std::max(backoff_ms, options.backoff_ms_max));
      i = (i + 1) % n;
    }
    std::string summary =
        "gave up after " + std::to_string(attempts) + " attempts in " +
        std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()) +
        " ms; last: " + last.message();
    if (last_timed_out) return Status::Timeout(summary + " (the request may or may not have applied)");
    return Status::Unavailable(summary);
  }

  // A request that must answer 200; other statuses become their Status.
  Result<std::string> CallOk(const std::string& method, const std::string& target, const std::string& body,
                             const std::string& accept, bool retry) {
    CAIRN_ASSIGN_OR_RETURN(HttpReply reply, Call(method, target, body, accept, retry));
    if (reply.status != 200) return client::ErrorFromResponse(reply.status, reply.body);
    return std::move(reply.body);
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::connect(const std::vector<std::string>& endpoints,
                                                const ClientOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("Client::connect: no endpoints given");
  if (options.timeout_ms <= 0 || options.connect_timeout_ms <= 0) {
    return Status::InvalidArgument("Client::connect: timeout_ms and connect_timeout_ms must be positive");
  }
  auto impl = std::make_unique<Impl>();
  for (const std::string& text : endpoints) {
    CAIRN_ASSIGN_OR_RETURN(Endpoint e, ParseEndpoint(text));
    impl->endpoint_texts.push_back(e.text);
    impl->endpoints.push_back(std::move(e));
  }
  impl->options = options;
  impl->idle.resize(impl->endpoints.size());
  std::random_device rd;
  uint64_t seed = (uint64_t{rd()} << 32) ^ rd() ^
                  static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  std::mt19937_64 rng(seed);
  impl->id_prefix = "cc-" + Hex64(rng()) + Hex64(rng()) + "-";
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const std::vector<std::string>& Client::endpoints() const { return impl_->endpoint_texts; }

Result<TxReport> Client::transact(std::string_view tx_edn) {
  return transact_with_id(tx_edn, impl_->id_prefix + std::to_string(impl_->next_id.fetch_add(1)));
}

Result<TxReport> Client::transact(const TxBuilder& tx) { return transact(tx.ToEdn()); }

Result<TxReport> Client::transact_with_id(std::string_view tx_edn, const std::string& request_id) {
  if (request_id.empty()) return Status::InvalidArgument("transact: empty request id");
  // min-t: the cluster commits this transaction above every t this client
  // has seen (ARCHITECTURE §3), on whichever shard and leader it lands.
  const TxTime min_t{impl_->max_t.load(std::memory_order_relaxed)};
  CAIRN_ASSIGN_OR_RETURN(std::string body,
                         impl_->CallOk("POST", "/v1/transact", client::TransactBody(tx_edn, request_id, min_t),
                                       "application/edn", true));
  CAIRN_ASSIGN_OR_RETURN(TxReport report, client::ParseTxReport(body));
  impl_->Observe(report.t);
  return report;
}

TxTime Client::max_t() const { return TxTime{impl_->max_t.load(std::memory_order_relaxed)}; }

void Client::observe_t(TxTime t) { impl_->Observe(t); }

ClientDb Client::db() const { return ClientDb(this); }

Result<std::string> Client::status_json() const {
  return impl_->CallOk("GET", "/v1/status", "", "application/json", true);
}

Status Client::health() const {
  Result<HttpReply> reply = impl_->Call("GET", "/health", "", "application/edn", false);
  if (!reply.ok()) return reply.status();
  if (reply->status == 200) return Status::OK();
  Status s = client::ErrorFromResponse(reply->status, reply->body);
  return Status::Unavailable(s.message());
}

Result<TxTime> Client::latest_t() const {
  CAIRN_ASSIGN_OR_RETURN(std::string body, impl_->CallOk("GET", "/v1/status", "", "application/edn", true));
  // The embedded server writes :latest-t, the cluster contract latest_t.
  Result<uint64_t> t = client::StatusNumber(body, "latest-t");
  if (!t.ok()) t = client::StatusNumber(body, "latest_t");
  if (!t.ok()) return t.status();
  return TxTime{*t};
}

Result<std::vector<Datom>> Client::diff(TxTime t1, TxTime t2) const {
  std::string target = "/v1/diff?from=" + std::to_string(t1.raw) + "&to=" + std::to_string(t2.raw);
  CAIRN_ASSIGN_OR_RETURN(std::string body, impl_->CallOk("GET", target, "", "application/edn", true));
  return client::ParseDatoms(body);
}

// ---------------------------------------------------------------- ClientDb

ClientDb ClientDb::as_of(TxTime t) const {
  ClientDb copy = *this;
  copy.as_of_ = t;
  return copy;
}

ClientDb ClientDb::since(TxTime t) const {
  ClientDb copy = *this;
  copy.since_ = t;
  return copy;
}

ClientDb ClientDb::history() const {
  ClientDb copy = *this;
  copy.history_ = true;
  return copy;
}

Result<QueryResult> ClientDb::q(std::string_view query, const std::vector<std::string>& args) const {
  client::QueryParams params;
  params.as_of = as_of_;
  params.since = since_;
  params.history = history_;
  params.consistency = client_->impl_->options.consistency;
  CAIRN_ASSIGN_OR_RETURN(
      std::string body,
      client_->impl_->CallOk("POST", "/v1/query", client::QueryBody(query, args, params), "application/edn", true));
  return client::ParseQueryResult(query, body);
}

// pull and entid run as queries, so they see the same view (as-of, ...).
Result<Value> ClientDb::pull(std::string_view pattern, EntityId e) const {
  CAIRN_ASSIGN_OR_RETURN(std::vector<Value> one, pull_many(pattern, {e}));
  return one.empty() ? Value::Map({}) : one[0];
}

Result<std::vector<Value>> ClientDb::pull_many(std::string_view pattern, const std::vector<EntityId>& es) const {
  std::string ids = "[";
  for (EntityId e : es) ids += std::to_string(e.raw) + " ";
  ids += "]";
  std::string query = "[:find ?e (pull ?e " + std::string(pattern) + ") :in $ [?e ...] :where]";
  CAIRN_ASSIGN_OR_RETURN(QueryResult r, q(query, {ids}));
  std::map<uint64_t, Value> by_id;
  for (const auto& row : r.rows) {
    if (row.size() == 2 && row[0].type() == ValueType::kLong) by_id[static_cast<uint64_t>(row[0].as_long())] = row[1];
    if (row.size() == 2 && row[0].type() == ValueType::kRef) by_id[row[0].as_ref().raw] = row[1];
  }
  std::vector<Value> out;
  for (EntityId e : es) {
    auto it = by_id.find(e.raw);
    out.push_back(it == by_id.end() || it->second.is_nil() ? Value::Map({}) : it->second);
  }
  return out;
}

Result<EntityId> ClientDb::entid(std::string_view attr, const Value& v) const {
  std::string a(attr);
  if (!a.empty() && a[0] == ':') a.erase(0, 1);
  std::string value = v.type() == ValueType::kRef ? std::to_string(v.as_ref().raw) : v.ToString();
  CAIRN_ASSIGN_OR_RETURN(QueryResult r, q("[:find ?e . :in $ ?v :where [?e :" + a + " ?v]]", {value}));
  if (r.rows.empty() || r.rows[0].empty()) {
    return Status::NotFound("no entity has [:" + a + " " + v.ToString() + "]");
  }
  const Value& e = r.rows[0][0];
  if (e.type() == ValueType::kRef) return e.as_ref();
  if (e.type() == ValueType::kLong) return EntityId{static_cast<uint64_t>(e.as_long())};
  return Status::Internal("entid: unexpected result " + e.ToString());
}

Result<std::vector<Datom>> ClientDb::datoms(IndexType index, const std::vector<Value>& components, size_t limit) const {
  if (since_ || history_) return Status::InvalidArgument("datoms: only the current and as-of views are served");
  const char* names[4][3] = {{"e", "a", "v"}, {"a", "e", "v"}, {"a", "v", "e"}, {"v", "a", "e"}};
  const char* index_names[4] = {"eavt", "aevt", "avet", "vaet"};
  int idx = static_cast<int>(index);
  if (components.size() > 3) return Status::InvalidArgument("datoms: at most 3 components");
  std::string target = std::string("/v1/datoms?index=") + index_names[idx];
  for (size_t i = 0; i < components.size(); ++i) {
    const Value& v = components[i];
    std::string text = v.type() == ValueType::kRef ? std::to_string(v.as_ref().raw) : v.ToString();
    target += std::string("&") + names[idx][i] + "=" + client::UrlEncode(text);
  }
  if (as_of_) target += "&as-of=" + std::to_string(as_of_->raw);
  target += "&limit=" + std::to_string(limit);
  CAIRN_ASSIGN_OR_RETURN(std::string body, client_->impl_->CallOk("GET", target, "", "application/edn", true));
  return client::ParseDatoms(body);
}

}  // namespace cairn
