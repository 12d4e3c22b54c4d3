#include "cluster/coordinator.h"

#include <algorithm>
#include <future>
#include <random>
#include <set>
#include <thread>

#include "cluster/cluster_source.h"
#include "cluster/scan_codec.h"
#include "cluster/tx_router.h"
#include "cluster/wire.h"
#include "shard/store_source.h"
#include "shard/tx_placement.h"

namespace cairn::cluster {

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- routing

const std::set<std::string_view>& SchemaKeys() {
  static const std::set<std::string_view> keys = {
      "db/ident",      "db/valueType",    "db/cardinality", "db/unique",     "db/index",      "db/doc",
      "db/isComponent", "db/noHistory",   "db/tupleAttrs",  "db/tupleTypes", "db/tupleType",
  };
  return keys;
}

bool IsTxEntityRef(const Edn& e) {
  return (e.is(Edn::Kind::kString) && e.text == "datomic.tx") || e.IsKeyword("db/current-tx");
}

// What the router knows about one entity reference.
struct EntityRef {
  enum class Kind { kNone, kTx, kSchema, kPlaced, kTempid } kind = Kind::kNone;
  uint32_t partition = 0;  // kPlaced
  std::string tempid;      // kTempid
};

Result<EntityRef> ClassifyEntity(const Edn& e, const ShardMap& map) {
  EntityRef r;
  if (IsTxEntityRef(e)) {
    r.kind = EntityRef::Kind::kTx;
  } else if (e.is(Edn::Kind::kInt)) {
    if (e.i <= 0) return Status::InvalidArgument(e.Where() + ": entity id must be positive");
    EntityId id{static_cast<uint64_t>(e.i)};
    if (id.is_tx()) {
      r.kind = EntityRef::Kind::kTx;
    } else if (id.partition() == EntityId::kSystemPartition) {
      r.kind = EntityRef::Kind::kSchema;
    } else {
      r.kind = EntityRef::Kind::kPlaced;
      r.partition = id.partition();
    }
  } else if (e.is(Edn::Kind::kKeyword)) {
    r.kind = EntityRef::Kind::kSchema;  // an ident: the system partition
  } else if (e.is(Edn::Kind::kString)) {
    r.kind = EntityRef::Kind::kTempid;
    r.tempid = e.text;
  } else if ((e.is(Edn::Kind::kVector) || e.is(Edn::Kind::kList)) && e.items.size() == 2 &&
             e.items[0].is(Edn::Kind::kKeyword)) {
    if (e.items[0].IsKeyword("db/ident")) {
      r.kind = EntityRef::Kind::kSchema;
    } else {
      // A lookup ref: an identity value places its entity (tx_placement.h).
      Result<Value> v = EdnToValue(e.items[1]);
      if (!v.ok()) return v.status();
      r.kind = EntityRef::Kind::kPlaced;
      r.partition = shard::UniqueIdentityPartition(Keyword::Intern(e.items[0].text), *v, map.partitions());
    }
  }
  return r;
}

struct Slot {
  std::optional<uint32_t> partition;  // placed by identity value or hint
};

}  // namespace

Result<TxRoute> RouteTx(const Edn& tx, const Schema& schema, const ShardMap& map) {
  if (!tx.is(Edn::Kind::kVector) && !tx.is(Edn::Kind::kList)) {
    return Status::InvalidArgument(tx.Where() + ": tx-data must be a vector of forms");
  }
  bool has_schema = false, has_data = false;
  std::string first_schema_where, first_data_where;
  std::optional<uint32_t> anchor;             // first existing entity's partition
  std::map<std::string, Slot> slots;          // tempids
  std::vector<std::string> slot_order;
  std::set<uint32_t> placed;                  // partitions of existing entities

  auto note_schema = [&](const Edn& at) {
    if (!has_schema) first_schema_where = at.Where();
    has_schema = true;
  };
  auto note_data = [&](const Edn& at) {
    if (!has_data) first_data_where = at.Where();
    has_data = true;
  };
  auto slot = [&](const std::string& name) -> Slot& {
    auto [it, inserted] = slots.try_emplace(name);
    if (inserted) slot_order.push_back(name);
    return it->second;
  };
  auto identity_partition = [&](std::string_view attr, const Edn& value) -> std::optional<uint32_t> {
    Keyword a = Keyword::Intern(attr);
    const Attribute* def = schema.Find(a);
    if (def == nullptr || def->unique != Uniqueness::kIdentity) return std::nullopt;
    Result<Value> v = EdnToValue(value);
    if (!v.ok()) return std::nullopt;
    return shard::UniqueIdentityPartition(a, *v, map.partitions());
  };
  // One [e a v] fact (a list form or a map entry): updates the placement state.
  auto fact = [&](const EntityRef& ref, const Edn& attr, const Edn* value, const Edn& at) -> Status {
    bool schema_attr = attr.is(Edn::Kind::kKeyword) && SchemaKeys().count(attr.text) > 0;
    if (ref.kind == EntityRef::Kind::kTx) return Status::OK();
    if (ref.kind == EntityRef::Kind::kSchema || schema_attr) {
      note_schema(at);
      return Status::OK();
    }
    note_data(at);
    if (ref.kind == EntityRef::Kind::kPlaced) {
      placed.insert(ref.partition);
      if (!anchor) anchor = ref.partition;
    } else if (ref.kind == EntityRef::Kind::kTempid) {
      Slot& s = slot(ref.tempid);
      if (!s.partition && value != nullptr && attr.is(Edn::Kind::kKeyword)) {
        if (attr.IsKeyword("db/partition") && value->is(Edn::Kind::kInt) && value->i > 0) {
          s.partition = static_cast<uint32_t>(value->i);
        } else if (std::optional<uint32_t> p = identity_partition(attr.text, *value)) {
          s.partition = *p;
        }
      }
    }
    return Status::OK();
  };

  for (const Edn& form : tx.items) {
    if (form.is(Edn::Kind::kMap)) {
      const Edn* id = nullptr;
      for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
        if (form.items[i].IsKeyword("db/id")) id = &form.items[i + 1];
      }
      EntityRef ref;
      if (id != nullptr) {
        CAIRN_ASSIGN_OR_RETURN(ref, ClassifyEntity(*id, map));
      } else {
        // No :db/id: a new entity the transactor names itself; only an
        // identity value or a hint places it (else the anchor or shard 1).
        ref.kind = EntityRef::Kind::kTempid;
        ref.tempid = "\x01map@" + form.Where();
      }
      for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
        if (form.items[i].IsKeyword("db/id")) continue;
        CAIRN_RETURN_IF_ERROR(fact(ref, form.items[i], &form.items[i + 1], form.items[i]));
      }
      continue;
    }
    if ((form.is(Edn::Kind::kVector) || form.is(Edn::Kind::kList)) && !form.items.empty() &&
        form.items[0].is(Edn::Kind::kKeyword) && form.items.size() >= 2) {
      const Edn& op = form.items[0];
      CAIRN_ASSIGN_OR_RETURN(EntityRef ref, ClassifyEntity(form.items[1], map));
      if (op.IsKeyword("db/retractEntity") || op.IsKeyword("db.fn/retractEntity")) {
        Edn none;
        CAIRN_RETURN_IF_ERROR(fact(ref, none, nullptr, form));
      } else if (form.items.size() >= 4) {
        CAIRN_RETURN_IF_ERROR(fact(ref, form.items[2], &form.items[3], form));
      } else {
        Edn none;
        CAIRN_RETURN_IF_ERROR(fact(ref, form.items.size() >= 3 ? form.items[2] : none, nullptr, form));
      }
      continue;
    }
    // Anything else: the shard's transactor names the error; it places nothing.
    note_data(form);
  }

  if (has_schema && has_data) {
    return Status::InvalidArgument("a schema transaction (it installs or changes attributes or idents, at " +
                                   first_schema_where +
                                   ") must not also write ordinary data (at " + first_data_where +
                                   "): send them as two transactions");
  }
  TxRoute route;
  if (has_schema) {
    route.schema = true;
    return route;
  }
  // The transactor's step 4: new entities without a place of their own go
  // to the first existing entity's partition, else the first placed new one's.
  if (!anchor) {
    for (const std::string& name : slot_order) {
      if (slots[name].partition) {
        anchor = slots[name].partition;
        break;
      }
    }
  }
  // Step 5: the rest go with the first unplaced one, placed by its tempid
  // (a map without :db/id has a name only the transactor knows: no anchor).
  if (!anchor) {
    for (const std::string& name : slot_order) {
      if (slots[name].partition) continue;
      if (name.rfind("\x01map@", 0) != 0) anchor = shard::TempidPartition(name, map.partitions());
      break;
    }
  }
  std::set<uint32_t> partitions = placed;
  for (const std::string& name : slot_order) {
    const Slot& s = slots[name];
    if (s.partition) {
      partitions.insert(*s.partition);
    } else if (anchor) {
      partitions.insert(*anchor);
    } else if (name.rfind("\x01map@", 0) != 0) {
      partitions.insert(shard::TempidPartition(name, map.partitions()));
    }
  }
  std::set<uint32_t> shards;
  for (uint32_t p : partitions) {
    if (p == 0 || p >= map.partitions()) {
      return Status::InvalidArgument("partition " + std::to_string(p) + " is out of range (the cluster has " +
                                     std::to_string(map.partitions()) + " partitions)");
    }
    shards.insert(map.ShardOf(p));
  }
  if (shards.size() > 1) {
    std::string names;
    for (uint32_t s : shards) names += (names.empty() ? "" : ", ") + std::to_string(s);
    return Status::InvalidArgument("cross_shard: the transaction's entities live on shards " + names +
                                   "; a transaction must stay on one shard (cross-shard transactions are not "
                                   "supported yet)");
  }
  route.group = shards.empty() ? 1 : *shards.begin();
  return route;
}

