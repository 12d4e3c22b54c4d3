// Runs Cairn on bench/datascript's data set through the public embedded API and
// prints {"bench": median_ms, "bench:rows": n, ...} as JSON, the same shape as
// run_datascript.mjs. Usage: cairn_ds_bench data.json queries.json WORK_DIR
// ONLY=regex (env) runs only the benchmarks whose names match (for profiling);
// ITERS=n runs each query n times instead of timing (for perf stat).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "cairn/database.h"

namespace {

using Clock = std::chrono::steady_clock;

double EnvMs(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : fallback;
}

// Mean ms per call over `ms` milliseconds (at least one call).
double DoTime(double ms, const std::function<void()>& fn) {
  auto start = Clock::now();
  long n = 0;
  double elapsed = 0;
  do {
    fn();
    ++n;
    elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  } while (elapsed < ms);
  return elapsed / static_cast<double>(n);
}

double Bench(const std::function<void()>& fn) {
  if (const char* iters = std::getenv("ITERS")) {
    // A fixed number of runs, no warm-up: for counting instructions under
    // `perf stat` on a loaded machine (compare ITERS=n with ITERS=0).
    auto start = Clock::now();
    long n = std::atol(iters);
    for (long i = 0; i < n; ++i) fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count() / static_cast<double>(std::max(1L, n));
  }
  DoTime(EnvMs("WARMUP_MS", 1000), fn);
  std::vector<double> times;
  int samples = static_cast<int>(EnvMs("SAMPLES", 5));
  for (int i = 0; i < samples; ++i) times.push_back(DoTime(EnvMs("SAMPLE_MS", 500), fn));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::string Str(const std::string& s) { return cairn::Value::String(s).ToString(); }

void Die(const std::string& what, const cairn::Status& s) {
  std::fprintf(stderr, "cairn_ds_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

constexpr const char* kSchema = R"([
  {:db/ident :id :db/unique :db.unique/identity}
  {:db/ident :follows :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}
  {:db/ident :alias :db/cardinality :db.cardinality/many}])";

std::unique_ptr<cairn::Database> OpenFresh(const std::string& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path + "-wal");
  std::filesystem::remove(path + "-shm");
  cairn::Options options;
  options.sync = false;  // the comparison is about queries; DataScript is in memory
  auto db = cairn::Database::open(path, options);
  if (!db.ok()) Die("open " + path, db.status());
  auto schema = (*db)->transact(kSchema);
  if (!schema.ok()) Die("schema", schema.status());
  return std::move(*db);
}

std::vector<std::string> PeopleTxs(const nlohmann::json& people, size_t batch) {
  std::vector<std::string> txs;
  std::string tx;
  size_t n = 0;
  for (const auto& p : people) {
    if (n % batch == 0) tx = "[";
    tx += "{:db/id " + Str("p" + std::to_string(p["id"].get<int>())) + " :name " + Str(p["name"]) +
          " :last-name " + Str(p["last-name"]) + " :full-name " + Str(p["full-name"]) + " :sex " + Str(p["sex"]) +
          " :age " + std::to_string(p["age"].get<int>()) + " :salary " + std::to_string(p["salary"].get<int>());
    if (!p["alias"].empty()) {
      tx += " :alias [";
      for (const auto& a : p["alias"]) tx += Str(a) + " ";
      tx += "]";
    }
    tx += "}\n";
    if (++n % batch == 0) txs.push_back(tx + "]");
  }
  if (n % batch != 0) txs.push_back(tx + "]");
  return txs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s data.json queries.json WORK_DIR\n", argv[0]);
    return 2;
  }
  nlohmann::json data = nlohmann::json::parse(std::ifstream(argv[1]));
  nlohmann::json queries = nlohmann::json::parse(std::ifstream(argv[2]));
  std::string work = argv[3];
  std::filesystem::create_directories(work);
  nlohmann::json results;
  const char* only_env = std::getenv("ONLY");
  std::regex only(only_env != nullptr ? only_env : ".*");
  auto wanted = [&](const std::string& name) { return std::regex_search(name, only); };

