#include "shard/tx_expander.h"

#include <string>

#include "shard/tx_value.h"

namespace cairn::shard {

std::string TxEntityRef::Describe() const {
  switch (kind) {
    case Kind::kId:
      return "entity " + std::to_string(id.raw);
    case Kind::kTempid:
      if (internal) return "the entity of the map at " + (where ? where->Where() : std::string("?"));
      return "tempid \"" + tempid + "\"";
    case Kind::kLookup:
      return "lookup ref [" + attr.ToString() + " " + value.ToString() + "]";
    case Kind::kIdent:
      return "ident " + attr.ToString();
    case Kind::kTx:
      return "the transaction entity";
  }
  return "entity";
}

namespace {

bool IsListLike(const Edn& n) { return n.is(Edn::Kind::kVector) || n.is(Edn::Kind::kList); }

// [:attr value]: a lookup ref rather than a collection of entities.
bool LooksLikeLookupRef(const Edn& n) {
  return IsListLike(n) && n.items.size() == 2 && n.items[0].is(Edn::Kind::kKeyword);
}

bool IsReserved(Keyword k) { return k.ns() == "db" || k.ns().starts_with("db."); }

}  // namespace

Status TxExpander::Expand(const Edn& tx_data, std::vector<TxOp>* ops) {
  if (!IsListLike(tx_data)) {
    return ErrorAt(StatusCode::kInvalidArgument, &tx_data,
                   "transaction data must be a vector of forms, got " + std::string(EdnKindName(tx_data)));
  }
  ops_ = ops;
  // The remembered attribute texts point into the previous call's tx-data.
  for (KnownAttr& known : known_attrs_) known = KnownAttr{};
  for (const Edn& form : tx_data.items) CAIRN_RETURN_IF_ERROR(ExpandForm(form));
  return Status::OK();
}

Status TxExpander::ExpandForm(const Edn& form) {
  if (IsListLike(form)) return ExpandList(form);
  if (form.is(Edn::Kind::kMap)) {
    CAIRN_ASSIGN_OR_RETURN(TxEntityRef self, MapEntity(form));
    return ExpandMapBody(form, self);
  }
  return ErrorAt(StatusCode::kInvalidArgument, &form,
                 "expected a list form like [:db/add e a v] or an entity map, got " + std::string(EdnKindName(form)) +
                     " " + Snippet(form));
}

Result<Keyword> TxExpander::ParseAttribute(const Edn& node, bool allow_reverse) {
  // Tx-data names the same few attributes again and again: remember the
  // last ones that passed the checks (their text lives in the tx-data).
  if (node.is(Edn::Kind::kKeyword)) {
    for (const KnownAttr& known : known_attrs_) {
      if (known.text.data() != nullptr && known.text == node.text && (allow_reverse || !known.reverse)) return known.k;
    }
  }
  CAIRN_ASSIGN_OR_RETURN(Keyword k, ParseAttributeSlow(node, allow_reverse));
  known_attrs_[next_known_] = KnownAttr{node.text, k, k.name().starts_with("_")};
  next_known_ = (next_known_ + 1) % kKnownAttrs;
  return k;
}

Result<Keyword> TxExpander::ParseAttributeSlow(const Edn& node, bool allow_reverse) {
  if (!node.is(Edn::Kind::kKeyword)) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "expected an attribute keyword, got " + std::string(EdnKindName(node)) + " " + Snippet(node));
  }
  Keyword k = Keyword::Intern(node.text);
  if (!allow_reverse && k.name().starts_with("_")) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "reverse attribute " + k.ToString() + " is only allowed in entity maps");
  }
  if (IsReserved(k) && schema_.Find(k) == nullptr && !IsSchemaKey(k) && k != Kws().db_ident && k != Kws().tx_instant &&
      k != Kws().partition) {
    return ErrorAt(StatusCode::kInvalidArgument, &node, "unknown attribute " + k.ToString());
  }
  return k;
}

