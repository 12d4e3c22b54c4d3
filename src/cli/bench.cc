// `cairn bench`: Boost.Asio/Beast stay in this file of the CLI.
//
// Every client is a small state machine on its own strand: connect, then
// write a request and read its response over one keep-alive connection until
// the run ends. A failed request (connect error, timeout, non-2xx status) is
// counted by kind and the connection is re-opened after a short pause, so a
// dead node costs errors, not a wedged run. Latencies are kept per client
// (microseconds) and merged after the run, so percentiles are exact.
#include "cli/bench.h"

#include <unistd.h>

// clang-format off
#include <utility>  // before Asio 1.74, whose awaitable.hpp uses std::exchange without including it
// clang-format on
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "client/wire.h"

namespace cairn::cli {
namespace {

using client::JsonString;  // src/client/wire.h: the one JSON string writer

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// No :db/doc: a cluster coordinator counts it as ordinary data, and a schema
// transaction must not carry any.
constexpr const char* kSchemaTx =
    "[{:db/ident :bench/key :db/valueType :db.type/string :db/cardinality :db.cardinality/one "
    ":db/unique :db.unique/identity}"
    " {:db/ident :bench/val :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]";
constexpr const char* kPointQuery = "[:find ?e . :in $ ?k :where [?e :bench/key ?k]]";

enum class Workload { kTx1, kTx100, kPoint, kLoad };

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kTx1:
      return "tx1";
    case Workload::kTx100:
      return "tx100";
    case Workload::kPoint:
      return "point";
    case Workload::kLoad:
      return "load";
  }
  return "?";
}

