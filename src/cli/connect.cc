// `cairn tx|q|demo --connect HOST:PORT[,...]`: the same commands through
// cairn::Client instead of an embedded database file.
#include <cstdio>
#include <sstream>

#include "cairn/client.h"
#include "cli/cluster_info.h"
#include "cluster/shard_map.h"
#include "cli/commands.h"
#include "core/edn.h"
#include "shard/tx_placement.h"

namespace cairn::cli {

namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "cairn: %s\n", s.ToString().c_str());
  return 1;
}

Result<std::unique_ptr<Client>> Connect(const std::string& list, int timeout_ms = 30'000) {
  ClientOptions options;
  options.timeout_ms = timeout_ms;
  return Client::connect(SplitEndpoints(list), options);
}

bool IsCrossShard(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument && s.message().find("cross_shard") != std::string::npos;
}

// Transacts `tx`; if the server refuses it as spanning shards (our idea of
// the placement was wrong), splits the forms in halves until each half fits
// one shard. Returns the report with the greatest t.
Result<TxReport> TransactSplitting(Client& client, const std::string& tx, int depth = 0) {
  Result<TxReport> r = client.transact(tx);
  if (r.ok() || !IsCrossShard(r.status()) || depth > 20) return r;
  Result<Edn> forms = ReadEdn(tx);
  if (!forms.ok() || !forms->is(Edn::Kind::kVector) || forms->items.size() < 2) return r;
  size_t half = forms->items.size() / 2;
  Edn left = Edn::Vector({forms->items.begin(), forms->items.begin() + static_cast<ptrdiff_t>(half)});
  Edn right = Edn::Vector({forms->items.begin() + static_cast<ptrdiff_t>(half), forms->items.end()});
  CAIRN_ASSIGN_OR_RETURN(TxReport a, TransactSplitting(client, WriteEdn(left), depth + 1));
  CAIRN_ASSIGN_OR_RETURN(TxReport b, TransactSplitting(client, WriteEdn(right), depth + 1));
  return a.t > b.t ? a : b;
}

}  // namespace

std::vector<std::string> SplitEndpoints(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string e; std::getline(in, e, ',');) {
    if (!e.empty()) out.push_back(e);
  }
  return out;
}

int RunTxConnect(const std::string& endpoints, const std::string& tx_edn, int timeout_ms) {
  auto client = Connect(endpoints, timeout_ms);
  if (!client.ok()) return Fail(client.status());
  auto report = (*client)->transact(tx_edn);
  if (!report.ok()) return Fail(report.status());
  std::printf("%s\n", report->ToEdn().c_str());
  return 0;
}

int RunQueryConnect(const std::string& endpoints, const std::string& query, const std::vector<std::string>& args,
                    const std::string& format, int64_t as_of, int timeout_ms) {
  auto client = Connect(endpoints, timeout_ms);
  if (!client.ok()) return Fail(client.status());
  ClientDb view = (*client)->db();
  if (as_of > 0) view = view.as_of(TxTime{static_cast<uint64_t>(as_of)});
  auto result = view.q(query, args);
  if (!result.ok()) return Fail(result.status());
  std::string out = FormatResult(*result, format);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int RunDemoConnect(const DemoArgs& args) {
  auto connected = Connect(args.connect, 60'000);
  if (!connected.ok()) return Fail(connected.status());
  Client& client = **connected;
  auto shape = FetchClusterShape(client);
  if (!shape.ok()) {
    std::fprintf(stderr, "demo: cannot reach the cluster at %s: %s\n", args.connect.c_str(),
                 shape.status().ToString().c_str());
    return 1;
  }
  DemoTarget target;
  target.where = "the cluster at " + args.connect + " (" + std::to_string(shape->shards) + " shards)";
  target.transact = [&client](const std::string& tx) { return TransactSplitting(client, tx); };
  target.query = [&client](const std::string& q, const std::vector<std::string>& qargs, std::optional<TxTime> as_of) {
    ClientDb view = client.db();
    if (as_of) view = view.as_of(*as_of);
    return view.q(q, qargs);
  };
  ClusterShape s = *shape;
  target.shard_of_entity = [s](EntityId e) { return cluster::ShardOfPartition(e.partition(), s.shards); };
  target.shard_of = [s](Keyword attr, const Value& v) {
    return cluster::ShardOfPartition(shard::UniqueIdentityPartition(attr, v, s.partitions), s.shards);
  };
  int rc = RunDemoOn(target, args.iso_dir);
  if (rc == 0) {
    std::printf("\nQuery it again: cairn q --connect %s QUERY   (cairn status --connect %s shows the cluster)\n",
                args.connect.c_str(), SplitEndpoints(args.connect).front().c_str());
  }
  return rc;
}

}  // namespace cairn::cli
