// The client's request bodies and response parsers (EDN via core/edn).
#include "client/wire.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "core/edn.h"
#include "datalog/parser.h"

namespace cairn::client {

namespace {

Status Malformed(std::string_view what, std::string_view body) {
  std::string excerpt(body.substr(0, 200));
  if (body.size() > 200) excerpt += "...";
  return Status::InvalidArgument("malformed server response: " + std::string(what) + " (body: " + excerpt + ")");
}

// The value under keyword `key` in an EDN map, or nullptr.
const Edn* MapGet(const Edn& map, std::string_view key) {
  if (!map.is(Edn::Kind::kMap)) return nullptr;
  for (size_t i = 0; i + 1 < map.items.size(); i += 2) {
    if (map.items[i].IsKeyword(key)) return &map.items[i + 1];
  }
  return nullptr;
}

std::optional<uint64_t> EntityNumber(const Edn& e);
Result<Value> ToValue(const Edn& e);

Result<Datom> DatomFromEdn(const Edn& d) {
  if (!d.is(Edn::Kind::kVector) || d.items.size() != 5 || !EntityNumber(d.items[0]) ||
      !d.items[1].is(Edn::Kind::kKeyword) || !d.items[3].is(Edn::Kind::kInt) || !d.items[4].is(Edn::Kind::kBool)) {
    return Status::InvalidArgument(d.Where() + ": a datom must be [e :attr v t added]");
  }
  Datom out;
  out.e = EntityId{*EntityNumber(d.items[0])};
  out.a = Keyword::Intern(d.items[1].text);
  CAIRN_ASSIGN_OR_RETURN(out.v, ToValue(d.items[2]));
  out.tx = TxTime{static_cast<uint64_t>(d.items[3].i)};
  out.added = d.items[4].b;
  return out;
}

Result<std::vector<Datom>> DatomsFromEdn(const Edn& v) {
  if (!v.is(Edn::Kind::kVector) && !v.is(Edn::Kind::kList)) {
    return Status::InvalidArgument(v.Where() + ": datoms must be a vector");
  }
  std::vector<Datom> out;
  out.reserve(v.items.size());
  for (const Edn& d : v.items) {
    CAIRN_ASSIGN_OR_RETURN(Datom datom, DatomFromEdn(d));
    out.push_back(std::move(datom));
  }
  return out;
}

constexpr std::string_view kU64Tag = "cairn/u64";

bool IsDelimiter(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == '[' || c == ']' || c == '{' || c == '}' ||
         c == '(' || c == ')';
}

// Transaction entity ids have bit 63 set (include/cairn/ids.h), so the server
// prints them as integers above INT64_MAX, which EDN readers refuse. This
// rewrites every such bare integer (outside strings) as #cairn/u64 "N", which
// ToValue turns into a ref.
std::string TagBigIntegers(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  bool in_string = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < body.size()) {
        out += body[++i];
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      out += c;
      continue;
    }
    bool at_token_start = i == 0 || IsDelimiter(body[i - 1]);
    if (at_token_start && c >= '0' && c <= '9') {
      size_t j = i;
      while (j < body.size() && body[j] >= '0' && body[j] <= '9') ++j;
      std::string_view digits = body.substr(i, j - i);
      bool whole = j == body.size() || IsDelimiter(body[j]);
      constexpr std::string_view kInt64Max = "9223372036854775807";
      bool big = digits.size() > kInt64Max.size() || (digits.size() == kInt64Max.size() && digits > kInt64Max);
      if (whole && big) {
        out += "#" + std::string(kU64Tag) + " \"" + std::string(digits) + "\"";
        i = j - 1;
        continue;
      }
      out.append(digits);
      i = j - 1;
      continue;
    }
    out += c;
  }
  return out;
}

// Reads a response body. A set at the top (a relation) is read as a vector,
// because a relation with :with may print equal rows twice.
Result<Edn> ReadBody(std::string_view body) {
  std::string text = TagBigIntegers(body);
  size_t start = text.find_first_not_of(" \t\r\n");
  if (start != std::string::npos && text.compare(start, 2, "#{") == 0) {
    size_t end = text.find_last_not_of(" \t\r\n");
    if (end != std::string::npos && text[end] == '}') {
      text[start] = ' ';
      text[start + 1] = '[';
      text[end] = ']';
    }
  }
  return ReadEdn(text);
}

// A #cairn/u64 "N" node's number, if `e` is one.
std::optional<uint64_t> U64(const Edn& e) {
  if (!e.is(Edn::Kind::kTagged) || e.text != kU64Tag || e.items.size() != 1 || !e.items[0].is(Edn::Kind::kString)) {
    return std::nullopt;
  }
  return std::strtoull(e.items[0].text.c_str(), nullptr, 10);
}

