// The reader of cluster test time_travel (cluster_test.py): reads :t/val
// through cairn::Client's time views and diff, and prints one line per datom
// or row, for the test to compare with its model of the writes:
//   asof T E V          rows of [:find ?e ?v :where [?e :t/val ?v]] as of T
//   since T E V         the same since T
//   datoms T E V TX     ClientDb::as_of(T).datoms(aevt, :t/val)
//   history E V TX ADDED   the history view (TX: the transaction entity id)
//   diff T1 T2 E V TX ADDED  Client::diff(T1, T2), :t/val datoms only
// Any failed call prints the error and exits 1.
//
//   client_time_travel HOST:PORT[,HOST:PORT...] T [T...]
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cairn/client.h"

namespace {

long long Num(const cairn::Value& v) {
  if (v.type() == cairn::ValueType::kRef) return static_cast<long long>(v.as_ref().raw);
  return v.as_long();
}

bool Rows(const char* what, const cairn::ClientDb& db, const std::string& prefix, const std::string& query) {
  auto r = db.q(query);
  if (!r.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, r.status().ToString().c_str());
    return false;
  }
  for (const auto& row : r->rows) {
    std::string line = prefix;
    for (const cairn::Value& v : row) {
      line += " ";
      line += v.type() == cairn::ValueType::kBool ? (v.as_bool() ? "1" : "0") : std::to_string(Num(v));
    }
    std::printf("%s\n", line.c_str());
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST:PORT[,HOST:PORT...] T [T...]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> endpoints;
  std::stringstream list(argv[1]);
  for (std::string e; std::getline(list, e, ',');) endpoints.push_back(e);
  std::vector<cairn::TxTime> ts;
  for (int i = 2; i < argc; ++i) ts.push_back(cairn::TxTime{std::strtoull(argv[i], nullptr, 10)});
  auto client = cairn::Client::connect(endpoints);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  const std::string q = "[:find ?e ?v :where [?e :t/val ?v]]";
  cairn::ClientDb db = (*client)->db();
  for (cairn::TxTime t : ts) {
    std::string ts_text = std::to_string(t.raw);
    if (!Rows("as-of", db.as_of(t), "asof " + ts_text, q)) return 1;
    if (!Rows("since", db.since(t), "since " + ts_text, q)) return 1;
    auto datoms = db.as_of(t).datoms(cairn::IndexType::kAevt, {cairn::Value::Kw(cairn::Keyword::Intern("t/val"))});
    if (!datoms.ok()) {
      std::fprintf(stderr, "datoms as-of: %s\n", datoms.status().ToString().c_str());
      return 1;
    }
    for (const cairn::Datom& d : *datoms) {
      std::printf("datoms %s %llu %lld %llu\n", ts_text.c_str(), static_cast<unsigned long long>(d.e.raw),
                  Num(d.v), static_cast<unsigned long long>(d.tx.raw));
    }
  }
  if (!Rows("history", db.history(), "history", "[:find ?e ?v ?tx ?added :where [?e :t/val ?v ?tx ?added]]")) return 1;
  for (size_t i = 0; i + 1 < ts.size(); ++i) {
    for (size_t j : {i + 1, ts.size() - 1}) {
      auto diff = (*client)->diff(ts[i], ts[j]);
      if (!diff.ok()) {
        std::fprintf(stderr, "diff: %s\n", diff.status().ToString().c_str());
        return 1;
      }
      for (const cairn::Datom& d : *diff) {
        if (d.a.str() != "t/val") continue;
        std::printf("diff %llu %llu %llu %lld %llu %d\n", static_cast<unsigned long long>(ts[i].raw),
                    static_cast<unsigned long long>(ts[j].raw), static_cast<unsigned long long>(d.e.raw), Num(d.v),
                    static_cast<unsigned long long>(d.tx.raw), d.added ? 1 : 0);
      }
    }
  }
  return 0;
}
