// `cairn demo`: loads ISO 3166 countries and subdivisions from Debian's
// iso-codes JSON into a database — embedded (--db) or a cluster through
// cairn::Client (--connect, demo_connect.cc) — then prints a few facts. The
// loader and the queries are written once, over a DemoTarget.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
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
  :db/unique :db.unique/value :db/doc "ISO 3166-2 code, e.g. FR-75"}
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

// Splits forms (each keyed by the shard its entity lives on) into
// transactions of at most kBatch forms that each stay on one shard.
std::vector<std::string> ShardBatches(const std::vector<std::pair<uint32_t, std::string>>& forms, size_t batch_max) {
  std::map<uint32_t, std::vector<const std::string*>> by_shard;
  for (const auto& [shard, form] : forms) by_shard[shard].push_back(&form);
  std::vector<std::string> out;
  for (const auto& [shard, list] : by_shard) {
    for (size_t i = 0; i < list.size(); i += batch_max) {
      std::string tx = "[";
      for (size_t j = i; j < std::min(list.size(), i + batch_max); ++j) tx += *list[j] + "\n";
      out.push_back(tx + "]");
    }
  }
  return out;
}

// Prints a query's result, or its error, under a caption.
void Show(const DemoTarget& target, const std::string& caption, const std::string& query,
          const std::vector<std::string>& args = {}, std::optional<TxTime> as_of = std::nullopt) {
  std::printf("\n%s\n  %s\n", caption.c_str(), query.c_str());
  auto r = target.query(query, args, as_of);
  if (!r.ok()) {
    std::printf("  error: %s\n", r.status().ToString().c_str());
    return;
  }
  std::string text = FormatResult(*r, "table");
  std::printf("%s", text.c_str());
}

}  // namespace