// ---------------------------------------------------------------- peer requests

namespace {

enum class RequestKind : uint8_t { kTransact = 1, kMetaMap = 2 };
// A payload starting with this byte is a scan codec request (its magic).
constexpr uint8_t kScanRequestKind = 0xC5;

// Reply of kTransact: code u8, varint leader, bytes message, then if OK
// varint t, varint index, u8 duplicate, varint n (bytes name, varint id)*,
// varint m datom*.
std::string EncodeProposeResult(const ProposeResult& r) {
  std::string out;
  wire::PutU8(&out, static_cast<uint8_t>(r.status.code()));
  wire::PutVarint(&out, r.leader);
  wire::PutBytes(&out, r.status.message());
  if (!r.status.ok()) return out;
  wire::PutVarint(&out, r.t.raw);
  wire::PutVarint(&out, r.index);
  wire::PutU8(&out, r.duplicate ? 1 : 0);
  wire::PutVarint(&out, r.tempids.size());
  for (const auto& [name, id] : r.tempids) {
    wire::PutBytes(&out, name);
    wire::PutVarint(&out, id.raw);
  }
  wire::PutVarint(&out, r.datoms.size());
  for (const Datom& d : r.datoms) wire::PutDatom(&out, d);
  return out;
}

Result<ProposeResult> DecodeProposeResult(std::string_view bytes) {
  wire::Reader in(bytes, "transact reply");
  ProposeResult r;
  CAIRN_ASSIGN_OR_RETURN(uint8_t code, in.U8("code"));
  if (code > static_cast<uint8_t>(StatusCode::kInternal)) {
    return Status::InvalidArgument("transact reply: unknown status code " + std::to_string(code));
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t leader, in.Varint("leader"));
  r.leader = static_cast<uint32_t>(leader);
  CAIRN_ASSIGN_OR_RETURN(std::string_view message, in.Bytes("message"));
  if (code != 0) {
    r.status = Status(static_cast<StatusCode>(code), std::string(message));
    CAIRN_RETURN_IF_ERROR(in.Done());
    return r;
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t t, in.Varint("t"));
  r.t = TxTime{t};
  CAIRN_ASSIGN_OR_RETURN(r.index, in.Varint("index"));
  CAIRN_ASSIGN_OR_RETURN(uint8_t dup, in.U8("duplicate"));
  r.duplicate = dup != 0;
  CAIRN_ASSIGN_OR_RETURN(uint64_t n, in.Varint("tempid count"));
  for (uint64_t i = 0; i < n; ++i) {
    CAIRN_ASSIGN_OR_RETURN(std::string_view name, in.Bytes("tempid"));
    CAIRN_ASSIGN_OR_RETURN(uint64_t id, in.Varint("tempid id"));
    r.tempids[std::string(name)] = EntityId{id};
  }
  CAIRN_ASSIGN_OR_RETURN(uint64_t m, in.Varint("datom count"));
  for (uint64_t i = 0; i < m; ++i) {
    CAIRN_ASSIGN_OR_RETURN(Datom d, in.ReadDatom("datom"));
    r.datoms.push_back(std::move(d));
  }
  CAIRN_RETURN_IF_ERROR(in.Done());
  return r;
}

// `db` (a replica's value, shard::StoreSource) in the view `spec`.
Result<std::shared_ptr<const datalog::IndexSource>> ViewOf(const std::shared_ptr<const datalog::IndexSource>& db,
                                                            const ViewSpec& spec) {
  // kHistoryAfter: the history view (the scan codec's server filters it;
  // the coordinator's diff filters its own groups' datoms).
  static const shard::StoreSource::Kind kKinds[] = {shard::StoreSource::Kind::kCurrent, shard::StoreSource::Kind::kAsOf,
                                                    shard::StoreSource::Kind::kSince, shard::StoreSource::Kind::kHistory,
                                                    shard::StoreSource::Kind::kHistory};
  return shard::ViewOf(db, kKinds[static_cast<int>(spec.kind)], spec.t);
}

// Whether `node` looks alive from `host` (itself always; an unknown node is
// assumed alive).
bool PeerLiveOn(const NodeHost& host, uint32_t node) {
  if (node == host.node_id()) return true;
  std::map<uint32_t, bool> live = host.peers_live();
  auto it = live.find(node);
  return it == live.end() || it->second;
}

bool Retryable(StatusCode c) {
  return c == StatusCode::kNotLeader || c == StatusCode::kUnavailable || c == StatusCode::kTimeout ||
         c == StatusCode::kCancelled;
}

TxOutcome ToOutcome(ProposeResult r, uint64_t group) {
  TxOutcome o;
  o.t = r.t;
  o.tempids = std::move(r.tempids);
  o.datoms = std::move(r.datoms);
  o.duplicate = r.duplicate;
  o.group = group;
  return o;
}

// EDN text of one stored value for a schema re-send.
std::string ValueEdn(const Value& v) { return v.ToString(); }

bool UserSystemEntity(EntityId e) {
  return !e.is_tx() && e.partition() == EntityId::kSystemPartition &&
         (e.raw & ((uint64_t{1} << EntityId::kSeqBits) - 1)) >= Schema::kFirstUserSeq;
}

// ident -> the definition of every user entity of the system partition that
// has an ident (attributes and plain idents), as text, with ref values shown
// as the ident they name: comparable between the meta group and a shard's
// copy, whose entity ids may differ.
Result<std::map<std::string, std::string>> SchemaDigest(const datalog::IndexSource& v) {
  std::map<uint64_t, std::string> idents;  // every entity with an ident (for ref values)
  datalog::DatomPattern p;
  p.a = Keyword::Intern("db/ident");
  CAIRN_RETURN_IF_ERROR(v.Scan(p, [&](const Datom& d) {
    idents[d.e.raw] = d.v.ToString();
    return true;
  }));
  std::map<std::string, std::set<std::string>> props;
  for (const auto& [e, ident] : idents) {
    if (UserSystemEntity(EntityId{e})) props[ident];
  }
  for (std::string_view key : SchemaKeys()) {
    if (key == "db/ident") continue;
    Keyword a = Keyword::Intern(key);
    if (v.schema().Find(a) == nullptr) continue;
    p.a = a;
    CAIRN_RETURN_IF_ERROR(v.Scan(p, [&](const Datom& d) {
      if (!UserSystemEntity(d.e)) return true;
      auto owner = idents.find(d.e.raw);
      if (owner == idents.end()) return true;
      std::string value = d.v.ToString();
      if (d.v.type() == ValueType::kRef) {
        if (auto named = idents.find(d.v.as_ref().raw); named != idents.end()) value = named->second;
      }
      props[owner->second].insert(std::string(key) + " " + value);
      return true;
    }));
  }
  std::map<std::string, std::string> out;
  for (const auto& [ident, set] : props) {
    std::string text;
    for (const std::string& s : set) text += s + "; ";
    out[ident] = std::move(text);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- Coordinator

Coordinator::Coordinator(NodeHost* host, ShardMap map, CoordinatorOptions options)
    : host_(host), maps_(std::make_shared<ShardMapCache>(host->node_id(), std::move(map))), options_(options) {
  for (uint64_t g : host_->groups()) hosted_.insert(g);
  boot_id_ = std::random_device{}() | (static_cast<uint64_t>(std::random_device{}()) << 32);
  host_->SetRequestHandler(
      [this](uint32_t from, std::string payload, NodeHost::RequestReply reply) {
        HandleRequest(from, std::move(payload), std::move(reply));
      },
      // A forwarded transaction only decodes and proposes with a callback:
      // handled on the I/O thread that read it, no worker hand-off.
      [](std::string_view payload) {
        return !payload.empty() && static_cast<uint8_t>(payload[0]) == static_cast<uint8_t>(RequestKind::kTransact);
      });
}

Coordinator::~Coordinator() {
  host_->SetRequestHandler(nullptr);
}

uint32_t Coordinator::node_id() const { return host_->node_id(); }

bool Coordinator::PeerLive(uint32_t node) const { return PeerLiveOn(*host_, node); }

std::string Coordinator::FreshRequestId() {
  return "c" + std::to_string(host_->node_id()) + "-" + std::to_string(boot_id_) + "-" +
         std::to_string(next_id_.fetch_add(1) + 1);
}

void Coordinator::HandleRequest(uint32_t from, std::string payload, NodeHost::RequestReply reply) {
  if (!payload.empty() && static_cast<uint8_t>(payload[0]) == kScanRequestKind) {
    // A remote read (the scan codec's request, docs/cluster.md): served from
    // this node's replica after a ReadIndex, so it is linearizable.
    Clock::time_point deadline = Deadline();
    reply(ServeScanRequest(payload, [this, deadline](uint32_t group, const ViewSpec& spec)
                                        -> Result<std::shared_ptr<const datalog::IndexSource>> {
      if (!Hosts(group)) {
        return Status::Unavailable("node " + std::to_string(host_->node_id()) + " holds no replica of group " +
                                   std::to_string(group));
      }
      return LocalView(group, deadline, spec);
    }));
    return;
  }
  wire::Reader in(payload, "request from node " + std::to_string(from));
  Result<uint8_t> kind = in.U8("kind");
  if (!kind.ok()) return reply(kind.status());
  if (*kind == static_cast<uint8_t>(RequestKind::kMetaMap)) {
    // A node without a meta replica follows the shard map through us.
    Result<uint64_t> known = in.Varint("known version");
    if (!known.ok()) return reply(known.status());
    if (Status s = in.Done(); !s.ok()) return reply(s);
    return reply(ServeMetaMap(*known));
  }
  if (*kind == static_cast<uint8_t>(RequestKind::kTransact)) {
    Result<uint64_t> group = in.Varint("group");
    if (!group.ok()) return reply(group.status());
    Result<std::string_view> rid = in.Bytes("request id");
    if (!rid.ok()) return reply(rid.status());
    Result<std::string_view> edn = in.Bytes("tx-data");
    if (!edn.ok()) return reply(edn.status());
    if (in.offset() < payload.size()) {  // the sender's clock (docs/cluster.md "Time"); optional
      Result<uint64_t> min_t = in.Varint("min t");
      if (!min_t.ok()) return reply(min_t.status());
      (void)host_->ObserveTime(TxTime{*min_t});  // a peer far ahead: its t is not followed
    }
    if (Status s = in.Done(); !s.ok()) return reply(s);
    // Proposed here or refused with NotLeader + hint; never forwarded again.
    host_->Propose(*group, std::string(*rid), std::string(*edn),
                   [reply](ProposeResult r) { reply(EncodeProposeResult(r)); });
    return;
  }
  reply(Status::InvalidArgument("unknown request kind " + std::to_string(*kind)));
}

// One transaction on its way to its group's leader (ProposeAtAsync) as a
// chain of callbacks: an attempt proposes locally (NodeHost::Propose) or
// forwards to the target node (NodeHost::SendRequest); a retryable failure
// picks the next target — this node's replica's leader, Raft's NotLeader
// hint, else the next live replica — and tries again, after a backoff
// (NodeHost::PostAfter) unless it follows a fresh hint. No thread waits: the
// callbacks run on the driver or the transport's I/O thread. A forward to a
// node that dies fails when the liveness check counts it lost
// (NodeHost::SendRequest), not at the hop timeout. Holds the host, never the
// coordinator, so it may outlive neither.
struct Coordinator::ProposeOp : std::enable_shared_from_this<ProposeOp> {
  NodeHost* host = nullptr;
  CoordinatorOptions options;
  uint64_t group = 0;
  std::string request_id, tx_edn;
  Clock::time_point deadline;
  TxDone done;
  std::vector<uint32_t> replicas;
  bool hosted = false;
  uint32_t self = 0, target = 0;
  size_t rotate = 0;
  int backoff_ms = 0;
  Status last = Status::Unavailable("no attempt made");

  uint32_t LocalLeader() const {
    if (!hosted) return 0;
    Result<GroupStatus> st = host->status(group);
    return st.ok() ? st->leader : 0;
  }

  void Attempt() {
    auto op = shared_from_this();
    if (target == self) {
      host->Propose(group, request_id, tx_edn, [op](ProposeResult r) { op->OnResult(std::move(r)); });
      return;
    }
    std::string req;
    wire::PutU8(&req, static_cast<uint8_t>(RequestKind::kTransact));
    wire::PutVarint(&req, group);
    wire::PutBytes(&req, request_id);
    wire::PutBytes(&req, tx_edn);
    // This node's clock: at least the client's min-t and every t seen here.
    wire::PutVarint(&req, host->LatestTime().raw);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    int hop = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(left, options.hop_timeout_ms)));
    host->SendRequest(target, std::move(req), hop, [op](Result<std::string> reply) {
      op->OnResult(reply.ok() ? DecodeProposeResult(*reply) : Result<ProposeResult>(reply.status()));
    });
  }

  void OnResult(Result<ProposeResult> r) {
    uint32_t hint = 0;
    if (r.ok()) {
      if (r->status.ok()) return Finish(ToOutcome(std::move(*r), group));
      if (!Retryable(r->status.code())) return Finish(r->status);
      last = r->status;
      hint = r->status.code() == StatusCode::kNotLeader ? r->leader : 0;
    } else {
      if (!Retryable(r.status().code())) return Finish(r.status());
      last = r.status();
    }
    if (Clock::now() >= deadline) return Finish(DeadlinePassed());
    if (host->stopped()) {
      return Finish(
          Status::Unavailable("node " + std::to_string(self) + " is stopping; last error: " + last.ToString()));
    }
    const uint32_t previous = target;
    const uint32_t local_leader = LocalLeader();
    if (local_leader != 0 && local_leader != previous) {
      target = local_leader;  // this node's replica knows better than a guess
    } else if (hint != 0 && hint != previous) {
      // Raft's own answer: followed even when the map (an edited or stale
      // copy of the meta group's record) does not list that node.
      target = hint;
    } else {
      // The next replica that looks alive (this node counts as alive).
      for (size_t i = 0; i < replicas.size(); ++i) {
        target = replicas[++rotate % replicas.size()];
        if (target == self || PeerLiveOn(*host, target)) break;
      }
    }
    if (target != previous && hint != 0) return Attempt();
    const auto wait = std::chrono::milliseconds(backoff_ms);
    backoff_ms = std::min(options.backoff_ms_max, backoff_ms * 2);
    if (Clock::now() + wait >= deadline) return Finish(DeadlinePassed());
    auto op = shared_from_this();
    if (!host->PostAfter(wait, [op] { op->Attempt(); })) {
      Finish(Status::Unavailable("node " + std::to_string(self) + " is stopping; last error: " + last.ToString()));
    }
  }

  Status DeadlinePassed() const {
    if (last.code() == StatusCode::kTimeout) return last;
    return Status(last.code() == StatusCode::kCancelled ? StatusCode::kUnavailable : last.code(),
                  "group " + std::to_string(group) + ": no leader accepted request " + request_id +
                      " before the deadline; last error: " + last.ToString());
  }

  void Finish(Result<TxOutcome> out) {
    TxDone d = std::move(done);
    if (d) d(std::move(out));
  }
};

void Coordinator::ProposeAtAsync(uint64_t group, std::string request_id, std::string tx_edn,
                                 Clock::time_point deadline, TxDone done) {
  std::shared_ptr<const ShardMap> map = maps_->map();
  std::vector<uint32_t> replicas = map->ReplicasOf(group);
  if (replicas.empty()) return done(Status::InvalidArgument("no group " + std::to_string(group) + " in the shard map"));
  const uint32_t self = host_->node_id();
  const bool hosted = Hosts(group);
  // The map followed from the meta group may list this node for a group it
  // does not host (or not list one it does): the host decides.
  if (hosted && std::find(replicas.begin(), replicas.end(), self) == replicas.end()) replicas.push_back(self);
  if (!hosted) replicas.erase(std::remove(replicas.begin(), replicas.end(), self), replicas.end());
  if (replicas.empty()) return done(Status::Unavailable("group " + std::to_string(group) + ": no replica on another node"));

  auto op = std::make_shared<ProposeOp>();
  op->host = host_;
  op->options = options_;
  op->group = group;
  op->request_id = std::move(request_id);
  op->tx_edn = std::move(tx_edn);
  op->deadline = deadline;
  op->done = std::move(done);
  op->hosted = hosted;
  op->self = self;
  op->backoff_ms = options_.backoff_ms_min;
  op->last = Status::Unavailable("group " + std::to_string(group) + ": no attempt made");
  if (hosted) {
    Result<GroupStatus> st = host_->status(group);
    op->target = st.ok() && st->leader != 0 ? st->leader : self;
  } else {
    // The meta group's leader hint, else the first replica in map order.
    uint32_t hint = map->LeaderHint(group);
    op->target = std::find(replicas.begin(), replicas.end(), hint) != replicas.end() ? hint : replicas.front();
  }
  op->replicas = std::move(replicas);
  op->Attempt();
}

Result<TxOutcome> Coordinator::ProposeAt(uint64_t group, const std::string& request_id, const std::string& tx_edn,
                                         Clock::time_point deadline) {
  auto promise = std::make_shared<std::promise<Result<TxOutcome>>>();
  std::future<Result<TxOutcome>> f = promise->get_future();
  ProposeAtAsync(group, request_id, tx_edn, deadline,
                 [promise](Result<TxOutcome> out) { promise->set_value(std::move(out)); });
  return f.get();
}

bool Coordinator::Hosts(uint64_t group) const { return hosted_.count(group) > 0; }

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::LocalView(uint64_t group,
                                                                            Clock::time_point deadline,
                                                                            const ViewSpec& spec,
                                                                            std::optional<TxTime> close_at) {
  return FinishLocalView(StartLocalView(group, spec, close_at), deadline, spec);
}

Coordinator::LocalRead Coordinator::StartLocalView(uint64_t group, const ViewSpec& spec,
                                                   std::optional<TxTime> close_at) {
  // An as-of(T) view must hold every transaction with t <= T that will ever
  // commit on the group: read at T closed (ARCHITECTURE §3).
  if (!close_at && spec.kind == ViewSpec::Kind::kAsOf) close_at = spec.t;
  LocalRead read;
  read.group = group;
  read.close_at = close_at;
  Result<GroupStatus> before = host_->status(group);
  read.leader = before.ok() ? before->leader : 0;
  // A linearizable read (every transaction acknowledged before it is in);
  // ReadAt also waits until the group has closed `close_at`.
  read.first = close_at ? host_->ReadAt(group, *close_at) : host_->Read(group);
  return read;
}

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::FinishLocalView(LocalRead read,
                                                                                  Clock::time_point deadline,
                                                                                  const ViewSpec& spec) {
  const uint64_t group = read.group;
  const std::optional<TxTime> close_at = read.close_at;
  int backoff_ms = options_.backoff_ms_min;
  while (true) {
    if (!read.first.valid()) read = StartLocalView(group, ViewSpec{}, close_at);  // asked again
    const uint32_t leader = read.leader;
    std::future<NodeHost::DbResult> f = std::move(read.first);
    // A read index lost to a leader change never confirms: give it up (and
    // ask again) as soon as this replica sees another leader, rather than
    // after the host's timeout.
    bool moved = false;
    while (f.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      if (Clock::now() >= deadline) {
        return Status::Timeout("group " + std::to_string(group) + ": read not confirmed in time");
      }
      Result<GroupStatus> st = host_->status(group);
      if (st.ok() && st->leader != 0 && st->leader != leader) {
        moved = true;
        break;
      }
    }
    if (moved) continue;
    NodeHost::DbResult r = f.get();
    if (r.ok()) return ViewOf(*r, spec);
    if (!Retryable(r.status().code()) || host_->stopped() ||
        Clock::now() + std::chrono::milliseconds(backoff_ms) >= deadline) {
      return r.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
    backoff_ms = std::min(options_.backoff_ms_max, backoff_ms * 2);
  }
}

std::shared_ptr<const datalog::IndexSource> Coordinator::RemoteView(uint64_t group, std::shared_ptr<const Schema> schema,
                                                                    Clock::time_point deadline, const ViewSpec& spec) {
  // Every replica, the ones that look alive first (in map order): the first
  // serves the view's requests until it fails, then RemoteSource moves on to
  // the next (scan_codec.h, "Replica failover").
  std::vector<uint32_t> replicas = maps_->map()->ReplicasOf(group);
  replicas.erase(std::remove(replicas.begin(), replicas.end(), host_->node_id()), replicas.end());  // not hosted here
  std::stable_partition(replicas.begin(), replicas.end(), [this](uint32_t r) { return PeerLive(r); });
  if (replicas.empty()) replicas.push_back(0);  // no such group: the request fails naming node 0
  RequestFn send = [this, deadline](uint32_t node, std::string request) -> Result<std::string> {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Status::Timeout("read of node " + std::to_string(node) + ": the request deadline passed");
    int hop = static_cast<int>(std::min<int64_t>(left, options_.hop_timeout_ms));
    std::future<Result<std::string>> f = host_->SendRequest(node, std::move(request), hop);
    // Completes by the hop timeout; give up at once when the node is seen
    // dead, so the read moves to another replica.
    while (f.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      if (!PeerLive(node)) {
        remote_read_failures_.fetch_add(1);
        return Status::Unavailable("node " + std::to_string(node) + " stopped answering");
      }
    }
    Result<std::string> reply = f.get();
    if (!reply.ok() && RetryOnAnotherReplica(reply.status().code())) remote_read_failures_.fetch_add(1);
    return reply;
  };
  return std::make_shared<RemoteSource>(std::move(replicas), static_cast<uint32_t>(group), spec,
                                        std::move(schema), std::move(send));
}

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::GroupView(uint64_t group,
                                                                            Clock::time_point deadline) {
  if (Hosts(group)) return LocalView(group, deadline);
  return RemoteView(group, RoutingSchema(), deadline);
}

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::ClusterView(Clock::time_point deadline,
                                                                              const ViewSpec& spec) {
  if (spec.kind == ViewSpec::Kind::kCurrent) return BuildClusterView(deadline, LocalReads::kLinearizable);
  if (spec.kind == ViewSpec::Kind::kHistoryAfter) {
    // Filtered by remote serving nodes only: Diff's own business.
    return Status::InvalidArgument("ClusterView: the history-after view is read through Diff only");
  }
  return BuildTimeView(deadline, spec, std::nullopt);
}

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::BuildTimeView(Clock::time_point deadline,
                                                                                const ViewSpec& spec,
                                                                                std::optional<TxTime> close_at) {
  if (!close_at && spec.kind == ViewSpec::Kind::kAsOf) close_at = spec.t;
  // Each group's current value (local: one linearizable read, at close_at
  // closed if set; remote: a RemoteSource) and its view of `spec` derived
  // from the same read.
  std::shared_ptr<const ShardMap> map = maps_->map();
  std::vector<std::shared_ptr<const datalog::IndexSource>> current(map->shards() + 1), views(map->shards() + 1);
  std::shared_ptr<const Schema> schema;
  // Every hosted group's read index is asked before any is awaited: one
  // round trip for all of them, not one per group.
  std::vector<LocalRead> reads;
  for (uint64_t g = 0; g <= map->shards(); ++g) {
    if (Hosts(g)) reads.push_back(StartLocalView(g, ViewSpec{}, close_at));
  }
  for (LocalRead& read : reads) {
    const uint64_t g = read.group;
    CAIRN_ASSIGN_OR_RETURN(current[g], FinishLocalView(std::move(read), deadline, ViewSpec{}));
    CAIRN_ASSIGN_OR_RETURN(views[g], ViewOf(current[g], spec));
    if (!schema) schema = std::shared_ptr<const Schema>(current[g], &current[g]->schema());
  }
  if (!schema) schema = RoutingSchema();
  for (uint64_t g = 0; g <= map->shards(); ++g) {
    if (views[g]) continue;
    views[g] = RemoteView(g, schema, deadline, spec);
    current[g] = RemoteView(g, schema, deadline);
    if (close_at && spec.kind != ViewSpec::Kind::kAsOf) {
      // The serving node reads an as-of view at its T closed (ReadAt), and a
      // close is in the group's log for good: one small as-of(close_at) read
      // closes it there, so this view's own (linearizable) reads, which come
      // after, hold every t <= close_at.
      std::shared_ptr<const datalog::IndexSource> closer =
          RemoteView(g, schema, deadline, ViewSpec{ViewSpec::Kind::kAsOf, *close_at});
      datalog::DatomPattern p;
      p.e = EntityId::ForTx(*close_at);
      CAIRN_RETURN_IF_ERROR(closer->Scan(p, [](const Datom&) { return false; }));
    }
  }
  std::shared_ptr<const datalog::IndexSource> meta = views[0];
  views.erase(views.begin());
  auto cluster = std::make_shared<ClusterSource>(meta, std::move(views), *map);
  // since(T) hides the :db/ident datoms asserted before T, history holds
  // retracted ones too, and as-of T of a shard may predate its copy of a
  // schema transaction: translate ident ids by the current values.
  std::shared_ptr<const datalog::IndexSource> current_meta = current[0];
  current.erase(current.begin());
  cluster->SetIdentViews(std::move(current_meta), std::move(current));
  return std::shared_ptr<const datalog::IndexSource>(std::move(cluster));
}

Result<std::vector<Datom>> Coordinator::Diff(TxTime t1, TxTime t2, Clock::time_point deadline) {
  std::vector<Datom> out;
  if (!(t1 < t2)) return out;
  // The history view of every group read at T2 closed (no transaction with
  // t <= T2 can still commit: the same diff on every node, every time),
  // restricted to T1 < t <= T2. History has no access path by t, so every
  // group's whole history is scanned (docs/cluster.md); a remote group's
  // serving node drops the datoms with t <= T1 before they travel.
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> history,
                         BuildTimeView(deadline, ViewSpec{ViewSpec::Kind::kHistoryAfter, t1}, t2));
  CAIRN_RETURN_IF_ERROR(history->Scan(datalog::DatomPattern{}, [&](const Datom& d) {
    if (t1 < d.tx && d.tx <= t2) out.push_back(d);
    return true;
  }));
  // t order; within one t the cluster's scan order (attribute name, e, v,
  // retraction before assertion).
  std::stable_sort(out.begin(), out.end(), [](const Datom& x, const Datom& y) { return x.tx < y.tx; });
  return out;
}

Result<std::shared_ptr<const datalog::IndexSource>> Coordinator::BuildClusterView(Clock::time_point deadline,
                                                                                   LocalReads local) {
  // Local replicas first (linearizable reads, or their latest applied state
  // for kStaleFirst / kStaleOnly); their schema (the meta
  // group's if hosted, else a shard's copy: schema reaches every shard before
  // it is acknowledged) is the one remote views read with.
  std::shared_ptr<const ShardMap> map = maps_->map();
  std::vector<std::shared_ptr<const datalog::IndexSource>> views(map->shards() + 1);
  std::shared_ptr<const Schema> schema;
  std::vector<LocalRead> reads;  // asked together, awaited after (one round trip)
  for (uint64_t g = 0; g <= map->shards(); ++g) {
    if (!Hosts(g)) continue;
    if (local != LocalReads::kLinearizable) {
      NodeHost::DbResult db = host_->StaleRead(g);
      if (db.ok()) {
        views[g] = *db;
      } else if (local == LocalReads::kStaleOnly) {
        return db.status();
      }
    }
    if (!views[g]) reads.push_back(StartLocalView(g, ViewSpec{}, std::nullopt));
  }
  for (LocalRead& read : reads) {
    const uint64_t g = read.group;
    CAIRN_ASSIGN_OR_RETURN(views[g], FinishLocalView(std::move(read), deadline, ViewSpec{}));
  }
  for (uint64_t g = 0; g <= map->shards() && !schema; ++g) {
    if (views[g]) schema = std::shared_ptr<const Schema>(views[g], &views[g]->schema());
  }
  if (!schema) schema = RoutingSchema();
  for (uint64_t g = 0; g <= map->shards(); ++g) {
    if (!views[g]) views[g] = RemoteView(g, schema, deadline);
  }
  std::shared_ptr<const datalog::IndexSource> meta = views[0];
  views.erase(views.begin());
  return std::shared_ptr<const datalog::IndexSource>(std::make_shared<ClusterSource>(meta, std::move(views), *map));
}

std::shared_ptr<const Schema> Coordinator::RoutingSchema() const {
  // Routing needs only identity attributes; a replica's latest applied value
  // (no round trip) is enough: the meta group's if hosted, else any hosted
  // shard's copy (schema reaches meta first, then every shard).
  std::vector<uint64_t> order = {kMetaGroup};
  for (uint32_t s = 1; s <= maps_->config_map().shards(); ++s) order.push_back(s);
  for (uint64_t g : order) {
    NodeHost::DbResult db = host_->StaleRead(g);
    if (db.ok()) return std::shared_ptr<const Schema>(*db, &(*db)->schema());
  }
  static const auto kBuiltin = std::make_shared<const Schema>();
  return kBuiltin;
}

Result<Coordinator::PlannedTx> Coordinator::PlanTransact(std::string_view tx_edn, std::string request_id,
                                                          Clock::time_point deadline, bool stale_only) {
  // The router's dry run places the transaction as the shard's transactor
  // will (tx_router.h). It runs first over the local replicas' latest
  // applied state (no ReadIndex round trips: a write would otherwise pay one
  // per hosted group); if that fails for any reason (a lookup ref to an
  // entity this replica has not applied yet, cross_shard, ...) it runs again
  // over a linearizable view, so every error a client sees is a current one.
  // stale_only stops at the first failure instead (nothing that may block).
  std::optional<Edn> tx;
  if (!stale_only) {
    CAIRN_ASSIGN_OR_RETURN(tx, ReadEdn(tx_edn));
  }
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> view,
                         BuildClusterView(deadline, stale_only ? LocalReads::kStaleOnly : LocalReads::kStaleFirst));
  std::shared_ptr<const ShardMap> map = maps_->map();
  Result<RoutedTransaction> first = RouteTransaction(tx_edn, *view, *map);
  if (!first.ok() && !stale_only) {
    CAIRN_ASSIGN_OR_RETURN(view, ClusterView(deadline));
    first = RouteTransaction(tx_edn, *view, *map);
  }
  CAIRN_ASSIGN_OR_RETURN(RoutedTransaction routed, std::move(first));
  PlannedTx plan;
  plan.text = std::move(routed.tx_edn);
  if (routed.redundant) {
    // Nothing to write by now (typically a retry of a request that applied):
    // the dry run's placement then depends on state, so place it by the
    // request's own text (RouteTx), which sends a retry where the first
    // attempt went; the shard answers the duplicate (or applies nothing).
    if (!tx) {
      CAIRN_ASSIGN_OR_RETURN(tx, ReadEdn(tx_edn));
    }
    std::shared_ptr<const Schema> schema(view, &view->schema());
    CAIRN_ASSIGN_OR_RETURN(plan.route, RouteTx(*tx, *schema, *map));
    plan.text = std::string(tx_edn);
  } else {
    plan.route.schema = routed.kind == RoutedTransaction::Kind::kSchema;
    plan.route.group = routed.shard;
  }
  plan.request_id = request_id.empty() ? FreshRequestId() : std::move(request_id);
  return plan;
}

