// TxExpander: turns transaction forms into TxOps (stage 2 of the transactor,
// see tx_ops.h).
//
// Accepted forms (docs/transactions.md):
//   [:db/add e a v]  [:db/retract e a v]  [:db/retract e a]
//   [:db/cas e a old new]  [:db/retractEntity e]   (lists or vectors;
//   :db.fn/cas and :db.fn/retractEntity are accepted as aliases)
//   {:db/id e :attr v ...}  with nested maps as values of ref attributes,
//   collections (vector/set) as values of cardinality-many attributes,
//   reverse refs {:_attr e-or-entities} and :db/partition placement hints.
// Entity positions: positive integer ids, string tempids ("datomic.tx" is the
// transaction), lookup refs [:unique-attr value], ident keywords
// (:db/current-tx is the transaction).
//
// Every value is converted and checked against `schema` here; entity
// references stay symbolic. Errors are InvalidArgument naming the form's
// line:column, the attribute and the value.
//
// Thread-safety: one Expand call at a time per object.
#pragma once

#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "core/edn.h"
#include "core/schema.h"
#include "shard/tx_ops.h"
#include "shard/tx_value.h"

namespace cairn::shard {

class TxExpander {
 public:
  explicit TxExpander(TxSchemaView& schema) : schema_(schema) {}

  // Appends the ops of every form of `tx_data` (an EDN vector or list).
  Status Expand(const Edn& tx_data, std::vector<TxOp>* ops);

 private:
  Status ExpandForm(const Edn& form);
  Status ExpandList(const Edn& form);
  // The entity a map stands for: its :db/id, or a new internal tempid.
  Result<TxEntityRef> MapEntity(const Edn& map);
  Status ExpandMapBody(const Edn& map, const TxEntityRef& self);
  Result<TxEntityRef> ParseEntity(const Edn& node, const char* role);
  Result<Keyword> ParseAttribute(const Edn& node, bool allow_reverse);
  Result<Keyword> ParseAttributeSlow(const Edn& node, bool allow_reverse);
  // Appends the op asserting `node` as a value of `a` for the map's entity
  // (and a nested map's ops after it).
  Status AddMapValue(const Attribute& attr, Keyword a, const Edn& map, const TxEntityRef& self, const Edn& node);
  // Fills op.v / op.v_ref from `node` for attribute `attr`.
  Status ParseValue(const Attribute& attr, const Edn& node, bool allow_nested_map, TxOp* op);
  // The value nodes of one map entry (a collection for cardinality-many).
  Result<std::vector<const Edn*>> ValueNodes(const Attribute& attr, const Edn& node);

  TxSchemaView& schema_;
  std::vector<TxOp>* ops_ = nullptr;
  int internal_tempids_ = 0;
  // Attributes that passed ParseAttribute recently, by text (a view into
  // the tx-data, which outlives the expansion); reverse: name starts with _.
  struct KnownAttr {
    std::string_view text;
    Keyword k;
    bool reverse = false;
  };
  static constexpr size_t kKnownAttrs = 8;
  KnownAttr known_attrs_[kKnownAttrs];
  size_t next_known_ = 0;
};

}  // namespace cairn::shard
