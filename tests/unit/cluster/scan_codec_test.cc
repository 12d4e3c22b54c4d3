// Scan codec and RemoteSource: requests and replies round-trip; a cluster
// view whose shards are all RemoteSources over a loopback RequestFn (serving
// from real shard stores through ServeScanRequest) answers every query like
// one store, in every view, in bounded batches; errors travel with their
// code; and decoding random or mutated bytes never crashes and always fails
// with InvalidArgument.
#include "cluster/scan_codec.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>

#include "datalog/engine.h"
#include "split_cluster.h"

namespace cairn::cluster {
namespace {

using shard::StoreSource;
using testing::SplitCluster;

const char* kSchema =
    "[{:db/ident :p/name :db/valueType :db.type/string :db/unique :db.unique/identity}"
    " {:db/ident :p/age :db/valueType :db.type/long :db/index true}"
    " {:db/ident :p/tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}"
    " {:db/ident :p/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}]";

ScanRequest FullRequest() {
  ScanRequest r;
  r.op = ScanRequest::Op::kScan;
  r.shard = 3;
  r.view = {ViewSpec::Kind::kAsOf, TxTime{123456789}};
  r.pattern.e = EntityId::Make(7, 99);
  r.pattern.a = Keyword::Intern("p/name");
  r.pattern.v = Value::Tuple({Value::String("a\0b"), Value::Long(-5), Value::Double(2.5)});
  r.pattern.tx = TxTime{42};
  r.pattern.added = false;
  r.skip = 1000;
  r.limit = 77;
  return r;
}

TEST(ScanCodec, RequestsRoundTrip) {
  ScanRequest r = FullRequest();
  auto back = DecodeScanRequest(EncodeScanRequest(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->op, r.op);
  EXPECT_EQ(back->shard, 3u);
  EXPECT_EQ(back->view, r.view);
  EXPECT_EQ(back->pattern.e, r.pattern.e);
  EXPECT_EQ(back->pattern.a, r.pattern.a);
  EXPECT_EQ(*back->pattern.v, *r.pattern.v);
  EXPECT_EQ(back->pattern.tx, r.pattern.tx);
  EXPECT_EQ(back->pattern.added, std::optional<bool>(false));
  EXPECT_EQ(back->skip, 1000u);
  EXPECT_EQ(back->limit, 77u);

  for (int shape = 0; shape < 4; ++shape) {
    ScanRequest ranged = FullRequest();
    datalog::ValueRange range;
    if (shape & 1) range.lo = Value::Long(3), range.lo_inclusive = false;
    if (shape & 2) range.hi = Value::String("zz");
    ranged.range = range;
    back = DecodeScanRequest(EncodeScanRequest(ranged));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    ASSERT_TRUE(back->range.has_value());
    EXPECT_EQ(back->range->lo.has_value(), (shape & 1) != 0);
    EXPECT_EQ(back->range->hi.has_value(), (shape & 2) != 0);
    if (shape & 1) {
      EXPECT_EQ(*back->range->lo, Value::Long(3));
    }
    if (shape & 2) {
      EXPECT_EQ(*back->range->hi, Value::String("zz"));
    }
    EXPECT_EQ(back->range->lo_inclusive, (shape & 1) == 0);
    EXPECT_TRUE(back->range->hi_inclusive);
  }
  EXPECT_FALSE(DecodeScanRequest(EncodeScanRequest(FullRequest()))->range.has_value());

  ScanRequest empty;  // nothing bound
  empty.limit = 1;
  back = DecodeScanRequest(EncodeScanRequest(empty));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->pattern.e || back->pattern.a || back->pattern.v || back->pattern.tx || back->pattern.added);

  ScanRequest lookup;
  lookup.op = ScanRequest::Op::kLookup;
  lookup.attr = Keyword::Intern("p/name");
  lookup.value = Value::String("x");
  back = DecodeScanRequest(EncodeScanRequest(lookup));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->attr, lookup.attr);
  EXPECT_EQ(back->value, lookup.value);

  ScanRequest distinct;
  distinct.op = ScanRequest::Op::kDistinct;
  distinct.attr = Keyword::Intern("p/age");
  distinct.position = 2;
  back = DecodeScanRequest(EncodeScanRequest(distinct));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->position, 2);
}

