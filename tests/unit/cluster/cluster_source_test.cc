// ClusterSource: queries over a meta store plus S shard stores (real
// DatomStore files, split as a cluster holds them; split_cluster.h) must
// return exactly what the same query returns over one store holding all the
// data, in every view: a differential test over a seeded random dataset and
// random queries, the Datalog data-driven .test files replayed through the
// real transactor, and direct checks of the Scan order contract, early stop,
// routing and error naming.
//   CAIRN_CLUSTER_SEED=7 ./cairn_unit_cluster --gtest_filter='ClusterSource*'
#include "cluster/cluster_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "datalog/engine.h"
#include "split_cluster.h"

namespace cairn::cluster {
namespace {

using shard::StoreSource;
using testing::SplitCluster;
using Kind = StoreSource::Kind;

uint64_t Seed() {
  const char* s = std::getenv("CAIRN_CLUSTER_SEED");
  return s != nullptr ? std::strtoull(s, nullptr, 10) : 20261122;
}

const char* kSchema =
    "[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one"
    "  :db/unique :db.unique/identity}"
    " {:db/ident :p/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one :db/index true}"
    " {:db/ident :p/tag :db/valueType :db.type/string :db/cardinality :db.cardinality/many}"
    " {:db/ident :p/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}"
    " {:db/ident :p/best :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}"
    " {:db/ident :p/color :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}"
    " {:db/ident :p/score :db/valueType :db.type/double :db/cardinality :db.cardinality/one}"
    " {:db/ident :c/red} {:db/ident :c/green} {:db/ident :c/blue}]";

std::string Name(int i) { return "n" + std::to_string(i); }

// Loads a random dataset: people created in batches (named ones placed by
// their identity hash, unnamed ones by tempid), friendships and best friends
// across shards (by lookup ref and by raw id), later updates, retractions and
// entity retractions, so every view differs.
void LoadData(SplitCluster& c, uint64_t seed, int people) {
  std::mt19937_64 rng(seed);
  auto rnd = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  ASSERT_TRUE(c.Transact(kSchema).ok());
  std::vector<EntityId> ids;
  const char* tags[] = {"t0", "t1", "t2", "t3"};
  const char* colors[] = {":c/red", ":c/green", ":c/blue"};
  int named = 0;
  while (static_cast<int>(ids.size()) < people) {
    std::ostringstream tx;
    tx << "[";
    int batch = 1 + rnd(6);
    std::vector<std::string> temps;
    for (int k = 0; k < batch; ++k) {
      std::string temp = "t" + std::to_string(ids.size()) + "-" + std::to_string(k);
      temps.push_back(temp);
      tx << "{:db/id \"" << temp << "\"";
      if (rnd(100) < 80) tx << " :p/name \"" << Name(named++) << "\"";
      tx << " :p/age " << rnd(60);
      if (rnd(100) < 60) tx << " :p/tag [\"" << tags[rnd(4)] << "\" \"" << tags[rnd(4)] << "\"]";
      if (rnd(100) < 50) tx << " :p/color " << colors[rnd(3)];
      if (rnd(100) < 40) tx << " :p/score " << rnd(1000) / 10.0;
      if (!ids.empty() && rnd(100) < 60) tx << " :p/friend [" << ids[static_cast<size_t>(rnd(static_cast<int>(ids.size())))].raw << "]";
      if (named > 0 && rnd(100) < 40) tx << " :p/best [:p/name \"" << Name(rnd(named)) << "\"]";
      tx << "}";
    }
    tx << "]";
    auto r = c.Transact(tx.str());
    if (!r.ok()) {
      // A lookup ref may name a person created in this very batch; try again.
      continue;
    }
    for (const std::string& t : temps) ids.push_back(r->tempids.at(t));
  }
  // Updates, retractions, entity retractions.
  for (int k = 0; k < people / 3; ++k) {
    EntityId e = ids[static_cast<size_t>(rnd(static_cast<int>(ids.size())))];
    std::ostringstream tx;
    switch (rnd(5)) {
      case 0: tx << "[[:db/add " << e.raw << " :p/age " << rnd(60) << "]]"; break;
      case 1: tx << "[[:db/retract " << e.raw << " :p/tag \"" << tags[rnd(4)] << "\"]]"; break;
      case 2: tx << "[[:db/add " << e.raw << " :p/friend " << ids[static_cast<size_t>(rnd(static_cast<int>(ids.size())))].raw << "]]"; break;
      case 3: tx << "[[:db/retractEntity " << e.raw << "]]"; break;
      default: tx << "[{:db/id " << e.raw << " :p/color " << colors[rnd(3)] << " :p/score " << rnd(100) << ".5}]"; break;
    }
    (void)c.Transact(tx.str());  // may fail (an entity retracted earlier): then nothing changes
  }
}

Value Canonical(const Value& v) {
  if (v.type() == ValueType::kRef) return Value::Long(static_cast<int64_t>(v.as_ref().raw));
  if (v.type() == ValueType::kTuple) {
    std::vector<Value> items;
    for (const Value& x : v.as_tuple()) items.push_back(Canonical(x));
    return Value::Tuple(std::move(items));
  }
  if (v.type() == ValueType::kMap) {
    std::vector<std::pair<Value, Value>> entries;
    for (const auto& [k, x] : v.as_map()) entries.emplace_back(Canonical(k), Canonical(x));
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return Value::Map(std::move(entries));
  }
  return v;
}

// The rows of a query (sorted, canonical) or its error text.
std::string RunRows(const datalog::IndexSource& db, const std::string& query, const std::vector<std::string>& args) {
  auto q = ReadEdn(query);
  if (!q.ok()) return "query EDN error";
  std::vector<Edn> arg_edns;
  for (const std::string& a : args) arg_edns.push_back(ReadEdn(a).value());
  auto inputs = datalog::BindApiInputs(*q, &db, std::move(arg_edns));
  if (!inputs.ok()) return "error: " + inputs.status().ToString();
  auto r = datalog::RunQuery(*q, *inputs);
  if (!r.ok()) return "error: " + r.status().ToString();
  std::vector<std::string> rows;
  for (const auto& row : r->rows) {
    std::string s;
    for (const Value& v : row) s += Canonical(v).ToString() + " ";
    rows.push_back(s);
  }
  std::sort(rows.begin(), rows.end());
  std::string out = std::to_string(rows.size()) + " rows\n";
  for (const std::string& s : rows) out += s + "\n";
  return out;
}

struct View {
  Kind kind;
  TxTime t;
  std::string name;
};

std::vector<View> Views(const SplitCluster& c, std::mt19937_64& rng) {
  std::vector<View> out = {{Kind::kCurrent, TxTime{}, "current"}, {Kind::kHistory, TxTime{}, "history"}};
  for (int i = 0; i < 2; ++i) {
    TxTime t = c.ts()[rng() % c.ts().size()];
    out.push_back({Kind::kAsOf, t, "as-of " + std::to_string(t.raw)});
    out.push_back({Kind::kSince, t, "since " + std::to_string(t.raw)});
  }
  return out;
}

class QueryGen {
 public:
  QueryGen(uint64_t seed, int named) : rng_(seed), named_(named) {}
  int Int(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  std::string Str() { return "\"" + Name(Int(named_ + 3)) + "\""; }

  // A query and its arguments.
  std::pair<std::string, std::vector<std::string>> Next(const std::vector<EntityId>& some_ids) {
    std::string k = std::to_string(Int(60));
    std::string tag = "\"t" + std::to_string(Int(4)) + "\"";
    std::string id = std::to_string(some_ids[static_cast<size_t>(Int(static_cast<int>(some_ids.size())))].raw);
    switch (Int(24)) {
      case 0: return {"[:find ?e ?n :where [?e :p/name ?n]]", {}};
      case 1: return {"[:find ?n ?fn :where [?e :p/name ?n] [?e :p/friend ?f] [?f :p/name ?fn]]", {}};
      case 2: return {"[:find ?n :where [?e :p/age ?a] [(> ?a " + k + ")] [?e :p/name ?n]]", {}};
      case 3: return {"[:find (count ?e) :where [?e :p/tag " + tag + "]]", {}};
      case 4: return {"[:find ?n ?c :where [?e :p/color ?col] [?col :db/ident ?c] [?e :p/name ?n]]", {}};
      case 5: return {"[:find ?a (count ?e) :where [?e ?a _]]", {}};
      case 6: return {"[:find (pull ?e [*]) :where [?e :p/name " + Str() + "]]", {}};
      case 7: return {"[:find ?a :in $ ?e :where [?e :p/age ?a]]", {"[:p/name " + Str() + "]"}};
      case 8: return {"[:find ?e ?a ?tx ?added :where [?e :p/age ?a ?tx ?added]]", {}};
      case 9: return {"[:find ?tx ?inst :where [?tx :db/txInstant ?inst]]", {}};
      case 10: return {"[:find ?n :where [?f :p/name " + Str() + "] [?e :p/friend ?f] [?e :p/name ?n]]", {}};
      case 11: return {"[:find ?e ?x :where [?e ?x " + id + "]]", {}};
      case 12:
        return {"[:find ?n ?m :in $ % :where (reach ?a ?b) [?a :p/name ?n] [?b :p/name ?m] [?a :p/age " + k + "]]",
                {"[[(reach ?a ?b) [?a :p/best ?b]] [(reach ?a ?b) [?a :p/best ?m] (reach ?m ?b)]]"}};
      case 13: return {"[:find ?n :where [?e :p/name ?n] (not [?e :p/tag " + tag + "])]", {}};
      case 14: return {"[:find ?a ?v :in $ ?e :where [?e ?a ?v]]", {id}};
      case 15: return {"[:find ?ident ?vt :where [?a :db/ident ?ident] [?a :db/valueType ?vt]]", {}};
      case 16: return {"[:find ?c (avg ?age) (max ?s) :where [?e :p/color ?col] [?col :db/ident ?c] [?e :p/age ?age] [?e :p/score ?s]]", {}};
      case 17: return {"[:find ?e ?v :where [?e :p/age ?v] [(< ?v " + k + ")] (or [?e :p/tag " + tag + "] [?e :p/color :c/red])]", {}};
      case 18: return {"[:find ?e :where [?e :p/age " + k + "]]", {}};
      case 19: return {"[:find (pull ?e [:p/name {:p/friend [:p/name]} {:p/_best [:p/name]}]) :in $ ?e]", {id}};
      case 20: return {"[:find ?tx (count ?e) :where [?e :p/name _ ?tx]]", {}};
      case 21: return {"[:find ?e ?a ?v ?added :in $ ?e :where [?e ?a ?v _ ?added]]", {id}};
      case 22: return {"[:find ?n :where [?e :p/color :c/green] [?e :p/name ?n]]", {}};
      default: return {"[:find ?e ?f :where [?e :p/best ?f] [?f :p/best ?e]]", {}};
    }
  }

 private:
  std::mt19937_64 rng_;
  int named_;
};

TEST(ClusterSource, RandomQueriesMatchOneStoreInEveryView) {
  uint64_t seed = Seed();
  SplitCluster c("random", 3, 16);
  LoadData(c, seed, 400);
  ASSERT_FALSE(HasFailure());
  // Entities every shard holds, plus a transaction entity and a system one.
  std::vector<EntityId> ids;
  {
    auto ref = c.ReferenceView(Kind::kHistory);
    datalog::DatomPattern p;
    p.a = Keyword::Intern("p/age");
    (void)ref->Scan(p, [&](const Datom& d) {
      ids.push_back(d.e);
      return true;
    });
    ids.push_back(EntityId::ForTx(c.ts()[3]));
    ids.push_back(EntityId::ForTx(c.ts()[0]));
  }
  for (uint32_t s = 1; s <= 3; ++s) ASSERT_GT(c.shard(s).store().datom_count(), 100u) << "shard " << s << " got no data";
  std::mt19937_64 rng(seed);
  QueryGen gen(seed, 300);
  int cases = 0, nonempty = 0;
  for (const View& view : Views(c, rng)) {
    auto cluster = c.ClusterView(view.kind, view.t);
    auto reference = c.ReferenceView(view.kind, view.t);
    for (int i = 0; i < 60; ++i) {
      auto [query, args] = gen.Next(ids);
      std::string want = RunRows(*reference, query, args);
      std::string got = RunRows(*cluster, query, args);
      ++cases;
      if (want.rfind("0 rows", 0) != 0 && want.rfind("error", 0) != 0) ++nonempty;
      ASSERT_EQ(want, got) << "seed " << seed << " view " << view.name << "\nquery " << query
                           << (args.empty() ? "" : "\nargs " + args[0]);
    }
  }
  // The comparison must have had something to compare.
  EXPECT_GT(nonempty, cases / 2);
}

// Scan follows the order contract, equals the reference's scan, and a caller
// that stops after k datoms gets exactly the first k (across window refills).
TEST(ClusterSource, ScanOrderMatchesOneStoreAndStopsEarly) {
  SplitCluster c("order", 3, 16);
  LoadData(c, Seed() + 2, 1200);
  ASSERT_FALSE(HasFailure());
  for (Kind kind : {Kind::kCurrent, Kind::kHistory}) {
    auto cluster = c.ClusterView(kind);
    auto reference = c.ReferenceView(kind);
    std::vector<datalog::DatomPattern> patterns;
    auto add = [&](const char* a, std::optional<Value> v) {
      datalog::DatomPattern p;
      p.a = Keyword::Intern(a);
      p.v = std::move(v);
      patterns.push_back(p);
    };
    add("p/age", std::nullopt);                 // AEVT
    add("p/name", std::nullopt);                // AEVT, unique
    add("p/age", Value::Long(7));               // AVET
    add("p/tag", Value::String("t1"));          // AVET on an unindexed attribute
    add("p/color", std::nullopt);
    add("db/txInstant", std::nullopt);          // transaction entities: meta and every shard
    add("db/ident", std::nullopt);              // meta only
    for (const auto& p : patterns) {
      std::vector<Datom> want, got;
      ASSERT_TRUE(reference->Scan(p, [&](const Datom& d) { want.push_back(d); return true; }).ok());
      ASSERT_TRUE(cluster->Scan(p, [&](const Datom& d) { got.push_back(d); return true; }).ok());
      ASSERT_FALSE(want.empty()) << p.a->ToString();
      ASSERT_EQ(want.size(), got.size()) << p.a->ToString();
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(want[i], got[i]) << p.a->ToString() << " at " << i;
      for (size_t k : {size_t{1}, size_t{255}, size_t{256}, size_t{257}, size_t{1000}, want.size() - 1}) {
        if (k == 0 || k > want.size()) continue;
        std::vector<Datom> first;
        ASSERT_TRUE(cluster->Scan(p, [&](const Datom& d) {
          first.push_back(d);
          return first.size() < k;
        }).ok());
        ASSERT_EQ(first.size(), k);
        for (size_t i = 0; i < k; ++i) ASSERT_EQ(want[i], first[i]) << p.a->ToString() << " k=" << k;
      }
    }
    // Value ranges (pushed down from comparison predicates): the same datoms
    // in the same order as the one store, and estimates that see them.
    for (auto [lo, hi] : {std::pair{10, 20}, std::pair{0, 0}, std::pair{55, 1000}}) {
      datalog::DatomPattern p;
      p.a = Keyword::Intern("p/age");
      datalog::ValueRange r;
      ASSERT_TRUE(r.Tighten(">=", Value::Long(lo)));
      ASSERT_TRUE(r.Tighten("<", Value::Long(hi)));
      std::vector<Datom> want, got;
      ASSERT_TRUE(reference->ScanRange(p, r, [&](const Datom& d) { want.push_back(d); return true; }).ok());
      ASSERT_TRUE(cluster->ScanRange(p, r, [&](const Datom& d) { got.push_back(d); return true; }).ok());
      ASSERT_EQ(want, got) << lo << ".." << hi;
      EXPECT_EQ(cluster->EstimateRange(p, r) == 0, want.empty() && kind == Kind::kCurrent) << lo << ".." << hi;
    }
    // Unbound attribute: the same multiset, sorted by attribute name, e, v.
    datalog::DatomPattern all;
    std::vector<Datom> want, got;
    ASSERT_TRUE(reference->Scan(all, [&](const Datom& d) { want.push_back(d); return true; }).ok());
    ASSERT_TRUE(cluster->Scan(all, [&](const Datom& d) { got.push_back(d); return true; }).ok());
    ASSERT_EQ(want.size(), got.size());
    for (size_t i = 1; i < got.size(); ++i) {
      const Datom& x = got[i - 1];
      const Datom& y = got[i];
      ASSERT_TRUE(x.a.str() < y.a.str() || (x.a == y.a && (x.e < y.e || (x.e == y.e && !(y.v < x.v)))))
          << x.ToString() << " before " << y.ToString();
    }
    auto key = [](const Datom& d) { return d.ToString(); };
    std::vector<std::string> a, b;
    for (const Datom& d : want) a.push_back(key(d));
    for (const Datom& d : got) b.push_back(key(d));
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    ASSERT_EQ(a, b);
  }
}

TEST(ClusterSource, RoutesEntityScansAndLookups) {
  SplitCluster c("route", 3, 16);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  auto r = c.Transact("[{:db/id \"a\" :p/name \"ann\" :p/age 30} {:db/id \"b\" :p/age 40 :p/friend \"a\"}]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Give "b"'s entity a unique name later: it stays where it was placed.
  EntityId b = r->tempids.at("b");
  ASSERT_TRUE(c.Transact("[[:db/add " + std::to_string(b.raw) + " :p/name \"bob\"]]").ok());
  auto cluster = c.ClusterView(Kind::kCurrent);
  EXPECT_EQ(cluster->Lookup(Keyword::Intern("p/name"), Value::String("ann")), r->tempids.at("a"));
  EXPECT_EQ(cluster->Lookup(Keyword::Intern("p/name"), Value::String("bob")), b);
  EXPECT_EQ(cluster->Lookup(Keyword::Intern("p/name"), Value::String("nobody")), std::nullopt);
  // Idents resolve to the meta group's ids, not the shards' shifted copies.
  auto ident = cluster->Lookup(Keyword::Intern("db/ident"), Value::Kw(Keyword::Intern("p/age")));
  auto ref_ident = c.ReferenceView(Kind::kCurrent)->Lookup(Keyword::Intern("db/ident"), Value::Kw(Keyword::Intern("p/age")));
  ASSERT_TRUE(ident.has_value());
  EXPECT_EQ(ident, ref_ident);
  EXPECT_EQ(cluster->schema().Find(Keyword::Intern("p/age"))->id, *ident);
  // An entity id out of the partition range, or of a shard that is not
  // there, matches nothing.
  datalog::DatomPattern p;
  p.e = EntityId::Make(200, 1);
  int n = 0;
  EXPECT_TRUE(cluster->Scan(p, [&](const Datom&) { return ++n, true; }).ok());
  EXPECT_EQ(n, 0);
  EXPECT_EQ(cluster->EstimateCount(p), 0u);
  // An entity scan reads only the shard of its partition.
  p.e = b;
  EXPECT_GT(cluster->EstimateCount(p), 0u);
  uint32_t owner = testing::ContractShardOf(b.partition(), 3);
  EXPECT_EQ(cluster->EstimateCount(p), c.shard(owner).View(Kind::kCurrent)->EstimateCount(p));
  EXPECT_GT(cluster->EstimateDistinct(Keyword::Intern("p/age"), 0), 0u);
}

// A failing source: its error comes back naming it.
class FailingSource : public datalog::IndexSource {
 public:
  explicit FailingSource(std::shared_ptr<const datalog::IndexSource> inner) : inner_(std::move(inner)) {}
  const Schema& schema() const override { return inner_->schema(); }
  bool is_history() const override { return false; }
  Status Scan(const datalog::DatomPattern&, const std::function<bool(const Datom&)>&) const override {
    return Status::Unavailable("no quorum");
  }
  uint64_t EstimateCount(const datalog::DatomPattern&) const override { return 1; }

 private:
  std::shared_ptr<const datalog::IndexSource> inner_;
};

TEST(ClusterSource, ShardErrorsNameTheShard) {
  SplitCluster c("errors", 2, 8);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  ASSERT_TRUE(c.Transact("[{:p/name \"x\" :p/age 3}]").ok());
  std::vector<std::shared_ptr<const datalog::IndexSource>> shards = {
      c.shard(1).View(Kind::kCurrent), std::make_shared<FailingSource>(c.shard(2).View(Kind::kCurrent))};
  ClusterSource cluster(c.meta().View(Kind::kCurrent), shards, 8, [](uint32_t p) { return testing::ContractShardOf(p, 2); });
  auto q = datalog::RunQuery("[:find ?e :where [?e :p/age _]]", {datalog::Input::Db(&cluster)});
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(q.status().message().find("shard 2: no quorum"), std::string::npos) << q.status().ToString();
}

// The Datalog data-driven cases (tests/unit/datalog/testdata), replayed
// through the real transactor: every case's query over the cluster equals
// the query over one store. Cases whose transactions the transactor refuses
// (test-only syntax) simply load less data; both sides see the same.
TEST(ClusterSource, DatalogTestFilesMatchOneStore) {
  namespace fs = std::filesystem;
  fs::path root = fs::path(CAIRN_TEST_DATA_DIR).parent_path().parent_path() / "datalog" / "testdata";
  ASSERT_TRUE(fs::exists(root)) << root;
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(root))
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 10u);
  int compared = 0, with_rows = 0, file_no = 0;
  for (const fs::path& file : files) {
    SplitCluster c("dd" + std::to_string(file_no++), 3, 16);
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::string query, rules, args, view = "current";
    bool in_expect = false;
    std::vector<TxTime> tx_ts;  // t of the n-th transact line (0 if refused)
    auto run_case = [&]() {
      if (query.empty()) return;
      std::istringstream vin(view);
      std::string kind;
      uint64_t n = 0;
      vin >> kind >> n;
      Kind k = Kind::kCurrent;
      TxTime t;
      if (kind == "history") k = Kind::kHistory;
      if (kind == "as-of" || kind == "since") {
        k = kind == "as-of" ? Kind::kAsOf : Kind::kSince;
        t = n >= 1 && n <= tx_ts.size() ? tx_ts[n - 1] : TxTime{};
        if (!t.valid()) t = TxTime{1};
      }
      std::vector<std::string> a;
      if (!rules.empty()) a.push_back(rules);
      if (!args.empty()) {
        auto all = ReadEdnAll(args);
        if (all.ok())
          for (const Edn& e : *all) a.push_back(WriteEdn(e));
      }
      std::string want = RunRows(*c.ReferenceView(k, t), query, a);
      std::string got = RunRows(*c.ClusterView(k, t), query, a);
      ++compared;
      if (want.rfind("0 rows", 0) != 0 && want.rfind("error", 0) != 0) ++with_rows;
      EXPECT_EQ(want, got) << file.filename() << ": " << query;
    };
    std::string* last = nullptr;
    for (const std::string& l : lines) {
      if (in_expect) {
        if (l.find_first_not_of(" \t") == std::string::npos) {
          run_case();
          query.clear(), rules.clear(), args.clear(), view = "current";
          in_expect = false;
        }
        continue;
      }
      if (l.empty() || l[0] == '#') {
        last = nullptr;
        continue;
      }
      if (l[0] == ' ' || l[0] == '\t') {
        if (last != nullptr) *last += "\n" + l;
        continue;
      }
      std::string word = l.substr(0, l.find(' '));
      std::string rest = l.size() > word.size() ? l.substr(word.size() + 1) : "";
      last = nullptr;
      if (word == "----") {
        in_expect = true;
      } else if (word == "schema") {
        // DataScript-style {:attr {...}} -> attribute entities.
        auto m = ReadEdn(rest);
        if (!m.ok() || !m->is(Edn::Kind::kMap)) continue;
        std::string tx = "[";
        for (size_t i = 0; i + 1 < m->items.size(); i += 2) {
          std::string props = WriteEdn(m->items[i + 1]);
          tx += "{:db/ident " + WriteEdn(m->items[i]) + " " + props.substr(1, props.size() - 2) + "}";
        }
        tx += "]";
        (void)c.Transact(tx);
      } else if (word == "transact") {
        auto r = c.Transact(rest);
        tx_ts.push_back(r.ok() ? c.ts().back() : TxTime{});
      } else if (word == "view") {
        view = rest;
      } else if (word == "query") {
        query = rest;
        last = &query;
      } else if (word == "rules") {
        rules = rest;
        last = &rules;
      } else if (word == "args") {
        args = rest;
        last = &args;
      }
    }
    if (in_expect) run_case();
  }
  EXPECT_GT(compared, 200);
  EXPECT_GT(with_rows, compared / 3);
  std::printf("compared %d data-driven cases, %d with rows\n", compared, with_rows);
}

}  // namespace
}  // namespace cairn::cluster
