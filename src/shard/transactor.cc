#include "shard/transactor.h"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/check.h"
#include "shard/tx_expander.h"
#include "shard/tx_ops.h"
#include "shard/tx_placement.h"
#include "shard/tx_schema.h"
#include "shard/tx_value.h"

namespace cairn::shard {
namespace {

using datalog::DatomPattern;
using datalog::IndexSource;

// Until the transaction is known to be valid, new entities carry provisional
// ids in a range no allocator reaches (the last partition, sequence numbers
// from 2^47); they are replaced by allocated ids at the very end, so a failed
// transaction consumes no ids.
constexpr uint32_t kProvisionalPartition = EntityId::kMaxPartitions - 1;
constexpr uint64_t kProvisionalBase = uint64_t{1} << 47;

EntityId ProvisionalId(size_t slot) { return EntityId::Make(kProvisionalPartition, kProvisionalBase + slot); }
bool IsProvisional(EntityId e) {
  return !e.is_tx() && e.partition() == kProvisionalPartition && e.seq() >= kProvisionalBase;
}
size_t ProvisionalSlot(EntityId e) { return static_cast<size_t>(e.seq() - kProvisionalBase); }

// An entity position after resolution: a known entity or a tempid slot.
struct Target {
  int slot = -1;
  EntityId id;
};

struct Slot {
  std::string name;
  bool internal = false;
  const Edn* where = nullptr;
  int parent = 0;
  bool asserted = false;  // some add/cas has it as its entity
  // Root only: the existing entity it upserts to, and why (for messages).
  std::optional<EntityId> upsert;
  std::string upsert_reason;
  // Root only: its partition once placed; its final id.
  std::optional<uint32_t> partition;
  EntityId id;
};

struct EavKey {
  EntityId e;
  Keyword a;
  Value v;
  friend bool operator==(const EavKey& x, const EavKey& y) { return x.e == y.e && x.a == y.a && x.v == y.v; }
};
struct EavHash {
  size_t operator()(const EavKey& k) const {
    uint64_t h = k.e.raw * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t{k.a.id()} + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full;
    h ^= static_cast<uint64_t>(k.v.Hash()) + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};
struct EaKey {
  EntityId e;
  Keyword a;
  friend bool operator==(const EaKey& x, const EaKey& y) { return x.e == y.e && x.a == y.a; }
};
struct EaHash {
  size_t operator()(const EaKey& k) const {
    return static_cast<size_t>(k.e.raw * 0x9E3779B97F4A7C15ull ^ (uint64_t{k.a.id()} * 0xC2B2AE3D27D4EB4Full));
  }
};
struct AvKey {
  Keyword a;
  Value v;
  friend bool operator==(const AvKey& x, const AvKey& y) { return x.a == y.a && x.v == y.v; }
};
struct AvHash {
  size_t operator()(const AvKey& k) const {
    return static_cast<size_t>((uint64_t{k.a.id()} * 0xC2B2AE3D27D4EB4Full) ^ k.v.Hash());
  }
};

// A hash set of action indices for the per-transaction checks: the key of
// index i lives in the caller's actions (compared by the caller's predicate),
// so no key or Value is copied and nothing is allocated per entry. Sized for
// `n` inserts up front (open addressing, at most half full).
class IndexTable {
 public:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;

  explicit IndexTable(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    mask_ = cap - 1;
    slots_.assign(cap, Slot{kNone, 0});
  }
  // The index stored under a key equal to i's (eq(j) says whether j's key
  // equals it), or kNone after storing i.
  template <typename Eq>
  uint32_t FindOrInsert(uint64_t hash, size_t i, const Eq& eq) {
    CAIRN_CHECK(++size_ * 2 <= slots_.size());
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (size_t s = hash & mask_;; s = (s + 1) & mask_) {
      Slot& x = slots_[s];
      if (x.index == kNone) {
        x = Slot{static_cast<uint32_t>(i), tag};
        return kNone;
      }
      if (x.tag == tag && eq(x.index)) {
        --size_;
        return x.index;
      }
    }
  }
  template <typename Eq>
  uint32_t Find(uint64_t hash, const Eq& eq) const {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (size_t s = hash & mask_;; s = (s + 1) & mask_) {
      const Slot& x = slots_[s];
      if (x.index == kNone) return kNone;
      if (x.tag == tag && eq(x.index)) return x.index;
    }
  }