Result<TxEntityRef> TxExpander::ParseEntity(const Edn& node, const char* role) {
  TxEntityRef r;
  r.where = &node;
  switch (node.kind) {
    case Edn::Kind::kInt:
      if (node.i <= 0) {
        return ErrorAt(StatusCode::kInvalidArgument, &node,
                       std::string(role) + ": entity id " + Snippet(node) + " must be a positive integer");
      }
      r.kind = TxEntityRef::Kind::kId;
      r.id = EntityId{static_cast<uint64_t>(node.i)};
      return r;
    case Edn::Kind::kString:
      if (node.text.empty()) {
        return ErrorAt(StatusCode::kInvalidArgument, &node, std::string(role) + ": a tempid cannot be empty");
      }
      if (node.text == "datomic.tx") {
        r.kind = TxEntityRef::Kind::kTx;
        return r;
      }
      r.kind = TxEntityRef::Kind::kTempid;
      r.tempid = node.text;
      return r;
    case Edn::Kind::kTagged:
      // Datomic on-prem's #db/id[:db.part/user] (a new entity) and
      // #db/id[:db.part/user -7] (the tempid -7): accepted so that legacy
      // schema files load; the partition keyword is ignored.
      if (node.text == "db/id" && node.items.size() == 1 && IsListLike(node.items[0]) && !node.items[0].items.empty() &&
          node.items[0].items[0].is(Edn::Kind::kKeyword) && node.items[0].items.size() <= 2) {
        r.kind = TxEntityRef::Kind::kTempid;
        if (node.items[0].items.size() == 2 && node.items[0].items[1].is(Edn::Kind::kInt)) {
          r.tempid = "#db/id " + std::to_string(node.items[0].items[1].i);
        } else {
          r.internal = true;
          r.tempid =
              "\x01"
              "db/id-" +
              std::to_string(++internal_tempids_);
        }
        return r;
      }
      break;
    case Edn::Kind::kKeyword:
      if (node.text == "db/current-tx") {
        r.kind = TxEntityRef::Kind::kTx;
        return r;
      }
      r.kind = TxEntityRef::Kind::kIdent;
      r.attr = Keyword::Intern(node.text);
      return r;
    case Edn::Kind::kVector:
    case Edn::Kind::kList: {
      if (!LooksLikeLookupRef(node)) break;
      Keyword a = Keyword::Intern(node.items[0].text);
      const Attribute* attr = schema_.Find(a);
      bool unique = a == Kws().db_ident || (attr != nullptr && attr->unique != Uniqueness::kNone);
      if (!unique) {
        return ErrorAt(StatusCode::kInvalidArgument, &node,
                       "lookup ref " + Snippet(node) + ": " + a.ToString() +
                           " is not a unique attribute (:db/unique :db.unique/identity or :db.unique/value)");
      }
      if (node.items[1].is(Edn::Kind::kNil)) {
        return ErrorAt(StatusCode::kInvalidArgument, &node, "lookup ref " + Snippet(node) + " has a nil value");
      }
      const Attribute& def = schema_.Get(a);
      Result<Value> v = a == Kws().db_ident && node.items[1].is(Edn::Kind::kKeyword)
                            ? Result<Value>(Value::Kw(Keyword::Intern(node.items[1].text)))
                            : ConvertValue(def, node.items[1]);
      if (!v.ok()) return AddContext(v.status(), "lookup ref " + Snippet(node));
      r.kind = TxEntityRef::Kind::kLookup;
      r.attr = a;
      r.value = std::move(v).value();
      return r;
    }
    default:
      break;
  }
  return ErrorAt(StatusCode::kInvalidArgument, &node,
                 std::string(role) +
                     ": expected an entity id, a tempid string, a lookup ref [:attr value] or an "
                     "ident keyword, got " +
                     std::string(EdnKindName(node)) + " " + Snippet(node));
}