Result<TxOutcome> Coordinator::Transact(std::string_view tx_edn, std::string request_id) {
  Clock::time_point deadline = Deadline();
  CAIRN_ASSIGN_OR_RETURN(PlannedTx plan, PlanTransact(tx_edn, std::move(request_id), deadline, false));
  if (!plan.route.schema) return ProposeAt(plan.route.group, plan.request_id, plan.text, deadline);
  CAIRN_ASSIGN_OR_RETURN(TxOutcome meta, ProposeAt(kMetaGroup, plan.request_id, plan.text, deadline));
  return PushSchema(plan.text, meta, deadline);
}

bool Coordinator::TryTransactNow(std::string_view tx_edn, std::string request_id, TxDone& done) {
  // Only what cannot block: every group hosted here (the stale view has no
  // remote part), the dry run succeeds on it, and the transaction is data.
  std::shared_ptr<const ShardMap> map = maps_->map();
  for (uint64_t g = 0; g <= map->shards(); ++g) {
    if (!Hosts(g)) return false;
  }
  Clock::time_point deadline = Deadline();
  Result<PlannedTx> plan = PlanTransact(tx_edn, std::move(request_id), deadline, /*stale_only=*/true);
  if (!plan.ok() || plan->route.schema) return false;
  ProposeAtAsync(plan->route.group, std::move(plan->request_id), std::move(plan->text), deadline, std::move(done));
  return true;
}

