// Subcommand entry points of the `cairn` CLI. Each returns a process exit
// code (0 ok, 1 operation failed, 2 bad usage) and prints errors to stderr.
#pragma once

#include <string>
#include <vector>

#include "cairn/query.h"
#include "cairn/value.h"

namespace cairn::cli {

struct DemoArgs {
  std::string db_path;
  std::string iso_dir = "/usr/share/iso-codes/json";
};
int RunDemo(const DemoArgs& args);
// Interactive prompt with history and multi-line input.
int RunRepl(const std::string& db_path);

// Renders a query result as "edn", "table" or "json".
std::string FormatResult(const QueryResult& result, const std::string& format);
// One Value as JSON text (refs as numbers, keywords as ":ns/name" strings).
std::string ValueToJson(const Value& v);

}  // namespace cairn::cli