Status TxExpander::ParseValue(const Attribute& attr, const Edn& node, bool allow_nested_map, TxOp* op) {
  op->v_node = &node;
  if (attr.ident == Kws().db_ident) {
    if (!node.is(Edn::Kind::kKeyword)) {
      return ErrorAt(
          StatusCode::kInvalidArgument, &node,
          "value " + Snippet(node) + " for :db/ident must be a keyword, got " + std::string(EdnKindName(node)));
    }
    op->v = Value::Kw(Keyword::Intern(node.text));
    return Status::OK();
  }
  if (!attr.is_ref() || IsSchemaKey(attr.ident)) {
    CAIRN_ASSIGN_OR_RETURN(op->v, ConvertValue(attr, node));
    return Status::OK();
  }
  if (node.is(Edn::Kind::kNil)) {
    return ErrorAt(StatusCode::kInvalidArgument, &node, "nil is not a valid value for " + attr.ident.ToString());
  }
  if (node.is(Edn::Kind::kMap)) {
    if (!allow_nested_map) {
      return ErrorAt(StatusCode::kInvalidArgument, &node,
                     "a nested map for " + attr.ident.ToString() + " is only allowed inside an entity map");
    }
    CAIRN_ASSIGN_OR_RETURN(op->v_ref, MapEntity(node));
    op->v_is_ref = true;
    return Status::OK();
  }
  bool ok_kind = node.is(Edn::Kind::kInt) || node.is(Edn::Kind::kString) || node.is(Edn::Kind::kKeyword) ||
                 LooksLikeLookupRef(node);
  if (!ok_kind) {
    return ErrorAt(StatusCode::kInvalidArgument, &node,
                   "value " + Snippet(node) + " for ref attribute " + attr.ident.ToString() +
                       " must be an entity id, a tempid, a lookup ref or an ident, got " +
                       std::string(EdnKindName(node)));
  }
  std::string role = "value of " + attr.ident.ToString();
  CAIRN_ASSIGN_OR_RETURN(op->v_ref, ParseEntity(node, role.c_str()));
  op->v_is_ref = true;
  return Status::OK();
}

Status TxExpander::ExpandList(const Edn& form) {
  const auto& it = form.items;
  const TxKeywords& k = Kws();
  if (it.empty() || !it[0].is(Edn::Kind::kKeyword)) {
    return ErrorAt(StatusCode::kInvalidArgument, &form,
                   "a list form must start with an operation keyword (:db/add, :db/retract, :db/cas, "
                   ":db/retractEntity), got " +
                       Snippet(form));
  }
  Keyword fn = Keyword::Intern(it[0].text);
  auto arity = [&](const char* shape) {
    return ErrorAt(StatusCode::kInvalidArgument, &form,
                   "malformed " + fn.ToString() + " form " + Snippet(form) + ", expected " + shape);
  };
  TxOp op;
  op.form = &form;
  op.v_node = &form;
  if (fn == k.add || fn == k.retract) {
    bool add = fn == k.add;
    if (add ? it.size() != 4 : (it.size() != 3 && it.size() != 4)) {
      return arity(add ? "[:db/add e a v]" : "[:db/retract e a v] or [:db/retract e a]");
    }
    CAIRN_ASSIGN_OR_RETURN(op.e, ParseEntity(it[1], "entity"));
    CAIRN_ASSIGN_OR_RETURN(op.a, ParseAttribute(it[2], false));
    if (op.a == k.db_id) return ErrorAt(StatusCode::kInvalidArgument, &it[2], ":db/id is not an attribute");
    if (op.a == k.partition) {
      if (!add) return ErrorAt(StatusCode::kInvalidArgument, &it[2], ":db/partition cannot be retracted");
      op.kind = TxOp::Kind::kPartitionHint;
      if (it[3].is(Edn::Kind::kInt)) {
        op.hint_partition = it[3].i;
      } else {
        CAIRN_ASSIGN_OR_RETURN(op.v_ref, ParseEntity(it[3], "value of :db/partition"));
        op.v_is_ref = true;
      }
      op.v_node = &it[3];
      ops_->push_back(std::move(op));
      return Status::OK();
    }
    if (it.size() == 3) {
      op.kind = TxOp::Kind::kRetractAttr;
      ops_->push_back(std::move(op));
      return Status::OK();
    }
    op.kind = add ? TxOp::Kind::kAdd : TxOp::Kind::kRetract;
    CAIRN_RETURN_IF_ERROR(ParseValue(schema_.Get(op.a), it[3], false, &op));
    ops_->push_back(std::move(op));
    return Status::OK();
  }
  if (fn == k.cas || fn == k.cas_fn) {
    if (it.size() != 5) return arity("[:db/cas e a old-value new-value]");
    op.kind = TxOp::Kind::kCas;
    CAIRN_ASSIGN_OR_RETURN(op.e, ParseEntity(it[1], "entity"));
    CAIRN_ASSIGN_OR_RETURN(op.a, ParseAttribute(it[2], false));
    const Attribute& attr = schema_.Get(op.a);
    if (!it[3].is(Edn::Kind::kNil)) {
      TxOp old_holder;
      CAIRN_RETURN_IF_ERROR(ParseValue(attr, it[3], false, &old_holder));
      op.old_is_ref = old_holder.v_is_ref;
      op.old = std::move(old_holder.v);
      op.old_ref = std::move(old_holder.v_ref);
    }
    CAIRN_RETURN_IF_ERROR(ParseValue(attr, it[4], false, &op));
    ops_->push_back(std::move(op));
    return Status::OK();
  }
  if (fn == k.retract_entity || fn == k.retract_entity_fn) {
    if (it.size() != 2) return arity("[:db/retractEntity e]");
    op.kind = TxOp::Kind::kRetractEntity;
    CAIRN_ASSIGN_OR_RETURN(op.e, ParseEntity(it[1], "entity"));
    ops_->push_back(std::move(op));
    return Status::OK();
  }
  return ErrorAt(StatusCode::kInvalidArgument, &it[0],
                 "unknown transaction operation " + fn.ToString() +
                     " (expected :db/add, :db/retract, :db/cas or :db/retractEntity)");
}

