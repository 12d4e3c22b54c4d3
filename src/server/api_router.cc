// The HTTP API's endpoints. nlohmann::json stays in this file.
#include "server/api_router.h"

#include <charconv>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/edn.h"

namespace cairn::server {
namespace {

using Json = nlohmann::json;

constexpr std::string_view kVersion = "0.1.0";

// ---------------------------------------------------------------- errors

struct HttpError {
  int status;
  std::string code;
  std::string message;
};

HttpError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      // The coordinator marks a transaction spanning shards this way.
      if (s.message().rfind("cross_shard", 0) == 0) return {400, "cross_shard", s.message()};
      return {400, "invalid_argument", s.message()};
    case StatusCode::kNotFound:
      return {404, "not_found", s.message()};
    case StatusCode::kConflict:
      return {409, "conflict", s.message()};
    case StatusCode::kNotLeader:
      return {503, "not_leader", s.message()};
    case StatusCode::kWrongShard:
      return {503, "wrong_shard", s.message()};
    case StatusCode::kUnavailable:
      return {503, "unavailable", s.message()};
    case StatusCode::kTimeout:
      return {504, "timeout", s.message()};
    case StatusCode::kCancelled:
      return {504, "cancelled", s.message()};
    case StatusCode::kCorruption:
      return {500, "corruption", s.message()};
    case StatusCode::kIOError:
      return {500, "io_error", s.message()};
    case StatusCode::kInternal:
    case StatusCode::kOk:
      break;
  }
  return {500, "internal", s.message()};
}

HttpError BadRequest(std::string message) { return {400, "invalid_argument", std::move(message)}; }

// ---------------------------------------------------------------- values

Json ValueJson(const Value& v) {
  switch (v.type()) {
    case ValueType::kNil:
      return nullptr;
    case ValueType::kBool:
      return v.as_bool();
    case ValueType::kLong:
      return v.as_long();
    case ValueType::kDouble:
      return v.as_double();
    case ValueType::kString:
      return v.as_string();
    case ValueType::kKeyword:
      return v.as_keyword().ToString();
    case ValueType::kRef:
      return v.as_ref().raw;
    case ValueType::kUuid:
      return v.as_uuid().ToString();
    case ValueType::kInstant:
    case ValueType::kBytes:
      return v.ToString();  // #inst "..." / #bytes "..."
    case ValueType::kTuple: {
      Json arr = Json::array();
      for (const auto& x : v.as_tuple()) arr.push_back(ValueJson(x));
      return arr;
    }
    case ValueType::kMap: {
      Json obj = Json::object();
      for (const auto& [k, x] : v.as_map()) {
        std::string key = k.type() == ValueType::kKeyword  ? k.as_keyword().ToString()
                          : k.type() == ValueType::kString ? k.as_string()
                                                           : k.ToString();
        obj[key] = ValueJson(x);
      }
      return obj;
    }
  }
  return nullptr;
}

Json DatomJson(const Datom& d) { return Json::array({d.e.raw, d.a.ToString(), ValueJson(d.v), d.tx.raw, d.added}); }

std::string DatomEdn(const Datom& d) {
  return "[" + std::to_string(d.e.raw) + " " + d.a.ToString() + " " + d.v.ToString() + " " + std::to_string(d.tx.raw) +
         " " + (d.added ? "true" : "false") + "]";
}

std::string DatomsEdn(const std::vector<Datom>& datoms) {
  std::string out = "[";
  for (size_t i = 0; i < datoms.size(); ++i) {
    if (i > 0) out += "\n ";
    out += DatomEdn(datoms[i]);
  }
  return out + "]";
}

