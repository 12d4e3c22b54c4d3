// `cairn demo`: loads ISO 3166 countries and subdivisions from Debian's
// iso-codes JSON into an embedded database, then prints a few facts.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cairn/database.h"
#include "cli/commands.h"
#include "cli/progress.h"

namespace cairn::cli {

namespace {

constexpr const char* kSchema = R"([
 {:db/ident :country/alpha2 :db/valueType :db.type/string :db/cardinality :db.cardinality/one
  :db/unique :db.unique/identity :db/doc "ISO 3166-1 alpha-2 code"}
 {:db/ident :country/alpha3 :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/value}
 {:db/ident :country/numeric :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :country/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/index true}
 {:db/ident :country/official-name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :subdivision/code :db/valueType :db.type/string :db/cardinality :db.cardinality/one
  :db/unique :db.unique/identity :db/doc "ISO 3166-2 code, e.g. FR-75"}
 {:db/ident :subdivision/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/index true}
 {:db/ident :subdivision/type :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :subdivision/country :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}
 {:db/ident :subdivision/parent :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}
])";

std::string Str(const std::string& s) { return Value::String(s).ToString(); }

Result<nlohmann::json> LoadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot open " + path + " (install Debian's iso-codes package)");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
}

// Prints a query's result, or its error, under a caption.
void Show(const Db& db, const std::string& caption, const std::string& query,
          const std::vector<std::string>& args = {}) {
  std::printf("\n%s\n  %s\n", caption.c_str(), query.c_str());
  auto r = db.q(query, args);
  if (!r.ok()) {
    std::printf("  error: %s\n", r.status().ToString().c_str());
    return;
  }
  std::string text = FormatResult(*r, "table");
  std::printf("%s", text.c_str());
}

}  // namespace

int RunDemo(const DemoArgs& args) {
  auto countries_json = LoadJson(args.iso_dir + "/iso_3166-1.json");
  auto subs_json = LoadJson(args.iso_dir + "/iso_3166-2.json");
  if (!countries_json.ok() || !subs_json.ok()) {
    const Status& s = countries_json.ok() ? subs_json.status() : countries_json.status();
    std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
    return 1;
  }
  const auto& countries = (*countries_json)["3166-1"];
  const auto& subs = (*subs_json)["3166-2"];

  auto opened = Database::open(args.db_path);
  if (!opened.ok()) {
    std::fprintf(stderr, "demo: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Database& db = **opened;
  std::printf("Cairn demo: ISO 3166 into %s\n", args.db_path.c_str());
  std::fflush(stdout);

  auto check = [](const Result<TxReport>& r, const char* what) {
    if (!r.ok()) {
      std::fprintf(stderr, "demo: %s: %s\n", what, r.status().ToString().c_str());
      return false;
    }
    return true;
  };

  if (!check(db.transact(kSchema), "schema")) return 1;

  uint64_t total = countries.size() + subs.size() * 2;
  ProgressBar bar("loading iso-codes", total);

  std::string tx = "[";
  for (const auto& c : countries) {
    tx += "{:country/alpha2 " + Str(c.value("alpha_2", "")) + " :country/alpha3 " + Str(c.value("alpha_3", "")) +
          " :country/numeric " + Str(c.value("numeric", "")) + " :country/name " + Str(c.value("name", ""));
    if (c.contains("official_name")) tx += " :country/official-name " + Str(c["official_name"].get<std::string>());
    tx += "}\n";
  }
  tx += "]";
  auto countries_tx = db.transact(tx);
  if (!check(countries_tx, "countries")) return 1;
  bar.Advance(countries.size());
  TxTime countries_t = countries_tx->t;

  constexpr size_t kBatch = 500;
  for (size_t i = 0; i < subs.size(); i += kBatch) {
    std::string batch = "[";
    size_t end = std::min(subs.size(), i + kBatch);
    for (size_t j = i; j < end; ++j) {
      const auto& s = subs[j];
      std::string code = s.value("code", "");
      std::string country = code.substr(0, code.find('-'));
      batch += "{:subdivision/code " + Str(code) + " :subdivision/name " + Str(s.value("name", "")) +
               " :subdivision/type " + Str(s.value("type", "")) + " :subdivision/country [:country/alpha2 " +
               Str(country) + "]}\n";
    }
    batch += "]";
    if (!check(db.transact(batch), "subdivisions")) return 1;
    bar.Advance(end - i);
  }
  // Parents refer to other subdivisions of the same country ("FR-75" -> "FR-IDF");
  // iso-codes names some parents that are not in the list: those are skipped.
  std::set<std::string> codes;
  for (const auto& s : subs) codes.insert(s.value("code", ""));
  size_t missing_parents = 0;
  for (size_t i = 0; i < subs.size(); i += kBatch) {
    std::string batch = "[";
    size_t end = std::min(subs.size(), i + kBatch);
    for (size_t j = i; j < end; ++j) {
      const auto& s = subs[j];
      if (!s.contains("parent")) continue;
      std::string code = s.value("code", "");
      std::string parent = code.substr(0, code.find('-')) + "-" + s["parent"].get<std::string>();
      if (!codes.count(parent)) {
        ++missing_parents;
        continue;
      }
      batch += "[:db/add [:subdivision/code " + Str(code) + "] :subdivision/parent [:subdivision/code " +
               Str(parent) + "]]\n";
    }
    batch += "]";
    if (!check(db.transact(batch), "subdivision parents")) return 1;
    bar.Advance(end - i);
  }
  bar.Finish();
  spdlog::info("loaded {} countries and {} subdivisions ({} parents not in iso-codes skipped), latest t={}",
               countries.size(), subs.size(), missing_parents, db.latest_t().raw);

  Db now = db.db();
  Show(now, "How many countries and subdivisions?",
       "[:find (count-distinct ?c) (count ?s) :where [?c :country/alpha2] [?s :subdivision/country ?c]]");
  Show(now, "Subdivisions per country, for a few countries:",
       "[:find ?name (count ?s) :in $ [?a2 ...] :where [?c :country/alpha2 ?a2] [?c :country/name ?name] "
       "[?s :subdivision/country ?c]]",
       {"[\"FR\" \"GB\" \"US\" \"DE\" \"IT\"]"});
  Show(now, "Regions of Switzerland whose name starts with \"B\":",
       "[:find ?name :in $ ?code :where [?c :country/alpha2 ?code] [?s :subdivision/country ?c] "
       "[?s :subdivision/name ?name] [(starts-with? ?name \"B\")]]",
       {"\"CH\""});
  Show(now, "Every region containing Paris (FR-75), by a recursive rule:",
       "[:find ?name ?type :in $ % :where [?s :subdivision/code \"FR-75\"] (within ?s ?p) "
       "[?p :subdivision/name ?name] [?p :subdivision/type ?type]]",
       {"[[(within ?s ?p) [?s :subdivision/parent ?p]] [(within ?s ?p) [?s :subdivision/parent ?m] (within ?m ?p)]]"});
  Show(now.as_of(countries_t), "Time travel: subdivisions as of the countries' transaction (t=" +
                                   std::to_string(countries_t.raw) + "):",
       "[:find (count ?s) . :where [?s :subdivision/code]]");
  std::printf("\nDatabase file: %s (open it again with `cairn q --db %s QUERY`)\n", args.db_path.c_str(),
              args.db_path.c_str());
  return 0;
}

}  // namespace cairn::cli