Result<TxEntityRef> TxExpander::MapEntity(const Edn& map) {
  if (map.items.size() % 2 != 0) {
    return ErrorAt(StatusCode::kInvalidArgument, &map, "entity map has an odd number of forms");
  }
  for (size_t i = 0; i + 1 < map.items.size(); i += 2) {
    if (map.items[i].IsKeyword("db/id")) return ParseEntity(map.items[i + 1], ":db/id");
  }
  TxEntityRef r;
  r.kind = TxEntityRef::Kind::kTempid;
  r.internal = true;
  // The leading \x01 keeps it apart from any tempid a user writes.
  r.tempid = "\x01map-" + std::to_string(++internal_tempids_);
  r.where = &map;
  return r;
}

Result<std::vector<const Edn*>> TxExpander::ValueNodes(const Attribute& attr, const Edn& node) {
  std::vector<const Edn*> out;
  if (node.is(Edn::Kind::kSet)) {
    if (!attr.is_many()) {
      return ErrorAt(StatusCode::kInvalidArgument, &node,
                     "a set of values " + Snippet(node) + " for cardinality-one attribute " + attr.ident.ToString());
    }
    for (const Edn& x : node.items) out.push_back(&x);
    return out;
  }
  if (attr.is_many() && IsListLike(node)) {
    bool single = false;
    if (attr.is_ref()) {
      single = LooksLikeLookupRef(node);
    } else if (attr.value_type == ValueType::kTuple) {
      single = node.items.empty() || !IsListLike(node.items[0]);
    }
    if (!single) {
      for (const Edn& x : node.items) out.push_back(&x);
      return out;
    }
  }
  out.push_back(&node);
  return out;
}