// A JSON value as EDN text. Top-level strings are EDN text already (the
// caller's choice); nested strings are string values.
std::string JsonToEdn(const Json& j, bool top_level) {
  switch (j.type()) {
    case Json::value_t::null:
      return "nil";
    case Json::value_t::boolean:
      return j.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
      return std::to_string(j.get<int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(j.get<uint64_t>());
    case Json::value_t::number_float: {
      std::string s = j.dump();
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      return s;
    }
    case Json::value_t::string:
      return top_level ? j.get<std::string>() : Value::String(j.get<std::string>()).ToString();
    case Json::value_t::array: {
      std::string out = "[";
      for (const auto& x : j) out += JsonToEdn(x, false) + " ";
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      for (const auto& [k, x] : j.items()) {
        out += (!k.empty() && k[0] == ':') ? k : Value::String(k).ToString();
        out += " " + JsonToEdn(x, false) + " ";
      }
      return out + "}";
    }
    default:
      return "nil";
  }
}

// "line:column" of a byte offset (1-based) in `text`.
std::string LineColumn(std::string_view text, size_t byte) {
  int line = 1, col = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

// Deeper JSON would let a request exhaust a worker's stack in the recursive
// conversions below; EDN has the same limit (src/core/edn.h).
constexpr int kJsonDepthMax = 512;
struct TooDeep {};

Result<Json> ParseJson(std::string_view body) {
  try {
    return Json::parse(body, [](int depth, Json::parse_event_t, Json&) {
      if (depth > kJsonDepthMax) throw TooDeep{};
      return true;
    });
  } catch (const TooDeep&) {
    return Status::InvalidArgument("malformed JSON: nesting deeper than " + std::to_string(kJsonDepthMax) + " levels");
  } catch (const Json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    std::string what = e.what();
    size_t colon = what.find(": ");
    std::string detail = colon == std::string::npos ? what : what.substr(colon + 2);
    return Status::InvalidArgument("malformed JSON at " + LineColumn(body, e.byte) + ": " + detail);
  } catch (const Json::exception& e) {
    return Status::InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
}

Result<TxTime> ParseT(std::string_view text, std::string_view what) {
  uint64_t raw = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), raw);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || raw > TxTime::Max().raw) {
    return Status::InvalidArgument(std::string(what) + ": expected a time t (a non-negative integer), got '" +
                                   std::string(text) + "'");
  }
  return TxTime{raw};
}

Result<TxTime> JsonT(const Json& j, std::string_view what) {
  if (j.is_number_unsigned()) return TxTime{j.get<uint64_t>()};
  if (j.is_number_integer() && j.get<int64_t>() >= 0) return TxTime{static_cast<uint64_t>(j.get<int64_t>())};
  if (j.is_string()) return ParseT(j.get<std::string>(), what);
  return Status::InvalidArgument(std::string(what) + ": expected a time t (a non-negative integer), got " + j.dump());
}

Result<TxTime> EdnT(const Edn& e, std::string_view what) {
  if (e.is(Edn::Kind::kInt) && e.i >= 0) return TxTime{static_cast<uint64_t>(e.i)};
  return Status::InvalidArgument(e.Where() + ": " + std::string(what) + ": expected a time t (a non-negative integer)");
}

// ---------------------------------------------------------------- request helpers

bool IsEdnType(std::string_view content_type) {
  std::string_view base = content_type.substr(0, content_type.find(';'));
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  return base == "application/edn";
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQueryString(std::string_view qs) {
  std::map<std::string, std::string> params;
  while (!qs.empty()) {
    size_t amp = qs.find('&');
    std::string_view part = qs.substr(0, amp);
    size_t eq = part.find('=');
    std::string key = PercentDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1));
    if (!key.empty()) params[key] = value;
    if (amp == std::string_view::npos) break;
    qs.remove_prefix(amp + 1);
  }
  return params;
}

Status CheckKnownParams(const std::map<std::string, std::string>& params,
                        std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : params) {
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) return Status::InvalidArgument("unknown query parameter '" + key + "'");
  }
  return Status::OK();
}

// ---------------------------------------------------------------- endpoint bodies

struct Reply {
  std::string json_body;  // used unless EDN was asked for
  std::string edn_body;
};