// EdnToValue that also understands #cairn/u64 (a transaction entity: a ref).
Result<Value> ToValue(const Edn& e) {
  if (auto u = U64(e)) return Value::Ref(EntityId{*u});
  if (e.is(Edn::Kind::kVector)) {
    std::vector<Value> items;
    for (const Edn& x : e.items) {
      CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(x));
      items.push_back(std::move(v));
    }
    return Value::Tuple(std::move(items));
  }
  if (e.is(Edn::Kind::kMap)) {
    std::vector<std::pair<Value, Value>> entries;
    for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
      CAIRN_ASSIGN_OR_RETURN(Value k, ToValue(e.items[i]));
      CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(e.items[i + 1]));
      entries.emplace_back(std::move(k), std::move(v));
    }
    return Value::Map(std::move(entries));
  }
  return EdnToValue(e);
}

// An integer that is an entity id: plain or #cairn/u64.
std::optional<uint64_t> EntityNumber(const Edn& e) {
  if (e.is(Edn::Kind::kInt) && e.i >= 0) return static_cast<uint64_t>(e.i);
  return U64(e);
}

Result<std::vector<Value>> RowFromEdn(const Edn& row, const QueryResult& shape) {
  std::vector<Value> out;
  if (shape.key_kind != QueryResult::KeyKind::kNone) {
    if (!row.is(Edn::Kind::kMap)) return Status::InvalidArgument(row.Where() + ": expected a map row");
    for (const std::string& column : shape.columns) {
      const Edn* found = nullptr;
      for (size_t i = 0; i + 1 < row.items.size(); i += 2) {
        const Edn& k = row.items[i];
        bool match = (shape.key_kind == QueryResult::KeyKind::kKeys && k.is(Edn::Kind::kKeyword) && k.text == column) ||
                     (shape.key_kind == QueryResult::KeyKind::kStrs && k.is(Edn::Kind::kString) && k.text == column) ||
                     (shape.key_kind == QueryResult::KeyKind::kSyms && k.is(Edn::Kind::kSymbol) && k.text == column);
        if (match) found = &row.items[i + 1];
      }
      if (found == nullptr) return Status::InvalidArgument(row.Where() + ": row has no key " + column);
      CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(*found));
      out.push_back(std::move(v));
    }
    return out;
  }
  if (!row.is(Edn::Kind::kVector)) return Status::InvalidArgument(row.Where() + ": expected a vector row");
  for (const Edn& cell : row.items) {
    CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(cell));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

