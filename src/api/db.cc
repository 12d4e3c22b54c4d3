// cairn::Db: datom access and time views over an IndexSource. (q, pull and
// pull_many live in query.cc with the Datalog engine.)
#include <algorithm>

#include "api/db_impl.h"
#include "shard/store_source.h"
#include "cairn/database.h"

namespace cairn {

namespace {

Db Sibling(const std::shared_ptr<const internal::DbImpl>& impl, int kind, TxTime t) {
  auto next = std::make_shared<internal::DbImpl>(*impl);
  next->source = impl->make_view(kind, t);
  return Db(std::move(next));
}

Keyword AttrKeyword(std::string_view attr) {
  if (!attr.empty() && attr.front() == ':') attr.remove_prefix(1);
  return Keyword::Intern(attr);
}

}  // namespace

Db Db::as_of(TxTime t) const { return Sibling(impl_, 1, t); }
Db Db::since(TxTime t) const { return Sibling(impl_, 2, t); }
Db Db::history() const { return Sibling(impl_, 3, TxTime{}); }

Result<std::vector<Datom>> Db::datoms(IndexType index, const std::vector<Value>& components) const {
  if (const auto* store = dynamic_cast<const shard::StoreSource*>(impl_->source.get()))
    return store->Datoms(index, components);
  return Status::InvalidArgument("datoms: this database value does not support index access");
}

Result<EntityId> Db::entid(std::string_view attr, const Value& v) const {
  Keyword a = AttrKeyword(attr);
  if (a.str().empty()) return Status::InvalidArgument("entid: empty attribute");
  std::optional<EntityId> e = impl_->source->Lookup(a, v);
  if (!e) return Status::NotFound("no entity has [" + a.ToString() + " " + v.ToString() + "]");
  return *e;
}

Result<std::vector<Datom>> diff(const Database& db, TxTime t1, TxTime t2) {
  Db value = db.db();
  if (!value.impl()->diff) return Status::InvalidArgument("diff: not supported by this database");
  return value.impl()->diff(t1, t2);
}

std::string TxReport::ToEdn() const {
  std::string out = "{:t " + std::to_string(t.raw) + " :tempids {";
  bool first = true;
  for (const auto& [tempid, e] : tempids) {
    if (!first) out += ", ";
    first = false;
    out += Value::String(tempid).ToString() + " " + std::to_string(e.raw);
  }
  out += "} :tx-data [";
  for (size_t i = 0; i < datoms.size(); ++i) {
    const Datom& d = datoms[i];
    if (i > 0) out += " ";
    out += "[" + std::to_string(d.e.raw) + " " + d.a.ToString() + " " + d.v.ToString() + " " +
           std::to_string(d.tx.raw) + " " + (d.added ? "true" : "false") + "]";
  }
  out += "]}";
  return out;
}

}  // namespace cairn
