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
  if (p.e && !p.e->is_tx()) {
    int s = ShardOfPartition(p.e->partition());
    if (s == 0) out.push_back({meta_.get(), 0});
    if (s > 0) out.push_back({shards_[static_cast<size_t>(s - 1)].get(), s});
    return out;
  }
  out.push_back({meta_.get(), 0});
  // Only system entities carry :db/ident (the transactor places them so).
  static const Keyword kIdent = Keyword::Intern("db/ident");
  if (!p.e && p.a && *p.a == kIdent) return out;
  for (size_t i = 0; i < shards_.size(); ++i) out.push_back({shards_[i].get(), static_cast<int>(i + 1)});
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
  if (targets.empty()) return Status::OK();
  auto scan = [&](const IndexSource& src, const std::function<bool(const Datom&)>& f) {
    return range != nullptr ? src.ScanRange(p, *range, f) : src.Scan(p, f);
  };
  if (targets.size() == 1) {
    const Target& t = targets[0];
    return Named(scan(*t.source, [&](const Datom& d) { return !Keeps(t.shard, d.e) || fn(d); }), t.shard);
  }

  if (!p.a) {
    // No common order exists across stores without the attribute: collect
    // and sort (this is a whole-database scan or one entity's datoms).
    std::vector<Datom> all;
    for (const Target& t : targets) {
      Status st = scan(*t.source, [&](const Datom& d) {
        if (Keeps(t.shard, d.e)) all.push_back(d);
        return true;
      });
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
      auto take = [&](const Datom& d) {
        if (seen++ < c.skip) return true;
        if (Keeps(c.shard, d.e)) c.buf.push_back(d);
        if (seen - c.skip >= want) {
          stopped = true;
          return false;
        }
        return true;
      };
      Status st = resumable != nullptr ? resumable->ScanFrom(p, range, c.skip, want, take) : scan(*c.source, take);
      if (!st.ok()) return Named(st, c.shard);
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
  for (const Target& t : Targets(p)) n += t.source->EstimateCount(p);
  return n;
}

uint64_t ClusterSource::EstimateRange(const DatomPattern& p, const datalog::ValueRange& r) const {
  uint64_t n = 0;
  for (const Target& t : Targets(p)) n += t.source->EstimateRange(p, r);
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