void Coordinator::TransactAsync(std::string_view tx_edn, std::string request_id, TxDone done) {
  Clock::time_point deadline = Deadline();
  Result<PlannedTx> plan = PlanTransact(tx_edn, std::move(request_id), deadline, false);
  if (!plan.ok()) return done(plan.status());
  if (!plan->route.schema) {
    return ProposeAtAsync(plan->route.group, std::move(plan->request_id), std::move(plan->text), deadline,
                          std::move(done));
  }
  // Schema: the meta group, then every shard in turn (rare; on this thread).
  Result<TxOutcome> meta = ProposeAt(kMetaGroup, plan->request_id, plan->text, deadline);
  if (!meta.ok()) return done(meta.status());
  done(PushSchema(plan->text, *meta, deadline));
}

Result<TxOutcome> Coordinator::PushSchema(const std::string& tx_edn, const TxOutcome& meta,
                                          Clock::time_point deadline, std::vector<uint64_t> shards) {
  if (shards.empty()) {
    for (uint32_t s = 1; s <= maps_->config_map().shards(); ++s) shards.push_back(s);
  }
  for (uint64_t s : shards) {
    std::string rid = "schema:" + std::to_string(meta.t.raw) + ":" + std::to_string(s);
    Result<TxOutcome> r = ProposeAt(s, rid, tx_edn, deadline);
    if (!r.ok()) {
      return Status(r.status().code(), "schema transaction t=" + std::to_string(meta.t.raw) +
                                           " committed in the meta group but not yet on shard " + std::to_string(s) +
                                           " (a node re-sends it on start; retrying with the same request id "
                                           "completes it): " + r.status().message());
    }
  }
  TxOutcome out = meta;
  out.group = kMetaGroup;
  return out;
}