TEST(ScanCodec, RepliesRoundTrip) {
  ScanReply r;
  r.more = true;
  for (int i = 0; i < 50; ++i) {
    r.datoms.push_back(Datom{EntityId::Make(static_cast<uint32_t>(1 + i % 3), static_cast<uint64_t>(i)),
                             Keyword::Intern(i % 2 ? "p/a" : "p/b"),
                             i % 3 ? Value::Long(i) : Value::String(std::string(static_cast<size_t>(i), 'x')),
                             TxTime{static_cast<uint64_t>(1000 + i)}, i % 4 != 0});
  }
  auto back = DecodeScanReply(EncodeScanReply(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->status.ok());
  EXPECT_TRUE(back->more);
  ASSERT_EQ(back->datoms.size(), r.datoms.size());
  for (size_t i = 0; i < r.datoms.size(); ++i) EXPECT_EQ(back->datoms[i], r.datoms[i]) << i;

  ScanReply err;
  err.status = Status::NotLeader("try node 2");
  back = DecodeScanReply(EncodeScanReply(err));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->status.code(), StatusCode::kNotLeader);
  EXPECT_EQ(back->status.message(), "try node 2");

  ScanReply lookup;
  lookup.op = ScanRequest::Op::kLookup;
  lookup.entity = EntityId::Make(4, 5);
  back = DecodeScanReply(EncodeScanReply(lookup));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->entity, lookup.entity);
}

TEST(ScanCodec, BadBytesAreInvalidArgumentNeverACrash) {
  std::mt19937_64 rng(99);
  std::vector<std::string> valid = {EncodeScanRequest(FullRequest())};
  {
    ScanReply r;
    r.datoms.push_back(Datom{EntityId::Make(1, 1), Keyword::Intern("p/a"), Value::String("hello"), TxTime{5}, true});
    r.datoms.push_back(Datom{EntityId::Make(1, 2), Keyword::Intern("p/a"), Value::Tuple({Value::Long(1)}), TxTime{5}, true});
    valid.push_back(EncodeScanReply(r));
  }
  int rejected = 0;
  for (int i = 0; i < 40000; ++i) {
    std::string b;
    if (i % 4 == 0) {
      b.resize(rng() % 64);
      for (char& c : b) c = static_cast<char>(rng());
      if (!b.empty() && rng() % 2) b[0] = static_cast<char>(rng() % 2 ? 0xC5 : 0xC6);
      if (b.size() > 1) b[1] = 1;
    } else {
      b = valid[rng() % valid.size()];
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        switch (rng() % 3) {
          case 0: b[rng() % b.size()] = static_cast<char>(rng()); break;
          case 1: b.resize(rng() % (b.size() + 1)); break;
          default: b.insert(rng() % (b.size() + 1), 1, static_cast<char>(rng())); break;
        }
        if (b.empty()) break;
      }
    }
    auto q = DecodeScanRequest(b);
    auto r = DecodeScanReply(b);
    if (!q.ok()) {
      EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument) << q.status().ToString();
    }
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    }
    if (!q.ok() && !r.ok()) ++rejected;
    // The server answers garbage with a decodable error reply.
    std::string served = ServeScanRequest(b, [](uint32_t, const ViewSpec&) -> Result<std::shared_ptr<const datalog::IndexSource>> {
      return Status::NotFound("no views here");
    });
    auto reply = DecodeScanReply(served);
    ASSERT_TRUE(reply.ok());
    EXPECT_FALSE(reply->status.ok());
  }
  EXPECT_GT(rejected, 10000);
  // Specific errors name what is wrong.
  std::string b = EncodeScanRequest(FullRequest());
  auto bad = DecodeScanRequest(b.substr(0, b.size() - 1));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("scan request"), std::string::npos) << bad.status().ToString();
  ScanRequest zero = FullRequest();
  zero.limit = 0;
  bad = DecodeScanRequest(EncodeScanRequest(zero));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("limit 0"), std::string::npos) << bad.status().ToString();
}

// A loopback "network": node n serves shard n's stores (and node 100 the
// meta group) through ServeScanRequest; it counts requests.
struct Loopback {
  SplitCluster* cluster;
  size_t reply_bytes_max = kScanReplyBytesMax;
  mutable int requests = 0;
  mutable uint64_t datoms = 0;
  mutable size_t reply_bytes_seen_max = 0;