// JSON {"tx-data": "<EDN>", "request-id": "...", "min-t": t}; EDN: a bare
// vector of forms, or {:tx-data [...] :request-id "..." :min-t t}.
Result<TransactRequest> TxRequestFromBody(const HttpRequest& req) {
  TransactRequest tr;
  if (IsEdnType(req.content_type)) {
    CAIRN_ASSIGN_OR_RETURN(Edn form, ReadEdn(req.body));
    if (!form.is(Edn::Kind::kMap)) {
      tr.tx_edn = req.body;
      return tr;
    }
    bool has_tx = false;
    for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
      const Edn& k = form.items[i];
      const Edn& v = form.items[i + 1];
      if (k.IsKeyword("tx-data")) {
        tr.tx_edn = v.is(Edn::Kind::kString) ? v.text : WriteEdn(v);
        has_tx = true;
      } else if (k.IsKeyword("request-id")) {
        if (!v.is(Edn::Kind::kString)) return Status::InvalidArgument(v.Where() + ": transact: :request-id must be a string");
        tr.request_id = v.text;
      } else if (k.IsKeyword("min-t")) {
        if (!v.is(Edn::Kind::kNil)) {
          CAIRN_ASSIGN_OR_RETURN(tr.min_t, EdnT(v, "transact: :min-t"));
        }
      } else {
        return Status::InvalidArgument(k.Where() + ": transact: unknown key " + WriteEdn(k) +
                                       " (expected :tx-data :request-id :min-t)");
      }
    }
    if (!has_tx) return Status::InvalidArgument("transact: missing key :tx-data");
    return tr;
  }
  CAIRN_ASSIGN_OR_RETURN(Json body, ParseJson(req.body));
  if (!body.is_object())
    return Status::InvalidArgument("transact: the JSON body must be an object {\"tx-data\": \"<EDN>\"}");
  for (const auto& [k, v] : body.items()) {
    if (k != "tx-data" && k != "request-id" && k != "min-t") {
      return Status::InvalidArgument("transact: unknown field '" + k + "' (expected tx-data, request-id, min-t)");
    }
  }
  auto it = body.find("tx-data");
  if (it == body.end()) return Status::InvalidArgument("transact: missing field 'tx-data'");
  if (!it->is_string()) return Status::InvalidArgument("transact: 'tx-data' must be a string of EDN");
  tr.tx_edn = it->get<std::string>();
  if (auto rid = body.find("request-id"); rid != body.end() && !rid->is_null()) {
    if (!rid->is_string()) return Status::InvalidArgument("transact: 'request-id' must be a string");
    tr.request_id = rid->get<std::string>();
  }
  if (auto mt = body.find("min-t"); mt != body.end() && !mt->is_null()) {
    CAIRN_ASSIGN_OR_RETURN(tr.min_t, JsonT(*mt, "transact: 'min-t'"));
  }
  if (tr.request_id.size() > 256) return Status::InvalidArgument("transact: 'request-id' is longer than 256 bytes");
  return tr;
}

Result<QueryRequest> QueryFromJson(std::string_view text) {
  CAIRN_ASSIGN_OR_RETURN(Json body, ParseJson(text));
  if (!body.is_object())
    return Status::InvalidArgument("query: the JSON body must be an object {\"query\": \"<EDN>\"}");
  QueryRequest q;
  bool has_query = false;
  for (const auto& [k, v] : body.items()) {
    if (k == "query") {
      if (!v.is_string()) return Status::InvalidArgument("query: 'query' must be a string of EDN");
      q.query = v.get<std::string>();
      has_query = true;
    } else if (k == "args") {
      if (!v.is_array()) return Status::InvalidArgument("query: 'args' must be an array");
      for (const auto& a : v) q.args.push_back(JsonToEdn(a, true));
    } else if (k == "as-of") {
      if (!v.is_null()) {
        CAIRN_ASSIGN_OR_RETURN(q.as_of, JsonT(v, "as-of"));
      }
    } else if (k == "since") {
      if (!v.is_null()) {
        CAIRN_ASSIGN_OR_RETURN(q.since, JsonT(v, "since"));
      }
    } else if (k == "history") {
      if (!v.is_boolean()) return Status::InvalidArgument("query: 'history' must be true or false");
      q.history = v.get<bool>();
    } else if (k == "consistency") {
      if (!v.is_string()) return Status::InvalidArgument("query: 'consistency' must be a string");
      CAIRN_ASSIGN_OR_RETURN(q.consistency, ParseConsistency(v.get<std::string>()));
    } else {
      return Status::InvalidArgument("query: unknown field '" + k +
                                     "' (expected query, args, as-of, since, history, consistency)");
    }
  }
  if (!has_query) return Status::InvalidArgument("query: missing field 'query'");
  return q;
}