Status Coordinator::Bootstrap(Clock::time_point deadline) {
  static const char* kSchema = R"([
 {:db/ident :cairn.cluster/id :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :cairn.cluster/shards :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :cairn.cluster/partitions :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :cairn.cluster/replication :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :cairn.node/id :db/valueType :db.type/long :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :cairn.node/peer :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :cairn.node/http :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :cairn.shard/id :db/valueType :db.type/long :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :cairn.shard/replicas :db/valueType :db.type/long :db/cardinality :db.cardinality/many}
 {:db/ident :cairn.shard/partitions :db/valueType :db.type/long :db/cardinality :db.cardinality/many}
])";
  CAIRN_RETURN_IF_ERROR(ProposeAt(kMetaGroup, "bootstrap-schema", kSchema, deadline).status());
  // Added after the first release of the records (its own request id, so
  // clusters bootstrapped before get it too).
  static const char* kSchema2 =
      "[{:db/ident :cairn.shard/leader :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]";
  CAIRN_RETURN_IF_ERROR(ProposeAt(kMetaGroup, "bootstrap-schema-2", kSchema2, deadline).status());
  // The records start as the config's map (identical on every node).
  const ShardMap& map_ = maps_->config_map();
  std::string data = "[{:cairn.cluster/id \"cluster\" :cairn.cluster/shards " + std::to_string(map_.shards()) +
                     " :cairn.cluster/partitions " + std::to_string(map_.partitions()) +
                     " :cairn.cluster/replication " + std::to_string(map_.replication()) + "}\n";
  for (const NodeAddress& n : map_.nodes()) {
    data += " {:cairn.node/id " + std::to_string(n.id) + " :cairn.node/peer " + Value::String(n.peer).ToString() +
            " :cairn.node/http " + Value::String(n.http).ToString() + "}\n";
  }
  for (uint32_t s = 1; s <= map_.shards(); ++s) {
    data += " {:cairn.shard/id " + std::to_string(s) + " :cairn.shard/replicas [";
    for (uint32_t r : map_.ReplicasOf(s)) data += std::to_string(r) + " ";
    data += "] :cairn.shard/partitions [";
    for (uint32_t p : map_.PartitionsOf(s)) data += std::to_string(p) + " ";
    data += "]}\n";
  }
  data += "]";
  return ProposeAt(kMetaGroup, "bootstrap", data, deadline).status();
}