  Result<std::shared_ptr<const datalog::IndexSource>> ViewOf(uint32_t shard, const ViewSpec& spec) const {
    static const StoreSource::Kind kKinds[] = {StoreSource::Kind::kCurrent, StoreSource::Kind::kAsOf,
                                               StoreSource::Kind::kSince, StoreSource::Kind::kHistory,
                                               StoreSource::Kind::kHistory};  // history after t: filtered by the server
    if (shard > cluster->shards()) return Status::NotFound("group " + std::to_string(shard) + " is not on this node");
    testing::TestStore& store = shard == 0 ? cluster->meta() : cluster->shard(shard);
    return store.View(kKinds[static_cast<int>(spec.kind)], spec.t);
  }
  RequestFn Fn() const {
    return [this](uint32_t node, std::string request) -> Result<std::string> {
      ++requests;
      std::string reply = ServeScanRequest(
          request, [&](uint32_t shard, const ViewSpec& spec) { return ViewOf(shard, spec); }, reply_bytes_max);
      reply_bytes_seen_max = std::max(reply_bytes_seen_max, reply.size());
      auto decoded = DecodeScanReply(reply);
      if (decoded.ok()) datoms += decoded->datoms.size();
      return reply;
    };
  }
  std::shared_ptr<ClusterSource> View(ViewSpec spec, std::shared_ptr<const Schema> schema) const {
    std::vector<std::shared_ptr<const datalog::IndexSource>> shards;
    for (uint32_t s = 1; s <= cluster->shards(); ++s)
      shards.push_back(std::make_shared<RemoteSource>(s, s, spec, schema, Fn()));
    uint32_t n = cluster->shards();
    return std::make_shared<ClusterSource>(std::make_shared<RemoteSource>(100, 0, spec, schema, Fn()), shards,
                                           cluster->partitions(), [n](uint32_t p) { return testing::ContractShardOf(p, n); });
  }
};

std::string Rows(const datalog::IndexSource& db, const std::string& q) {
  auto r = datalog::RunQuery(q, {datalog::Input::Db(&db)});
  if (!r.ok()) return "error: " + r.status().ToString();
  std::vector<std::string> rows;
  for (const auto& row : r->rows) {
    std::string s;
    for (const Value& v : row) s += v.ToString() + " ";
    rows.push_back(s);
  }
  std::sort(rows.begin(), rows.end());
  std::string out = std::to_string(rows.size()) + " rows\n";
  for (const auto& s : rows) out += s + "\n";
  return out;
}

void Load(SplitCluster& c, int people) {
  ASSERT_TRUE(c.Transact(kSchema).ok());
  std::mt19937_64 rng(5);
  for (int i = 0; i < people; i += 4) {
    std::string tx = "[";
    for (int k = i; k < i + 4; ++k) {
      tx += "{:p/name \"n" + std::to_string(k) + "\" :p/age " + std::to_string(rng() % 50) + " :p/tags [\"t" +
            std::to_string(rng() % 3) + "\"]";
      if (i > 0) tx += " :p/friend [:p/name \"n" + std::to_string(rng() % static_cast<uint64_t>(i)) + "\"]";
      tx += "}";
    }
    tx += "]";
    ASSERT_TRUE(c.Transact(tx).ok()) << tx;
  }
  for (int i = 0; i < people; i += 7) {
    ASSERT_TRUE(c.Transact("[[:db/add [:p/name \"n" + std::to_string(i) + "\"] :p/age 99]]").ok());
  }
}

TEST(RemoteSource, ClusterOfRemoteShardsMatchesOneStoreInEveryView) {
  SplitCluster c("remote", 3, 16);
  Load(c, 600);
  ASSERT_FALSE(HasFailure());
  Loopback net{&c};
  auto ref_current = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(ref_current, &ref_current->schema());
  TxTime mid = c.ts()[c.ts().size() / 2];
  struct V {
    ViewSpec spec;
    StoreSource::Kind kind;
  };
  std::vector<V> views = {{{ViewSpec::Kind::kCurrent, TxTime{}}, StoreSource::Kind::kCurrent},
                          {{ViewSpec::Kind::kAsOf, mid}, StoreSource::Kind::kAsOf},
                          {{ViewSpec::Kind::kSince, mid}, StoreSource::Kind::kSince},
                          {{ViewSpec::Kind::kHistory, TxTime{}}, StoreSource::Kind::kHistory}};
  const char* queries[] = {
      "[:find ?n ?a :where [?e :p/name ?n] [?e :p/age ?a]]",
      "[:find ?n ?fn :where [?e :p/name ?n] [?e :p/friend ?f] [?f :p/name ?fn]]",
      "[:find (count ?e) :where [?e :p/age 99]]",
      "[:find ?a (count ?e) :where [?e ?a _]]",
      "[:find ?e ?a ?tx ?added :where [?e :p/age ?a ?tx ?added]]",
      "[:find ?tx :where [?tx :db/txInstant _]]",
      "[:find ?a :where [?e :p/name \"n12\"] [?e :p/age ?a]]",
      "[:find ?ident :where [_ :db/ident ?ident]]",
      "[:find ?n ?a :where [?e :p/age ?a] [(>= ?a 10)] [(< ?a 20)] [?e :p/name ?n]]",
  };
  for (const V& v : views) {
    auto remote = net.View(v.spec, schema);
    auto reference = c.ReferenceView(v.kind, v.spec.t);
    for (const char* q : queries) EXPECT_EQ(Rows(*reference, q), Rows(*remote, q)) << q;
  }
  EXPECT_GT(net.requests, 20);
}

