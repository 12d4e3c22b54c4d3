#include "cluster/tx_router.h"

#include <optional>
#include <set>
#include <vector>

#include "core/check.h"
#include "core/edn.h"
#include "shard/transactor.h"
#include "shard/tx_expander.h"
#include "shard/tx_value.h"

namespace cairn::cluster {

namespace {

constexpr std::string_view kCrossShardPrefix = "cross_shard: ";

// Hands out ids no entity has: the top of each partition's sequence range.
class PlaceholderAllocator final : public shard::IdAllocator {
 public:
  explicit PlaceholderAllocator(uint32_t partitions) : partitions_(partitions) {}
  EntityId Allocate(uint32_t partition) override {
    CAIRN_CHECK_MSG(partition < partitions_, "partition out of range");
    return EntityId::Make(partition, kBase + next_++);
  }

 private:
  static constexpr uint64_t kBase = (uint64_t{1} << EntityId::kSeqBits) - (uint64_t{1} << 30);
  uint32_t partitions_;
  uint64_t next_ = 0;
};

bool IsSystem(EntityId e) { return !e.is_tx() && e.partition() == EntityId::kSystemPartition; }

// The entity a parsed reference names, if it exists in the view.
std::optional<EntityId> ResolveExisting(const shard::TxEntityRef& r, const datalog::IndexSource& view) {
  static const Keyword kIdent = Keyword::Intern("db/ident");
  switch (r.kind) {
    case shard::TxEntityRef::Kind::kId: return r.id;
    case shard::TxEntityRef::Kind::kLookup: return view.Lookup(r.attr, r.value);
    case shard::TxEntityRef::Kind::kIdent: return view.Lookup(kIdent, Value::Kw(r.attr));
    default: return std::nullopt;
  }
}

}  // namespace

bool IsCrossShard(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument && s.message().rfind(kCrossShardPrefix, 0) == 0;
}

Result<RoutedTransaction> RouteTransaction(std::string_view tx_edn, const datalog::IndexSource& cluster_view,
                                           const ShardMap& map) {
  return RouteTransaction(tx_edn, cluster_view, map.shards(), map.partitions(),
                          [&map](uint32_t p) { return map.ShardOf(p); });
}

Result<RoutedTransaction> RouteTransaction(std::string_view tx_edn, const datalog::IndexSource& cluster_view,
                                           uint32_t shards, uint32_t partitions, const PartitionToShard& shard_of) {
  CAIRN_CHECK(shards >= 1 && partitions > shards);
  CAIRN_ASSIGN_OR_RETURN(Edn tx, ReadEdn(tx_edn));

  // 1. The dry run.
  shard::TransactorOptions topts;
  topts.partitions = partitions;
  topts.tx_instant_ms = 1;
  shard::Transactor transactor(topts);
  PlaceholderAllocator ids(partitions);
  CAIRN_ASSIGN_OR_RETURN(shard::TxResult dry, transactor.Prepare(tx, cluster_view, TxTime::Max(), ids));

  // 2-3. Where its datoms live.
  auto shard_of_partition = [&](uint32_t p) -> uint32_t {
    uint32_t s = shard_of(p);
    CAIRN_CHECK_MSG(s >= 1 && s <= shards, "shard_of out of range");
    return s;
  };
  const Datom* first_schema = nullptr;
  const Datom* first_data = nullptr;
  std::map<uint32_t, const Datom*> by_shard;  // shard -> one of its datoms
  for (const Datom& d : dry.datoms) {
    if (d.e.is_tx()) continue;
    if (IsSystem(d.e)) {
      if (first_schema == nullptr) first_schema = &d;
      continue;
    }
    if (first_data == nullptr) first_data = &d;
    by_shard.try_emplace(shard_of_partition(d.e.partition()), &d);
  }
  RoutedTransaction out;
  if (first_schema != nullptr && first_data != nullptr) {
    return Status::InvalidArgument(
        "a schema transaction (it installs or changes attributes or idents: " + first_schema->a.ToString() +
        " on system entity " + std::to_string(first_schema->e.raw) +
        ") must not also write ordinary data (" + first_data->a.ToString() + " on entity " +
        std::to_string(first_data->e.raw) + "): send them as two transactions");
  }
  if (first_schema != nullptr) {
    out.kind = RoutedTransaction::Kind::kSchema;
    out.shard = 0;
    out.tx_edn = std::string(tx_edn);
    return out;
  }
  if (by_shard.size() > 1) {
    std::string names, examples;
    for (const auto& [s, d] : by_shard) {
      names += (names.empty() ? "" : ", ") + std::to_string(s);
      examples += std::string(examples.empty() ? "" : "; ") + "shard " + std::to_string(s) + ": " + d->a.ToString() +
                  " of entity " + std::to_string(d->e.raw);
    }
    return Status::InvalidArgument(std::string(kCrossShardPrefix) + "the transaction's entities live on shards " +
                                   names + " (" + examples +
                                   "); a transaction must stay on one shard (cross-shard transactions are not "
                                   "supported yet)");
  }

  // The ops again (the expander is the transactor's own stage 2), to find the
  // reference nodes in value positions.
  shard::TxSchemaView schema(cluster_view.schema());
  shard::TxExpander expander(schema);
  std::vector<shard::TxOp> ops;
  CAIRN_RETURN_IF_ERROR(expander.Expand(tx, &ops));

  out.kind = RoutedTransaction::Kind::kData;
  if (!by_shard.empty()) {
    out.shard = by_shard.begin()->first;
  } else {
    // Nothing but the transaction entity: follow the first entity named.
    out.shard = 1;
    out.redundant = true;
    for (const shard::TxOp& op : ops) {
      std::optional<EntityId> e = ResolveExisting(op.e, cluster_view);
      if (e && !e->is_tx() && !IsSystem(*e) && e->partition() < partitions) {
        out.shard = shard_of_partition(e->partition());
        break;
      }
    }
  }

  // 4. Rewrite value references that resolve off the target shard.
  // Idents (system partition) stay symbolic: every shard holds them and
  // resolves them to its own ids (ClusterSource translates on reads).
  auto off_target = [&](EntityId e) {
    if (e.is_tx() || IsSystem(e)) return false;
    return e.partition() >= partitions || shard_of_partition(e.partition()) != out.shard;
  };
  auto rewrite = [&](const shard::TxEntityRef& r) {
    if (r.where == nullptr) return;
    if (r.kind != shard::TxEntityRef::Kind::kLookup) return;
    std::optional<EntityId> e = ResolveExisting(r, cluster_view);
    if (!e || !off_target(*e)) return;
    // `tx` is ours and not const; the ops only point into it.
    Edn& node = const_cast<Edn&>(*r.where);
    int line = node.line, column = node.column;
    node = Edn::Int(static_cast<int64_t>(e->raw));
    node.line = line;
    node.column = column;
    out.rewritten = true;
  };
  for (const shard::TxOp& op : ops) {
    if (op.kind == shard::TxOp::Kind::kPartitionHint) continue;
    if (op.v_is_ref) rewrite(op.v_ref);
    if (op.old_is_ref) rewrite(op.old_ref);
  }
  out.tx_edn = out.rewritten ? WriteEdn(tx) : std::string(tx_edn);
  return out;
}

}  // namespace cairn::cluster