// Datoms (Cairn) or keys (etcd) written by one op, not counting Cairn's
// :db/txInstant on the transaction entity.
int DatomsPerOp(Workload w) {
  switch (w) {
    case Workload::kTx1:
      return 1;
    case Workload::kTx100:
      return 100;
    case Workload::kLoad:
      return 1;
    case Workload::kPoint:
      return 0;
  }
  return 0;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// `id` padded with a fixed filler to exactly `bytes` (or cut to it).
std::string Padded(const std::string& id, int bytes) {
  std::string v = id;
  v.reserve(bytes);
  static constexpr char kFill[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  while (static_cast<int>(v.size()) < bytes) v += kFill[v.size() % (sizeof kFill - 1)];
  v.resize(bytes);
  return v;
}

struct Endpoint {
  std::string text;  // as given, for the Host header and messages
  tcp::endpoint address;
};

// One run: a workload at a client count. Shared by its clients; counters are
// atomics, everything else is fixed before the clients start.
struct Run {
  Workload workload;
  bool etcd;
  int clients;
  int value_bytes;
  int point_keys;
  uint32_t nonce;  // makes written keys unique across runs and invocations
  int timeout_ms;
  uint64_t ops_max;  // 0 = time-bound
  Clock::time_point start, measure_from, deadline;
  std::atomic<uint64_t> issued{0};
  std::atomic<uint64_t> completed{0};  // successful, in the measured window
  std::atomic<uint64_t> failed{0};
  std::atomic<int> active{0};
  std::atomic<bool> stop{false};
  std::mutex mu;  // guards the maps below and latency merging
  std::map<std::string, uint64_t> error_kinds;
  std::string first_error;
  std::vector<uint32_t> latencies_us;
  Clock::time_point last_completion;

  // Takes the next op slot; `index` numbers ops of this run from 0.
  bool ShouldIssue(uint64_t* index) {
    if (stop.load(std::memory_order_relaxed)) return false;
    *index = issued.fetch_add(1, std::memory_order_relaxed);
    if (ops_max > 0) return *index < ops_max;
    return Clock::now() < deadline;
  }

  void Error(const std::string& kind, const std::string& detail) {
    failed.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu);
    ++error_kinds[kind];
    if (first_error.empty()) first_error = kind + ": " + detail.substr(0, 300);
  }
};

class BenchClient : public std::enable_shared_from_this<BenchClient> {
 public:
  BenchClient(asio::io_context& ioc, Run* run, int id, const Endpoint& endpoint)
      : run_(run),
        id_(id),
        endpoint_(endpoint),
        stream_(asio::make_strand(ioc)),
        pause_(stream_.get_executor()),
        rng_(0x9e3779b9u * static_cast<uint32_t>(id + 1) ^ run->nonce) {}

  void Start() {
    run_->active.fetch_add(1);
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Connect(); });
  }

 private:
  void Connect() {
    if (!run_->ShouldIssue(&op_index_)) return Done();
    stream_.expires_after(std::chrono::milliseconds(run_->timeout_ms));
    stream_.async_connect(endpoint_.address, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Fail("connect", ec.message());
      self->stream_.socket().set_option(tcp::no_delay(true));
      self->Send();
    });
  }

  // `issued` was already taken by the ShouldIssue that led here.
  void Send() {
    BuildRequest();
    sent_at_ = Clock::now();
    stream_.expires_after(std::chrono::milliseconds(run_->timeout_ms));
    http::async_write(stream_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail(ec == beast::error::timeout ? "timeout" : "write", ec.message());
      self->response_.emplace();
      self->response_->body_limit(64u << 20);
      http::async_read(self->stream_, self->buffer_, *self->response_,
                       [self](beast::error_code ec2, size_t) { self->OnResponse(ec2); });
    });
  }

  void OnResponse(beast::error_code ec) {
    if (ec) return Fail(ec == beast::error::timeout ? "timeout" : "read", ec.message());
    auto done = Clock::now();
    const auto& res = response_->get();
    unsigned status = res.result_int();
    if (status < 200 || status >= 300) {
      run_->Error("http " + std::to_string(status), res.body());
    } else if (!Hit(res.body())) {
      run_->Error("miss", res.body());
    } else if (done >= run_->measure_from && (run_->ops_max > 0 || done <= run_->deadline)) {
      run_->completed.fetch_add(1, std::memory_order_relaxed);
      latencies_us_.push_back(
          static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(done - sent_at_).count()));
      last_completion_ = done;
    }
    if (!res.keep_alive()) {
      beast::error_code ignored;
      stream_.socket().close(ignored);
      return Connect();
    }
    if (!run_->ShouldIssue(&op_index_)) return Done();
    Send();
  }

  // A point read must find its key; writes only need a 2xx.
  bool Hit(const std::string& body) const {
    if (run_->workload != Workload::kPoint) return true;
    if (run_->etcd) return body.find("\"kvs\"") != std::string::npos;
    return body.find("\"rows\":[]") == std::string::npos;
  }

  void Fail(const std::string& kind, const std::string& detail) {
    run_->Error(kind, endpoint_.text + ": " + detail);
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.consume(buffer_.size());
    pause_.expires_after(std::chrono::milliseconds(20));
    pause_.async_wait([self = shared_from_this()](beast::error_code) { self->Connect(); });
  }

  void Done() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    {
      std::lock_guard lock(run_->mu);
      run_->latencies_us.insert(run_->latencies_us.end(), latencies_us_.begin(), latencies_us_.end());
      if (last_completion_ > run_->last_completion) run_->last_completion = last_completion_;
    }
    run_->active.fetch_sub(1);
  }

  std::string NextKeyId() {
    char buf[64];
    std::snprintf(buf, sizeof buf, "k%08x-%03d-%010" PRIu64, run_->nonce, id_, seq_++);
    return buf;
  }

  void BuildRequest() {
    request_ = {};
    request_.version(11);
    request_.method(http::verb::post);
    request_.set(http::field::host, endpoint_.text);
    request_.keep_alive(true);
    std::string body;
    const int vb = run_->value_bytes;
    switch (run_->workload) {
      case Workload::kTx1:
      case Workload::kLoad: {
        std::string id = run_->workload == Workload::kLoad ? LoadKeyId() : NextKeyId();
        if (run_->etcd) {
          request_.target("/v3/kv/put");
          body = "{\"key\":\"" + Base64("bench/" + id) + "\",\"value\":\"" + Base64(Padded("v" + id, vb)) + "\"}";
        } else {
          request_.target("/v1/transact");
          body = "[[:db/add \"e\" :bench/key \"" + Padded(id, vb) + "\"]]";
        }
        break;
      }
      case Workload::kTx100: {
        std::string id = NextKeyId();
        if (run_->etcd) {
          request_.target("/v3/kv/txn");
          body = "{\"success\":[";
          for (int i = 0; i < 100; ++i) {
            std::string k = id + "-" + std::to_string(i);
            if (i) body += ',';
            body += "{\"requestPut\":{\"key\":\"" + Base64("bench/" + k) + "\",\"value\":\"" +
                    Base64(Padded("v" + k, vb)) + "\"}}";
          }
          body += "]}";
        } else {
          // The first entity is placed by its unique key; the 99 others have
          // only a tempid, so they follow it onto the same shard.
          request_.target("/v1/transact");
          body = "[[:db/add \"e0\" :bench/key \"" + Padded(id, vb) + "\"]";
          for (int i = 1; i < 100; ++i) {
            body += " [:db/add \"e" + std::to_string(i) + "\" :bench/val \"" +
                    Padded("v" + id + "-" + std::to_string(i), vb) + "\"]";
          }
          body += "]";
        }
        break;
      }
      case Workload::kPoint: {
        std::string id = PointKeyId(static_cast<int>(rng_() % static_cast<uint32_t>(run_->point_keys)));
        if (run_->etcd) {
          request_.target("/v3/kv/range");
          body = "{\"key\":\"" + Base64("bench/" + id) + "\"}";
        } else {
          request_.target("/v1/query");
          body = std::string("{:query ") + kPointQuery + " :args [\"" + Padded(id, vb) + "\"]}";
        }
        break;
      }
    }
    request_.set(http::field::content_type, run_->etcd ? "application/json" : "application/edn");
    request_.body() = std::move(body);
    request_.prepare_payload();
  }

  // Load ops write the point keys 0..point_keys-1, each once across clients.
  std::string LoadKeyId() const { return PointKeyId(static_cast<int>(op_index_ % run_->point_keys)); }
  static std::string PointKeyId(int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "p-%08d", i);
    return buf;
  }

  Run* run_;
  int id_;
  const Endpoint& endpoint_;
  beast::tcp_stream stream_;
  asio::steady_timer pause_;
  std::minstd_rand rng_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> response_;
  Clock::time_point sent_at_;
  Clock::time_point last_completion_;
  std::vector<uint32_t> latencies_us_;
  uint64_t seq_ = 0;
  uint64_t op_index_ = 0;  // of the op being sent
};