// History after T (what a diff reads from a remote group): the serving node
// drops the datoms with tx <= T before they travel, and returns exactly the
// reference's history datoms with tx > T, in order, also when resumed from
// the middle (skip counts the filtered stream).
TEST(RemoteSource, HistoryAfterIsFilteredByTheServingNode) {
  SplitCluster c("history_after", 3, 16);
  Load(c, 600);
  ASSERT_FALSE(HasFailure());
  auto ref_current = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(ref_current, &ref_current->schema());
  TxTime t = c.ts()[c.ts().size() - 40];  // inside the age updates: some on every shard
  datalog::DatomPattern p;
  p.a = Keyword::Intern("p/age");
  for (uint32_t s = 1; s <= 3; ++s) {
    Loopback net{&c};
    RemoteSource remote(s, s, ViewSpec{ViewSpec::Kind::kHistoryAfter, t}, schema, net.Fn());
    EXPECT_TRUE(remote.is_history());
    std::vector<Datom> want, all, got;
    ASSERT_TRUE(c.shard(s).View(StoreSource::Kind::kHistory)->Scan(p, [&](const Datom& d) {
      all.push_back(d);
      if (d.tx > t) want.push_back(d);
      return true;
    }).ok());
    ASSERT_TRUE(remote.ScanFrom(p, nullptr, 0, 0, [&](const Datom& d) {
      got.push_back(d);
      return true;
    }).ok());
    ASSERT_FALSE(want.empty()) << "shard " << s;
    ASSERT_LT(want.size(), all.size()) << "shard " << s;
    EXPECT_EQ(got, want) << "shard " << s;
    EXPECT_EQ(net.datoms, want.size()) << "shard " << s << ": datoms at or before T travelled";
    // Resumed from the middle of the filtered stream.
    got.clear();
    ASSERT_TRUE(remote.ScanFrom(p, nullptr, want.size() / 2, 0, [&](const Datom& d) {
      got.push_back(d);
      return true;
    }).ok());
    EXPECT_EQ(got, std::vector<Datom>(want.begin() + static_cast<long>(want.size() / 2), want.end())) << "shard " << s;
  }
  ScanRequest r;
  r.view = ViewSpec{ViewSpec::Kind::kHistoryAfter, t};
  Result<ScanRequest> back = DecodeScanRequest(EncodeScanRequest(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->view, r.view);
  r.view.kind = static_cast<ViewSpec::Kind>(5);
  back = DecodeScanRequest(EncodeScanRequest(r));
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.status().message().find("unknown view 5"), std::string::npos) << back.status().ToString();
}