// EDN body: either the query itself ([:find ...] or {:find ...}) or a map
// {:query <query> :args [...] :as-of t :since t :history bool :consistency "..."}.
Result<QueryRequest> QueryFromEdn(std::string_view text) {
  CAIRN_ASSIGN_OR_RETURN(Edn form, ReadEdn(text));
  QueryRequest q;
  bool envelope = false;
  if (form.is(Edn::Kind::kMap)) {
    for (size_t i = 0; i + 1 < form.items.size(); i += 2) envelope = envelope || form.items[i].IsKeyword("query");
  }
  if (!envelope) {
    q.query = std::string(text);
    return q;
  }
  for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
    const Edn& k = form.items[i];
    const Edn& v = form.items[i + 1];
    if (k.IsKeyword("query")) {
      q.query = v.is(Edn::Kind::kString) ? v.text : WriteEdn(v);
    } else if (k.IsKeyword("args")) {
      if (!v.is(Edn::Kind::kVector) && !v.is(Edn::Kind::kList)) {
        return Status::InvalidArgument(v.Where() + ": query: :args must be a vector");
      }
      for (const Edn& a : v.items) q.args.push_back(WriteEdn(a));
    } else if (k.IsKeyword("as-of")) {
      if (!v.is(Edn::Kind::kNil)) {
        CAIRN_ASSIGN_OR_RETURN(q.as_of, EdnT(v, ":as-of"));
      }
    } else if (k.IsKeyword("since")) {
      if (!v.is(Edn::Kind::kNil)) {
        CAIRN_ASSIGN_OR_RETURN(q.since, EdnT(v, ":since"));
      }
    } else if (k.IsKeyword("history")) {
      if (!v.is(Edn::Kind::kBool))
        return Status::InvalidArgument(v.Where() + ": query: :history must be true or false");
      q.history = v.b;
    } else if (k.IsKeyword("consistency")) {
      if (!v.is(Edn::Kind::kString) && !v.is(Edn::Kind::kKeyword)) {
        return Status::InvalidArgument(v.Where() + ": query: :consistency must be a string or keyword");
      }
      CAIRN_ASSIGN_OR_RETURN(q.consistency, ParseConsistency(v.text));
    } else {
      return Status::InvalidArgument(k.Where() + ": query: unknown key " + WriteEdn(k) +
                                     " (expected :query :args :as-of :since :history :consistency)");
    }
  }
  return q;
}

std::string_view ShapeName(QueryResult::Shape s) {
  switch (s) {
    case QueryResult::Shape::kRelation:
      return "relation";
    case QueryResult::Shape::kCollection:
      return "collection";
    case QueryResult::Shape::kTuple:
      return "tuple";
    case QueryResult::Shape::kScalar:
      return "scalar";
  }
  return "relation";
}

Result<IndexType> ParseIndex(std::string_view name) {
  if (name == "eavt") return IndexType::kEavt;
  if (name == "aevt") return IndexType::kAevt;
  if (name == "avet") return IndexType::kAvet;
  if (name == "vaet") return IndexType::kVaet;
  return Status::InvalidArgument("datoms: unknown index '" + std::string(name) +
                                 "' (expected eavt, aevt, avet or vaet)");
}

// A component given as EDN text in query parameter `param`.
Result<Value> ComponentValue(const std::string& param, const std::string& text, bool entity) {
  Result<Edn> edn = ReadEdn(text);
  if (!edn.ok()) return edn.status().WithContext("datoms: parameter '" + param + "'");
  Result<Value> v = EdnToValue(*edn);
  if (!v.ok()) return v.status().WithContext("datoms: parameter '" + param + "'");
  if (entity && v->type() == ValueType::kLong) {
    if (v->as_long() <= 0) return Status::InvalidArgument("datoms: parameter '" + param + "': not an entity id");
    return Value::Ref(EntityId{static_cast<uint64_t>(v->as_long())});
  }
  if (param == "a" && v->type() != ValueType::kKeyword) {
    return Status::InvalidArgument("datoms: parameter 'a' must be an attribute keyword such as :user/name");
  }
  return v;
}

// The cluster contract's /v1/status shape.
Json GroupJson(const GroupStatusInfo& g, bool shard) {
  Json j = {{"leader", g.leader},          {"role", g.role},
            {"term", g.term},              {"commit_index", g.commit_index},
            {"applied_index", g.applied_index}, {"latest_t", g.last_t.raw},
            {"closed_t", g.closed_t.raw}, {"snapshot_index", g.snapshot_index}};
  if (!g.snapshot_error.empty()) j["snapshot_error"] = g.snapshot_error;
  if (shard) {
    j["shard"] = g.group;
    Json replicas = Json::array();
    for (const ReplicaLag& r : g.replicas) {
      replicas.push_back({{"node", r.node}, {"match_index", r.match_index}, {"lag", r.lag}});
    }
    j["replicas"] = replicas;
  } else {
    j["group"] = g.group;
  }
  return j;
}