struct RunResult {
  std::string workload;
  int clients = 0;
  double seconds = 0;
  uint64_t ops = 0;
  uint64_t errors = 0;
  double ops_per_s = 0;
  double datoms_per_s = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
  std::map<std::string, uint64_t> error_kinds;
  std::string first_error;
};

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);  // nearest rank
  if (rank == 0) rank = 1;
  if (rank > sorted.size()) rank = sorted.size();
  return sorted[rank - 1] / 1000.0;
}

std::string ErrorSummary(const std::map<std::string, uint64_t>& kinds) {
  std::string s;
  for (const auto& [k, n] : kinds) {
    if (!s.empty()) s += ", ";
    s += k + " x" + std::to_string(n);
  }
  return s;
}

RunResult Execute(const BenchArgs& args, const std::vector<Endpoint>& endpoints, Workload workload, int clients,
                  uint32_t nonce, uint64_t ops_max, double warmup_s, bool quiet) {
  Run run;
  run.workload = workload;
  run.etcd = args.target == "etcd";
  run.clients = clients;
  run.value_bytes = args.value_bytes;
  run.point_keys = args.point_keys;
  run.nonce = nonce;
  run.timeout_ms = args.timeout_ms;
  run.ops_max = ops_max;
  run.start = Clock::now();
  auto secs = [](double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); };
  run.measure_from = ops_max > 0 ? run.start : run.start + secs(warmup_s);
  run.deadline = ops_max > 0 ? Clock::time_point::max() : run.measure_from + secs(args.duration_s);
  run.last_completion = run.start;

  asio::io_context ioc;
  std::vector<std::shared_ptr<BenchClient>> all;
  for (int i = 0; i < clients; ++i) {
    all.push_back(std::make_shared<BenchClient>(ioc, &run, i, endpoints[i % endpoints.size()]));
  }
  for (auto& c : all) c->Start();

  // Progress: on a terminal one line redrawn twice a second, else a line
  // every 5 s. Also the run's watchdog: it keeps the io_context alive until
  // every client is done.
  const bool tty = isatty(STDERR_FILENO) != 0;
  const std::string label = std::string(WorkloadName(workload)) + " clients=" + std::to_string(clients);
  asio::steady_timer ticker(ioc);
  Clock::time_point last_line = run.start;
  uint64_t last_done = 0;
  std::function<void()> tick = [&] {
    ticker.expires_after(std::chrono::milliseconds(100));
    ticker.async_wait([&](beast::error_code) {
      if (run.active.load() == 0) return;
      auto now = Clock::now();
      if (!quiet && now - last_line >= (tty ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5000))) {
        double elapsed = std::chrono::duration<double>(now - run.start).count();
        double window = std::chrono::duration<double>(now - last_line).count();
        uint64_t done = run.completed.load();
        double rate = window > 0 ? static_cast<double>(done - last_done) / window : 0;
        std::string where = ops_max > 0 ? std::to_string(run.issued.load()) + "/" + std::to_string(ops_max) + " ops"
                                        : std::to_string(static_cast<int>(elapsed)) + "/" +
                                              std::to_string(static_cast<int>(warmup_s + args.duration_s)) + " s";
        std::fprintf(stderr, "%s%-22s %s  %.0f ops/s  errors %" PRIu64 "%s", tty ? "\r" : "", label.c_str(),
                     where.c_str(), rate, run.failed.load(), tty ? "   " : "\n");
        std::fflush(stderr);
        last_line = now;
        last_done = done;
      }
      tick();
    });
  };
  tick();

  std::vector<std::thread> threads;
  for (int i = 1; i < args.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  if (!quiet && tty) std::fprintf(stderr, "\r%-70s\r", "");

  RunResult r;
  r.workload = WorkloadName(workload);
  r.clients = clients;
  auto end = ops_max > 0 ? run.last_completion : run.deadline;
  r.seconds = std::max(1e-9, std::chrono::duration<double>(end - run.measure_from).count());
  r.ops = run.completed.load();
  r.errors = run.failed.load();
  r.ops_per_s = static_cast<double>(r.ops) / r.seconds;
  r.datoms_per_s = r.ops_per_s * DatomsPerOp(workload);
  std::sort(run.latencies_us.begin(), run.latencies_us.end());
  r.p50_ms = Percentile(run.latencies_us, 0.50);
  r.p99_ms = Percentile(run.latencies_us, 0.99);
  r.p999_ms = Percentile(run.latencies_us, 0.999);
  r.max_ms = run.latencies_us.empty() ? 0 : run.latencies_us.back() / 1000.0;
  double sum = 0;
  for (uint32_t us : run.latencies_us) sum += us;
  r.mean_ms = run.latencies_us.empty() ? 0 : sum / static_cast<double>(run.latencies_us.size()) / 1000.0;
  r.error_kinds = run.error_kinds;
  r.first_error = run.first_error;
  return r;
}

