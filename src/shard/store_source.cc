#include "shard/store_source.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "core/check.h"

namespace cairn::shard {

using storage::IndexBounds;
using storage::IndexEntry;
using storage::IndexOrder;

namespace {

bool SameKey(const IndexEntry& x, const IndexEntry& y) {
  return x.e == y.e && x.aid == y.aid && x.v.Compare(y.v) == 0;
}

}  // namespace

std::shared_ptr<AttrStatsCache> AttrStatsCache::Successor() {
  auto next = std::make_shared<AttrStatsCache>();
  std::lock_guard<std::mutex> lock(mu_);
  next->inherited_ = inherited_;
  for (const auto& [aid, stats] : by_attr_) {
    if (!stats->exact) next->inherited_[aid] = stats;
  }
  return next;
}

std::shared_ptr<const AttrValueStats> AttrStatsCache::Get(const storage::CurrentIndex& index, uint32_t aid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_attr_.find(aid);
    if (it != by_attr_.end()) return it->second;
    auto old = inherited_.find(aid);
    if (old != inherited_.end()) {
      const double then = static_cast<double>(old->second->count);
      const double now = static_cast<double>(index.attr_count(aid));
      if (now >= then * (1 - kDrift) && now <= then * (1 + kDrift)) {
        return by_attr_.emplace(aid, old->second).first->second;
      }
    }
  }
  // Computed outside the lock; a concurrent first use may compute it twice.
  auto stats = std::make_shared<AttrValueStats>();
  stats->count = index.attr_count(aid);
  uint64_t stride = std::max<uint64_t>(1, stats->count / AttrValueStats::kExactBelow);
  stats->exact = stride == 1;
  IndexBounds b;
  b.aid = aid;
  uint64_t i = 0;
  index.Scan(IndexOrder::kAevt, b, [&](const IndexEntry& x) {
    if (i++ % stride == 0) stats->sample.push_back(x.v);
    return true;
  });
  std::sort(stats->sample.begin(), stats->sample.end(), [](const Value& x, const Value& y) { return x.Compare(y) < 0; });
  uint64_t distinct = 0;
  for (size_t k = 0; k < stats->sample.size(); ++k)
    if (k == 0 || stats->sample[k - 1].Compare(stats->sample[k]) != 0) ++distinct;
  // A strided sample sees every value of a small domain; a sample of mostly
  // distinct values stands for proportionally more.
  uint64_t n = stats->sample.size();
  stats->distinct_v = stats->exact || distinct * 4 <= n ? distinct : std::min(stats->count, distinct * stride);
  std::lock_guard<std::mutex> lock(mu_);
  return by_attr_.emplace(aid, std::move(stats)).first->second;
}

StoreSource::StoreSource(Snapshot snap, Kind kind, TxTime t, HistoryState history)
    : snap_(std::move(snap)), kind_(kind), t_(t), history_(std::move(history)) {
  CAIRN_CHECK(snap_.current != nullptr && snap_.attrs != nullptr && snap_.schema != nullptr);
}

Keyword StoreSource::Name(uint32_t aid) const {
  bool hist = kind_ == Kind::kAsOf || kind_ == Kind::kHistory;
  return (hist && history_.attrs ? *history_.attrs : *snap_.attrs).Name(aid);
}

bool StoreSource::ToBounds(const datalog::DatomPattern& p, IndexBounds* b) const {
  if (p.a) {
    bool hist = kind_ == Kind::kAsOf || kind_ == Kind::kHistory;
    const storage::AttrTable& attrs = hist && history_.attrs ? *history_.attrs : *snap_.attrs;
    std::optional<uint32_t> aid = attrs.Find(*p.a);
    if (!aid) return false;
    b->aid = aid;
  }
  if (p.e) b->e = *p.e;
  if (p.v) b->v = &*p.v;
  if (p.added && !*p.added && kind_ != Kind::kHistory) return false;
  return true;
}

