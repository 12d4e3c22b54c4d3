// Runs every tests/unit/datalog/testdata/**/*.test file (STYLE 11).
//
// File format (one or more cases per file; database state accumulates):
//   # comment
//   schema    {:friend {:db/valueType :db.type/ref :db/cardinality :db.cardinality/many}}
//   transact  [...tx-data...]            (each line is one transaction)
//   view      current | history | as-of N | since N   (N = transaction number)
//   query     [:find ...]                (may continue on following indented lines)
//   rules     [[(rule ?a) ...]]          (bound to % in :in)
//   args      edn edn ...                (bound to :in after $ and %)
//   ordered                              (compare rows in order)
//   ----
//   expected rows, one per line, values separated by spaces; or
//   error: <substring of the error message>
//   <blank line ends the case>
// Every case runs through the planner, the engine's reference mode and the
// independent reference evaluator; all must produce the expected rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "datalog/engine.h"
#include "datalog/parser.h"
#include "datalog/reference_evaluator.h"
#include "test_db.h"

namespace cairn::datalog {
namespace {

namespace fs = std::filesystem;

// Entity ids print as numbers: compare them as longs; maps with sorted keys.
Value Canonical(const Value& v) {
  switch (v.type()) {
    case ValueType::kRef: return Value::Long(static_cast<int64_t>(v.as_ref().raw));
    case ValueType::kTuple: {
      std::vector<Value> items;
      for (const Value& x : v.as_tuple()) items.push_back(Canonical(x));
      return Value::Tuple(std::move(items));
    }
    case ValueType::kMap: {
      std::vector<std::pair<Value, Value>> entries;
      for (const auto& [k, x] : v.as_map()) entries.emplace_back(Canonical(k), Canonical(x));
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      return Value::Map(std::move(entries));
    }
    default: return v;
  }
}

std::string RowText(const std::vector<Value>& row) {
  std::string s;
  for (const Value& v : row) s += (s.empty() ? "" : " ") + v.ToString();
  return s;
}

struct Case {
  std::string file;
  int line = 0;
  std::string query, rules, args, view = "current";
  bool ordered = false;
  std::vector<std::string> expected;
  std::string error;
};

struct Runner {
  testing::TestDb db;
  int cases = 0;
  int independent_cases = 0;
  std::vector<std::string> failures;

  void Fail(const Case& c, const std::string& what) {
    failures.push_back(c.file + ":" + std::to_string(c.line) + ": " + what + "\n  query: " + c.query);
  }

  std::shared_ptr<MemoryIndex> View(const Case& c) {
    std::istringstream in(c.view);
    std::string kind;
    uint64_t n = 0;
    in >> kind >> n;
    if (kind == "history") return db.View(MemoryIndex::View::kHistory);
    if (kind == "as-of") return db.View(MemoryIndex::View::kAsOf, TxTime{n});
    if (kind == "since") return db.View(MemoryIndex::View::kSince, TxTime{n});
    return db.View();
  }

