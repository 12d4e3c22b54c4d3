#include <algorithm>
#include <sstream>

#include "cli/commands.h"

namespace cairn::cli {

namespace {

// Display width: UTF-8 code points (continuation bytes do not count).
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string CellText(const Value& v) {
  if (v.type() == ValueType::kString) return v.as_string();
  return v.ToString();
}

std::string FormatTable(const QueryResult& r) {
  size_t ncols = r.columns.size();
  for (const auto& row : r.rows) ncols = std::max(ncols, row.size());
  std::vector<size_t> width(ncols, 0);
  std::vector<std::vector<std::string>> cells;
  cells.reserve(r.rows.size());
  for (size_t c = 0; c < r.columns.size(); ++c) width[c] = Width(r.columns[c]);
  for (const auto& row : r.rows) {
    std::vector<std::string> line;
    for (size_t c = 0; c < row.size(); ++c) {
      line.push_back(CellText(row[c]));
      width[c] = std::max(width[c], Width(line.back()));
    }
    cells.push_back(std::move(line));
  }
  std::ostringstream out;
  auto rule = [&] {
    out << '+';
    for (size_t w : width) out << std::string(w + 2, '-') << '+';
    out << '\n';
  };
  auto line = [&](const std::vector<std::string>& items) {
    out << '|';
    for (size_t c = 0; c < ncols; ++c) {
      std::string s = c < items.size() ? items[c] : "";
      out << ' ' << s << std::string(width[c] - Width(s), ' ') << " |";
    }
    out << '\n';
  };
  rule();
  line(r.columns);
  rule();
  for (const auto& l : cells) line(l);
  rule();
  out << r.rows.size() << (r.rows.size() == 1 ? " row\n" : " rows\n");
  return out.str();
}

}  // namespace

std::string FormatResult(const QueryResult& result, const std::string& format) {
  if (format == "table") return FormatTable(result);
  if (format == "json") {
    std::string out = "[";
    for (size_t i = 0; i < result.rows.size(); ++i) {
      if (i) out += ",";
      out += "[";
      for (size_t c = 0; c < result.rows[i].size(); ++c) {
        if (c) out += ",";
        out += ValueToJson(result.rows[i][c]);
      }
      out += "]";
    }
    out += "]\n";
    return out;
  }
  return result.ToEdn() + "\n";
}

}  // namespace cairn::cli