int RunDemoOn(const DemoTarget& target, const std::string& iso_dir) {
  auto countries_json = LoadJson(iso_dir + "/iso_3166-1.json");
  auto subs_json = LoadJson(iso_dir + "/iso_3166-2.json");
  if (!countries_json.ok() || !subs_json.ok()) {
    const Status& s = countries_json.ok() ? subs_json.status() : countries_json.status();
    std::fprintf(stderr, "demo: %s\n", s.ToString().c_str());
    return 1;
  }
  const auto& countries = (*countries_json)["3166-1"];
  const auto& subs = (*subs_json)["3166-2"];

  std::printf("Cairn demo: ISO 3166 into %s\n", target.where.c_str());
  std::fflush(stdout);

  TxTime latest_t;
  auto run = [&](const std::string& tx, const char* what) {
    auto r = target.transact(tx);
    if (!r.ok()) {
      std::fprintf(stderr, "\ndemo: %s: %s\n", what, r.status().ToString().c_str());
      return false;
    }
    latest_t = std::max(latest_t, r->t);
    return true;
  };

  if (!run(kSchema, "schema")) return 1;

  uint64_t total = countries.size() + subs.size() * 2;
  ProgressBar bar("loading iso-codes", total);
  const Keyword alpha2_attr = Keyword::Intern("country/alpha2");

  std::vector<std::pair<uint32_t, std::string>> forms;
  for (const auto& c : countries) {
    std::string alpha2 = c.value("alpha_2", "");
    std::string form = "{:country/alpha2 " + Str(alpha2) + " :country/alpha3 " + Str(c.value("alpha_3", "")) +
                       " :country/numeric " + Str(c.value("numeric", "")) + " :country/name " +
                       Str(c.value("name", ""));
    if (c.contains("official_name")) form += " :country/official-name " + Str(c["official_name"].get<std::string>());
    forms.emplace_back(target.shard_of(alpha2_attr, Value::String(alpha2)), form + "}");
  }
  for (const std::string& tx : ShardBatches(forms, countries.size())) {
    if (!run(tx, "countries")) return 1;
  }
  bar.Advance(countries.size());
  TxTime countries_t = latest_t;

  // Refs go in as entity ids looked up first, not as lookup refs (a lookup
  // ref on a :db.unique/value attribute does not tell a cluster's router
  // where its entity lives).
  auto ids_of = [&](const std::string& query, std::map<std::string, uint64_t>* out) {
    auto r = target.query(query, {}, std::nullopt);
    if (!r.ok()) {
      std::fprintf(stderr, "\ndemo: %s: %s\n", query.c_str(), r.status().ToString().c_str());
      return false;
    }
    for (const auto& row : r->rows) {
      if (row.size() != 2 || row[0].type() != ValueType::kString) continue;
      const Value& e = row[1];
      if (e.type() == ValueType::kRef) (*out)[row[0].as_string()] = e.as_ref().raw;
      if (e.type() == ValueType::kLong) (*out)[row[0].as_string()] = static_cast<uint64_t>(e.as_long());
    }
    return true;
  };
  std::map<std::string, uint64_t> country_ids;
  if (!ids_of("[:find ?a2 ?c :where [?c :country/alpha2 ?a2]]", &country_ids)) return 1;
  // A second run over the same database adds only what is missing.
  std::map<std::string, uint64_t> sub_ids;
  if (!ids_of("[:find ?code ?s :where [?s :subdivision/code ?code]]", &sub_ids)) return 1;

  constexpr size_t kBatch = 500;
  for (size_t i = 0; i < subs.size(); i += kBatch) {
    size_t end = std::min(subs.size(), i + kBatch);
    forms.clear();
    for (size_t j = i; j < end; ++j) {
      const auto& s = subs[j];
      std::string code = s.value("code", "");
      std::string country = code.substr(0, code.find('-'));
      auto country_id = country_ids.find(country);
      if (country_id == country_ids.end() || sub_ids.count(code)) continue;
      // A subdivision lives in its country's partition (the :db/partition
      // hint), so its refs to the country and to its parent stay on one shard.
      EntityId country_e{country_id->second};
      forms.emplace_back(target.shard_of_entity(country_e),
                         "{:subdivision/code " + Str(code) + " :subdivision/name " + Str(s.value("name", "")) +
                             " :subdivision/type " + Str(s.value("type", "")) + " :subdivision/country " +
                             std::to_string(country_e.raw) + " :db/partition " +
                             std::to_string(country_e.partition()) + "}");
    }
    for (const std::string& tx : ShardBatches(forms, kBatch)) {
      if (!run(tx, "subdivisions")) return 1;
    }
    bar.Advance(end - i);
  }
  // Parents refer to other subdivisions of the same country ("FR-75" -> "FR-IDF");
  // iso-codes names some parents that are not in the list: those are skipped.
  sub_ids.clear();
  if (!ids_of("[:find ?code ?s :where [?s :subdivision/code ?code]]", &sub_ids)) return 1;
  size_t missing_parents = 0;
  for (size_t i = 0; i < subs.size(); i += kBatch) {
    size_t end = std::min(subs.size(), i + kBatch);
    forms.clear();
    for (size_t j = i; j < end; ++j) {
      const auto& s = subs[j];
      if (!s.contains("parent")) continue;
      std::string code = s.value("code", "");
      std::string parent = code.substr(0, code.find('-')) + "-" + s["parent"].get<std::string>();
      auto child_id = sub_ids.find(code);
      auto parent_id = sub_ids.find(parent);
      if (child_id == sub_ids.end() || parent_id == sub_ids.end()) {
        ++missing_parents;
        continue;
      }
      forms.emplace_back(target.shard_of_entity(EntityId{child_id->second}),
                         "[:db/add " + std::to_string(child_id->second) + " :subdivision/parent " +
                             std::to_string(parent_id->second) + "]");
    }
    for (const std::string& tx : ShardBatches(forms, kBatch)) {
      if (!run(tx, "subdivision parents")) return 1;
    }
    bar.Advance(end - i);
  }
  bar.Finish();
  spdlog::info("loaded {} countries and {} subdivisions ({} parents not in iso-codes skipped), latest t={}",
               countries.size(), subs.size(), missing_parents, latest_t.raw);

  Show(target, "How many countries and subdivisions?",
       "[:find (count-distinct ?c) (count ?s) :where [?c :country/alpha2] [?s :subdivision/country ?c]]");
  Show(target, "Subdivisions per country, for a few countries:",
       "[:find ?name (count ?s) :in $ [?a2 ...] :where [?c :country/alpha2 ?a2] [?c :country/name ?name] "
       "[?s :subdivision/country ?c]]",
       {"[\"FR\" \"GB\" \"US\" \"DE\" \"IT\"]"});
  Show(target, "Regions of Switzerland whose name starts with \"B\":",
       "[:find ?name :in $ ?code :where [?c :country/alpha2 ?code] [?s :subdivision/country ?c] "
       "[?s :subdivision/name ?name] [(starts-with? ?name \"B\")]]",
       {"\"CH\""});
  Show(target, "Every region containing Paris (FR-75), by a recursive rule:",
       "[:find ?name ?type :in $ % :where [?s :subdivision/code \"FR-75\"] (within ?s ?p) "
       "[?p :subdivision/name ?name] [?p :subdivision/type ?type]]",
       {"[[(within ?s ?p) [?s :subdivision/parent ?p]] [(within ?s ?p) [?s :subdivision/parent ?m] (within ?m ?p)]]"});
  Show(target, "Time travel: subdivisions as of the countries' transaction (t=" + std::to_string(countries_t.raw) +
                   "):",
       "[:find (count ?s) . :where [?s :subdivision/code]]", {}, countries_t);
  return 0;
}

int RunDemo(const DemoArgs& args) {
  auto opened = Database::open(args.db_path);
  if (!opened.ok()) {
    std::fprintf(stderr, "demo: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Database& db = **opened;
  DemoTarget target;
  target.where = args.db_path;
  target.transact = [&db](const std::string& tx) { return db.transact(tx); };
  target.query = [&db](const std::string& q, const std::vector<std::string>& qargs, std::optional<TxTime> as_of) {
    Db view = db.db();
    if (as_of) view = view.as_of(*as_of);
    return view.q(q, qargs);
  };
  target.shard_of = [](Keyword, const Value&) { return 0u; };
  target.shard_of_entity = [](EntityId) { return 0u; };
  int rc = RunDemoOn(target, args.iso_dir);
  if (rc == 0) {
    std::printf("\nDatabase file: %s (open it again with `cairn q --db %s QUERY`)\n", args.db_path.c_str(),
                args.db_path.c_str());
  }
  return rc;
}

}  // namespace cairn::cli