  void Run(const Case& c) {
    ++cases;
    auto view = View(c);
    auto qedn = ReadEdn(c.query);
    if (!qedn.ok()) {
      if (!c.error.empty() && qedn.status().message().find(c.error) != std::string::npos) return;
      return Fail(c, "query EDN: " + qedn.status().ToString());
    }
    std::vector<Edn> args;
    if (!c.rules.empty()) {
      auto r = ReadEdn(c.rules);
      if (!r.ok()) return Fail(c, "rules EDN: " + r.status().ToString());
      args.push_back(*r);
    }
    if (!c.args.empty()) {
      auto a = ReadEdnAll(c.args);
      if (!a.ok()) return Fail(c, "args EDN: " + a.status().ToString());
      for (auto& x : *a) args.push_back(std::move(x));
    }
    std::vector<std::vector<Value>> expected;
    for (const std::string& line : c.expected) {
      auto vals = ReadEdnAll(line);
      if (!vals.ok()) return Fail(c, "expected row EDN: " + vals.status().ToString());
      std::vector<Value> row;
      for (const Edn& e : *vals) {
        auto v = ConstantToValue(e);
        if (!v.ok()) return Fail(c, "expected value: " + v.status().ToString());
        row.push_back(Canonical(*v));
      }
      expected.push_back(std::move(row));
    }
    if (!c.ordered) std::sort(expected.begin(), expected.end());
    for (int mode_index : {0, 1, 2}) {
      bool reference = mode_index == 1;
      std::string mode = mode_index == 0 ? "planner" : mode_index == 1 ? "reference mode" : "independent reference";
      auto inputs = BindApiInputs(*qedn, view.get(), args);
      Result<QueryResult> res = !inputs.ok()      ? Result<QueryResult>(inputs.status())
                                : mode_index == 2 ? RunReferenceQuery(*qedn, *inputs)
                                                  : RunQuery(*qedn, *inputs, QueryOptions{nullptr, {}, 0, reference});
      if (mode_index == 2 && !res.ok() &&
          res.status().message().find("reference evaluator does not support") != std::string::npos)
        continue;
      if (mode_index == 2 && !c.error.empty()) continue;  // error texts are the planner's contract
      if (mode_index == 2) ++independent_cases;
      if (!c.error.empty()) {
        if (res.ok()) {
          Fail(c, mode + ": expected error '" + c.error + "' but the query succeeded");
        } else if (res.status().message().find(c.error) == std::string::npos) {
          Fail(c, mode + ": expected error '" + c.error + "', got " + res.status().ToString());
        }
        continue;
      }
      if (!res.ok()) {
        Fail(c, mode + ": " + res.status().ToString());
        continue;
      }
      std::vector<std::vector<Value>> got;
      for (const auto& row : res->rows) {
        std::vector<Value> r;
        for (const Value& v : row) r.push_back(Canonical(v));
        got.push_back(std::move(r));
      }
      if (!c.ordered) std::sort(got.begin(), got.end());
      if (got != expected) {
        std::string msg = mode + ": rows differ\n  expected:";
        for (const auto& r : expected) msg += "\n    " + RowText(r);
        msg += "\n  got:";
        for (const auto& r : got) msg += "\n    " + RowText(r);
        Fail(c, msg);
      }
    }
  }

  void RunFile(const fs::path& path) {
    db = testing::TestDb();
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    Case c;
    c.file = path.filename().string();
    std::string* last = nullptr;  // for continuation lines
    bool in_expect = false;
    auto flush = [&]() {
      if (!c.query.empty()) Run(c);
      Case fresh;
      fresh.file = c.file;
      c = fresh;
      in_expect = false;
      last = nullptr;
    };
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string& l = lines[i];
      if (in_expect) {
        if (l.find_first_not_of(" \t") == std::string::npos) {
          flush();
        } else if (l.rfind("error:", 0) == 0) {
          c.error = l.substr(6);
          c.error.erase(0, c.error.find_first_not_of(' '));
        } else {
          c.expected.push_back(l);
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
      if (l == "----") {
        in_expect = true;
        continue;
      }
      std::string word = l.substr(0, l.find(' '));
      std::string rest = l.size() > word.size() ? l.substr(word.size() + 1) : "";
      if (word == "transact" || word == "schema") {
        // Apply when complete (continuation lines are joined first).
        std::string text = rest;
        while (i + 1 < lines.size() && !lines[i + 1].empty() && (lines[i + 1][0] == ' ' || lines[i + 1][0] == '\t'))
          text += "\n" + lines[++i];
        auto e = ReadEdn(text);
        Status st = e.ok() ? (word == "schema" ? db.InstallSchema(*e) : db.Transact(*e)) : e.status();
        if (!st.ok()) failures.push_back(c.file + ":" + std::to_string(i + 1) + ": " + word + ": " + st.ToString());
        last = nullptr;
      } else if (word == "query") {
        c.query = rest;
        c.line = static_cast<int>(i + 1);
        last = &c.query;
      } else if (word == "rules") {
        c.rules = rest;
        last = &c.rules;
      } else if (word == "args") {
        c.args = rest;
        last = &c.args;
      } else if (word == "view") {
        c.view = rest;
        last = nullptr;
      } else if (word == "ordered") {
        c.ordered = true;
      } else {
        failures.push_back(c.file + ":" + std::to_string(i + 1) + ": unknown directive '" + word + "'");
      }
    }
    flush();
  }
};

TEST(DatalogDataDriven, AllTestFilesPass) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(CAIRN_TEST_DATA_DIR))
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty());
  Runner r;
  for (const auto& f : files) r.RunFile(f);
  std::string all;
  for (const auto& f : r.failures) all += f + "\n";
  EXPECT_TRUE(r.failures.empty()) << r.failures.size() << " of " << r.cases << " cases failed:\n" << all;
  std::cout << "[datalog] " << r.cases << " data-driven cases in " << files.size() << " files ("
            << r.independent_cases << " also checked by the independent reference evaluator)\n";
}

}  // namespace
}  // namespace cairn::datalog