Json ClusterStatusJson(const BackendStatus& s) {
  Json nodes = Json::array();
  for (const NodeStatus& n : s.nodes) {
    nodes.push_back({{"id", n.id}, {"http", n.http}, {"peer", n.peer}, {"live", n.live}});
  }
  Json shards = Json::array();
  for (const GroupStatusInfo& g : s.groups) shards.push_back(GroupJson(g, true));
  Json map = nullptr;
  if (s.map) {
    Json ms = Json::array();
    for (const MapStatus::Shard& sh : s.map->shards) {
      ms.push_back({{"shard", sh.shard}, {"replicas", sh.replicas}, {"leader_hint", sh.leader_hint}});
    }
    map = {{"version", s.map->version}, {"source", s.map->version == 0 ? "config" : "meta"}, {"shards", ms}};
  }
  return {{"version", kVersion},
          {"mode", "cluster"},
          {"node", s.node_id},
          {"latest_t", s.latest_t.raw},
          {"transactions", s.transactions},
          {"nodes", nodes},
          {"meta", s.meta ? GroupJson(*s.meta, false) : Json(nullptr)},
          {"shards", shards},
          {"map", map}};
}

std::string GroupEdn(const GroupStatusInfo& g, bool shard) {
  std::string out = shard ? "{:shard " + std::to_string(g.group) : "{:group " + std::to_string(g.group);
  out += " :leader " + std::to_string(g.leader) + " :role " + Value::String(g.role).ToString() + " :term " +
         std::to_string(g.term) + " :commit_index " + std::to_string(g.commit_index) + " :applied_index " +
         std::to_string(g.applied_index) + " :latest_t " + std::to_string(g.last_t.raw) + " :closed_t " +
         std::to_string(g.closed_t.raw) + " :snapshot_index " + std::to_string(g.snapshot_index);
  if (!g.snapshot_error.empty()) out += " :snapshot_error " + Value::String(g.snapshot_error).ToString();
  if (shard) {
    out += " :replicas [";
    for (const ReplicaLag& r : g.replicas) {
      out += "{:node " + std::to_string(r.node) + " :match_index " + std::to_string(r.match_index) + " :lag " +
             std::to_string(r.lag) + "}";
    }
    out += "]";
  }
  return out + "}";
}

std::string ClusterStatusEdn(const BackendStatus& s) {
  std::string out = "{:version " + Value::String(std::string(kVersion)).ToString() + " :mode \"cluster\" :node " +
                    std::to_string(s.node_id) + " :latest_t " + std::to_string(s.latest_t.raw) +
                    " :transactions " + std::to_string(s.transactions) + " :nodes [";
  for (const NodeStatus& n : s.nodes) {
    out += "{:id " + std::to_string(n.id) + " :http " + Value::String(n.http).ToString() + " :peer " +
           Value::String(n.peer).ToString() + " :live " + (n.live ? "true" : "false") + "}";
  }
  out += "] :meta " + (s.meta ? GroupEdn(*s.meta, false) : std::string("nil")) + " :shards [";
  for (const GroupStatusInfo& g : s.groups) out += GroupEdn(g, true);
  out += "]";
  if (s.map) {
    out += " :map {:version " + std::to_string(s.map->version) + " :source " +
           (s.map->version == 0 ? "\"config\"" : "\"meta\"") + " :shards [";
    for (const MapStatus::Shard& sh : s.map->shards) {
      out += "{:shard " + std::to_string(sh.shard) + " :replicas [";
      for (size_t i = 0; i < sh.replicas.size(); ++i) out += (i ? " " : "") + std::to_string(sh.replicas[i]);
      out += "] :leader_hint " + std::to_string(sh.leader_hint) + "}";
    }
    out += "]}";
  }
  return out + "}";
}

}  // namespace

// ---------------------------------------------------------------- router

ApiRouter::ApiRouter(Backend* backend, Metrics* metrics)
    : backend_(backend), metrics_(metrics), started_(std::chrono::steady_clock::now()) {}