  auto txs = PeopleTxs(data["people"], 1000);
  auto db = OpenFresh(work + "/people.db");
  for (const auto& tx : txs) {
    auto r = db->transact(tx);
    if (!r.ok()) Die("load people", r.status());
  }
  if (wanted("add-all")) {
    // add-all: the same 20k people into a fresh database, 1,000 per transaction.
    int round = 0;
    results["add-all"] = DoTime(1, [&] {
      auto fresh = OpenFresh(work + "/add-all-" + std::to_string(round++) + ".db");
      for (const auto& tx : txs) {
        auto r = fresh->transact(tx);
        if (!r.ok()) Die("add-all", r.status());
      }
    });
  }
  if (wanted("add-5") || wanted("add-1") || wanted("retract-5")) {
    // add-5: one transaction per person; add-1: one datom per transaction.
    auto fresh = OpenFresh(work + "/add-5.db");
    auto people5 = PeopleTxs(data["people"], 1);
    results["add-5"] = DoTime(1, [&] {
      for (const auto& tx : people5) {
        auto r = fresh->transact(tx);
        if (!r.ok()) Die("add-5", r.status());
      }
    });
    auto fresh1 = OpenFresh(work + "/add-1.db");
    results["add-1"] = DoTime(1, [&] {
      for (const auto& p : data["people"]) {
        auto r = fresh1->transact("[{:db/id \"p\" :name " + Str(p["name"]) + "}]");
        if (!r.ok()) Die("add-1", r.status());
        std::string e = std::to_string(r->tempids.at("p").raw);
        for (const char* a : {"last-name", "sex"}) {
          auto r2 = fresh1->transact("[[:db/add " + e + " :" + a + " " + Str(p[a]) + "]]");
          if (!r2.ok()) Die("add-1", r2.status());
        }
        for (const char* a : {"age", "salary"}) {
          auto r2 = fresh1->transact("[[:db/add " + e + " :" + a + " " + std::to_string(p[a].get<int>()) + "]]");
          if (!r2.ok()) Die("add-1", r2.status());
        }
      }
    });
    // retract-5: retractEntity of every person, one transaction each.
    auto people = fresh->db().q("[:find [?e ...] :where [?e :name]]");
    if (!people.ok()) Die("retract-5", people.status());
    results["retract-5"] = DoTime(1, [&] {
      for (const auto& row : people->rows) {
        auto r = fresh->transact("[[:db/retractEntity " + row[0].ToString() + "]]");
        if (!r.ok()) Die("retract-5", r.status());
      }
    });
  }
  cairn::Db now = db->db();
  for (auto& [name, spec] : queries.items()) {
    if (name == "rules" || !wanted(name)) continue;
    std::string q = spec["query"];
    std::vector<std::string> args;
    if (spec.contains("args")) args = spec["args"].get<std::vector<std::string>>();
    auto first = now.q(q, args);
    if (!first.ok()) Die(name, first.status());
    results[name + ":rows"] = first->rows.size();
    results[name] = Bench([&] { (void)now.q(q, args); });
  }
  const auto& rules = queries["rules"];
  for (auto& [name, edges] : data["graphs"].items()) {
    if (!wanted(name)) continue;
    auto gdb = OpenFresh(work + "/" + name + ".db");
    std::string tx = "[";
    std::vector<int> nodes;
    for (const auto& e : edges) {
      int a = e[0], b = e[1];
      nodes.push_back(a);
      nodes.push_back(b);
      tx += "[:db/add " + Str("n" + std::to_string(a)) + " :follows " + Str("n" + std::to_string(b)) + "]\n";
    }
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    for (int n : nodes) tx += "[:db/add " + Str("n" + std::to_string(n)) + " :id " + std::to_string(n) + "]\n";
    tx += "]";
    auto r = gdb->transact(tx);
    if (!r.ok()) Die("load " + name, r.status());
    cairn::Db g = gdb->db();
    std::vector<std::string> args{rules["args"][0].get<std::string>()};
    auto first = g.q(rules["query"].get<std::string>(), args);
    if (!first.ok()) Die(name, first.status());
    results[name + ":rows"] = first->rows.size();
    results[name] = Bench([&] { (void)g.q(rules["query"].get<std::string>(), args); });
  }
  std::printf("%s\n", results.dump(1).c_str());
  return 0;
}
