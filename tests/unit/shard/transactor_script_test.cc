// Data-driven transactor tests (STYLE 11): each testdata/*.edn file is a
// transcript of transactions and what each must produce.
//
//   tx [...]            ; transact; must succeed unless `error` follows.
//                       ; A symbol naming an earlier tempid stands for its
//                       ; entity id
//   datoms [[e a v] ..] ; the data datoms it wrote, in order (the
//                       ; :db/txInstant datom left out); [e a v false] is a
//                       ; retraction. e and ref values are symbols naming
//                       ; tempids of this or an earlier tx, or `tx` (this
//                       ; transaction's entity)
//   error Code "part" ..; the tx failed with Code, message containing each part
//                       ; (the transaction is re-written before it runs, so
//                       ; line:column positions are checked by the C++ tests)
//   same a b            ; tempids a and b (as symbols) resolved to one entity
//
// Every file runs against a fresh MemoryDb.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "memory_db.h"

namespace cairn::shard {
namespace {

std::vector<std::string> ScriptFiles() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(CAIRN_TEST_DATA_DIR)) {
    if (entry.path().extension() == ".edn") out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void SubstituteNames(Edn* e, const std::map<std::string, EntityId>& names) {
  if (e->is(Edn::Kind::kSymbol)) {
    auto it = names.find(e->text);
    if (it != names.end()) *e = Edn::Int(static_cast<int64_t>(it->second.raw));
    return;
  }
  for (Edn& x : e->items) SubstituteNames(&x, names);
}

class TransactorScript : public ::testing::TestWithParam<std::string> {};

TEST_P(TransactorScript, Runs) {
  std::ifstream in(std::string(CAIRN_TEST_DATA_DIR) + "/" + GetParam());
  std::stringstream buf;
  buf << in.rdbuf();
  auto forms = ReadEdnAll(buf.str());
  ASSERT_TRUE(forms.ok()) << forms.status().ToString();
  testing::MemoryDb db;
  std::map<std::string, EntityId> names;
  std::optional<Result<TxResult>> last;
  size_t i = 0;
  auto at = [&](const Edn& f) { return GetParam() + ":" + f.Where(); };
  auto check_ok = [&]() {
    if (last && !last->ok()) ADD_FAILURE() << "transaction failed: " << last->status().ToString();
  };
  const auto& fs = *forms;
  while (i < fs.size()) {
    const Edn& cmd = fs[i];
    ASSERT_TRUE(cmd.is(Edn::Kind::kSymbol)) << at(cmd) << ": expected a command symbol";
    if (cmd.text == "tx") {
      check_ok();
      ASSERT_LT(i + 1, fs.size());
      Edn tx = fs[i + 1];
      SubstituteNames(&tx, names);
      last = db.Transact(WriteEdn(tx));
      if (last->ok()) {
        for (const auto& [tempid, e] : (*last)->tempids) names[tempid] = e;
      }
      i += 2;
    } else if (cmd.text == "error") {
      ASSERT_TRUE(last.has_value()) << at(cmd);
      ASSERT_FALSE(last->ok()) << at(cmd) << ": the transaction succeeded";
      ASSERT_LT(i + 1, fs.size());
      EXPECT_EQ(StatusCodeName(last->status().code()), fs[i + 1].text) << at(cmd) << ": " << last->status().ToString();
      i += 2;
      while (i < fs.size() && fs[i].is(Edn::Kind::kString)) {
        EXPECT_NE(last->status().message().find(fs[i].text), std::string::npos)
            << at(fs[i]) << ": message lacks \"" << fs[i].text << "\": " << last->status().ToString();
        ++i;
      }
      last.reset();
    } else if (cmd.text == "datoms") {
      ASSERT_TRUE(last.has_value() && last->ok()) << at(cmd) << ": no successful transaction to check";
      const TxResult& r = **last;
      auto entity = [&](const Edn& n) -> EntityId {
        if (n.IsSymbol("tx")) return EntityId::ForTx(r.t);
        if (n.is(Edn::Kind::kSymbol) && names.count(n.text)) return names[n.text];
        ADD_FAILURE() << at(n) << ": unknown entity name " << WriteEdn(n);
        return EntityId{};
      };
      std::vector<Datom> expected;
      for (const Edn& d : fs[i + 1].items) {
        Datom x;
        x.e = entity(d.items.at(0));
        x.a = Keyword::Intern(d.items.at(1).text);
        const Edn& v = d.items.at(2);
        if (v.is(Edn::Kind::kSymbol)) {
          x.v = Value::Ref(entity(v));
        } else {
          auto val = EdnToValue(v);
          ASSERT_TRUE(val.ok()) << at(v) << ": " << val.status().ToString();
          x.v = *val;
        }
        x.tx = r.t;
        x.added = d.items.size() < 4 || d.items[3].b;
        expected.push_back(x);
      }
      std::vector<Datom> actual;
      for (const Datom& d : r.datoms) {
        if (!(d.e == EntityId::ForTx(r.t) && d.a == Keyword::Intern("db/txInstant"))) actual.push_back(d);
      }
      EXPECT_EQ(actual.size(), expected.size()) << at(cmd);
      for (size_t k = 0; k < std::min(actual.size(), expected.size()); ++k) {
        EXPECT_EQ(actual[k], expected[k]) << at(cmd) << ": datom " << k << ": got " << actual[k].ToString()
                                          << ", expected " << expected[k].ToString();
      }
      i += 2;
    } else if (cmd.text == "same") {
      ASSERT_LT(i + 2, fs.size());
      EXPECT_EQ(names.at(fs[i + 1].text), names.at(fs[i + 2].text)) << at(cmd);
      i += 3;
    } else {
      FAIL() << at(cmd) << ": unknown command " << cmd.text;
    }
  }
  check_ok();
}

INSTANTIATE_TEST_SUITE_P(Files, TransactorScript, ::testing::ValuesIn(ScriptFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string n = info.param.substr(0, info.param.size() - 4);
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace cairn::shard