void StoreSource::ScanOrdered(IndexOrder order, const IndexBounds& b, const datalog::DatomPattern& p,
                              const std::function<bool(const Datom&)>& fn, const datalog::ValueRange* range) const {
  auto to_datom = [&](const IndexEntry& x) { return Datom{x.e, Name(x.aid), x.v, x.tx, x.added}; };
  auto tx_ok = [&](const IndexEntry& x) {
    return (!p.tx || x.tx == *p.tx) && (range == nullptr || range->Contains(x.v));
  };
  switch (kind_) {
    case Kind::kCurrent:
      snap_.current->Scan(order, b, [&](const IndexEntry& x) { return !tx_ok(x) || fn(to_datom(x)); });
      return;
    case Kind::kSince:
      snap_.current->Scan(order, b, [&](const IndexEntry& x) {
        return x.tx <= t_ || !tx_ok(x) || fn(to_datom(x));
      });
      return;
    case Kind::kHistory: {
      TxTime basis = snap_.basis_t;
      history_.index->Scan(order, b, [&](const IndexEntry& x) {
        if (x.tx > basis || !tx_ok(x) || (p.added && x.added != *p.added)) return true;
        return fn(to_datom(x));
      });
      return;
    }
    case Kind::kAsOf: {
      // Entries of one (e, a, v) are adjacent, oldest first, in every order:
      // the last one at or before T says whether the datom is true at T.
      TxTime limit = std::min(t_, snap_.basis_t);
      std::optional<IndexEntry> pending;
      bool stopped = false;
      auto flush = [&] {
        if (pending && pending->added && tx_ok(*pending) && !fn(to_datom(*pending))) stopped = true;
        pending.reset();
      };
      history_.index->Scan(order, b, [&](const IndexEntry& x) {
        if (x.tx > limit) return true;
        if (pending && !SameKey(*pending, x)) {
          flush();
          if (stopped) return false;
        }
        pending = x;
        return true;
      });
      if (!stopped) flush();
      return;
    }
  }
}

Status StoreSource::Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  if ((kind_ == Kind::kAsOf || kind_ == Kind::kHistory) && history_.index == nullptr)
    return Status::Unavailable("the database was closed; its history is no longer readable");
  IndexBounds b;
  if (!ToBounds(p, &b)) return Status::OK();
  // A long constant against a ref attribute means an entity id.
  Value ref_value;
  if (p.v && p.a && p.v->type() == ValueType::kLong && snap_.schema->IsRef(*p.a)) {
    ref_value = Value::Ref(EntityId{static_cast<uint64_t>(p.v->as_long())});
    b.v = &ref_value;
  }
  ScanOrdered(storage::CurrentIndex::BestOrder(b), b, p, fn);
  return Status::OK();
}

uint64_t StoreSource::EstimateCount(const datalog::DatomPattern& p) const {
  IndexBounds b;
  if (!ToBounds(p, &b)) return 0;
  IndexOrder order = storage::CurrentIndex::BestOrder(b);
  if (kind_ == Kind::kCurrent || kind_ == Kind::kSince) return snap_.current->CountRange(order, b);
  if (history_.index == nullptr) return 0;
  return history_.index->CountRange(order, b);
}

std::shared_ptr<const AttrValueStats> StoreSource::Stats(Keyword a) const {
  if (kind_ == Kind::kAsOf || kind_ == Kind::kHistory || snap_.stats == nullptr) return nullptr;
  std::optional<uint32_t> aid = snap_.attrs->Find(a);
  if (!aid) return nullptr;
  return snap_.stats->Get(*snap_.current, *aid);
}

uint64_t StoreSource::EstimateDistinct(Keyword a, int position) const {
  // Distinct entities of an attribute: at most its datom count (exact for
  // cardinality one in the current view). Distinct values: from the cached
  // sample (since(T) views use the current index's figures).
  if (kind_ == Kind::kAsOf || kind_ == Kind::kHistory) return 0;
  if (position == 2) {
    std::shared_ptr<const AttrValueStats> s = Stats(a);
    return s ? s->distinct_v : 0;
  }
  if (position != 0) return 0;
  std::optional<uint32_t> aid = snap_.attrs->Find(a);
  return aid ? snap_.current->attr_count(*aid) : 0;
}

Status StoreSource::ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                              const std::function<bool(const Datom&)>& fn) const {
  if ((kind_ == Kind::kAsOf || kind_ == Kind::kHistory) && history_.index == nullptr)
    return Status::Unavailable("the database was closed; its history is no longer readable");
  if (p.v) return IndexSource::ScanRange(p, r, fn);
  IndexBounds b;
  if (!ToBounds(p, &b)) return Status::OK();
  ScanOrdered(storage::CurrentIndex::BestOrder(b), b, p, fn, &r);
  return Status::OK();
}

uint64_t StoreSource::EstimateRange(const datalog::DatomPattern& p, const datalog::ValueRange& r) const {
  uint64_t n = EstimateCount(p);
  if (n == 0 || !p.a || p.v) return IndexSource::EstimateRange(p, r);
  std::shared_ptr<const AttrValueStats> s = Stats(*p.a);
  if (s == nullptr || s->sample.empty()) return IndexSource::EstimateRange(p, r);
  uint64_t in = 0;
  for (const Value& v : s->sample) in += r.Contains(v) ? 1 : 0;
  uint64_t est = n * in / s->sample.size();
  // An exact sample of the current view that matches nothing proves it.
  if (est == 0 && !(in == 0 && s->exact && kind_ == Kind::kCurrent)) est = 1;
  return est;
}