 private:
  struct Slot {
    uint32_t index;
    uint32_t tag;
  };
  size_t mask_ = 0;
  size_t size_ = 0;
  std::vector<Slot> slots_;
};

// Final mixing of a combined key hash (the table takes slot bits from the
// bottom and tag bits from the top).
inline uint64_t MixKey(uint64_t h) {
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 32);
}
inline uint64_t HashEav(EntityId e, Keyword a, uint64_t v_hash) {
  return MixKey(e.raw * 0x9E3779B97F4A7C15ull ^ (uint64_t{a.id()} + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full ^
                v_hash);
}
inline uint64_t HashEa(EntityId e, Keyword a) {
  return MixKey(e.raw * 0x9E3779B97F4A7C15ull ^ (uint64_t{a.id()} + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full);
}
inline uint64_t HashAv(Keyword a, uint64_t v_hash) {
  return MixKey((uint64_t{a.id()} + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full ^ v_hash);
}

// One datom-level intention, in the order the forms asked for it.
struct Action {
  bool added = true;
  EntityId e;
  Keyword a;
  Value v;
  const Edn* where = nullptr;
};

class PrepareRun {
 public:
  PrepareRun(const TransactorOptions& options, const Edn& tx, const IndexSource& db, TxTime t, IdAllocator& ids)
      : options_(options), tx_(tx), db_(db), t_(t), ids_(ids), k_(Kws()), tx_id_(EntityId::ForTx(t)) {}

  Result<TxResult> Run() {
    CAIRN_CHECK(options_.partitions >= 1 && options_.partitions < kProvisionalPartition);
    CAIRN_CHECK(t_.valid());
    CAIRN_ASSIGN_OR_RETURN(plan_, TxSchemaPlanner::Plan(tx_, db_));
    view_.emplace(plan_.schema ? *plan_.schema : db_.schema());
    schema_ = &*view_;
    TxExpander expander(*schema_);
    ops_.reserve(tx_.items.size() * 4);
    CAIRN_RETURN_IF_ERROR(expander.Expand(tx_, &ops_));
    CollectSlots();
    CAIRN_RETURN_IF_ERROR(ResolveRefs());
    CAIRN_RETURN_IF_ERROR(Upsert());
    CAIRN_RETURN_IF_ERROR(CheckTempidsAsserted());
    CAIRN_RETURN_IF_ERROR(Place());
    CAIRN_RETURN_IF_ERROR(BuildActions());
    CAIRN_RETURN_IF_ERROR(AddComposites());
    CAIRN_RETURN_IF_ERROR(CheckConflicts());
    CAIRN_RETURN_IF_ERROR(Emit());
    return Finish();
  }

 private:
  // ---- tempid slots (union-find) -------------------------------------------

  int SlotOf(const TxEntityRef& r) {
    // The ops of one entity map come in a row: most lookups repeat the last.
    if (last_slot_ >= 0 && slots_[last_slot_].name == r.tempid) return last_slot_;
    last_slot_ = SlotIndexOf(r);
    return last_slot_;
  }
  int SlotIndexOf(const TxEntityRef& r) {
    auto [it, inserted] = slot_index_.emplace(r.tempid, static_cast<int>(slots_.size()));
    if (inserted) {
      Slot s;
      s.name = r.tempid;
      s.internal = r.internal;
      s.where = r.where;
      s.parent = it->second;
      slots_.push_back(std::move(s));
    }
    return it->second;
  }
  int Root(int s) {
    while (slots_[s].parent != s) {
      slots_[s].parent = slots_[slots_[s].parent].parent;
      s = slots_[s].parent;
    }
    return s;
  }
  std::string SlotName(int s) const {
    const Slot& x = slots_[s];
    if (x.internal) return "the new entity of the map at " + (x.where ? x.where->Where() : std::string("?"));
    return "tempid \"" + x.name + "\"";
  }

  // Gives every tempid a slot and notes each op's slots (so resolving them
  // needs no second lookup by name).
  void CollectSlots() {
    e_.resize(ops_.size());
    v_.resize(ops_.size());
    old_.resize(ops_.size());
    slots_.reserve(ops_.size());
    slot_index_.reserve(ops_.size());
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TxOp& op = ops_[i];
      if (op.e.kind == TxEntityRef::Kind::kTempid) {
        int s = SlotOf(op.e);
        e_[i].slot = s;
        if (op.kind == TxOp::Kind::kAdd || op.kind == TxOp::Kind::kCas) slots_[s].asserted = true;
        if (op.kind == TxOp::Kind::kAdd && op.a == k_.db_ident && op.v.type() == ValueType::kKeyword) {
          tx_idents_.emplace(op.v.as_keyword(), s);
        }
      }
      if (op.v_is_ref && op.v_ref.kind == TxEntityRef::Kind::kTempid) v_[i].slot = SlotOf(op.v_ref);
      if (op.old_is_ref && op.old_ref.kind == TxEntityRef::Kind::kTempid) old_[i].slot = SlotOf(op.old_ref);
    }
  }

  // ---- references ----------------------------------------------------------

  // `slot`: the tempid's slot noted by CollectSlots.
  Result<Target> Resolve(const TxEntityRef& r, int slot) {
    switch (r.kind) {
      case TxEntityRef::Kind::kId:
        return Target{-1, r.id};
      case TxEntityRef::Kind::kTx:
        return Target{-1, tx_id_};
      case TxEntityRef::Kind::kTempid:
        CAIRN_CHECK(slot >= 0);
        return Target{slot, {}};
      case TxEntityRef::Kind::kLookup: {
        std::optional<EntityId> e = db_.Lookup(r.attr, r.value);
        if (!e) {
          return ErrorAt(StatusCode::kNotFound, r.where,
                         "lookup ref [" + r.attr.ToString() + " " + r.value.ToString() + "] matches no entity");
        }
        return Target{-1, *e};
      }
      case TxEntityRef::Kind::kIdent: {
        if (const Attribute* a = schema_->Find(r.attr); a != nullptr && a->id.valid()) return Target{-1, a->id};
        if (std::optional<EntityId> e = db_.Lookup(k_.db_ident, Value::Kw(r.attr))) return Target{-1, *e};
        if (auto it = tx_idents_.find(r.attr); it != tx_idents_.end()) return Target{it->second, {}};
        return ErrorAt(StatusCode::kNotFound, r.where,
                       "ident " + r.attr.ToString() + " does not name an entity (no entity has this :db/ident)");
      }
    }
    return Status::Internal("unreachable");
  }

  Status ResolveRefs() {
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TxOp& op = ops_[i];
      CAIRN_ASSIGN_OR_RETURN(e_[i], Resolve(op.e, e_[i].slot));
      if (op.v_is_ref) {
        CAIRN_ASSIGN_OR_RETURN(v_[i], Resolve(op.v_ref, v_[i].slot));
      }
      if (op.old_is_ref) {
        CAIRN_ASSIGN_OR_RETURN(old_[i], Resolve(op.old_ref, old_[i].slot));
      }
      // New entities come from tempids; an integer id must name an entity
      // that exists, or an assertion could take an id the allocator will
      // hand out later.
      if (op.kind == TxOp::Kind::kAdd || op.kind == TxOp::Kind::kCas) {
        if (op.e.kind == TxEntityRef::Kind::kId) CAIRN_RETURN_IF_ERROR(CheckExists(e_[i].id, op.e));
        if (op.v_is_ref && op.v_ref.kind == TxEntityRef::Kind::kId && !IsForeignRef(v_[i].id))
          CAIRN_RETURN_IF_ERROR(CheckExists(v_[i].id, op.v_ref));
      }
    }
    return Status::OK();
  }

  // A ref value in a user partition another shard owns (see
  // TransactorOptions::owns_partition): its existence was checked where it lives.
  bool IsForeignRef(EntityId e) const {
    if (!options_.owns_partition || e.is_tx()) return false;
    uint32_t p = e.partition();
    return p != EntityId::kSystemPartition && !options_.owns_partition(p);
  }

  Status CheckExists(EntityId e, const TxEntityRef& r) {
    if (e.is_tx()) return Status::OK();
    auto [it, inserted] = exists_.try_emplace(e.raw, false);
    if (inserted) {
      bool found = false;
      // Built-in attribute entities exist without datoms.
      for (const auto& [ident, attr] : schema_->schema().attributes()) {
        if (attr.id == e) {
          found = true;
          break;
        }
      }
      DatomPattern p;
      p.e = e;
      p.added = true;
      auto hit = [&](const Datom&) {
        found = true;
        return false;
      };
      if (!found) CAIRN_RETURN_IF_ERROR(db_.Scan(p, hit));
      if (!found) {
        DatomPattern q;
        q.v = Value::Ref(e);
        q.added = true;
        CAIRN_RETURN_IF_ERROR(db_.Scan(q, hit));
      }
      it->second = found;
    }
    if (!it->second) {
      return ErrorAt(StatusCode::kNotFound, r.where,
                     "entity " + std::to_string(e.raw) +
                         " does not exist (new entities are written with a tempid string, e.g. \"new\")");
    }
    return Status::OK();
  }

  // ---- upserts -------------------------------------------------------------

  bool IsIdentity(Keyword a) const {
    if (a == k_.db_ident) return true;
    const Attribute* attr = schema_->Find(a);
    return attr != nullptr && attr->unique == Uniqueness::kIdentity;
  }
  bool IsUnique(Keyword a) const {
    if (a == k_.db_ident) return true;
    const Attribute* attr = schema_->Find(a);
    return attr != nullptr && attr->unique != Uniqueness::kNone;
  }

  // The value of op i if it is known before ids are allocated.
  std::optional<Value> KnownValue(size_t i) {
    if (!ops_[i].v_is_ref) return ops_[i].v;
    const Target& t = v_[i];
    if (t.slot < 0) return Value::Ref(t.id);
    const Slot& root = slots_[Root(t.slot)];
    if (root.upsert) return Value::Ref(*root.upsert);
    return std::nullopt;
  }

  Status SetUpsert(int slot, EntityId e, std::string reason, bool* changed) {
    int r = Root(slot);
    Slot& root = slots_[r];
    if (root.upsert) {
      if (*root.upsert == e) return Status::OK();
      return ErrorAt(StatusCode::kConflict, root.where,
                     SlotName(r) + " upserts to two different entities: " + std::to_string(root.upsert->raw) + " (by " +
                         root.upsert_reason + ") and " + std::to_string(e.raw) + " (by " + reason + ")");
    }
    root.upsert = e;
    root.upsert_reason = std::move(reason);
    *changed = true;
    return Status::OK();
  }

  Status Unify(int a, int b, const std::string& reason, bool* changed) {
    int ra = Root(a), rb = Root(b);
    if (ra == rb) return Status::OK();
    if (rb < ra) std::swap(ra, rb);
    Slot& x = slots_[ra];
    Slot& y = slots_[rb];
    if (x.upsert && y.upsert && *x.upsert != *y.upsert) {
      return ErrorAt(StatusCode::kConflict, y.where,
                     SlotName(ra) + " and " + SlotName(rb) + " are one entity (by " + reason +
                         ") but upsert to different entities " + std::to_string(x.upsert->raw) + " (by " +
                         x.upsert_reason + ") and " + std::to_string(y.upsert->raw) + " (by " + y.upsert_reason + ")");
    }
    if (!x.upsert && y.upsert) {
      x.upsert = y.upsert;
      x.upsert_reason = y.upsert_reason;
    }
    x.asserted = x.asserted || y.asserted;
    y.parent = ra;
    *changed = true;
    return Status::OK();
  }

  // db.Lookup, remembered: upserts and uniqueness checks ask the same.
  std::optional<EntityId> CachedLookup(const AvKey& key) {
    auto it = lookups_.find(key);
    if (it == lookups_.end()) it = lookups_.emplace(key, db_.Lookup(key.a, key.v)).first;
    return it->second;
  }

  // Tempids with a :db.unique/identity value resolve to the entity that holds
  // it; tempids sharing one become one entity. Values may themselves be
  // refs to upserted tempids, hence the fixpoint.
  Status Upsert() {
    std::unordered_map<AvKey, Target, AvHash> owner;
    for (size_t round = 0; round <= ops_.size() + 1; ++round) {
      bool changed = false;
      for (size_t i = 0; i < ops_.size(); ++i) {
        const TxOp& op = ops_[i];
        if (op.kind != TxOp::Kind::kAdd || !IsIdentity(op.a)) continue;
        std::optional<Value> v = KnownValue(i);
        if (!v) continue;
        AvKey key{op.a, *v};
        std::string reason = op.a.ToString() + " " + v->ToString();
        const Target& e = e_[i];
        auto [it, inserted] = owner.emplace(key, e);
        if (!inserted) {
          const Target& prev = it->second;
          if (e.slot >= 0 && prev.slot >= 0) {
            CAIRN_RETURN_IF_ERROR(Unify(prev.slot, e.slot, reason, &changed));
          } else if (e.slot >= 0) {
            CAIRN_RETURN_IF_ERROR(SetUpsert(e.slot, prev.id, reason, &changed));
          } else if (prev.slot >= 0) {
            CAIRN_RETURN_IF_ERROR(SetUpsert(prev.slot, e.id, reason, &changed));
          }
        }
        if (e.slot < 0) continue;
        if (std::optional<EntityId> holder = CachedLookup(key)) {
          CAIRN_RETURN_IF_ERROR(SetUpsert(e.slot, *holder, reason, &changed));
        }
      }
      if (!changed) return Status::OK();
    }
    return Status::OK();
  }

  Status CheckTempidsAsserted() {
    for (size_t s = 0; s < slots_.size(); ++s) {
      const Slot& root = slots_[Root(static_cast<int>(s))];
      if (!root.asserted && !root.upsert) {
        const Slot& x = slots_[s];
        return ErrorAt(StatusCode::kInvalidArgument, x.where,
                       x.internal ? "nested entity map at " + (x.where ? x.where->Where() : std::string("?")) +
                                        " has no attributes"
                                  : SlotName(static_cast<int>(s)) +
                                        " is used only as a value: no assertion in this transaction has it as its "
                                        "entity");
      }
    }
    return Status::OK();
  }

  // ---- placement (ARCHITECTURE §2, tx_placement.h) -------------------------

  std::optional<uint32_t> PartitionOfTarget(const Target& t) {
    if (t.slot < 0) return t.id.is_tx() ? std::nullopt : std::optional<uint32_t>(t.id.partition());
    const Slot& root = slots_[Root(t.slot)];
    if (root.upsert) return root.upsert->partition();
    return root.partition;
  }

  Status Place() {
    size_t n = slots_.size();
    // 1-3: idents, identity values, hints.
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TxOp& op = ops_[i];
      if (e_[i].slot < 0) continue;
      int r = Root(e_[i].slot);
      Slot& root = slots_[r];
      if (root.upsert) continue;
      if (op.kind == TxOp::Kind::kAdd && op.a == k_.db_ident) {
        root.partition = EntityId::kSystemPartition;
      }
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TxOp& op = ops_[i];
      if (e_[i].slot < 0 || op.kind != TxOp::Kind::kAdd || op.a == k_.db_ident || !IsIdentity(op.a)) continue;
      Slot& root = slots_[Root(e_[i].slot)];
      if (root.upsert || root.partition) continue;
      if (std::optional<Value> v = KnownValue(i)) {
        root.partition = UniqueIdentityPartition(op.a, *v, options_.partitions);
      }
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      const TxOp& op = ops_[i];
      if (op.kind != TxOp::Kind::kPartitionHint) continue;
      if (op.hint_partition >= 0 && op.hint_partition >= static_cast<int64_t>(options_.partitions)) {
        return ErrorAt(StatusCode::kInvalidArgument, op.v_node,
                       ":db/partition " + std::to_string(op.hint_partition) + " is out of range (the database has " +
                           std::to_string(options_.partitions) + " partitions)");
      }
      if (op.hint_partition < 0 && !op.v_is_ref) {
        return ErrorAt(StatusCode::kInvalidArgument, op.v_node,
                       ":db/partition must be a partition number or an entity, got " + Snippet(*op.v_node));
      }
      if (e_[i].slot < 0) continue;  // existing entities stay where they are
      Slot& root = slots_[Root(e_[i].slot)];
      if (root.upsert || root.partition) continue;
      if (op.hint_partition >= 0) {
        root.partition = static_cast<uint32_t>(op.hint_partition);
      } else if (std::optional<uint32_t> p = PartitionOfTarget(v_[i])) {
        root.partition = *p;
      }
    }
    // 4: the transaction's first entity (existing, else first placed new one).
    std::optional<uint32_t> default_partition;
    for (size_t i = 0; i < ops_.size() && !default_partition; ++i) {
      if (ops_[i].kind == TxOp::Kind::kPartitionHint) continue;
      const Target& t = e_[i];
      std::optional<EntityId> existing;
      if (t.slot < 0 && !t.id.is_tx()) existing = t.id;
      if (t.slot >= 0 && slots_[Root(t.slot)].upsert) existing = slots_[Root(t.slot)].upsert;
      if (existing && existing->partition() != EntityId::kSystemPartition) default_partition = existing->partition();
    }
    for (size_t s = 0; s < n && !default_partition; ++s) {
      const Slot& x = slots_[s];
      if (Root(static_cast<int>(s)) == static_cast<int>(s) && !x.upsert && x.partition &&
          *x.partition != EntityId::kSystemPartition) {
        default_partition = x.partition;
      }
    }
    // 5: everything else goes with the first such entity, placed by its
    // tempid, so a transaction of new entities stays on one shard.
    for (size_t s = 0; s < n && !default_partition; ++s) {
      const Slot& x = slots_[s];
      if (Root(static_cast<int>(s)) == static_cast<int>(s) && !x.upsert && !x.partition) {
        default_partition = TempidPartition(x.name, options_.partitions);
      }
    }
    for (size_t s = 0; s < n; ++s) {
      Slot& x = slots_[s];
      if (Root(static_cast<int>(s)) != static_cast<int>(s)) continue;
      if (x.upsert) {
        x.id = *x.upsert;
        continue;
      }
      if (!x.partition) x.partition = *default_partition;
      x.id = ProvisionalId(s);
    }
    return Status::OK();
  }

  EntityId IdOf(const Target& t) { return t.slot < 0 ? t.id : slots_[Root(t.slot)].id; }
  bool IsNew(EntityId e) const { return e == tx_id_ || IsProvisional(e); }

  std::string Describe(EntityId e) {
    if (e == tx_id_) return "the transaction entity";
    if (IsProvisional(e)) return SlotName(static_cast<int>(ProvisionalSlot(e)));
    return "entity " + std::to_string(e.raw);
  }

  // ---- database reads ------------------------------------------------------

  Status ValuesOf(EntityId e, Keyword a, std::vector<Value>* out) {
    out->clear();
    if (IsNew(e)) return Status::OK();
    DatomPattern p;
    p.e = e;
    p.a = a;
    p.added = true;
    return db_.Scan(p, [&](const Datom& d) {
      out->push_back(d.v);
      return true;
    });
  }
  Result<bool> Has(EntityId e, Keyword a, const Value& v) {
    if (IsNew(e)) return false;
    DatomPattern p;
    p.e = e;
    p.a = a;
    p.v = v;
    p.added = true;
    bool found = false;
    Status s = db_.Scan(p, [&](const Datom&) {
      found = true;
      return false;
    });
    if (!s.ok()) return s;
    return found;
  }

  // ---- actions -------------------------------------------------------------

  // Retracts `root`, the references to it and, breadth first, the entities
  // it owns through component attributes (iterative: component chains in the
  // data may be long; `seen` stops cycles).
  Status RetractEntity(EntityId root, const Edn* where) {
    std::unordered_map<uint64_t, bool> seen;
    std::vector<EntityId> queue{root};
    std::vector<Datom> own;
    for (size_t next = 0; next < queue.size(); ++next) {
      EntityId e = queue[next];
      if (!seen.emplace(e.raw, true).second) continue;
      own.clear();
      DatomPattern p;
      p.e = e;
      p.added = true;
      CAIRN_RETURN_IF_ERROR(db_.Scan(p, [&](const Datom& d) {
        own.push_back(d);
        return true;
      }));
      for (const Datom& d : own) {
        if (d.a == k_.db_ident && d.v.type() == ValueType::kKeyword && schema_->Find(d.v.as_keyword()) != nullptr) {
          return ErrorAt(StatusCode::kInvalidArgument, where,
                         "cannot retract entity " + std::to_string(e.raw) + ": it is the attribute " +
                             d.v.as_keyword().ToString());
        }
      }
      for (const Datom& d : own) {
        actions_.push_back(Action{false, d.e, d.a, d.v, where});
        if (d.v.type() == ValueType::kRef && schema_->IsComponent(d.a)) queue.push_back(d.v.as_ref());
      }
      DatomPattern refs;
      refs.v = Value::Ref(e);
      refs.added = true;
      CAIRN_RETURN_IF_ERROR(db_.Scan(refs, [&](const Datom& d) {
        if (d.v.type() == ValueType::kRef && d.v.as_ref() == e) actions_.push_back(Action{false, d.e, d.a, d.v, where});
        return true;
      }));
    }
    return Status::OK();
  }

  // The last stage that reads ops_: their values move into the actions.
  Status BuildActions() {
    actions_.reserve(ops_.size() + 8);
    std::vector<Value> current;
    for (size_t i = 0; i < ops_.size(); ++i) {
      TxOp& op = ops_[i];
      EntityId e = IdOf(e_[i]);
      Value v = op.v_is_ref ? Value::Ref(IdOf(v_[i])) : std::move(op.v);
      switch (op.kind) {
        case TxOp::Kind::kPartitionHint:
          break;
        case TxOp::Kind::kAdd:
          actions_.push_back(Action{true, e, op.a, std::move(v), op.v_node});
          break;
        case TxOp::Kind::kRetract:
          if (op.a == k_.db_ident && v.type() == ValueType::kKeyword && schema_->Find(v.as_keyword()) != nullptr) {
            return ErrorAt(StatusCode::kInvalidArgument, op.v_node,
                           "cannot retract the :db/ident of attribute " + v.as_keyword().ToString());
          }
          if (!IsNew(e)) actions_.push_back(Action{false, e, op.a, std::move(v), op.v_node});
          break;
        case TxOp::Kind::kRetractAttr:
          CAIRN_RETURN_IF_ERROR(ValuesOf(e, op.a, &current));
          for (Value& x : current) {
            if (op.a == k_.db_ident && x.type() == ValueType::kKeyword && schema_->Find(x.as_keyword()) != nullptr) {
              return ErrorAt(StatusCode::kInvalidArgument, op.form,
                             "cannot retract the :db/ident of attribute " + x.as_keyword().ToString());
            }
            actions_.push_back(Action{false, e, op.a, std::move(x), op.form});
          }
          break;
        case TxOp::Kind::kCas: {
          CAIRN_RETURN_IF_ERROR(ValuesOf(e, op.a, &current));
          bool expect_absent = !op.old_is_ref && op.old.is_nil();
          Value old = op.old_is_ref ? Value::Ref(IdOf(old_[i])) : op.old;
          bool ok = expect_absent
                        ? current.empty()
                        : (schema_->IsMany(op.a) ? std::find(current.begin(), current.end(), old) != current.end()
                                                 : current.size() == 1 && current[0] == old);
          if (!ok) {
            std::string found;
            if (current.empty()) found = "no value";
            for (size_t j = 0; j < current.size(); ++j) found += (j ? ", " : "") + current[j].ToString();
            return ErrorAt(StatusCode::kConflict, op.form,
                           ":db/cas failed for " + Describe(e) + " attribute " + op.a.ToString() + ": expected " +
                               (expect_absent ? std::string("no value") : old.ToString()) + ", found " + found);
          }
          actions_.push_back(Action{true, e, op.a, std::move(v), op.v_node});
          break;
        }
        case TxOp::Kind::kRetractEntity: {
          if (IsNew(e)) break;
          CAIRN_RETURN_IF_ERROR(RetractEntity(e, op.form));
          break;
        }
      }
    }
    return Status::OK();
  }

  // Composite tuples (:db/tupleAttrs) follow their components: for every
  // entity whose component changed, recompute the tuple from the state after
  // the transaction (nil for a missing component; no tuple when all are nil).
  Status AddComposites() {
    if (!schema_->has_composites()) return Status::OK();
    std::vector<std::pair<EntityId, const Attribute*>> touched;
    std::vector<const Edn*> touched_where;
    std::unordered_map<EaKey, bool, EaHash> seen;
    std::unordered_map<EaKey, size_t, EaHash> last_assert;
    std::unordered_map<EavKey, bool, EavHash> retracted;
    for (size_t i = 0; i < actions_.size(); ++i) {
      const Action& act = actions_[i];
      if (act.added) {
        last_assert[EaKey{act.e, act.a}] = i;
      } else {
        retracted.emplace(EavKey{act.e, act.a, act.v}, true);
      }
      for (const Attribute* comp : schema_->CompositesContaining(act.a)) {
        if (seen.emplace(EaKey{act.e, comp->ident}, true).second) {
          touched.emplace_back(act.e, comp);
          touched_where.push_back(act.where);
        }
      }
    }
    if (touched.empty()) return Status::OK();
    std::vector<Value> current;
    for (size_t t = 0; t < touched.size(); ++t) {
      auto [e, comp] = touched[t];
      std::vector<Value> items;
      bool all_nil = true;
      for (Keyword c : comp->tuple_attrs) {
        std::optional<Value> value;
        if (auto it = last_assert.find(EaKey{e, c}); it != last_assert.end()) {
          value = actions_[it->second].v;
        } else {
          CAIRN_RETURN_IF_ERROR(ValuesOf(e, c, &current));
          for (const Value& x : current) {
            if (!retracted.contains(EavKey{e, c, x})) value = x;
          }
        }
        if (value) all_nil = false;
        items.push_back(value ? *value : Value());
      }
      CAIRN_RETURN_IF_ERROR(ValuesOf(e, comp->ident, &current));
      if (all_nil) {
        for (Value& x : current) actions_.push_back(Action{false, e, comp->ident, std::move(x), touched_where[t]});
      } else {
        actions_.push_back(Action{true, e, comp->ident, Value::Tuple(std::move(items)), touched_where[t]});
      }
    }
    return Status::OK();
  }

  // ---- checks --------------------------------------------------------------

  Status CheckConflicts() {
    const size_t n = actions_.size();
    keep_.assign(n, true);
    // Each key is hashed once; the tables hold action indices only.
    std::vector<uint64_t> v_hash(n), eav_hash(n);
    for (size_t i = 0; i < n; ++i) {
      const Action& act = actions_[i];
      v_hash[i] = act.v.Hash();
      eav_hash[i] = HashEav(act.e, act.a, v_hash[i]);
    }
    IndexTable asserted(n), retracted(n), one_value(n), unique_owner(n);
    auto same_eav = [&](size_t i) {
      return [this, i](uint32_t j) {
        const Action& x = actions_[i];
        const Action& y = actions_[j];
        return x.e == y.e && x.a == y.a && x.v == y.v;
      };
    };
    for (size_t i = 0; i < n; ++i) {
      const Action& act = actions_[i];
      if (!act.added) {
        if (retracted.FindOrInsert(eav_hash[i], i, same_eav(i)) != IndexTable::kNone) keep_[i] = false;
        continue;
      }
      if (asserted.FindOrInsert(eav_hash[i], i, same_eav(i)) != IndexTable::kNone) {
        keep_[i] = false;  // the same datom asserted twice in one transaction
        continue;
      }
      if (!schema_->IsMany(act.a)) {
        uint32_t j = one_value.FindOrInsert(HashEa(act.e, act.a), i, [&](uint32_t k) {
          return actions_[k].e == act.e && actions_[k].a == act.a;
        });
        if (j != IndexTable::kNone) {
          const Action& other = actions_[j];
          return ErrorAt(StatusCode::kInvalidArgument, act.where,
                         "two values for cardinality-one attribute " + act.a.ToString() + " of " + Describe(act.e) +
                             " in one transaction: " + other.v.ToString() + " (at " + WhereOf(other.where) + ") and " +
                             act.v.ToString());
        }
      }
      if (IsUnique(act.a)) {
        uint32_t j = unique_owner.FindOrInsert(HashAv(act.a, v_hash[i]), i, [&](uint32_t k) {
          return actions_[k].a == act.a && actions_[k].v == act.v;
        });
        if (j != IndexTable::kNone && actions_[j].e != act.e) {
          return ErrorAt(StatusCode::kConflict, act.where,
                         "unique attribute " + act.a.ToString() + " value " + act.v.ToString() +
                             " is asserted for two entities: " + Describe(actions_[j].e) + " and " +
                             Describe(act.e));
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const Action& act = actions_[i];
      if (!act.added || !keep_[i]) continue;
      uint32_t r = retracted.Find(eav_hash[i], [&](uint32_t k) {
        return !actions_[k].added && actions_[k].e == act.e && actions_[k].a == act.a && actions_[k].v == act.v;
      });
      if (r != IndexTable::kNone) {
        return ErrorAt(StatusCode::kInvalidArgument, act.where,
                       "datom [" + Describe(act.e) + " " + act.a.ToString() + " " + act.v.ToString() +
                           "] is both asserted and retracted (at " + WhereOf(actions_[r].where) +
                           ") in one transaction");
      }
      if (IsUnique(act.a)) {
        std::optional<EntityId> holder = CachedLookup(AvKey{act.a, act.v});
        if (holder && *holder != act.e) {
          uint32_t held = retracted.Find(HashEav(*holder, act.a, v_hash[i]), [&](uint32_t k) {
            return actions_[k].e == *holder && actions_[k].a == act.a && actions_[k].v == act.v;
          });
          if (held == IndexTable::kNone) {
            return ErrorAt(StatusCode::kConflict, act.where,
                           "unique attribute " + act.a.ToString() + " value " + act.v.ToString() +
                               " already belongs to entity " + std::to_string(holder->raw) + " (asserted for " +
                               Describe(act.e) + ")");
          }
        }
      }
    }
    return Status::OK();
  }

  static std::string WhereOf(const Edn* where) { return where != nullptr ? where->Where() : std::string("?"); }

  // ---- output --------------------------------------------------------------

  Status Emit() {
    std::unordered_map<EavKey, bool, EavHash> emitted_retracts;
    bool user_instant = false;
    for (const Action& act : actions_)
      user_instant = user_instant || (act.added && act.e == tx_id_ && act.a == k_.tx_instant);
    if (!user_instant) {
      int64_t ms = options_.tx_instant_ms != 0 ? options_.tx_instant_ms : static_cast<int64_t>(t_.physical_ms());
      out_.datoms.push_back(Datom{tx_id_, k_.tx_instant, Value::Instant(ms), t_, true});
    }
    out_.datoms.reserve(actions_.size() + 1);
    std::vector<Value> current;
    for (size_t i = 0; i < actions_.size(); ++i) {
      if (!keep_[i]) continue;
      Action& act = actions_[i];
      if (act.added) {
        if (!IsNew(act.e)) {
          if (schema_->IsMany(act.a)) {
            CAIRN_ASSIGN_OR_RETURN(bool exists, Has(act.e, act.a, act.v));
            if (exists) continue;  // redundant: already true
          } else {
            CAIRN_RETURN_IF_ERROR(ValuesOf(act.e, act.a, &current));
            if (std::find(current.begin(), current.end(), act.v) != current.end()) continue;  // redundant
            // Cardinality one: the new value replaces the old in this transaction.
            for (Value& old : current) {
              if (act.a == k_.db_ident) {
                return ErrorAt(StatusCode::kInvalidArgument, act.where,
                               "cannot rename ident " + old.ToString() + " of entity " + std::to_string(act.e.raw) +
                                   " to " + act.v.ToString() + " (datoms name attributes by ident)");
              }
              EavKey key{act.e, act.a, old};
              if (emitted_retracts.emplace(key, true).second) {
                out_.datoms.push_back(Datom{act.e, act.a, std::move(old), t_, false});
              }
            }
          }
        }
        // Each action is emitted once, so its value can move; Finish() still
        // reads the :db/ident values.
        out_.datoms.push_back(Datom{act.e, act.a, act.a == k_.db_ident ? act.v : std::move(act.v), t_, true});
      } else {
        CAIRN_ASSIGN_OR_RETURN(bool exists, Has(act.e, act.a, act.v));
        if (!exists) continue;  // retracting what is not there changes nothing
        if (emitted_retracts.emplace(EavKey{act.e, act.a, act.v}, true).second) {
          out_.datoms.push_back(Datom{act.e, act.a, act.v, t_, false});
        }
      }
    }
    return Status::OK();
  }

  Value Remap(const Value& v) {
    if (v.type() == ValueType::kRef && IsProvisional(v.as_ref())) {
      return Value::Ref(slots_[ProvisionalSlot(v.as_ref())].id);
    }
    if (v.type() == ValueType::kTuple) {
      bool any = false;
      for (const Value& x : v.as_tuple()) any = any || x.type() == ValueType::kRef || x.type() == ValueType::kTuple;
      if (!any) return v;
      std::vector<Value> items;
      for (const Value& x : v.as_tuple()) items.push_back(Remap(x));
      return Value::Tuple(std::move(items));
    }
    return v;
  }

  Result<TxResult> Finish() {
    // Only now, with the transaction known to be valid, are ids allocated,
    // in order of first appearance.
    for (size_t s = 0; s < slots_.size(); ++s) {
      Slot& x = slots_[s];
      if (Root(static_cast<int>(s)) != static_cast<int>(s) || x.upsert) continue;
      x.id = ids_.Allocate(*x.partition);
      CAIRN_CHECK(x.id.valid() && x.id.partition() == *x.partition);
    }
    for (Datom& d : out_.datoms) {
      if (IsProvisional(d.e)) d.e = slots_[ProvisionalSlot(d.e)].id;
      if (d.v.type() == ValueType::kRef || d.v.type() == ValueType::kTuple) d.v = Remap(d.v);
    }
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (!slots_[s].internal) out_.tempids[slots_[s].name] = slots_[Root(static_cast<int>(s))].id;
    }
    // Attribute definitions learn their entity ids.
    for (auto& [ident, attr] : plan_.changed) {
      EntityId id;
      for (const Action& act : actions_) {
        if (act.added && act.a == k_.db_ident && act.v.type() == ValueType::kKeyword && act.v.as_keyword() == ident) {
          id = IsProvisional(act.e) ? slots_[ProvisionalSlot(act.e)].id : act.e;
          break;
        }
      }
      if (!id.valid()) {
        if (const Attribute* old = db_.schema().Find(ident); old != nullptr && old->id.valid()) id = old->id;
      }
      if (!id.valid()) {
        if (std::optional<EntityId> e = db_.Lookup(k_.db_ident, Value::Kw(ident))) id = *e;
      }
      attr.id = id;
      out_.schema_changes.push_back(attr);
    }
    out_.t = t_;
    return std::move(out_);
  }

  const TransactorOptions& options_;
  const Edn& tx_;
  const IndexSource& db_;
  TxTime t_;
  IdAllocator& ids_;
  const TxKeywords& k_;
  EntityId tx_id_;

  TxSchemaPlan plan_;
  std::optional<TxSchemaView> view_;
  TxSchemaView* schema_ = nullptr;
  std::vector<TxOp> ops_;
  std::vector<Target> e_, v_, old_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, int> slot_index_;
  int last_slot_ = -1;  // SlotOf's last answer
  std::unordered_map<uint64_t, bool> exists_;
  std::unordered_map<AvKey, std::optional<EntityId>, AvHash> lookups_;
  std::unordered_map<Keyword, int> tx_idents_;
  std::vector<Action> actions_;
  std::vector<bool> keep_;
  TxResult out_;
};

}  // namespace

Result<TxResult> Transactor::Prepare(const Edn& tx_data, const datalog::IndexSource& db, TxTime t,
                                     IdAllocator& ids) const {
  return PrepareRun(options_, tx_data, db, t, ids).Run();
}

}  // namespace cairn::shard