Result<std::string> Coordinator::ServeMetaMap(uint64_t known_version) const {
  if (!Hosts(kMetaGroup)) {
    return Status::Unavailable("node " + std::to_string(host_->node_id()) + " holds no replica of the meta group");
  }
  // The applied index first: the value read after it is at least as new.
  CAIRN_ASSIGN_OR_RETURN(GroupStatus st, host_->status(kMetaGroup));
  std::string out;
  wire::PutVarint(&out, st.applied);
  if (st.applied == known_version) {
    wire::PutU8(&out, 0);  // unchanged
    return out;
  }
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> db, host_->StaleRead(kMetaGroup));
  CAIRN_ASSIGN_OR_RETURN(MetaRecords records, ReadMetaRecords(*db));
  wire::PutU8(&out, 1);
  out += EncodeMetaRecords(records);
  return out;
}

Result<bool> Coordinator::RefreshMap() {
  if (Hosts(kMetaGroup)) {
    CAIRN_ASSIGN_OR_RETURN(GroupStatus st, host_->status(kMetaGroup));
    if (st.applied == maps_->version() || st.applied == 0) return false;
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> db, host_->StaleRead(kMetaGroup));
    CAIRN_ASSIGN_OR_RETURN(MetaRecords records, ReadMetaRecords(*db));
    return maps_->Apply(records, st.applied);
  }
  // Ask a meta member (the live ones first; the next one if it fails).
  std::vector<uint32_t> members = maps_->map()->ReplicasOf(kMetaGroup);
  std::stable_partition(members.begin(), members.end(), [this](uint32_t r) { return PeerLive(r); });
  Status last = Status::Unavailable("no meta group member to ask");
  for (uint32_t node : members) {
    std::string req;
    wire::PutU8(&req, static_cast<uint8_t>(RequestKind::kMetaMap));
    wire::PutVarint(&req, maps_->version());
    Result<std::string> reply = host_->SendRequest(node, std::move(req), options_.map_request_timeout_ms).get();
    if (!reply.ok()) {
      last = reply.status().WithContext("node " + std::to_string(node));
      continue;
    }
    wire::Reader in(*reply, "meta map reply from node " + std::to_string(node));
    CAIRN_ASSIGN_OR_RETURN(uint64_t version, in.Varint("version"));
    CAIRN_ASSIGN_OR_RETURN(uint8_t changed, in.U8("changed"));
    if (changed == 0) return false;
    CAIRN_ASSIGN_OR_RETURN(MetaRecords records, DecodeMetaRecords(in.Rest()));
    return maps_->Apply(records, version);
  }
  return last;
}

