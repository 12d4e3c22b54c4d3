// `cairn repl`: an interactive prompt over an embedded database, with line
// editing and history (libedit) and multi-line input (a form is read until its
// brackets balance).
#include <editline/readline.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cairn/database.h"
#include "cli/commands.h"
#include "core/edn.h"

namespace cairn::cli {

namespace {

// Net bracket depth of `text`, ignoring brackets inside strings, character
// literals and comments. Negative means too many closers.
int BracketDepth(const std::string& text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '\\') ++i;
    else if (c == ';') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '(' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == ']' || c == '}') --depth;
  }
  return depth;
}

// A query is a vector whose first element is :find, or a map with :find.
bool IsQuery(const Edn& form) {
  if (form.is(Edn::Kind::kVector)) return !form.items.empty() && form.items[0].IsKeyword("find");
  if (form.is(Edn::Kind::kMap)) {
    for (size_t i = 0; i < form.items.size(); i += 2)
      if (form.items[i].IsKeyword("find")) return true;
  }
  return false;
}

constexpr const char* kHelp =
    "Enter a query ([:find ...]) or tx-data ([[:db/add ...] {...}]); forms may span lines.\n"
    "  .format edn|table|json   how results print (now: %s)\n"
    "  .as-of T | .as-of off    query the database as of t\n"
    "  .t                       the latest committed t\n"
    "  .help  .quit\n";

}  // namespace

int RunRepl(const std::string& db_path) {
  auto opened = Database::open(db_path);
  if (!opened.ok()) {
    std::fprintf(stderr, "cairn: %s\n", opened.status().ToString().c_str());
    return 1;
  }
  Database& db = **opened;
  std::string history_path;
  if (const char* home = std::getenv("HOME")) history_path = std::string(home) + "/.cairn_history";
  using_history();
  if (!history_path.empty()) read_history(history_path.c_str());

  std::string format = "table";
  TxTime as_of{};
  std::printf("cairn repl on %s — .help for help\n", db_path.c_str());
  std::string pending;
  while (true) {
    char* line = readline(pending.empty() ? "cairn> " : "  ...> ");
    if (line == nullptr) break;  // EOF
    std::string text(line);
    std::free(line);
    if (pending.empty()) {
      std::string trimmed = text;
      trimmed.erase(0, trimmed.find_first_not_of(" \t"));
      if (trimmed.empty()) continue;
      if (trimmed[0] == '.') {
        add_history(trimmed.c_str());
        if (trimmed == ".quit" || trimmed == ".exit") break;
        if (trimmed == ".help") {
          std::printf(kHelp, format.c_str());
        } else if (trimmed.rfind(".format ", 0) == 0) {
          std::string f = trimmed.substr(8);
          if (f == "edn" || f == "table" || f == "json") format = f;
          else std::printf("unknown format '%s' (edn, table or json)\n", f.c_str());
        } else if (trimmed == ".as-of off") {
          as_of = TxTime{};
        } else if (trimmed.rfind(".as-of ", 0) == 0) {
          as_of = TxTime{std::strtoull(trimmed.c_str() + 7, nullptr, 10)};
          std::printf("queries now read as of t=%llu\n", static_cast<unsigned long long>(as_of.raw));
        } else if (trimmed == ".t") {
          std::printf("%llu\n", static_cast<unsigned long long>(db.latest_t().raw));
        } else {
          std::printf("unknown command %s (.help)\n", trimmed.c_str());
        }
        continue;
      }
    }
    pending += text;
    pending += '\n';
    if (BracketDepth(pending) > 0) continue;
    std::string form_text;
    form_text.swap(pending);
    std::string one_line = form_text;
    for (char& c : one_line)
      if (c == '\n') c = ' ';
    add_history(one_line.c_str());

    auto form = ReadEdn(form_text);
    if (!form.ok()) {
      std::printf("error: %s\n", form.status().ToString().c_str());
      continue;
    }
    if (IsQuery(*form)) {
      Db view = db.db();
      if (as_of.valid()) view = view.as_of(as_of);
      auto r = view.q(form_text);
      if (!r.ok()) std::printf("error: %s\n", r.status().ToString().c_str());
      else std::printf("%s", FormatResult(*r, format).c_str());
    } else {
      auto r = db.transact(form_text);
      if (!r.ok()) std::printf("error: %s\n", r.status().ToString().c_str());
      else std::printf("%s\n", r->ToEdn().c_str());
    }
  }
  if (!history_path.empty()) write_history(history_path.c_str());
  return 0;
}

}  // namespace cairn::cli