std::optional<EntityId> StoreSource::Lookup(Keyword attr, const Value& v) const {
  if (kind_ != Kind::kCurrent) return IndexSource::Lookup(attr, v);
  std::optional<uint32_t> aid = snap_.attrs->Find(attr);
  if (!aid) return std::nullopt;
  IndexBounds b;
  b.aid = aid;
  b.v = &v;
  std::optional<EntityId> found;
  snap_.current->Scan(IndexOrder::kAvet, b, [&](const IndexEntry& x) {
    found = x.e;
    return false;
  });
  return found;
}

Result<std::vector<Datom>> StoreSource::Datoms(IndexType index, const std::vector<Value>& components) const {
  if ((kind_ == Kind::kAsOf || kind_ == Kind::kHistory) && history_.index == nullptr)
    return Status::Unavailable("the database was closed; its history is no longer readable");
  static const char* kNames[] = {"eavt", "aevt", "avet", "vaet"};
  const char* index_name = kNames[static_cast<int>(index)];
  // The component names of each index, in order.
  enum Comp { kE, kA, kV, kT };
  static const Comp kOrder[4][4] = {{kE, kA, kV, kT}, {kA, kE, kV, kT}, {kA, kV, kE, kT}, {kV, kA, kE, kT}};
  if (components.size() > 4)
    return Status::InvalidArgument(std::string(index_name) + ": at most 4 components, got " + std::to_string(components.size()));
  datalog::DatomPattern p;
  bool no_match = false;
  for (size_t i = 0; i < components.size(); ++i) {
    const Value& c = components[i];
    switch (kOrder[static_cast<int>(index)][i]) {
      case kE:
        if (c.type() == ValueType::kRef) {
          p.e = c.as_ref();
        } else if (c.type() == ValueType::kLong) {
          p.e = EntityId{static_cast<uint64_t>(c.as_long())};
        } else if (c.type() == ValueType::kKeyword) {
          std::optional<EntityId> e = Lookup(Keyword::Intern("db/ident"), c);
          if (!e) no_match = true;
          else p.e = *e;
        } else {
          return Status::InvalidArgument(std::string(index_name) + ": component " + std::to_string(i + 1) +
                                         " must be an entity id or ident, got " + c.ToString());
        }
        break;
      case kA:
        if (c.type() != ValueType::kKeyword)
          return Status::InvalidArgument(std::string(index_name) + ": component " + std::to_string(i + 1) +
                                         " must be an attribute keyword, got " + c.ToString());
        p.a = c.as_keyword();
        break;
      case kV:
        p.v = c;
        break;
      case kT:
        if (c.type() == ValueType::kLong) p.tx = TxTime{static_cast<uint64_t>(c.as_long())};
        else if (c.type() == ValueType::kRef && c.as_ref().is_tx()) p.tx = c.as_ref().tx_time();
        else
          return Status::InvalidArgument(std::string(index_name) + ": component 4 must be a t, got " + c.ToString());
        break;
    }
  }
  if (index == IndexType::kAvet && p.a && !snap_.schema->Get(*p.a).in_avet())
    return Status::InvalidArgument("avet: attribute " + p.a->ToString() +
                                   " is not indexed (declare :db/index true or :db/unique)");
  std::vector<Datom> out;
  IndexBounds b;
  if (no_match || !ToBounds(p, &b)) return out;
  Value ref_value;
  if (p.v && p.a && p.v->type() == ValueType::kLong && snap_.schema->IsRef(*p.a)) {
    ref_value = Value::Ref(EntityId{static_cast<uint64_t>(p.v->as_long())});
    b.v = &ref_value;
  }
  static const IndexOrder kOrders[] = {IndexOrder::kEavt, IndexOrder::kAevt, IndexOrder::kAvet, IndexOrder::kVaet};
  auto push = [&](const Datom& d) {
    out.push_back(d);
    return true;
  };
  if (index == IndexType::kAvet && !p.a) {
    // Only indexed/unique attributes are in AVET: walk those, in id order,
    // without building value indexes for the others.
    bool hist = kind_ == Kind::kAsOf || kind_ == Kind::kHistory;
    const storage::AttrTable& attrs = hist && history_.attrs ? *history_.attrs : *snap_.attrs;
    for (uint32_t aid = 1; aid < attrs.names.size(); ++aid) {
      if (!snap_.schema->Get(attrs.names[aid]).in_avet()) continue;
      IndexBounds by_attr = b;
      by_attr.aid = aid;
      ScanOrdered(IndexOrder::kAvet, by_attr, p, push);
    }
    return out;
  }
  ScanOrdered(kOrders[static_cast<int>(index)], b, p, push);
  return out;
}