Status TxExpander::ExpandMapBody(const Edn& map, const TxEntityRef& self) {
  const TxKeywords& k = Kws();
  for (size_t i = 0; i + 1 < map.items.size(); i += 2) {
    const Edn& key = map.items[i];
    const Edn& val = map.items[i + 1];
    if (key.IsKeyword("db/id")) continue;
    // Datomic on-prem's attribute installation marker: attributes are
    // installed by having :db/ident and :db/valueType, so it says nothing.
    if (key.IsKeyword("db.install/_attribute")) continue;
    CAIRN_ASSIGN_OR_RETURN(Keyword a, ParseAttribute(key, true));
    if (a == k.partition) {
      TxOp op;
      op.kind = TxOp::Kind::kPartitionHint;
      op.e = self;
      op.a = a;
      op.form = &map;
      op.v_node = &val;
      if (val.is(Edn::Kind::kInt)) {
        op.hint_partition = val.i;
      } else {
        CAIRN_ASSIGN_OR_RETURN(op.v_ref, ParseEntity(val, "value of :db/partition"));
        op.v_is_ref = true;
      }
      ops_->push_back(std::move(op));
      continue;
    }
    if (a.name().starts_with("_")) {
      // Reverse ref: {:db/id X :_parent Y} means [Y :parent X].
      std::string forward_text = std::string(a.ns()).append(a.ns().empty() ? "" : "/").append(a.name().substr(1));
      Keyword forward = Keyword::Intern(forward_text);
      const Attribute& fa = schema_.Get(forward);
      if (!fa.is_ref()) {
        return ErrorAt(
            StatusCode::kInvalidArgument, &key,
            "reverse attribute " + a.ToString() + " needs " + forward.ToString() + " to be declared :db.type/ref");
      }
      std::vector<const Edn*> sources;
      if (IsListLike(val) && !LooksLikeLookupRef(val)) {
        for (const Edn& x : val.items) sources.push_back(&x);
      } else if (val.is(Edn::Kind::kSet)) {
        for (const Edn& x : val.items) sources.push_back(&x);
      } else {
        sources.push_back(&val);
      }
      for (const Edn* src : sources) {
        TxOp op;
        op.kind = TxOp::Kind::kAdd;
        op.a = forward;
        op.form = &map;
        op.v_node = src;
        op.v_is_ref = true;
        op.v_ref = self;
        if (src->is(Edn::Kind::kMap)) {
          CAIRN_ASSIGN_OR_RETURN(op.e, MapEntity(*src));
          TxEntityRef child = op.e;
          ops_->push_back(std::move(op));
          CAIRN_RETURN_IF_ERROR(ExpandMapBody(*src, child));
        } else {
          CAIRN_ASSIGN_OR_RETURN(op.e, ParseEntity(*src, ("value of " + a.ToString()).c_str()));
          ops_->push_back(std::move(op));
        }
      }
      continue;
    }
    const Attribute& attr = schema_.Get(a);
    if (val.is(Edn::Kind::kNil)) {
      return ErrorAt(StatusCode::kInvalidArgument, &val, "nil is not a valid value for " + a.ToString());
    }
    if (!val.is(Edn::Kind::kSet) && !(attr.is_many() && IsListLike(val))) {
      // One value (what ValueNodes would return alone): no list to build.
      CAIRN_RETURN_IF_ERROR(AddMapValue(attr, a, map, self, val));
      continue;
    }
    CAIRN_ASSIGN_OR_RETURN(std::vector<const Edn*> nodes, ValueNodes(attr, val));
    for (const Edn* node : nodes) CAIRN_RETURN_IF_ERROR(AddMapValue(attr, a, map, self, *node));
  }
  return Status::OK();
}

Status TxExpander::AddMapValue(const Attribute& attr, Keyword a, const Edn& map, const TxEntityRef& self,
                               const Edn& node) {
  // Built in place (a TxOp is large); on error the whole expansion fails, so
  // a half-filled op is never read.
  TxOp& op = ops_->emplace_back();
  op.kind = TxOp::Kind::kAdd;
  op.e = self;
  op.a = a;
  op.form = &map;
  CAIRN_RETURN_IF_ERROR(ParseValue(attr, node, true, &op));
  if (!op.v_is_ref || !node.is(Edn::Kind::kMap)) return Status::OK();
  TxEntityRef child = op.v_ref;  // `op` moves when the nested map's ops are added
  return ExpandMapBody(node, child);
}

}  // namespace cairn::shard