namespace {

// What the admin path accepts (MetaTransact): :db/add, :db/retract and map
// forms over the cluster records (:cairn.node/*, :cairn.shard/*) or schema
// attributes; a replica named in :cairn.shard/replicas must be a known node
// (in the map, or given a :cairn.node/id by the same transaction).
Status CheckMetaTx(const Edn& tx, const ShardMap& map) {
  if (!tx.is(Edn::Kind::kVector) && !tx.is(Edn::Kind::kList)) {
    return Status::InvalidArgument(tx.Where() + ": tx-data must be a vector of forms");
  }
  std::set<int64_t> known;
  for (const NodeAddress& n : map.nodes()) known.insert(n.id);
  struct Fact {
    const Edn* attr;
    const Edn* value;  // null for a retraction
  };
  std::vector<Fact> facts;
  for (const Edn& form : tx.items) {
    if (form.is(Edn::Kind::kMap)) {
      for (size_t i = 0; i + 1 < form.items.size(); i += 2) {
        if (!form.items[i].IsKeyword("db/id")) facts.push_back({&form.items[i], &form.items[i + 1]});
      }
    } else if ((form.is(Edn::Kind::kVector) || form.is(Edn::Kind::kList)) && form.items.size() == 4 &&
               (form.items[0].IsKeyword("db/add") || form.items[0].IsKeyword("db/retract"))) {
      facts.push_back({&form.items[2], form.items[0].IsKeyword("db/add") ? &form.items[3] : nullptr});
    } else {
      return Status::InvalidArgument(form.Where() +
                                     ": the meta group's admin path takes only [:db/add e a v], [:db/retract e a v] "
                                     "and map forms");
    }
  }
  for (const Fact& f : facts) {
    const Edn& a = *f.attr;
    bool record = a.is(Edn::Kind::kKeyword) &&
                  (a.text.rfind("cairn.node/", 0) == 0 || a.text.rfind("cairn.shard/", 0) == 0);
    if (!record && !(a.is(Edn::Kind::kKeyword) && SchemaKeys().count(a.text) > 0)) {
      return Status::InvalidArgument(a.Where() + ": " + (a.is(Edn::Kind::kKeyword) ? ":" + a.text : "this attribute") +
                                     " is neither a cluster record attribute (:cairn.node/*, :cairn.shard/*) nor "
                                     "schema; data goes to /v1/transact");
    }
    if (a.IsKeyword("cairn.node/id") && f.value != nullptr && f.value->is(Edn::Kind::kInt)) known.insert(f.value->i);
  }
  for (const Fact& f : facts) {
    if (!f.attr->IsKeyword("cairn.shard/replicas") || f.value == nullptr) continue;
    std::vector<const Edn*> ids;
    if (f.value->is(Edn::Kind::kVector) || f.value->is(Edn::Kind::kList) || f.value->is(Edn::Kind::kSet)) {
      for (const Edn& v : f.value->items) ids.push_back(&v);
    } else {
      ids.push_back(f.value);
    }
    for (const Edn* v : ids) {
      if (!v->is(Edn::Kind::kInt) || known.count(v->i) == 0) {
        std::string names;
        for (int64_t id : known) names += (names.empty() ? "" : ", ") + std::to_string(id);
        return Status::InvalidArgument(v->Where() + ": :cairn.shard/replicas names " +
                                       (v->is(Edn::Kind::kInt) ? "node " + std::to_string(v->i) : "a non-integer") +
                                       ", which is not a member of the cluster (nodes: " + names + ")");
      }
    }
  }
  return Status::OK();
}

}  // namespace