Result<std::shared_ptr<const StoreSource>> StoreSource::View(Kind kind, TxTime t) const {
  if ((kind == Kind::kAsOf || kind == Kind::kHistory) && history_.index == nullptr)
    return Status::Unavailable("this database value holds no history index (as-of and history need one)");
  return std::make_shared<const StoreSource>(snap_, kind, t, history_);
}

Result<std::shared_ptr<const datalog::IndexSource>> ViewOf(const std::shared_ptr<const datalog::IndexSource>& db,
                                                            StoreSource::Kind kind, TxTime t) {
  const auto* store = dynamic_cast<const StoreSource*>(db.get());
  if (store == nullptr) return Status::InvalidArgument("this database value offers no as-of, since or history views");
  bool same_t = kind == StoreSource::Kind::kCurrent || kind == StoreSource::Kind::kHistory || t == store->t();
  if (kind == store->kind() && same_t) return db;
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const StoreSource> view, store->View(kind, t));
  return std::shared_ptr<const datalog::IndexSource>(std::move(view));
}

// The attribute definitions are datoms of entities with :db/ident (in the
// system partition); this mirrors how the embedded Database rebuilds them.
std::shared_ptr<const Schema> LoadSchemaFromIndex(const storage::CurrentIndex& index,
                                                  const storage::AttrTable& attrs) {
  auto schema = std::make_shared<Schema>();
  std::optional<uint32_t> ident_aid = attrs.Find(Keyword::Intern("db/ident"));
  if (!ident_aid) return schema;
  auto keyword_of = [&](const Value& v) -> std::optional<Keyword> {
    if (v.type() == ValueType::kKeyword) return v.as_keyword();
    if (v.type() == ValueType::kRef) {
      storage::IndexBounds b;
      b.e = v.as_ref();
      b.aid = ident_aid;
      std::optional<Keyword> k;
      index.Scan(storage::IndexOrder::kEavt, b, [&](const storage::IndexEntry& x) {
        if (x.v.type() == ValueType::kKeyword) k = x.v.as_keyword();
        return false;
      });
      return k;
    }
    return std::nullopt;
  };
  auto type_of = [&](const Value& v) -> std::optional<ValueType> {
    std::optional<Keyword> k = keyword_of(v);
    if (!k) return std::nullopt;
    auto t = Schema::ParseValueType(*k);
    if (!t.ok()) return std::nullopt;
    return *t;
  };
  std::vector<std::pair<EntityId, Keyword>> idents;
  storage::IndexBounds by_attr;
  by_attr.aid = ident_aid;
  index.Scan(storage::IndexOrder::kAevt, by_attr, [&](const storage::IndexEntry& x) {
    if (x.v.type() == ValueType::kKeyword) idents.emplace_back(x.e, x.v.as_keyword());
    return true;
  });
  for (const auto& [e, ident] : idents) {
    if (Schema::IsBuiltin(ident)) continue;
    Attribute a;
    a.ident = ident;
    a.id = e;
    bool any = false;
    storage::IndexBounds b;
    b.e = e;
    index.Scan(storage::IndexOrder::kEavt, b, [&](const storage::IndexEntry& x) {
      std::string_view name = attrs.Name(x.aid).str();
      const Value& v = x.v;
      if (name == "db/valueType") {
        if (auto t = type_of(v)) a.value_type = *t, any = true;
      } else if (name == "db/cardinality") {
        auto k = keyword_of(v);
        a.cardinality = k && k->str() == "db.cardinality/many" ? Cardinality::kMany : Cardinality::kOne;
        any = true;
      } else if (name == "db/unique") {
        auto k = keyword_of(v);
        a.unique = k && k->str() == "db.unique/identity" ? Uniqueness::kIdentity : Uniqueness::kValue;
        any = true;
      } else if (name == "db/index" && v.type() == ValueType::kBool) {
        a.indexed = v.as_bool(), any = true;
      } else if (name == "db/isComponent" && v.type() == ValueType::kBool) {
        a.is_component = v.as_bool(), any = true;
      } else if (name == "db/doc" && v.type() == ValueType::kString) {
        a.doc = v.as_string(), any = true;
      } else if (name == "db/tupleAttrs" && v.type() == ValueType::kTuple) {
        for (const Value& item : v.as_tuple())
          if (auto k = keyword_of(item)) a.tuple_attrs.push_back(*k);
        any = true;
      } else if (name == "db/tupleTypes" && v.type() == ValueType::kTuple) {
        for (const Value& item : v.as_tuple())
          if (auto t = type_of(item)) a.tuple_types.push_back(*t);
        any = true;
      } else if (name == "db/tupleType") {
        if (auto t = type_of(v)) a.tuple_type = *t, any = true;
      }
      return true;
    });
    if (!any) continue;
    a.declared = true;
    schema->Put(std::move(a));
  }
  return schema;
}

}  // namespace cairn::shard