HttpResponse ApiRouter::Error(int status, std::string_view code, std::string_view message, bool edn) {
  HttpResponse r;
  r.status = status;
  if (edn) {
    r.content_type = "application/edn";
    r.body = "{:error {:code " + Value::String(std::string(code)).ToString() + " :message " +
             Value::String(std::string(message)).ToString() + "}}\n";
  } else {
    Json j = {{"error", {{"code", code}, {"message", message}}}};
    r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  }
  return r;
}

namespace {
struct Route {
  std::string_view path;
  std::string_view method;
};
constexpr Route kRoutes[] = {
    {"/v1/transact", "POST"}, {"/v1/query", "POST"}, {"/v1/diff", "GET"}, {"/v1/datoms", "GET"},
    {"/v1/status", "GET"},    {"/health", "GET"},    {"/metrics", "GET"},
    {"/v1/cluster/meta", "POST"},
};
const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}
}  // namespace

std::string ApiRouter::RouteOf(std::string_view target) {
  const Route* r = FindRoute(target.substr(0, target.find('?')));
  return r ? std::string(r->path) : "other";
}

HttpResponse ApiRouter::TransactResponse(const Result<TransactResult>& result, bool want_edn, std::string route,
                                        bool send_t) {
  if (!result.ok()) {
    HttpError e = FromStatus(result.status());
    HttpResponse r = Error(e.status, e.code, e.message, want_edn);
    r.route = std::move(route);
    return r;
  }
  HttpResponse ok;
  ok.route = std::move(route);
  // After the backend call: covers every t the answer holds.
  if (send_t) {
    if (TxTime known = backend_->KnownTime(); known.valid()) ok.headers.emplace_back("Cairn-T", std::to_string(known.raw));
  }
  const TxReport& report = result->report;
  if (want_edn) {
    std::string edn = report.ToEdn();
    if (result->duplicate) edn.insert(edn.size() - 1, " :duplicate true");
    ok.content_type = "application/edn";
    ok.body = std::move(edn) + "\n";
    return ok;
  }
  Json tempids = Json::object();
  for (const auto& [name, e] : report.tempids) tempids[name] = e.raw;
  Json datoms = Json::array();
  for (const Datom& d : report.datoms) datoms.push_back(DatomJson(d));
  Json j = {{"t", report.t.raw}, {"tempids", tempids}, {"datoms", datoms}};
  if (result->duplicate) j["duplicate"] = true;
  ok.body = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return ok;
}

namespace {
bool IsTransact(const HttpRequest& req) {
  std::string_view target = req.target;
  return req.method == "POST" && target.substr(0, target.find('?')) == "/v1/transact";
}
bool WantsEdn(const HttpRequest& req) { return req.accept.find("application/edn") != std::string::npos; }
}  // namespace

Backend::TransactDone ApiRouter::TransactAnswer(bool want_edn, std::function<void(HttpResponse)> done) {
  return [this, want_edn, done = std::move(done)](Result<TransactResult> result) {
    done(TransactResponse(result, want_edn, "/v1/transact", true));
  };
}

void ApiRouter::HandleAsync(const HttpRequest& req, std::function<void(HttpResponse)> done) {
  if (!IsTransact(req)) return done(Handle(req));
  Result<TransactRequest> tx = TxRequestFromBody(req);
  Backend::TransactDone answer = TransactAnswer(WantsEdn(req), std::move(done));
  if (!tx.ok()) return answer(tx.status());
  backend_->TransactAsync(*tx, std::move(answer));
}

bool ApiRouter::TryHandleNow(const HttpRequest& req, std::function<void(HttpResponse)>& done) {
  if (!IsTransact(req)) return false;
  Result<TransactRequest> tx = TxRequestFromBody(req);
  if (!tx.ok()) return false;  // the worker answers the error
  Backend::TransactDone answer = TransactAnswer(WantsEdn(req), done);
  if (!backend_->TryTransactNow(*tx, answer)) return false;
  done = nullptr;
  return true;
}

