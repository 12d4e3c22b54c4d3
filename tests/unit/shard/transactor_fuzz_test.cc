// Transactor: mutated transactions never crash, and every rejection names a
// position in the EDN and writes nothing.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <random>
#include <regex>

#include "memory_db.h"

namespace cairn::shard {
namespace {

using testing::MemoryDb;

const char* kSchema = R"([{:db/ident :user/email :db/valueType :db.type/string :db/unique :db.unique/identity}
  {:db/ident :user/ssn :db/valueType :db.type/string :db/unique :db.unique/value}
  {:db/ident :user/age :db/valueType :db.type/long}
  {:db/ident :user/tags :db/valueType :db.type/keyword :db/cardinality :db.cardinality/many}
  {:db/ident :user/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}
  {:db/ident :user/address :db/valueType :db.type/ref :db/isComponent true}
  {:db/ident :reg/a :db/valueType :db.type/string} {:db/ident :reg/b :db/valueType :db.type/long}
  {:db/ident :reg/a+b :db/valueType :db.type/tuple :db/tupleAttrs [:reg/a :reg/b] :db/unique :db.unique/value}
  {:db/ident :geo/pt :db/valueType :db.type/tuple :db/tupleTypes [:db.type/double :db.type/double]}
  {:db/ident :color/red}])";

const char* kSeeds[] = {
    R"([{:db/id "a" :user/email "a@x" :user/age 3 :user/tags [:t/x :t/y] :reg/a "m" :reg/b 1}])",
    R"([{:user/email "a@x" :user/friend [{:user/email "b@x"} [:user/email "a@x"]] :user/address {:addr/city "Z"}}])",
    R"([[:db/add "x" :user/ssn "9"] [:db/cas [:user/email "a@x"] :user/age 3 4] [:db/retract [:user/email "a@x"] :user/tags :t/x]])",
    R"([[:db/retractEntity [:user/email "b@x"]] {:db/id "datomic.tx" :tx/why "cleanup"}])",
    R"([{:db/ident :user/nick :db/valueType :db.type/string :db/unique :db.unique/identity} {:db/id "n" :user/nick "nn" :geo/pt [1.0 2.0]}])",
    R"([{:db/id "p" :db/partition 5 :user/email "p@x" :user/_friend [[:user/email "a@x"]] :user/address :color/red}])",
    R"([[:db/retract [:user/email "a@x"] :user/age] {:db/id :color/red :db/doc "red"} [:db/add "q" :reg/a "m"] [:db/add "q" :reg/b 1]])",
};

const char* kTokens[] = {"nil",
                         "1",
                         "-1",
                         "\"a@x\"",
                         "\"s\"",
                         ":user/email",
                         ":user/friend",
                         ":user/age",
                         "[:user/email \"a@x\"]",
                         "{}",
                         "[]",
                         "#{}",
                         ":db/add",
                         ":db/retract",
                         ":db/cas",
                         ":db/retractEntity",
                         "\"datomic.tx\"",
                         ":db/current-tx",
                         ":db/valueType",
                         ":db.type/long",
                         ":db/ident",
                         "1.5",
                         "true",
                         "#inst \"2020-01-01T00:00:00Z\"",
                         "{:db/id \"z\" :user/age 1}",
                         ":reg/a+b",
                         "[1 2]",
                         ":user/_friend"};

// Splits EDN text into crude tokens (strings kept whole) so mutations stay
// mostly readable.
std::vector<std::string> Tokens(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '"') {
      size_t j = s.find('"', i + 1);
      out.push_back(s.substr(i, j - i + 1));
      i = j + 1;
      continue;
    }
    if (c == '[' || c == ']' || c == '{' || c == '}' || c == '(' || c == ')') {
      out.emplace_back(1, c);
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) &&
           std::string("[]{}()\"").find(s[j]) == std::string::npos)
      ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

TEST(TransactorFuzz, MutatedTransactionsFailCleanlyOrApply) {
  // CAIRN_TX_FUZZ_SEED / CAIRN_TX_FUZZ_ROUNDS replay or extend a run.
  uint64_t seed = 20261122;
  int rounds = 3000;
  if (const char* s = std::getenv("CAIRN_TX_FUZZ_SEED")) seed = std::strtoull(s, nullptr, 10);
  if (const char* s = std::getenv("CAIRN_TX_FUZZ_ROUNDS")) rounds = std::atoi(s);
  SCOPED_TRACE("CAIRN_TX_FUZZ_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::regex position(R"(^\d+:\d+: )");
  int applied = 0, rejected = 0;
  for (int round = 0; round < rounds; ++round) {
    MemoryDb db;
    ASSERT_TRUE(db.Transact(kSchema).ok());
    ASSERT_TRUE(db.Transact(kSeeds[0]).ok());
    std::vector<std::string> toks = Tokens(kSeeds[rng() % std::size(kSeeds)]);
    int mutations = 1 + static_cast<int>(rng() % 3);
    for (int m = 0; m < mutations && !toks.empty(); ++m) {
      size_t at = rng() % toks.size();
      switch (rng() % 3) {
        case 0:
          toks.erase(toks.begin() + static_cast<long>(at));
          break;
        case 1:
          toks[at] = kTokens[rng() % std::size(kTokens)];
          break;
        default:
          toks.insert(toks.begin() + static_cast<long>(at), kTokens[rng() % std::size(kTokens)]);
          break;
      }
    }
    std::string text;
    for (const std::string& t : toks) text += t + " ";
    Result<Edn> edn = ReadEdn(text);
    if (!edn.ok()) continue;
    std::vector<Datom> before = db.datoms();
    auto r = db.Transact(text);
    if (r.ok()) {
      ++applied;
      continue;
    }
    ++rejected;
    StatusCode c = r.status().code();
    EXPECT_TRUE(c == StatusCode::kInvalidArgument || c == StatusCode::kNotFound || c == StatusCode::kConflict)
        << text << " -> " << r.status().ToString();
    EXPECT_TRUE(std::regex_search(r.status().message(), position)) << text << " -> " << r.status().ToString();
    EXPECT_EQ(db.datoms().size(), before.size()) << text;
  }
  EXPECT_GT(applied, 50);
  EXPECT_GT(rejected, 50);
}

}  // namespace
}  // namespace cairn::shard