TEST(RemoteSource, BatchesAreBoundedAndEarlyStopsFetchLittle) {
  SplitCluster c("batches", 2, 8);
  Load(c, 2000);
  ASSERT_FALSE(HasFailure());
  auto reference = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(reference, &reference->schema());
  datalog::DatomPattern p;
  p.a = Keyword::Intern("p/name");
  std::vector<Datom> want;
  ASSERT_TRUE(reference->Scan(p, [&](const Datom& d) { want.push_back(d); return true; }).ok());
  ASSERT_EQ(want.size(), 2000u);

  // Tiny replies (about 1 KB): many round trips, the same datoms in order.
  Loopback small{&c, 1024};
  RemoteSource shard1(1, 1, {}, schema, small.Fn());
  std::vector<Datom> got;
  ASSERT_TRUE(shard1.Scan(p, [&](const Datom& d) { got.push_back(d); return true; }).ok());
  std::vector<Datom> want1;
  ASSERT_TRUE(c.shard(1).View(StoreSource::Kind::kCurrent)->Scan(p, [&](const Datom& d) { want1.push_back(d); return true; }).ok());
  ASSERT_EQ(got, want1);
  EXPECT_LE(small.reply_bytes_seen_max, 1024u + 64u);  // the bound, overshot by one datom at most
  EXPECT_GE(small.requests, static_cast<int>(want1.size() / 64));

  // Through the cluster view: the full scan, and an early stop.
  Loopback net{&c};
  auto remote = net.View({}, schema);
  got.clear();
  ASSERT_TRUE(remote->Scan(p, [&](const Datom& d) { got.push_back(d); return true; }).ok());
  ASSERT_EQ(got, want);
  net.requests = 0;
  net.datoms = 0;
  got.clear();
  ASSERT_TRUE(remote->Scan(p, [&](const Datom& d) { got.push_back(d); return got.size() < 3; }).ok());
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i], want[i]);
  EXPECT_LE(net.requests, 3);           // one window per source
  EXPECT_LE(net.datoms, 3u * 256u);     // never the whole attribute

  // Lookups and estimates travel too.
  EXPECT_EQ(remote->Lookup(Keyword::Intern("p/name"), Value::String("n77")),
            reference->Lookup(Keyword::Intern("p/name"), Value::String("n77")));
  EXPECT_GT(remote->EstimateCount(p), 0u);
  EXPECT_GT(remote->EstimateDistinct(Keyword::Intern("p/name"), 0), 0u);
}

