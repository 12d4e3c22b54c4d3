#include "cluster/cluster_source.h"

#include <algorithm>
#include <optional>
#include <string>

#include "core/check.h"
#include "shard/tx_placement.h"

namespace cairn::cluster {

using datalog::DatomPattern;
using datalog::IndexSource;

namespace {

constexpr size_t kFirstWindow = 256;
constexpr size_t kWindowGrowth = 8;

std::string SourceName(int shard) { return shard == 0 ? std::string("meta group") : "shard " + std::to_string(shard); }

Status Named(const Status& st, int shard) {
  if (st.ok()) return st;
  return Status(st.code(), SourceName(shard) + ": " + st.message());
}

int CompareTail(const Datom& x, const Datom& y) {
  if (x.tx != y.tx) return x.tx < y.tx ? -1 : 1;
  if (x.added != y.added) return x.added ? 1 : -1;  // retraction first, as in the history index
  return 0;
}

// (e, v, tx, added): AEVT within one attribute, EAVT within one entity and
// attribute.
int CompareEv(const Datom& x, const Datom& y) {
  if (x.e != y.e) return x.e < y.e ? -1 : 1;
  if (int c = x.v.Compare(y.v)) return c;
  return CompareTail(x, y);
}

// (v, e, tx, added): AVET within one attribute, VAET within one value and
// attribute.
int CompareVe(const Datom& x, const Datom& y) {
  if (int c = x.v.Compare(y.v)) return c;
  if (x.e != y.e) return x.e < y.e ? -1 : 1;
  return CompareTail(x, y);
}

// (attribute name, e, v, tx, added): the order of a whole-database scan.
bool LessByName(const Datom& x, const Datom& y) {
  if (x.a != y.a) {
    int c = x.a.str().compare(y.a.str());
    if (c != 0) return c < 0;
  }
  return CompareEv(x, y) < 0;
}

// One source read in windows for the k-way merge.
struct Cursor {
  const void* target = nullptr;  // the ClusterSource::Target it reads
  const IndexSource* source = nullptr;
  int shard = 0;
  std::vector<Datom> buf;
  size_t pos = 0;
  uint64_t skip = 0;  // datoms of the source's scan already taken
  size_t window = kFirstWindow;
  bool exhausted = false;