HttpResponse ApiRouter::Handle(const HttpRequest& req) {
  const bool want_edn = WantsEdn(req);
  std::string_view target = req.target;
  size_t qmark = target.find('?');
  std::string_view path = target.substr(0, qmark);
  std::map<std::string, std::string> params = qmark == std::string_view::npos
                                                  ? std::map<std::string, std::string>{}
                                                  : ParseQueryString(target.substr(qmark + 1));

  const Route* route = FindRoute(path);

  auto fail = [&](const HttpError& e) {
    HttpResponse r = Error(e.status, e.code, e.message, want_edn);
    if (route) r.route = std::string(route->path);
    return r;
  };
  if (!route) return fail({404, "not_found", "no such endpoint: " + std::string(path)});
  if (req.method != route->method) {
    HttpResponse r = fail({405, "method_not_allowed",
                           std::string(path) + " accepts " + std::string(route->method) + ", not " + req.method});
    r.headers.emplace_back("Allow", std::string(route->method));
    return r;
  }
  HttpResponse ok;
  ok.route = std::string(route->path);
  auto reply = [&](const Json& json, std::string edn) {
    // After the backend call: covers every t the answer holds.
    if (path == "/v1/transact" || path == "/v1/query" || path == "/v1/datoms" || path == "/v1/diff") {
      if (TxTime known = backend_->KnownTime(); known.valid()) ok.headers.emplace_back("Cairn-T", std::to_string(known.raw));
    }
    if (want_edn) {
      ok.content_type = "application/edn";
      ok.body = std::move(edn) + "\n";
    } else {
      ok.body = json.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    }
    return ok;
  };

  if (path == "/v1/transact" || path == "/v1/cluster/meta") {
    Result<TransactRequest> tx = TxRequestFromBody(req);
    if (!tx.ok()) return fail(FromStatus(tx.status()));
    Result<TransactResult> result = path == "/v1/transact" ? backend_->Transact(*tx) : backend_->MetaTransact(*tx);
    return TransactResponse(result, want_edn, std::string(route->path), path == "/v1/transact");
  }

  if (path == "/v1/query") {
    Result<QueryRequest> q = IsEdnType(req.content_type) ? QueryFromEdn(req.body) : QueryFromJson(req.body);
    if (!q.ok()) return fail(FromStatus(q.status()));
    Result<QueryResult> result = backend_->Query(*q);
    if (!result.ok()) return fail(FromStatus(result.status()));
    Json rows = Json::array();
    for (const auto& row : result->rows) {
      Json r = Json::array();
      for (const Value& v : row) r.push_back(ValueJson(v));
      rows.push_back(std::move(r));
    }
    return reply({{"shape", ShapeName(result->shape)}, {"columns", result->columns}, {"rows", rows}}, result->ToEdn());
  }

  if (path == "/v1/diff") {
    if (Status s = CheckKnownParams(params, {"from", "to"}); !s.ok()) return fail(FromStatus(s));
    auto from_it = params.find("from");
    if (from_it == params.end()) return fail(BadRequest("diff: missing query parameter 'from'"));
    Result<TxTime> from = ParseT(from_it->second, "diff: from");
    if (!from.ok()) return fail(FromStatus(from.status()));
    TxTime to;
    if (auto to_it = params.find("to"); to_it != params.end()) {
      Result<TxTime> parsed = ParseT(to_it->second, "diff: to");
      if (!parsed.ok()) return fail(FromStatus(parsed.status()));
      to = *parsed;
    } else {
      to = backend_->GetStatus().latest_t;
    }
    Result<std::vector<Datom>> datoms = backend_->Diff(*from, to);
    if (!datoms.ok()) return fail(FromStatus(datoms.status()));
    Json arr = Json::array();
    for (const Datom& d : *datoms) arr.push_back(DatomJson(d));
    return reply({{"from", from->raw}, {"to", to.raw}, {"datoms", arr}}, "{:from " + std::to_string(from->raw) +
                                                                             " :to " + std::to_string(to.raw) +
                                                                             " :datoms " + DatomsEdn(*datoms) + "}");
  }

  if (path == "/v1/datoms") {
    if (Status s = CheckKnownParams(params, {"index", "e", "a", "v", "as-of", "limit"}); !s.ok()) {
      return fail(FromStatus(s));
    }
    DatomsRequest dr;
    std::string index_name = params.count("index") ? params["index"] : "eavt";
    Result<IndexType> index = ParseIndex(index_name);
    if (!index.ok()) return fail(FromStatus(index.status()));
    dr.index = *index;
    // The order of components per index; entity positions take integers as ids.
    std::vector<std::string> order;
    switch (dr.index) {
      case IndexType::kEavt:
        order = {"e", "a", "v"};
        break;
      case IndexType::kAevt:
        order = {"a", "e", "v"};
        break;
      case IndexType::kAvet:
        order = {"a", "v", "e"};
        break;
      case IndexType::kVaet:
        order = {"v", "a", "e"};
        break;
    }
    bool gap = false;
    std::string missing;
    for (const std::string& name : order) {
      auto it = params.find(name);
      if (it == params.end()) {
        if (!gap) missing = name;
        gap = true;
        continue;
      }
      if (gap) {
        return fail(BadRequest("datoms: index " + index_name + " needs '" + missing + "' before '" + name +
                               "' (components are a prefix of " + order[0] + "," + order[1] + "," + order[2] + ")"));
      }
      bool entity = name == "e" || (name == "v" && dr.index == IndexType::kVaet);
      Result<Value> v = ComponentValue(name, it->second, entity);
      if (!v.ok()) return fail(FromStatus(v.status()));
      dr.components.push_back(*v);
    }
    if (auto it = params.find("as-of"); it != params.end()) {
      Result<TxTime> t = ParseT(it->second, "datoms: as-of");
      if (!t.ok()) return fail(FromStatus(t.status()));
      dr.as_of = *t;
    }
    if (auto it = params.find("limit"); it != params.end()) {
      size_t limit = 0;
      auto [ptr, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), limit);
      if (ec != std::errc() || ptr != it->second.data() + it->second.size() || limit == 0 || limit > 1000000) {
        return fail(BadRequest("datoms: limit must be an integer in 1..1000000, got '" + it->second + "'"));
      }
      dr.limit = limit;
    }
    Result<DatomsResult> result = backend_->Datoms(dr);
    if (!result.ok()) return fail(FromStatus(result.status()));
    Json arr = Json::array();
    for (const Datom& d : result->datoms) arr.push_back(DatomJson(d));
    return reply({{"index", index_name}, {"datoms", arr}, {"truncated", result->truncated}},
                 "{:index :" + index_name + " :truncated " + (result->truncated ? "true" : "false") + " :datoms " +
                     DatomsEdn(result->datoms) + "}");
  }

  if (path == "/v1/status") {
    BackendStatus s = backend_->GetStatus();
    if (s.mode == "cluster") return reply(ClusterStatusJson(s), ClusterStatusEdn(s));
    double uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    Json shards = Json::array();
    std::string shards_edn = "[";
    for (const ShardStatus& sh : s.shards) {
      shards.push_back({{"shard", sh.shard},
                        {"leader", sh.leader},
                        {"term", sh.term},
                        {"commit-index", sh.commit_index},
                        {"applied-index", sh.applied_index}});
      shards_edn += "{:shard " + std::to_string(sh.shard) + " :leader " + (sh.leader ? "true" : "false") + " :term " +
                    std::to_string(sh.term) + " :commit-index " + std::to_string(sh.commit_index) + " :applied-index " +
                    std::to_string(sh.applied_index) + "}";
    }
    shards_edn += "]";
    Json j = {{"version", kVersion},
              {"mode", s.mode},
              {"path", s.path},
              {"latest-t", s.latest_t.raw},
              {"datoms", s.datoms},
              {"transactions", s.transactions},
              {"size-bytes", s.size_bytes},
              {"uptime-s", uptime_s},
              {"connections", metrics_->connections_open()},
              {"shards", shards}};
    std::string edn = "{:version " + Value::String(std::string(kVersion)).ToString() + " :mode " +
                      Value::String(s.mode).ToString() + " :path " + Value::String(s.path).ToString() + " :latest-t " +
                      std::to_string(s.latest_t.raw) + " :datoms " + std::to_string(s.datoms) + " :transactions " +
                      std::to_string(s.transactions) + " :size-bytes " + std::to_string(s.size_bytes) + " :shards " +
                      shards_edn + "}";
    return reply(j, edn);
  }

  if (path == "/health") {
    Status h = backend_->Health();
    if (!h.ok()) {
      HttpError e = FromStatus(h);
      if (e.status < 500) e.status = 503;
      return fail(e);
    }
    return reply({{"status", "ok"}}, "{:status \"ok\"}");
  }

  // /metrics
  ok.content_type = "text/plain; version=0.0.4; charset=utf-8";
  ok.body = metrics_->RenderPrometheus(backend_->GetStatus());
  return ok;
}

}  // namespace cairn::server
