// EmbeddedBackend: the Backend over one cairn::Database.
#include <sys/stat.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>

#include "server/backend.h"

namespace cairn::server {

Result<Consistency> ParseConsistency(std::string_view name) {
  if (name == "linearizable") return Consistency::kLinearizable;
  if (name == "read-index") return Consistency::kReadIndex;
  if (name == "stale") return Consistency::kStale;
  return Status::InvalidArgument("unknown consistency '" + std::string(name) +
                                 "' (expected linearizable, read-index or stale)");
}

struct EmbeddedBackend::Counters {
  std::atomic<uint64_t> transactions{0};
  // Request ids seen (bounded, oldest forgotten first): a retry with the
  // same id returns the first report instead of applying again.
  static constexpr size_t kRequestsKept = 10000;
  std::mutex requests_mu;
  std::map<std::string, TxReport> requests;
  std::deque<std::string> request_order;
  // Stored datoms: counted once on open, then advanced by each commit. The
  // public Database API has no O(1) count, and scanning per /metrics scrape
  // would cost O(datoms).
  std::atomic<uint64_t> datoms{0};
};

EmbeddedBackend::EmbeddedBackend(std::unique_ptr<Database> db, std::string path)
    : db_(std::move(db)), path_(std::move(path)), counters_(std::make_unique<Counters>()) {
  TxTime latest = db_->latest_t();
  if (latest.valid()) {
    auto all = diff(*db_, TxTime{0}, latest);
    if (all.ok()) counters_->datoms = all->size();
  }
}

EmbeddedBackend::~EmbeddedBackend() = default;

Result<std::unique_ptr<EmbeddedBackend>> EmbeddedBackend::Open(const std::string& path, const Options& options) {
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::open(path, options));
  return std::make_unique<EmbeddedBackend>(std::move(db), path);
}

Result<TransactResult> EmbeddedBackend::Transact(const TransactRequest& request) {
  std::unique_lock<std::mutex> lock(counters_->requests_mu, std::defer_lock);
  if (!request.request_id.empty()) {
    lock.lock();  // check and apply as one step: two retries must not both apply
    auto it = counters_->requests.find(request.request_id);
    if (it != counters_->requests.end()) {
      TransactResult dup{it->second, true};
      return dup;
    }
  }
  Result<TxReport> report = db_->transact(request.tx_edn);
  if (!report.ok()) return report.status();
  counters_->transactions.fetch_add(1, std::memory_order_relaxed);
  counters_->datoms.fetch_add(report->datoms.size(), std::memory_order_relaxed);
  if (!request.request_id.empty()) {
    TxReport kept{report->t, report->tempids, {}};
    counters_->requests.emplace(request.request_id, std::move(kept));
    counters_->request_order.push_back(request.request_id);
    if (counters_->request_order.size() > Counters::kRequestsKept) {
      counters_->requests.erase(counters_->request_order.front());
      counters_->request_order.pop_front();
    }
  }
  return TransactResult{std::move(*report), false};
}

Result<QueryResult> EmbeddedBackend::Query(const QueryRequest& request) {
  Db view = db_->db();
  if (request.as_of) view = view.as_of(*request.as_of);
  if (request.since) view = view.since(*request.since);
  if (request.history) view = view.history();
  return view.q(request.query, request.args);
}

Result<DatomsResult> EmbeddedBackend::Datoms(const DatomsRequest& request) {
  Db view = db_->db();
  if (request.as_of) view = view.as_of(*request.as_of);
  CAIRN_ASSIGN_OR_RETURN(std::vector<Datom> datoms, view.datoms(request.index, request.components));
  DatomsResult result;
  if (datoms.size() > request.limit) {
    datoms.resize(request.limit);
    result.truncated = true;
  }
  result.datoms = std::move(datoms);
  return result;
}

Result<std::vector<Datom>> EmbeddedBackend::Diff(TxTime from, TxTime to) {
  if (from > to) {
    return Status::InvalidArgument("diff: from (" + std::to_string(from.raw) + ") is after to (" +
                                   std::to_string(to.raw) + ")");
  }
  return diff(*db_, from, to);
}

namespace {
uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}
}  // namespace

BackendStatus EmbeddedBackend::GetStatus() {
  BackendStatus s;
  s.mode = "embedded";
  s.path = path_;
  s.latest_t = db_->latest_t();
  s.datoms = counters_->datoms.load(std::memory_order_relaxed);
  s.transactions = counters_->transactions.load(std::memory_order_relaxed);
  s.size_bytes = FileSize(path_) + FileSize(path_ + "-wal");
  // One shard, its own leader, with no Raft log: indices stay 0.
  ShardStatus shard;
  shard.leader = true;
  s.shards.push_back(shard);
  return s;
}

Status EmbeddedBackend::Health() {
  // A Db value is always available for an open database; reading the current
  // t proves the database object is alive.
  (void)db_->latest_t();
  return Status::OK();
}

TxTime EmbeddedBackend::KnownTime() { return db_->latest_t(); }

}  // namespace cairn::server