TEST(RemoteSource, ServingErrorsComeBackWithTheirCode) {
  SplitCluster c("remote_errors", 2, 8);
  ASSERT_TRUE(c.Transact(kSchema).ok());
  auto reference = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(reference, &reference->schema());
  Loopback net{&c};
  // Shard 7 does not exist on the serving node.
  RemoteSource missing(2, 7, {}, schema, net.Fn());
  datalog::DatomPattern p;
  p.a = Keyword::Intern("p/name");
  Status st = missing.Scan(p, [](const Datom&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("node 2 (shard 7): group 7 is not on this node"), std::string::npos) << st.ToString();
  // A transport failure.
  RemoteSource down(3, 1, {}, schema, [](uint32_t, std::string) -> Result<std::string> {
    return Status::Unavailable("peer 3 unreachable");
  });
  st = down.Scan(p, [](const Datom&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(down.EstimateCount(p), 1u);  // unknown, never "empty"
  EXPECT_EQ(down.Lookup(p.a.value(), Value::String("x")), std::nullopt);
  // Garbage from the wire.
  RemoteSource garbage(4, 1, {}, schema, [](uint32_t, std::string) -> Result<std::string> { return std::string("\xC6\x01\x00\x01\x00\x05", 6); });
  st = garbage.Scan(p, [](const Datom&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
}


// Three replicas of shard 1 (nodes 10, 11, 12) served from the same store:
// node 10 dies after a few batches of a scan; the scan finishes on node 11
// with exactly the datoms in order, and later requests start there.
TEST(RemoteSource, AScanMovesToTheNextReplicaWhenTheServingOneDies) {
  SplitCluster c("failover", 2, 8);
  Load(c, 1200);
  ASSERT_FALSE(HasFailure());
  auto reference = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(reference, &reference->schema());
  datalog::DatomPattern p;
  p.a = Keyword::Intern("p/age");
  std::vector<Datom> want;
  ASSERT_TRUE(c.shard(1).View(StoreSource::Kind::kCurrent)->Scan(p, [&](const Datom& d) { want.push_back(d); return true; }).ok());
  ASSERT_GT(want.size(), 300u);

  Loopback small{&c, 1024};  // many small batches
  RequestFn serve = small.Fn();
  std::map<uint32_t, int> asked;
  int alive_requests = 3;  // node 10 answers this many, then is "killed"
  RequestFn send = [&](uint32_t node, std::string request) -> Result<std::string> {
    ++asked[node];
    if (node == 10 && alive_requests-- <= 0) return Status::Unavailable("node 10 stopped answering");
    return serve(node, std::move(request));
  };
  RemoteSource shard1(std::vector<uint32_t>{10, 11, 12}, 1, {}, schema, send);
  std::vector<Datom> got;
  ASSERT_TRUE(shard1.Scan(p, [&](const Datom& d) { got.push_back(d); return true; }).ok());
  EXPECT_EQ(got, want);
  EXPECT_EQ(asked[10], 4);  // 3 answered, the 4th failed
  EXPECT_GT(asked[11], 0);
  EXPECT_EQ(asked[12], 0);
  EXPECT_EQ(shard1.current_node(), 11u);
  EXPECT_EQ(shard1.failovers(), 1u);
  // Later requests start at node 11 (node 10 is not asked again).
  int before = asked[10];
  EXPECT_EQ(shard1.Lookup(Keyword::Intern("p/name"), Value::String("n1")),
            reference->Lookup(Keyword::Intern("p/name"), Value::String("n1")));
  EXPECT_GT(shard1.EstimateCount(p), 1u);
  EXPECT_EQ(asked[10], before);

  // Every replica down: the error names each node's failure.
  RemoteSource dead(std::vector<uint32_t>{10, 11, 12}, 1, {}, schema,
                    [](uint32_t node, std::string) -> Result<std::string> {
                      return Status::Unavailable("peer " + std::to_string(node) + " unreachable");
                    });
  Status st = dead.Scan(p, [](const Datom&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  for (const char* n : {"peer 10 unreachable", "peer 11 unreachable", "peer 12 unreachable"}) {
    EXPECT_NE(st.message().find(n), std::string::npos) << st.ToString();
  }
  EXPECT_NE(st.message().find("every replica failed"), std::string::npos) << st.ToString();

  // An answer that is not "not here / not now" is the answer: no failover.
  std::map<uint32_t, int> asked2;
  RemoteSource bad(std::vector<uint32_t>{10, 11}, 1, {}, schema, [&](uint32_t node, std::string) -> Result<std::string> {
    ++asked2[node];
    return Status::InvalidArgument("node " + std::to_string(node) + " refuses");
  });
  st = bad.Scan(p, [](const Datom&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(asked2[11], 0);
}

// The shard changes between two batches of a scan so that positions move
// (a datom already delivered is retracted): the continuation's overlap
// check sees it and the scan goes on right after the last datom delivered —
// nothing skipped, nothing twice. Without the check, skip would pass over
// one datom.
TEST(RemoteSource, AScanWhosePositionsMovedResumesAfterTheLastDatomDelivered) {
  SplitCluster c("shifted", 2, 8);
  Load(c, 1200);
  ASSERT_FALSE(HasFailure());
  auto reference = c.ReferenceView(StoreSource::Kind::kCurrent);
  std::shared_ptr<const Schema> schema(reference, &reference->schema());
  datalog::DatomPattern p;
  p.a = Keyword::Intern("p/age");
  std::vector<Datom> want;
  ASSERT_TRUE(c.shard(1).View(StoreSource::Kind::kCurrent)->Scan(p, [&](const Datom& d) { want.push_back(d); return true; }).ok());
  ASSERT_GT(want.size(), 300u);

  Loopback small{&c, 1024};
  RequestFn serve = small.Fn();
  int requests = 0;
  RequestFn send = [&](uint32_t node, std::string request) -> Result<std::string> {
    if (++requests == 3) {
      // Before the third batch: retract the first datom of the scan.
      const Datom& first = want.front();
      Status s = c.Transact("[[:db/retract " + std::to_string(first.e.raw) + " :p/age " + first.v.ToString() + "]]").status();
      if (!s.ok()) return s;
    }
    return serve(node, std::move(request));
  };
  RemoteSource shard1(std::vector<uint32_t>{10, 11}, 1, {}, schema, send);
  std::vector<Datom> got;
  ASSERT_TRUE(shard1.Scan(p, [&](const Datom& d) { got.push_back(d); return true; }).ok());
  EXPECT_GE(requests, 4);
  EXPECT_EQ(got, want);  // the retracted datom was delivered before it went

  // The last delivered datom itself retracted between batches: Unavailable, retry the query.
  std::vector<Datom> want2;
  ASSERT_TRUE(c.shard(1).View(StoreSource::Kind::kCurrent)->Scan(p, [&](const Datom& d) { want2.push_back(d); return true; }).ok());
  std::optional<Datom> last_seen;
  requests = 0;
  RequestFn send2 = [&](uint32_t node, std::string request) -> Result<std::string> {
    if (++requests == 2 && last_seen) {
      Status s = c.Transact("[[:db/retract " + std::to_string(last_seen->e.raw) + " :p/age " + last_seen->v.ToString() + "]]").status();
      if (!s.ok()) return s;
    }
    return serve(node, std::move(request));
  };
  RemoteSource again(std::vector<uint32_t>{10}, 1, {}, schema, send2);
  Status st = again.Scan(p, [&](const Datom& d) {
    last_seen = d;
    return true;
  });
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("retry the query"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace cairn::cluster