// One blocking request, for setup. Returns the status (0 on a transport
// error) and the body or the error text.
std::pair<unsigned, std::string> Request(const Endpoint& ep, const std::string& target, const std::string& body,
                                         const std::string& content_type, int timeout_ms) {
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    stream.connect(ep.address);
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, ep.text);
    req.set(http::field::content_type, content_type);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return {res.result_int(), res.body()};
  } catch (const std::exception& e) {
    return {0, e.what()};
  }
}

// Installs the bench schema (Cairn only), retrying while the target warms up
// (503, connection refused) for up to the request timeout.
bool Setup(const BenchArgs& args, const std::vector<Endpoint>& endpoints) {
  if (args.target == "etcd") return true;
  auto until = Clock::now() + std::chrono::milliseconds(std::max(args.timeout_ms, 5000));
  std::pair<unsigned, std::string> res;
  for (int attempt = 0;; ++attempt) {
    res = Request(endpoints[attempt % endpoints.size()], "/v1/transact", kSchemaTx, "application/edn", args.timeout_ms);
    if (res.first == 200) return true;
    if ((res.first != 0 && res.first < 500) || Clock::now() > until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::fprintf(stderr, "cairn bench: installing the bench schema failed (%s): %s\n",
               res.first ? ("HTTP " + std::to_string(res.first)).c_str() : "no answer", res.second.c_str());
  return false;
}

std::string Now8601() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string LoadAvg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a.empty() ? "" : a + " " + b + " " + c;
}

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

void PrintTable(const std::string& target, const std::vector<RunResult>& results) {
  std::printf("%-6s %-6s %7s %10s %12s %12s %9s %9s %9s %8s\n", "target", "load", "clients", "ops", "ops/s", "datoms/s",
              "p50 ms", "p99 ms", "p999 ms", "errors");
  for (const auto& r : results) {
    std::printf("%-6s %-6s %7d %10" PRIu64 " %12.0f %12.0f %9.2f %9.2f %9.2f %8" PRIu64 "\n", target.c_str(),
                r.workload.c_str(), r.clients, r.ops, r.ops_per_s, r.datoms_per_s, r.p50_ms, r.p99_ms, r.p999_ms,
                r.errors);
  }
  for (const auto& r : results) {
    if (r.errors) {
      std::printf("  %s clients=%d errors: %s; first: %s\n", r.workload.c_str(), r.clients,
                  ErrorSummary(r.error_kinds).c_str(), r.first_error.c_str());
    }
  }
  std::fflush(stdout);
}

std::string ToJson(const BenchArgs& args, const std::vector<RunResult>& results, const std::string& started,
                   const std::string& load_before, const std::string& load_after) {
  std::ostringstream o;
  o << "{\"tool\": \"cairn bench\", \"target\": " << JsonString(args.target) << ", \"endpoints\": [";
  for (size_t i = 0; i < args.endpoints.size(); ++i)
    o << (i ? ", " : "") << JsonString(args.endpoints[i]);
  o << "], \"started\": \"" << started << "\", \"value_bytes\": " << args.value_bytes
    << ", \"duration_s\": " << args.duration_s << ", \"warmup_s\": " << args.warmup_s
    << ", \"ops_per_run\": " << args.ops << ", \"threads\": " << args.threads
    << ",\n \"machine\": {\"cpus\": " << std::thread::hardware_concurrency() << ", \"loadavg_before\": \""
    << load_before << "\", \"loadavg_after\": \"" << load_after << "\"},\n \"runs\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    o << (i ? ",\n  " : "\n  ") << "{\"workload\": \"" << r.workload << "\", \"clients\": " << r.clients
      << ", \"seconds\": " << Fixed(r.seconds, 3) << ", \"ops\": " << r.ops << ", \"errors\": " << r.errors
      << ", \"ops_per_s\": " << Fixed(r.ops_per_s, 1) << ", \"datoms_per_s\": " << Fixed(r.datoms_per_s, 1)
      << ", \"latency_ms\": {\"p50\": " << Fixed(r.p50_ms, 3) << ", \"p99\": " << Fixed(r.p99_ms, 3)
      << ", \"p999\": " << Fixed(r.p999_ms, 3) << ", \"max\": " << Fixed(r.max_ms, 3)
      << ", \"mean\": " << Fixed(r.mean_ms, 3) << "}, \"error_kinds\": {";
    size_t k = 0;
    for (const auto& [kind, n] : r.error_kinds) o << (k++ ? ", " : "") << JsonString(kind) << ": " << n;
    o << "}, \"first_error\": " << JsonString(r.first_error) << "}";
  }
  o << "\n]}\n";
  return o.str();
}

}  // namespace