std::string JsonString(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

std::string TransactBody(std::string_view tx_edn, std::string_view request_id, TxTime min_t) {
  std::string out = "{\"tx-data\": " + JsonString(tx_edn) + ", \"request-id\": " + JsonString(request_id);
  if (min_t.valid()) out += ", \"min-t\": " + std::to_string(min_t.raw);
  return out + "}";
}

std::string QueryBody(std::string_view query, const std::vector<std::string>& args, const QueryParams& params) {
  std::string out = "{\"query\": " + JsonString(query);
  if (!args.empty()) {
    out += ", \"args\": [";
    for (size_t i = 0; i < args.size(); ++i) out += (i > 0 ? ", " : "") + JsonString(args[i]);
    out += "]";
  }
  if (params.as_of) out += ", \"as-of\": " + std::to_string(params.as_of->raw);
  if (params.since) out += ", \"since\": " + std::to_string(params.since->raw);
  if (params.history) out += ", \"history\": true";
  if (!params.consistency.empty()) out += ", \"consistency\": " + JsonString(params.consistency);
  return out + "}";
}

Status ErrorFromResponse(int http_status, std::string_view body) {
  std::string code, message;
  if (Result<Edn> edn = ReadEdn(body); edn.ok()) {
    if (const Edn* err = MapGet(*edn, "error")) {
      const Edn* c = MapGet(*err, "code");
      const Edn* m = MapGet(*err, "message");
      if (c && (c->is(Edn::Kind::kString) || c->is(Edn::Kind::kKeyword))) code = c->text;
      if (m && m->is(Edn::Kind::kString)) message = m->text;
    }
  }
  if (code.empty() && message.empty()) {
    // A JSON error body or something else entirely: keep it readable.
    message = std::string(body.substr(0, 500));
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) message.pop_back();
    if (message.empty()) message = "HTTP " + std::to_string(http_status);
  }
  if (code == "invalid_argument" || code == "cross_shard" || code == "bad_request") {
    return Status::InvalidArgument(message);
  }
  if (code == "not_found") return Status::NotFound(message);
  if (code == "conflict") return Status::Conflict(message);
  if (code == "not_leader") return Status::NotLeader(message);
  if (code == "wrong_shard") return Status::WrongShard(message);
  if (code == "unavailable") return Status::Unavailable(message);
  if (code == "timeout") return Status::Timeout(message);
  if (code == "cancelled") return Status::Cancelled(message);
  if (code == "corruption") return Status::Corruption(message);
  if (code == "io_error") return Status::IOError(message);
  switch (http_status) {
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::Conflict(message);
    case 503:
      return Status::Unavailable(message);
    case 504:
      return Status::Timeout(message);
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return Status::InvalidArgument(message);
  return Status::Internal("HTTP " + std::to_string(http_status) + ": " + message);
}

Result<TxReport> ParseTxReport(std::string_view body) {
  Result<Edn> edn = ReadBody(body);
  if (!edn.ok()) return Malformed("transaction report is not EDN: " + edn.status().message(), body);
  const Edn* t = MapGet(*edn, "t");
  if (t == nullptr || !t->is(Edn::Kind::kInt)) return Malformed("transaction report without :t", body);
  TxReport report;
  report.t = TxTime{static_cast<uint64_t>(t->i)};
  if (const Edn* tempids = MapGet(*edn, "tempids")) {
    if (!tempids->is(Edn::Kind::kMap)) return Malformed(":tempids is not a map", body);
    for (size_t i = 0; i + 1 < tempids->items.size(); i += 2) {
      const Edn& k = tempids->items[i];
      const Edn& v = tempids->items[i + 1];
      if (!k.is(Edn::Kind::kString) || !v.is(Edn::Kind::kInt)) return Malformed(":tempids entry", body);
      report.tempids[k.text] = EntityId{static_cast<uint64_t>(v.i)};
    }
  }
  if (const Edn* datoms = MapGet(*edn, "tx-data")) {
    Result<std::vector<Datom>> parsed = DatomsFromEdn(*datoms);
    if (!parsed.ok()) return Malformed(":tx-data: " + parsed.status().message(), body);
    report.datoms = std::move(*parsed);
  }
  if (const Edn* dup = MapGet(*edn, "duplicate"); dup != nullptr && dup->is(Edn::Kind::kBool)) {
    report.duplicate = dup->b;
  }
  return report;
}

Result<QueryResult> ParseQueryResult(std::string_view query, std::string_view body) {
  CAIRN_ASSIGN_OR_RETURN(datalog::Query parsed, datalog::ParseQuery(query));
  QueryResult result;
  result.shape = parsed.shape;
  result.key_kind = parsed.key_kind;
  for (size_t i = 0; i < parsed.find.size(); ++i) {
    result.columns.push_back(parsed.keys.empty() || i >= parsed.keys.size() ? parsed.find[i].text : parsed.keys[i]);
  }
  Result<Edn> edn = ReadBody(body);
  if (!edn.ok()) return Malformed("query result is not EDN: " + edn.status().message(), body);
  const Edn& form = *edn;
  switch (result.shape) {
    case QueryResult::Shape::kScalar: {
      if (form.is(Edn::Kind::kNil)) return result;
      Result<Value> v = ToValue(form);
      if (!v.ok()) return Malformed(v.status().message(), body);
      result.rows.push_back({std::move(*v)});
      return result;
    }
    case QueryResult::Shape::kTuple: {
      if (form.is(Edn::Kind::kNil)) return result;
      Result<std::vector<Value>> row = RowFromEdn(form, result);
      if (!row.ok()) return Malformed(row.status().message(), body);
      result.rows.push_back(std::move(*row));
      return result;
    }
    case QueryResult::Shape::kCollection: {
      if (!form.is(Edn::Kind::kVector)) return Malformed("a collection result must be a vector", body);
      for (const Edn& item : form.items) {
        Result<Value> v = ToValue(item);
        if (!v.ok()) return Malformed(v.status().message(), body);
        result.rows.push_back({std::move(*v)});
      }
      return result;
    }
    case QueryResult::Shape::kRelation:
      break;
  }
  if (!form.is(Edn::Kind::kVector) && !form.is(Edn::Kind::kList)) {
    return Malformed("a relation result must be a set or a list", body);
  }
  for (const Edn& item : form.items) {
    Result<std::vector<Value>> row = RowFromEdn(item, result);
    if (!row.ok()) return Malformed(row.status().message(), body);
    result.rows.push_back(std::move(*row));
  }
  return result;
}

Result<std::vector<Datom>> ParseDatoms(std::string_view body) {
  Result<Edn> edn = ReadBody(body);
  if (!edn.ok()) return Malformed("datoms are not EDN: " + edn.status().message(), body);
  const Edn* datoms = MapGet(*edn, "datoms");
  if (datoms == nullptr) return Malformed("no :datoms", body);
  Result<std::vector<Datom>> parsed = DatomsFromEdn(*datoms);
  if (!parsed.ok()) return Malformed(parsed.status().message(), body);
  return parsed;
}

Result<uint64_t> StatusNumber(std::string_view body, std::string_view key) {
  Result<Edn> edn = ReadEdn(body);
  if (!edn.ok()) return Malformed("status is not EDN: " + edn.status().message(), body);
  const Edn* v = MapGet(*edn, key);
  if (v == nullptr || !v->is(Edn::Kind::kInt) || v->i < 0) {
    return Malformed("status has no :" + std::string(key), body);
  }
  return static_cast<uint64_t>(v->i);
}

std::string UrlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace cairn::client