Result<TxOutcome> Coordinator::MetaTransact(std::string_view tx_edn, std::string request_id) {
  CAIRN_ASSIGN_OR_RETURN(Edn tx, ReadEdn(tx_edn));
  CAIRN_RETURN_IF_ERROR(CheckMetaTx(tx, *maps_->map()).WithContext("/v1/cluster/meta"));
  if (request_id.empty()) request_id = FreshRequestId();
  Result<TxOutcome> r = ProposeAt(kMetaGroup, request_id, std::string(tx_edn), Deadline());
  if (r.ok()) r->group = kMetaGroup;
  return r;
}

Result<std::vector<uint64_t>> Coordinator::RepairSchemaRound(Clock::time_point deadline) {
  std::shared_ptr<const datalog::IndexSource> meta;
  if (Hosts(kMetaGroup)) {
    CAIRN_ASSIGN_OR_RETURN(meta, host_->StaleRead(kMetaGroup));
  } else {
    meta = RemoteView(kMetaGroup, RoutingSchema(), deadline);
  }
  CAIRN_ASSIGN_OR_RETURN(auto want, SchemaDigest(*meta));
  std::set<uint64_t> behind;
  for (uint64_t g : hosted_) {
    if (g == kMetaGroup) continue;
    CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> shard, host_->StaleRead(g));
    CAIRN_ASSIGN_OR_RETURN(auto got, SchemaDigest(*shard));
    for (const auto& [ident, def] : want) {
      auto it = got.find(ident);
      if (it == got.end() || it->second != def) {
        behind.insert(g);
        break;
      }
    }
  }
  // The meta schema this round compared against: a shard already repaired
  // against the same one is not sent it again (a difference an upsert cannot
  // fix, such as a property retracted in the meta group, would otherwise be
  // re-sent every other round).
  std::string want_text;
  for (const auto& [ident, def] : want) want_text += ident + " " + def + "\n";
  std::vector<uint64_t> repair;
  for (uint64_t g : behind) {
    if (!behind_last_round_.count(g)) continue;
    auto done = repaired_against_.find(g);
    if (done != repaired_against_.end() && done->second == want_text) continue;
    repair.push_back(g);
  }
  behind_last_round_ = behind;
  if (repair.empty()) return repair;
  for (uint64_t g : repair) behind_last_round_.erase(g);
  CAIRN_RETURN_IF_ERROR(ReconcileSchema(deadline, repair));
  for (uint64_t g : repair) repaired_against_[g] = want_text;
  return repair;
}

Status Coordinator::ReconcileSchema(Clock::time_point deadline, std::vector<uint64_t> shards) {
  CAIRN_ASSIGN_OR_RETURN(std::shared_ptr<const datalog::IndexSource> meta, GroupView(kMetaGroup, deadline));
  uint64_t meta_t = 0;  // the view's latest t: the request ids are schema:<meta t>:<shard>
  // Every user entity of the system partition (attributes and idents) as a
  // map form keyed by its :db/ident; the shards' transactors upsert them by
  // ident, so a shard that has them already writes nothing.
  std::map<uint64_t, std::vector<Datom>> entities;
  datalog::DatomPattern all;
  CAIRN_RETURN_IF_ERROR(meta->Scan(all, [&](const Datom& d) {
    meta_t = std::max(meta_t, d.tx.raw);
    if (UserSystemEntity(d.e)) {
      entities[d.e.raw].push_back(d);
    }
    return true;
  }));
  if (entities.empty()) return Status::OK();
  std::string tx = "[";
  for (const auto& [e, datoms] : entities) {
    bool has_ident = false;
    std::string form = "{";
    std::map<std::string, std::vector<std::string>> values;  // attribute -> values (many)
    for (const Datom& d : datoms) {
      if (d.a.str() == "db/ident") has_ident = true;
      values[d.a.ToString()].push_back(ValueEdn(d.v));
    }
    if (!has_ident) continue;
    for (const auto& [a, vs] : values) {
      if (vs.size() == 1) {
        form += a + " " + vs[0] + " ";
      } else {
        form += a + " [";
        for (const std::string& v : vs) form += v + " ";
        form += "] ";
      }
    }
    tx += form + "}\n";
  }
  tx += "]";
  TxOutcome m;
  m.t = TxTime{meta_t};
  return PushSchema(tx, m, deadline, std::move(shards)).status();
}

}  // namespace cairn::cluster
