// Db::q, Db::pull, Db::pull_many and QueryResult::ToEdn over the Datalog
// engine (src/datalog). The engine has no clock: a query's :timeout becomes a
// deadline on the steady clock here, polled by the engine via `cancelled`.
#include <chrono>

#include "api/db_impl.h"
#include "cairn/database.h"
#include "cairn/query.h"
#include "core/edn.h"
#include "datalog/engine.h"
#include "datalog/parser.h"
#include "datalog/pull.h"

namespace cairn {

namespace {

Status NoSource() { return Status::Internal("Db has no index source"); }

std::string KeyText(QueryResult::KeyKind kind, const std::string& name) {
  switch (kind) {
    case QueryResult::KeyKind::kKeys: return ":" + name;
    case QueryResult::KeyKind::kStrs: return Value::String(name).ToString();
    default: return name;
  }
}

std::string RowEdn(const QueryResult& r, const std::vector<Value>& row) {
  std::string s;
  if (r.key_kind != QueryResult::KeyKind::kNone) {
    s = "{";
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) s += ", ";
      s += KeyText(r.key_kind, i < r.columns.size() ? r.columns[i] : "?") + " " + row[i].ToString();
    }
    return s + "}";
  }
  s = "[";
  for (size_t i = 0; i < row.size(); ++i) s += (i > 0 ? " " : "") + row[i].ToString();
  return s + "]";
}

}  // namespace

std::string QueryResult::ToEdn() const {
  switch (shape) {
    case Shape::kScalar:
      return rows.empty() || rows[0].empty() ? "nil" : rows[0][0].ToString();
    case Shape::kTuple:
      return rows.empty() ? "nil" : RowEdn(*this, rows[0]);
    case Shape::kCollection: {
      std::string s = "[";
      for (size_t i = 0; i < rows.size(); ++i) s += (i > 0 ? " " : "") + (rows[i].empty() ? "nil" : rows[i][0].ToString());
      return s + "]";
    }
    case Shape::kRelation:
    default: {
      bool maps = key_kind != KeyKind::kNone;
      std::string s = maps ? "(" : "#{";
      for (size_t i = 0; i < rows.size(); ++i) s += (i > 0 ? " " : "") + RowEdn(*this, rows[i]);
      return s + (maps ? ")" : "}");
    }
  }
}

namespace {

// Db::q and Db::explain: parse, bind the API inputs, run with the :timeout
// deadline, optionally recording the plan.
Result<QueryResult> RunApiQuery(const datalog::IndexSource* source, std::string_view query,
                                const std::vector<std::string>& args, datalog::Explain* explain) {
  CAIRN_ASSIGN_OR_RETURN(Edn qedn, ReadEdn(query));
  std::vector<Edn> arg_edns;
  arg_edns.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    auto a = ReadEdn(args[i]);
    if (!a.ok()) return a.status().WithContext("argument " + std::to_string(i + 1));
    arg_edns.push_back(std::move(*a));
  }
  CAIRN_ASSIGN_OR_RETURN(datalog::Query parsed, datalog::ParseQuery(qedn));
  CAIRN_ASSIGN_OR_RETURN(std::vector<datalog::Input> inputs,
                         datalog::BindApiInputs(qedn, source, std::move(arg_edns)));
  datalog::QueryOptions options;
  if (parsed.timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(*parsed.timeout_ms);
    options.cancelled = [deadline]() { return std::chrono::steady_clock::now() >= deadline; };
  }
  try {
    return datalog::RunQuery(qedn, inputs, options, explain);
  } catch (const std::exception& e) {
    return Status::Internal(std::string("query failed: ") + e.what());
  }
}

}  // namespace

Result<QueryResult> Db::q(std::string_view query, const std::vector<std::string>& args) const {
  if (impl_ == nullptr || impl_->source == nullptr) return NoSource();
  return RunApiQuery(impl_->source.get(), query, args, nullptr);
}

Result<std::string> Db::explain(std::string_view query, const std::vector<std::string>& args) const {
  if (impl_ == nullptr || impl_->source == nullptr) return NoSource();
  datalog::Explain plan;
  CAIRN_ASSIGN_OR_RETURN(QueryResult result, RunApiQuery(impl_->source.get(), query, args, &plan));
  return plan.ToString() + std::to_string(result.rows.size()) + (result.rows.size() == 1 ? " row\n" : " rows\n");
}

Result<Value> Db::pull(std::string_view pattern, EntityId e) const {
  if (impl_ == nullptr || impl_->source == nullptr) return NoSource();
  CAIRN_ASSIGN_OR_RETURN(Edn p, ReadEdn(pattern));
  return datalog::Pull(*impl_->source, p, e);
}

Result<std::vector<Value>> Db::pull_many(std::string_view pattern, const std::vector<EntityId>& es) const {
  if (impl_ == nullptr || impl_->source == nullptr) return NoSource();
  CAIRN_ASSIGN_OR_RETURN(Edn p, ReadEdn(pattern));
  std::vector<Value> out;
  out.reserve(es.size());
  for (EntityId e : es) {
    CAIRN_ASSIGN_OR_RETURN(Value v, datalog::Pull(*impl_->source, p, e));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cairn