int RunBench(const BenchArgs& args) {
  if (args.target != "cairn" && args.target != "etcd") {
    std::fprintf(stderr, "cairn bench: --target must be cairn or etcd, got '%s'\n", args.target.c_str());
    return 2;
  }
  if (args.endpoints.empty()) {
    std::fprintf(stderr, "cairn bench: --endpoints needs at least one HOST:PORT\n");
    return 2;
  }
  std::vector<Workload> workloads;
  for (const auto& w : args.workloads) {
    if (w == "tx1")
      workloads.push_back(Workload::kTx1);
    else if (w == "tx100")
      workloads.push_back(Workload::kTx100);
    else if (w == "point")
      workloads.push_back(Workload::kPoint);
    else {
      std::fprintf(stderr, "cairn bench: unknown workload '%s' (expected tx1, tx100 or point)\n", w.c_str());
      return 2;
    }
  }
  for (int c : args.clients) {
    if (c < 1 || c > 10000) {
      std::fprintf(stderr, "cairn bench: --clients: %d is not in 1..10000\n", c);
      return 2;
    }
  }
  if (args.clients.empty() || workloads.empty()) {
    std::fprintf(stderr, "cairn bench: need at least one workload and one client count\n");
    return 2;
  }
  if (args.ops == 0 && !(args.duration_s > 0)) {
    std::fprintf(stderr, "cairn bench: --duration-s must be > 0 (or give --ops)\n");
    return 2;
  }
  if (args.warmup_s < 0 || args.threads < 1 || args.threads > 64 || args.timeout_ms < 1 || args.value_bytes < 24 ||
      args.value_bytes > (1 << 20) || args.point_keys < 1) {
    std::fprintf(stderr,
                 "cairn bench: out of range: need --warmup-s >= 0, --threads 1..64, --timeout-ms >= 1, "
                 "--value-bytes 24..1048576, --point-keys >= 1\n");
    return 2;
  }
  std::vector<Endpoint> endpoints;
  for (const auto& text : args.endpoints) {
    size_t colon = text.rfind(':');
    std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
    std::string port = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty() || port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
      std::fprintf(stderr, "cairn bench: --endpoints: '%s' is not HOST:PORT\n", text.c_str());
      return 2;
    }
    try {
      asio::io_context ioc;
      tcp::resolver resolver(ioc);
      auto found = resolver.resolve(host, port);
      if (found.empty()) throw std::runtime_error("no address");
      endpoints.push_back({text, found.begin()->endpoint()});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cairn bench: --endpoints: cannot resolve '%s': %s\n", text.c_str(), e.what());
      return 2;
    }
  }

  std::signal(SIGPIPE, SIG_IGN);
  std::string started = Now8601();
  std::string load_before = LoadAvg();
  if (!Setup(args, endpoints)) return 1;
  std::random_device seed;
  uint32_t nonce = seed();

  std::vector<RunResult> results;
  for (Workload w : workloads) {
    if (w == Workload::kPoint) {
      // Write the keys the reads look up (idempotent: an upsert for Cairn,
      // an overwrite for etcd).
      RunResult load;
      for (int pass = 0; pass < 3; ++pass) {
        load = Execute(args, endpoints, Workload::kLoad, std::min(16, args.point_keys), nonce,
                       static_cast<uint64_t>(args.point_keys), 0, true);
        if (load.errors == 0) break;
      }
      if (load.errors != 0) {
        std::fprintf(stderr, "cairn bench: writing the %d point keys failed (%" PRIu64 " written): %s\n",
                     args.point_keys, load.ops, load.first_error.c_str());
        return 1;
      }
    }
    for (int c : args.clients) {
      results.push_back(Execute(args, endpoints, w, c, nonce, args.ops, args.warmup_s, args.quiet));
      ++nonce;
    }
  }
  std::string load_after = LoadAvg();
  PrintTable(args.target, results);
  if (!args.out.empty()) {
    std::ofstream f(args.out);
    f << ToJson(args, results, started, load_before, load_after);
    if (!f) {
      std::fprintf(stderr, "cairn bench: cannot write %s\n", args.out.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace cairn::cli