  bool has() const { return pos < buf.size(); }
  const Datom& head() const { return buf[pos]; }
};

}  // namespace

ClusterSource::ClusterSource(std::shared_ptr<const IndexSource> meta, std::vector<std::shared_ptr<const IndexSource>> shards,
                             uint32_t partitions, ShardOfFn shard_of)
    : meta_(std::move(meta)), shards_(std::move(shards)), partitions_(partitions), shard_of_(std::move(shard_of)) {
  CAIRN_CHECK(meta_ != nullptr);
  CAIRN_CHECK(shard_of_ != nullptr);
  CAIRN_CHECK(partitions_ >= 1);
  for (const auto& s : shards_) {
    CAIRN_CHECK(s != nullptr);
    CAIRN_CHECK_MSG(s->is_history() == meta_->is_history(), "ClusterSource: views of different kinds");
  }
  ident_once_ = std::make_unique<std::once_flag[]>(shards_.size());
  idents_.resize(shards_.size());
}

ClusterSource::ClusterSource(std::shared_ptr<const IndexSource> meta, std::vector<std::shared_ptr<const IndexSource>> shards,
                             const ShardMap& map)
    : ClusterSource(std::move(meta), std::move(shards), map.partitions(),
                    ShardOfFn([shards_count = map.shards()](uint32_t p) { return cluster::ShardOfPartition(p, shards_count); })) {
  CAIRN_CHECK(shards_.size() == map.shards());
}

namespace {

// A ref to a non-built-in system entity (an ident or attribute), whose id
// may differ between the meta group and a shard.
bool SystemRef(const Value& v) {
  if (v.type() != ValueType::kRef) return false;
  EntityId e = v.as_ref();
  return !e.is_tx() && e.partition() == EntityId::kSystemPartition && e.seq() >= Schema::kFirstUserSeq;
}

// ident -> id of every :db/ident assertion in `src`.
Status IdentIds(const IndexSource& src, std::unordered_map<Keyword, uint64_t>* out) {
  static const Keyword kIdent = Keyword::Intern("db/ident");
  DatomPattern p;
  p.a = kIdent;
  p.added = true;
  return src.Scan(p, [&](const Datom& d) {
    if (d.v.type() == ValueType::kKeyword) (*out)[d.v.as_keyword()] = d.e.raw;
    return true;
  });
}

}  // namespace

void ClusterSource::SetIdentViews(std::shared_ptr<const IndexSource> meta,
                                  std::vector<std::shared_ptr<const IndexSource>> shards) {
  CAIRN_CHECK(meta != nullptr && shards.size() == shards_.size());
  ident_meta_ = std::move(meta);
  ident_shards_ = std::move(shards);
}

const ClusterSource::IdentMap& ClusterSource::Idents(int shard) const {
  CAIRN_CHECK(shard >= 1 && static_cast<size_t>(shard) <= shards_.size());
  std::call_once(meta_idents_once_,
                 [&] { meta_idents_status_ = IdentIds(ident_meta_ ? *ident_meta_ : *meta_, &meta_idents_); });
  size_t i = static_cast<size_t>(shard - 1);
  std::call_once(ident_once_[i], [&] {
    IdentMap& m = idents_[i];
    if (!meta_idents_status_.ok()) {
      m.status = meta_idents_status_.WithContext(SourceName(0));
      return;
    }
    std::unordered_map<Keyword, uint64_t> local;
    m.status = Named(IdentIds(ident_shards_.empty() ? *shards_[i] : *ident_shards_[i], &local), shard);
    if (!m.status.ok()) return;
    for (const auto& [ident, sid] : local) {
      auto it = meta_idents_.find(ident);
      if (it != meta_idents_.end() && it->second != sid) m.to_meta[sid] = it->second;
    }
    for (const auto& [ident, mid] : meta_idents_) {
      auto it = local.find(ident);
      if (it == local.end()) {
        m.from_meta[mid] = 0;
      } else if (it->second != mid) {
        m.from_meta[mid] = it->second;
      }
    }
  });
  return idents_[i];
}

bool ClusterSource::ToMeta(int shard, Datom* d) const {
  if (shard == 0 || !SystemRef(d->v)) return false;
  const IdentMap& m = Idents(shard);
  auto it = m.to_meta.find(d->v.as_ref().raw);
  if (it == m.to_meta.end()) return false;
  d->v = Value::Ref(EntityId{it->second});
  return true;
}

bool ClusterSource::ForShard(int shard, const DatomPattern& p, DatomPattern* out) const {
  *out = p;
  if (shard == 0 || !p.v || !SystemRef(*p.v)) return true;
  const IdentMap& m = Idents(shard);
  uint64_t mid = p.v->as_ref().raw;
  auto it = m.from_meta.find(mid);
  if (it != m.from_meta.end()) {
    if (it->second == 0) return false;
    out->v = Value::Ref(EntityId{it->second});
    return true;
  }
  // Same id on both sides, unless the shard uses it for another ident.
  return m.to_meta.find(mid) == m.to_meta.end();
}

int ClusterSource::ShardOfPartition(uint32_t partition) const {
  if (partition == EntityId::kSystemPartition) return 0;
  if (partition >= partitions_) return -1;
  uint32_t s = shard_of_(partition);
  if (s < 1 || s > shards_.size()) return -1;
  return static_cast<int>(s);
}

bool ClusterSource::Keeps(int shard, EntityId e) {
  bool system = !e.is_tx() && e.partition() == EntityId::kSystemPartition;
  if (shard == 0) return e.partition() == EntityId::kSystemPartition;  // system entities and transactions
  return !system;
}

std::vector<ClusterSource::Target> ClusterSource::Targets(const DatomPattern& p) const {
  std::vector<Target> out;
  auto add_shard = [&](int s) {
    Target t{shards_[static_cast<size_t>(s - 1)].get(), s, {}};
    if (ForShard(s, p, &t.pattern)) out.push_back(std::move(t));
  };
  if (p.e && !p.e->is_tx()) {
    int s = ShardOfPartition(p.e->partition());
    if (s == 0) out.push_back({meta_.get(), 0, p});
    if (s > 0) add_shard(s);
    return out;
  }
  out.push_back({meta_.get(), 0, p});
  // Only system entities carry :db/ident (the transactor places them so).
  static const Keyword kIdent = Keyword::Intern("db/ident");
  if (!p.e && p.a && *p.a == kIdent) return out;
  for (size_t i = 0; i < shards_.size(); ++i) add_shard(static_cast<int>(i + 1));
  return out;
}

Status ClusterSource::Scan(const DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  return ScanImpl(p, nullptr, fn);
}

Status ClusterSource::ScanRange(const DatomPattern& p, const datalog::ValueRange& r,
                                const std::function<bool(const Datom&)>& fn) const {
  return ScanImpl(p, &r, fn);
}

Status ClusterSource::ScanImpl(const DatomPattern& p, const datalog::ValueRange* range,
                               const std::function<bool(const Datom&)>& fn) const {
  std::vector<Target> targets = Targets(p);
  for (const Target& t : targets)
    if (t.shard > 0 && p.v && SystemRef(*p.v)) CAIRN_RETURN_IF_ERROR(Idents(t.shard).status);
  if (targets.empty()) return Status::OK();
  auto scan = [&](const Target& t, const std::function<bool(const Datom&)>& f) {
    return range != nullptr ? t.source->ScanRange(t.pattern, *range, f) : t.source->Scan(t.pattern, f);
  };
  // Errors of building an ident map inside a callback (it then stops).
  Status ident_error;
  auto translate = [&](int shard, Datom* d) {
    bool changed = ToMeta(shard, d);
    if (shard > 0 && SystemRef(d->v) && !Idents(shard).status.ok()) {
      ident_error = Idents(shard).status;
      return std::optional<bool>();
    }
    return std::optional<bool>(changed);
  };
  if (targets.size() == 1) {
    const Target& t = targets[0];
    Status st = scan(t, [&](const Datom& d) {
      if (!Keeps(t.shard, d.e)) return true;
      Datom x = d;
      if (!translate(t.shard, &x)) return false;
      return fn(x);
    });
    if (!ident_error.ok()) return ident_error;
    return Named(st, t.shard);
  }

  if (!p.a) {
    // No common order exists across stores without the attribute: collect
    // and sort (this is a whole-database scan or one entity's datoms).
    std::vector<Datom> all;
    for (const Target& t : targets) {
      Status st = scan(t, [&](const Datom& d) {
        if (!Keeps(t.shard, d.e)) return true;
        all.push_back(d);
        return translate(t.shard, &all.back()).has_value();
      });
      if (!ident_error.ok()) return ident_error;
      if (!st.ok()) return Named(st, t.shard);
    }
    std::sort(all.begin(), all.end(), LessByName);
    const Datom* last = nullptr;
    for (const Datom& d : all) {
      if (last != nullptr && *last == d) continue;
      if (!fn(d)) break;
      last = &d;
    }
    return Status::OK();
  }

  // k-way merge of the sources' ordered streams.
  auto compare = p.v ? CompareVe : CompareEv;
  std::vector<Cursor> cursors(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    cursors[i].source = targets[i].source;
    cursors[i].shard = targets[i].shard;
    cursors[i].target = &targets[i];
  }
  // Refills an empty cursor with its next window (restarting the scan and
  // skipping what was taken: IndexSource has no continuation).
  auto fill = [&](Cursor& c) -> Status {
    while (!c.has() && !c.exhausted) {
      c.buf.clear();
      c.pos = 0;
      uint64_t seen = 0;
      uint64_t want = c.window;
      bool stopped = false;
      auto* resumable = dynamic_cast<const ResumableSource*>(c.source);
      if (resumable != nullptr) seen = c.skip;  // it skips by itself
      bool translated = false;
      auto take = [&](const Datom& d) {
        if (seen++ < c.skip) return true;
        if (Keeps(c.shard, d.e)) {
          c.buf.push_back(d);
          std::optional<bool> changed = translate(c.shard, &c.buf.back());
          if (!changed) return false;
          translated = translated || *changed;
        }
        if (seen - c.skip >= want) {
          stopped = true;
          return false;
        }
        return true;
      };
      const Target& t = *static_cast<const Target*>(c.target);
      Status st = resumable != nullptr ? resumable->ScanFrom(t.pattern, range, c.skip, want, take) : scan(t, take);
      if (!ident_error.ok()) return ident_error;
      if (!st.ok()) return Named(st, c.shard);
      // Translated values may sort differently from the shard's own ids.
      if (translated) std::stable_sort(c.buf.begin(), c.buf.end(), [&](const Datom& x, const Datom& y) { return compare(x, y) < 0; });
      for (size_t i = 1; i < c.buf.size(); ++i) {
        if (compare(c.buf[i - 1], c.buf[i]) > 0)
          return Status::Internal(SourceName(c.shard) + ": datoms out of index order (" + c.buf[i - 1].ToString() +
                                  " before " + c.buf[i].ToString() + "); cannot merge");
      }
      c.skip = seen;
      if (!stopped) c.exhausted = true;
      c.window *= kWindowGrowth;
    }
    return Status::OK();
  };
  for (Cursor& c : cursors) CAIRN_RETURN_IF_ERROR(fill(c));
  std::optional<Datom> last;
  for (;;) {
    Cursor* best = nullptr;
    for (Cursor& c : cursors) {
      if (c.has() && (best == nullptr || compare(c.head(), best->head()) < 0)) best = &c;
    }
    if (best == nullptr) return Status::OK();
    Datom d = best->head();
    ++best->pos;
    if (!best->has()) CAIRN_RETURN_IF_ERROR(fill(*best));
    if (last && *last == d) continue;  // the same transaction datom from two sources
    if (!fn(d)) return Status::OK();
    last = std::move(d);
  }
}

uint64_t ClusterSource::EstimateCount(const DatomPattern& p) const {
  uint64_t n = 0;
  for (const Target& t : Targets(p)) n += t.source->EstimateCount(t.pattern);
  return n;
}

uint64_t ClusterSource::EstimateRange(const DatomPattern& p, const datalog::ValueRange& r) const {
  uint64_t n = 0;
  for (const Target& t : Targets(p)) n += t.source->EstimateRange(t.pattern, r);
  return n;
}

uint64_t ClusterSource::EstimateDistinct(Keyword a, int position) const {
  static const Keyword kIdent = Keyword::Intern("db/ident");
  if (a == kIdent) return meta_->EstimateDistinct(a, position);
  uint64_t n = 0;
  for (const auto& s : shards_) {
    uint64_t d = s->EstimateDistinct(a, position);
    n = position == 0 ? n + d : std::max(n, d);
  }
  return n;
}

std::optional<EntityId> ClusterSource::Lookup(Keyword attr, const Value& v) const {
  static const Keyword kIdent = Keyword::Intern("db/ident");
  if (attr == kIdent) {
    std::optional<EntityId> e = meta_->Lookup(attr, v);
    if (e && !Keeps(0, *e)) return std::nullopt;
    return e;
  }
  if (shards_.empty()) return std::nullopt;
  int first = partitions_ > 1 ? ShardOfPartition(shard::UniqueIdentityPartition(attr, v, partitions_)) : -1;
  auto ask = [&](int s) -> std::optional<EntityId> {
    std::optional<EntityId> e = shards_[static_cast<size_t>(s - 1)]->Lookup(attr, v);
    if (e && !Keeps(s, *e)) return std::nullopt;
    return e;
  };
  if (first > 0) {
    if (auto e = ask(first)) return e;
  }
  for (int s = 1; s <= static_cast<int>(shards_.size()); ++s) {
    if (s == first) continue;
    if (auto e = ask(s)) return e;
  }
  return std::nullopt;
}

}  // namespace cairn::cluster
