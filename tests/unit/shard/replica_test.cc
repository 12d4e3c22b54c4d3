// Replica: three replicas of one shard in one process, on real SQLite files,
// connected by an in-test router that carries every message through the
// wire codec. Checks that every replica ends with the same datoms, that a
// restarted replica catches up from its files, that a request id applies
// once, that the applied index and the datoms always agree in the file,
// snapshots (compaction, catch-up of a follower behind the compacted log,
// refusal of a corrupt snapshot, exact recovery after a restart), the
// pruning of request outcomes, the shard ownership guard, and that the
// replica's as-of/since/history views equal the embedded Database's.
#include "shard/replica.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "api/db_impl.h"
#include "cairn/database.h"
#include "gtest/gtest.h"
#include "shard/raft_codec.h"
#include "shard/store_source.h"

namespace cairn::shard {
namespace {

using raft::LogIndex;
using raft::NodeId;

std::string TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("cairn_replica_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

constexpr uint64_t kBaseMs = 1'700'000'000'000ull;

class Cluster {
 public:
  // `configure` adjusts every replica's options (snapshots, windows, ...).
  explicit Cluster(std::string dir, std::function<void(ReplicaOptions&)> configure = nullptr)
      : dir_(std::move(dir)), configure_(std::move(configure)) {
    for (uint64_t id = 1; id <= 3; ++id) Start(id);
  }

  void Start(uint64_t id) {
    Node& n = nodes_[id];
    auto db = storage::Sqlite::Open(dir_ + "/raft_" + std::to_string(id) + ".db",
                                    storage::Sqlite::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    n.log_db = std::move(*db);
    auto store = RaftLogStore::Open(n.log_db.get());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    n.log_store = std::move(*store);
    ReplicaOptions o;
    o.raft.id = NodeId(id);
    o.raft.group = raft::GroupId(1);
    o.raft.seed = 7 * id;
    o.datoms_path = dir_ + "/datoms_" + std::to_string(id) + ".db";
    o.store.sync = false;  // a test; the Raft log itself stays synchronous
    o.store.partitions = 16;
    o.bootstrap = raft::ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}};
    if (configure_) configure_(o);
    auto r = Replica::Open(o, n.log_db.get(), n.log_store.get());
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    n.replica = std::move(*r);
  }

  void Stop(uint64_t id) {
    Node& n = nodes_[id];
    n.replica.reset();
    n.log_store.reset();
    n.log_db.reset();
  }

  bool up(uint64_t id) { return nodes_[id].replica != nullptr && !frozen.count(id); }
  // Replicas that get no Ready handling, messages or ticks (a crashed
  // process that is not destroyed yet).
  std::set<uint64_t> frozen;
  // Messages for which this returns true are lost in transit.
  std::function<bool(const raft::Message&)> drop;
  // Rewrites a message in transit (after decoding).
  std::function<void(raft::Message&)> mutate;
  // Failed replicas are skipped instead of failing the test.
  bool tolerate_failures = false;
  // Drives a replica's Readies instead of HandleReady when it returns true.
  std::function<bool(uint64_t id, Replica&, RaftLogStore&, const Replica::SendFn&)> handle_ready;
  Replica& at(uint64_t id) { return *nodes_[id].replica; }
  RaftLogStore& log_store(uint64_t id) { return *nodes_[id].log_store; }
  const std::string& dir() const { return dir_; }

  // One round: every live replica handles its Ready (messages go through the
  // codec as one batch per destination), then every message is delivered
  // (dropped if the destination is down), then every replica ticks.
  void Round() {
    for (auto& [id, n] : nodes_) {
      if (!up(id)) continue;
      if (tolerate_failures && !n.replica->error().ok()) continue;
      Replica::SendFn send = [&](std::vector<raft::Message> msgs) {
        std::map<uint64_t, std::vector<raft::Message>> by_peer;
        for (auto& m : msgs) by_peer[m.to.value()].push_back(std::move(m));
        for (auto& [to, batch] : by_peer) wire_.emplace_back(to, EncodeBatch(batch));
      };
      if (handle_ready && handle_ready(id, *n.replica, *n.log_store, send)) continue;
      Status s = n.replica->HandleReady(send);
      if (tolerate_failures && !s.ok()) continue;
      ASSERT_TRUE(s.ok()) << "replica " << id << ": " << s.ToString();
    }
    std::deque<std::pair<uint64_t, std::string>> wire;
    wire.swap(wire_);
    for (auto& [to, bytes] : wire) {
      if (!up(to)) continue;
      Result<std::vector<raft::Message>> msgs = DecodeBatch(bytes);
      ASSERT_TRUE(msgs.ok()) << msgs.status().ToString();
      for (raft::Message& m : *msgs) {
        if (drop && drop(m)) continue;
        if (mutate) mutate(m);
        Status s = at(to).Step(m);
        if (tolerate_failures && !at(to).error().ok()) continue;
        ASSERT_TRUE(s.ok()) << s.ToString();
      }
    }
    for (auto& [id, n] : nodes_) {
      if (up(id)) n.replica->Tick();
    }
  }

  // Runs rounds until a live replica leads and has committed in its term.
  uint64_t WaitLeader() {
    for (int i = 0; i < 1000; ++i) {
      Round();
      for (auto& [id, n] : nodes_) {
        if (n.replica && n.replica->raft().role() == raft::Role::kLeader &&
            n.replica->applied_index() >= n.replica->raft().commit() && n.replica->raft().commit().value() > 1) {
          return id;
        }
      }
    }
    ADD_FAILURE() << "no leader";
    return 0;
  }

  // Runs rounds until every live replica applied the leader's whole log
  // (failed replicas excepted when tolerated). Past the first rounds, each
  // gives background work (snapshot copies and installs) a millisecond.
  void Settle() {
    for (int i = 0; i < 2000; ++i) {
      Round();
      if (i >= 200) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      uint64_t last = 0;
      for (auto& [id, n] : nodes_) {
        if (n.replica && n.replica->raft().role() == raft::Role::kLeader)
          last = n.replica->raft().log().last_index().value();
      }
      bool done = last != 0;
      for (auto& [id, n] : nodes_) {
        if (tolerate_failures && n.replica && !n.replica->error().ok()) continue;
        if (n.replica && n.replica->applied_index().value() < last) done = false;
      }
      if (done) return;
    }
    ADD_FAILURE() << "replicas did not converge";
  }

  LogIndex Propose(uint64_t leader, std::string request_id, uint64_t ms, std::string edn) {
    ReplicaCommand c{std::move(request_id), TxTime::FromParts(kBaseMs + ms, 0), std::move(edn)};
    Result<LogIndex> idx = at(leader).Propose(c);
    EXPECT_TRUE(idx.ok()) << idx.status().ToString();
    return idx.ok() ? *idx : LogIndex();
  }

 private:
  struct Node {
    std::unique_ptr<storage::Sqlite> log_db;
    std::unique_ptr<RaftLogStore> log_store;
    std::unique_ptr<Replica> replica;
  };
  std::string dir_;
  std::function<void(ReplicaOptions&)> configure_;
  std::map<uint64_t, Node> nodes_;
  std::deque<std::pair<uint64_t, std::string>> wire_;
};

const char* kSchema =
    "[{:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one"
    "  :db/unique :db.unique/identity}"
    " {:db/ident :person/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}"
    " {:db/ident :person/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/many}]";

std::string PersonTx(int i) {
  return "[{:db/id \"p\" :person/name \"p" + std::to_string(i) + "\" :person/age " + std::to_string(i) +
         "} {:db/id \"q\" :person/name \"friend-of-" + std::to_string(i) + "\" :person/friend \"p\"}]";
}

std::string Dump(const std::vector<Datom>& ds) {
  std::string s;
  for (const Datom& d : ds) s += d.ToString() + "\n";
  return s;
}

void ExpectSameDatoms(Cluster& c) {
  Result<std::vector<Datom>> first = c.at(1).LogDatoms();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  for (uint64_t id = 2; id <= 3; ++id) {
    Result<std::vector<Datom>> other = c.at(id).LogDatoms();
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_EQ(Dump(*first), Dump(*other)) << "replica " << id << " differs from replica 1";
  }
}

size_t CountName(Replica& r, const std::string& name) {
  Result<std::vector<Datom>> ds = r.LogDatoms();
  EXPECT_TRUE(ds.ok());
  size_t n = 0;
  for (const Datom& d : *ds) {
    if (d.a.str() == "person/name" && d.added && d.v == Value::String(name)) ++n;
  }
  return n;
}

TEST(Replica, ThreeReplicasApplyTheSameDatoms) {
  Cluster c(TempDir("same"));
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  c.Propose(leader, "schema", 1, kSchema);
  for (int i = 0; i < 20; ++i) c.Propose(leader, "r" + std::to_string(i), 10 + i, PersonTx(i));
  // A leader clock that went backwards: t still grows (bumped from the last t).
  c.Propose(leader, "late", 0, "[{:person/name \"late\"}]");
  // Refused by the transactor on every replica alike: no datoms.
  c.Propose(leader, "bad", 100, "[{:person/name 42}]");
  c.Settle();
  ExpectSameDatoms(c);

  Result<std::vector<Datom>> ds = c.at(1).LogDatoms();
  ASSERT_TRUE(ds.ok());
  EXPECT_EQ(CountName(c.at(1), "p7"), 1u);
  EXPECT_EQ(CountName(c.at(1), "late"), 1u);
  TxTime prev;
  for (const Datom& d : *ds) {
    EXPECT_LE(prev, d.tx);
    prev = d.tx;
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<ApplyOutcome> late = c.at(id).Outcome("late");
    ASSERT_TRUE(late.has_value());
    EXPECT_TRUE(late->status.ok());
    EXPECT_GT(late->t, TxTime::FromParts(kBaseMs + 29, 0));  // after r19, despite proposed_t = base
    std::optional<ApplyOutcome> bad = c.at(id).Outcome("bad");
    ASSERT_TRUE(bad.has_value());
    EXPECT_EQ(bad->status.code(), StatusCode::kInvalidArgument) << bad->status.ToString();
    EXPECT_FALSE(bad->t.valid());
    // The database value answers lookups with the same entity everywhere.
    std::optional<EntityId> p3 = c.at(id).db()->Lookup(Keyword::Intern("person/name"), Value::String("p3"));
    ASSERT_TRUE(p3.has_value());
    EXPECT_EQ(*p3, *c.at(1).db()->Lookup(Keyword::Intern("person/name"), Value::String("p3")));
  }
}

TEST(Replica, DuplicateRequestIdAppliesOnce) {
  Cluster c(TempDir("dup"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "once", 2, "[{:person/name \"dup\" :person/age 1}]");
  // A retry with the same id (e.g. after a timeout) and a new clock reading;
  // if it applied, age 2 would replace age 1.
  c.Propose(leader, "once", 3, "[{:person/name \"dup\" :person/age 2}]");
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<ApplyOutcome> o = c.at(id).Outcome("once");
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(o->t, TxTime::FromParts(kBaseMs + 2, 0));
    datalog::DatomPattern p;
    p.a = Keyword::Intern("person/age");
    std::vector<Value> ages;
    ASSERT_TRUE(c.at(id)
                    .db()
                    ->Scan(p,
                           [&](const Datom& d) {
                             ages.push_back(d.v);
                             return true;
                           })
                    .ok());
    ASSERT_EQ(ages.size(), 1u);
    EXPECT_EQ(ages[0], Value::Long(1));
  }
}

TEST(Replica, RestartedReplicaCatchesUpFromItsFiles) {
  Cluster c(TempDir("restart"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  for (int i = 0; i < 5; ++i) c.Propose(leader, "a" + std::to_string(i), 10 + i, PersonTx(i));
  c.Settle();
  uint64_t down = leader == 3 ? 2 : 3;
  LogIndex applied_before = c.at(down).applied_index();
  c.Stop(down);
  for (int i = 5; i < 15; ++i) c.Propose(leader, "a" + std::to_string(i), 10 + i, PersonTx(i));
  c.Settle();
  c.Start(down);
  EXPECT_EQ(c.at(down).applied_index(), applied_before);  // restored, not re-applied
  EXPECT_EQ(CountName(c.at(down), "p10"), 0u);
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(down), "p10"), 1u);
  ASSERT_TRUE(c.at(down).Outcome("a12").has_value());

  // Every replica restarts at once and the group goes on.
  for (uint64_t id = 1; id <= 3; ++id) c.Stop(id);
  for (uint64_t id = 1; id <= 3; ++id) c.Start(id);
  leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  c.Propose(leader, "after", 100, "[{:person/name \"after\"}]");
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(1), "after"), 1u);
  EXPECT_EQ(CountName(c.at(1), "p3"), 1u);
}

// A client retries on the new leader after the old one died: the retry
// carries the same request id and must not apply a second time.
TEST(Replica, RetryAcrossLeaderChangeAppliesOnce) {
  Cluster c(TempDir("failover"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "retry", 2, "[{:person/name \"retry\" :person/age 1}]");
  c.Settle();
  c.Stop(leader);
  uint64_t next = c.WaitLeader();
  ASSERT_NE(next, 0u);
  ASSERT_NE(next, leader);
  c.Propose(next, "retry", 50, "[{:person/name \"retry\" :person/age 2}]");
  c.Propose(next, "new", 51, "[{:person/name \"new\"}]");
  c.Settle();
  c.Start(leader);
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(CountName(c.at(id), "retry"), 1u);
    EXPECT_EQ(CountName(c.at(id), "new"), 1u);
    EXPECT_EQ(c.at(id).Outcome("retry")->t, TxTime::FromParts(kBaseMs + 2, 0));
    std::optional<EntityId> e = c.at(id).db()->Lookup(Keyword::Intern("person/name"), Value::String("retry"));
    ASSERT_TRUE(e.has_value());
    datalog::DatomPattern p;
    p.e = *e;
    p.a = Keyword::Intern("person/age");
    std::vector<Value> ages;
    ASSERT_TRUE(c.at(id)
                    .db()
                    ->Scan(p,
                           [&](const Datom& d) {
                             ages.push_back(d.v);
                             return true;
                           })
                    .ok());
    ASSERT_EQ(ages.size(), 1u);
    EXPECT_EQ(ages[0], Value::Long(1));
  }
}

// A read index requested on a follower is served once the follower has
// applied everything committed before the request.
TEST(Replica, ReadIndexOnAFollowerWaitsForApply) {
  Cluster c(TempDir("read_index"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "w", 2, "[{:person/name \"written\"}]");
  uint64_t follower = leader == 1 ? 2 : 1;
  // The follower gets heartbeats but no log: it cannot apply the write.
  c.drop = [&](const raft::Message& m) { return m.to.value() == follower && m.type == raft::MessageType::kAppend; };
  for (int i = 0; i < 200 && !c.at(leader).Outcome("w"); ++i) c.Round();
  ASSERT_TRUE(c.at(leader).Outcome("w").has_value());
  ASSERT_TRUE(c.at(follower).ReadIndex(77).ok());
  for (int i = 0; i < 100; ++i) {
    c.Round();
    ASSERT_TRUE(c.at(follower).TakeServableReads().empty()) << "served before applying the write";
  }
  EXPECT_FALSE(c.at(follower).Outcome("w").has_value());
  c.drop = nullptr;
  std::vector<uint64_t> served;
  for (int i = 0; i < 200 && served.empty(); ++i) {
    c.Round();
    served = c.at(follower).TakeServableReads();
  }
  ASSERT_EQ(served, std::vector<uint64_t>{77});
  EXPECT_TRUE(c.at(follower).db()->Lookup(Keyword::Intern("person/name"), Value::String("written")).has_value());
  EXPECT_TRUE(c.at(follower).TakeServableReads().empty());
}

// What a replica's datom file says, read through a second connection (as a
// process restarting after a crash at this instant would find it).
struct FileState {
  uint64_t applied = 0;
  uint64_t last_t = 0;
  std::vector<uint64_t> tx_ts;                                    // txs rows
  std::map<std::string, std::pair<uint64_t, uint64_t>> outcomes;  // request id -> (idx, t)
  std::string Dump() const {
    std::string s = "applied " + std::to_string(applied) + " last_t " + std::to_string(last_t) + "\n";
    for (auto& [id, o] : outcomes) s += id + " " + std::to_string(o.first) + " " + std::to_string(o.second) + "\n";
    return s;
  }
};

FileState ReadFileState(const std::string& path) {
  FileState f;
  auto db = storage::Sqlite::Open(path, storage::Sqlite::OpenMode::kReadOnly);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return f;
  // One read transaction: a consistent view of the file.
  EXPECT_TRUE((*db)->Exec("BEGIN").ok());
  f.applied = static_cast<uint64_t>(*(*db)->QueryInt("SELECT value FROM replica_state WHERE key = 'applied_index'"));
  f.last_t = static_cast<uint64_t>(*(*db)->QueryInt("SELECT value FROM meta WHERE key = 'last_t'"));
  auto q = (*db)->Prepare("SELECT t FROM txs ORDER BY t");
  while (*q->Step()) f.tx_ts.push_back(static_cast<uint64_t>(q->ColumnInt(0)));
  auto o = (*db)->Prepare("SELECT request_id, idx, t FROM replica_outcomes");
  while (*o->Step()) {
    f.outcomes[std::string(o->ColumnBlob(0))] = {static_cast<uint64_t>(o->ColumnInt(1)),
                                                 static_cast<uint64_t>(o->ColumnInt(2))};
  }
  EXPECT_TRUE((*db)->Exec("COMMIT").ok());
  return f;
}

// After every round (each applied batch is one commit), the file's applied
// index, outcomes and datoms agree: every successful outcome at or below the
// applied index has its transaction, there is no transaction without one,
// and the last t is the newest outcome's. The test proposes every
// transaction with a request id and never retries, so outcomes and
// transactions correspond one to one.
TEST(Replica, AppliedIndexAndDatomsAgreeAfterEveryCommit) {
  Cluster c(TempDir("agree"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  int proposed = 0, checks = 0;
  for (int round = 0; round < 300; ++round) {
    if (round % 3 == 0 && proposed < 60) {
      for (int k = 0; k < 1 + round % 4; ++k, ++proposed)
        c.Propose(leader, "a" + std::to_string(proposed), 10 + proposed, PersonTx(proposed));
    }
    if (proposed % 7 == 3) c.Propose(leader, "bad" + std::to_string(proposed), 10 + proposed, "[{:person/name 1}]");
    c.Round();
    for (uint64_t id = 1; id <= 3; ++id) {
      FileState f = ReadFileState(c.dir() + "/datoms_" + std::to_string(id) + ".db");
      EXPECT_EQ(f.applied, c.at(id).applied_index().value()) << "replica " << id;
      std::vector<uint64_t> ok_ts;
      uint64_t newest = 0;
      for (auto& [rid, o] : f.outcomes) {
        EXPECT_LE(o.first, f.applied) << rid;
        if (o.second != 0) ok_ts.push_back(o.second);
        newest = std::max(newest, o.second);
      }
      std::sort(ok_ts.begin(), ok_ts.end());
      ASSERT_EQ(ok_ts, f.tx_ts) << "replica " << id << " round " << round << "\n" << f.Dump();
      EXPECT_EQ(f.last_t, newest) << "replica " << id;
      ++checks;
    }
  }
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(1), "p59"), 1u);
  EXPECT_GT(checks, 800);
}

// A datom file with transactions but no replica state (an older build's
// file, or not a replica's) is refused, never replayed onto.
TEST(Replica, RefusesADatomFileWithoutReplicaState) {
  std::string dir = TempDir("no_state");
  {
    storage::StoreOptions so;
    so.partitions = 16;
    auto store = storage::DatomStore::Open(dir + "/datoms.db", so);
    ASSERT_TRUE(store.ok());
    Datom d{EntityId::Make(1, 1), Keyword::Intern("db/doc"), Value::String("x"), TxTime::FromParts(kBaseMs, 0), true};
    storage::CommitBatch b;
    b.t = d.tx;
    b.datoms = std::span<const Datom>(&d, 1);
    ASSERT_TRUE((*store)->Commit(b).ok());
  }
  auto db = storage::Sqlite::Open(dir + "/raft.db", storage::Sqlite::OpenMode::kReadWriteCreate);
  ASSERT_TRUE(db.ok());
  auto log = RaftLogStore::Open(db->get());
  ASSERT_TRUE(log.ok());
  ReplicaOptions o;
  o.raft.id = NodeId(1);
  o.raft.group = raft::GroupId(1);
  o.datoms_path = dir + "/datoms.db";
  o.bootstrap = raft::ConfState{{NodeId(1)}, {}};
  auto r = Replica::Open(o, db->get(), log->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("no replica state"), std::string::npos) << r.status().ToString();
  // A replica's file opened as another group's is refused too.
  o.datoms_path = dir + "/other.db";
  ASSERT_TRUE(Replica::Open(o, db->get(), log->get()).ok());
  o.raft.group = raft::GroupId(2);
  auto wrong = Replica::Open(o, db->get(), log->get());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("state of group 1"), std::string::npos) << wrong.status().ToString();
  // Group 0 (the meta group) is a group like any other: it reopens.
  o.raft.group = raft::GroupId(0);
  o.datoms_path = dir + "/meta.db";
  ASSERT_TRUE(Replica::Open(o, db->get(), log->get()).ok());
  auto meta = Replica::Open(o, db->get(), log->get());
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
}

// A failure in the middle of applying a batch (here: after its datoms were
// written, when the applied index is updated; injected with a trigger) rolls
// the whole batch back: the file keeps the previous applied index and none
// of the batch's datoms, and after a restart every entry applies exactly
// once. With the applied index in another transaction than the datoms, the
// datoms would stay and the restart would apply them a second time.
TEST(Replica, AFailedBatchCommitsNothingAndReappliesOnce) {
  Cluster c(TempDir("inject"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  uint64_t victim = leader == 3 ? 2 : 3;
  const std::string path = c.dir() + "/datoms_" + std::to_string(victim) + ".db";
  FileState before = ReadFileState(path);
  {
    auto db = storage::Sqlite::Open(path, storage::Sqlite::OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("CREATE TRIGGER inject BEFORE UPDATE ON replica_state BEGIN "
                           "SELECT RAISE(ABORT, 'injected failure'); END;")
                    .ok());
  }
  c.tolerate_failures = true;
  for (int i = 0; i < 5; ++i) c.Propose(leader, "x" + std::to_string(i), 10 + i, PersonTx(i));
  for (int i = 0; i < 100 && c.at(victim).error().ok(); ++i) c.Round();
  ASSERT_FALSE(c.at(victim).error().ok());
  EXPECT_NE(c.at(victim).error().message().find("injected failure"), std::string::npos)
      << c.at(victim).error().ToString();
  FileState after = ReadFileState(path);
  EXPECT_EQ(after.applied, before.applied);
  EXPECT_EQ(after.tx_ts, before.tx_ts);
  EXPECT_EQ(after.Dump(), before.Dump());
  // The failed replica still answers from what is durable.
  EXPECT_EQ(CountName(c.at(victim), "p0"), 0u);
  EXPECT_FALSE(c.at(victim).Outcome("x0").has_value());
  c.Settle();
  c.Stop(victim);
  {
    auto db = storage::Sqlite::Open(path, storage::Sqlite::OpenMode::kReadWrite);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("DROP TRIGGER inject").ok());
  }
  c.tolerate_failures = false;
  c.Start(victim);
  c.Settle();
  ExpectSameDatoms(c);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(CountName(c.at(victim), "p" + std::to_string(i)), 1u);
}

void SmallSnapshots(ReplicaOptions& o) {
  o.snapshot_entries = 5;
  o.raft.compaction_retain_entries = 2;
  o.raft.snapshot_chunk_bytes = 4096;  // several chunks per snapshot
}

// Proposes PersonTx(0..n-1) to `leader` under request ids prefix0.. (with
// t 10 + i), a Round every `round_every` proposals; returns the ids.
std::vector<std::string> ProposePeople(Cluster& c, uint64_t leader, const std::string& prefix, int n,
                                       int round_every) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(prefix + std::to_string(i));
    c.Propose(leader, ids.back(), 10 + i, PersonTx(i));
    if (i % round_every == 0) c.Round();
  }
  return ids;
}

// The start of the catch-up tests: a leader, the schema, then `n`
// transactions (request ids prefix0.., a Round every 5 proposals) committed
// while a follower is down, the others settled.
struct Behind {
  uint64_t leader = 0;
  uint64_t down = 0;  // the follower, stopped
};
Behind WriteWhileAFollowerIsDown(Cluster& c, const std::string& prefix, int n) {
  Behind b;
  b.leader = c.WaitLeader();
  c.Propose(b.leader, "schema", 1, kSchema);
  c.Settle();
  b.down = b.leader == 3 ? 2 : 3;
  c.Stop(b.down);
  ProposePeople(c, b.leader, prefix, n, 5);
  c.Settle();
  return b;
}

std::string OutcomeDump(Replica& r, const std::vector<std::string>& ids) {
  std::string s;
  for (const std::string& id : ids) {
    std::optional<ApplyOutcome> o = r.Outcome(id);
    s += id + ": ";
    if (!o) {
      s += "none\n";
      continue;
    }
    s += std::to_string(o->index.value()) + " " + std::to_string(o->t.raw) + " " + o->status.ToString();
    for (auto& [tempid, e] : o->tempids) s += " " + tempid + "=" + std::to_string(e.raw);
    s += "\n";
  }
  return s;
}

// A replica restarted after it applied and compacted recovers exactly: the
// same datoms, applied index and outcomes (with tempids), from the snapshot
// the log store kept plus the log after it.
TEST(Replica, RestartAfterCompactionRecoversExactly) {
  Cluster c(TempDir("compact_restart"), SmallSnapshots);
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  std::vector<std::string> ids = {"schema"};
  for (std::string& id : ProposePeople(c, leader, "c", 30, 4)) ids.push_back(std::move(id));
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_GT(c.at(id).snapshots_taken(), 2u) << "replica " << id;
    EXPECT_GT(c.at(id).raft().log().first_index().value(), 10u) << "replica " << id << " did not compact its log";
  }
  std::optional<ApplyOutcome> c7 = c.at(1).Outcome("c7");
  ASSERT_TRUE(c7.has_value());
  EXPECT_EQ(c7->tempids.size(), 2u);  // "p" and "q"
  uint64_t victim = leader == 3 ? 2 : 3;
  Result<std::vector<Datom>> datoms = c.at(victim).LogDatoms();
  ASSERT_TRUE(datoms.ok());
  LogIndex applied = c.at(victim).applied_index();
  std::string outcomes = OutcomeDump(c.at(victim), ids);
  c.Stop(victim);
  c.Start(victim);
  EXPECT_EQ(c.at(victim).applied_index(), applied);
  EXPECT_EQ(OutcomeDump(c.at(victim), ids), outcomes);
  Result<std::vector<Datom>> again = c.at(victim).LogDatoms();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Dump(*again), Dump(*datoms));
  EXPECT_GT(c.at(victim).raft().snapshot().meta.index.value(), 10u);
  // Every replica restarts at once (each from its own snapshot and log) and
  // the group goes on.
  for (uint64_t id = 1; id <= 3; ++id) c.Stop(id);
  for (uint64_t id = 1; id <= 3; ++id) c.Start(id);
  leader = c.WaitLeader();
  c.Propose(leader, "after", 100, "[{:person/name \"after\"}]");
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(victim), "after"), 1u);
  EXPECT_EQ(OutcomeDump(c.at(victim), ids), outcomes);
}

// A follower kept down while the others compact their logs cannot catch up
// from the log any more: it receives the leader's snapshot in chunks,
// installs it and ends with the identical datom log and outcomes.
TEST(Replica, FollowerBehindTheCompactedLogCatchesUpBySnapshot) {
  Cluster c(TempDir("catch_up"), SmallSnapshots);
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "early", 2, PersonTx(100));
  c.Settle();
  uint64_t down = leader == 3 ? 2 : 3;
  LogIndex behind = c.at(down).applied_index();
  c.Stop(down);
  std::vector<std::string> ids = {"schema", "early"};
  for (std::string& id : ProposePeople(c, leader, "d", 40, 5)) ids.push_back(std::move(id));
  c.Settle();
  ASSERT_GT(c.at(leader).raft().log().first_index(), behind.Next()) << "the leader's log still covers the follower";
  // The snapshot's bytes are in its file, not in the leader's memory; the
  // catch-up below reads them back.
  EXPECT_EQ(c.at(leader).raft().snapshot().data, nullptr);
  size_t chunks = 0;
  c.mutate = [&](raft::Message& m) {
    if (m.type == raft::MessageType::kSnapshot) ++chunks;
  };
  c.Start(down);
  EXPECT_EQ(c.at(down).applied_index(), behind);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  EXPECT_GT(chunks, 1u) << "the snapshot should travel in several chunks";
  // The received bytes are kept as a snapshot file the log store names.
  Result<std::string> file = c.log_store(down).SnapshotFile(raft::GroupId(1));
  ASSERT_TRUE(file.ok());
  EXPECT_FALSE(file->empty());
  EXPECT_TRUE(std::filesystem::exists(c.log_store(down).SnapshotPath(*file)));
  EXPECT_EQ(c.at(down).raft().snapshot().data, nullptr) << "the follower keeps the received bytes in memory";
  ExpectSameDatoms(c);
  EXPECT_EQ(OutcomeDump(c.at(down), ids), OutcomeDump(c.at(leader), ids));
  EXPECT_EQ(CountName(c.at(down), "p39"), 1u);
  // It goes on applying from the log, and recovers after a restart.
  c.Propose(leader, "later", 200, "[{:person/name \"later\"}]");
  c.Settle();
  c.Stop(down);
  c.Start(down);
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(down), "later"), 1u);
}

// A received snapshot streams into an incoming file as its chunks arrive. A
// chunk that cannot be written (here: the incoming file's name is taken by a
// directory) fails nothing: snapshot_error() says why, the leader sends it
// again, and once it can be written the transfer finishes. A transfer cut
// short by a restart leaves no incoming file behind.
TEST(Replica, ReceivedSnapshotChunksStreamToAFileAndAFailedWriteIsRetried) {
  Cluster c(TempDir("snapshot_stream"), SmallSnapshots);
  const uint64_t down = WriteWhileAFollowerIsDown(c, "s", 40).down;
  // 1. Cut short: a few chunks in, the follower restarts.
  size_t chunks = 0;
  c.mutate = [&](raft::Message& m) {
    if (m.type == raft::MessageType::kSnapshot && m.to.value() == down) ++chunks;
  };
  c.Start(down);
  const std::string incoming =
      c.log_store(down).SnapshotPath("datoms_" + std::to_string(down) + ".db.snapshot-incoming");
  for (int i = 0; i < 500 && chunks < 3; ++i) c.Round();
  ASSERT_GE(chunks, 3u);
  ASSERT_TRUE(std::filesystem::exists(incoming));
  EXPECT_GE(std::filesystem::file_size(incoming), 2u * 4096) << "chunks are written as they arrive";
  EXPECT_EQ(c.at(down).snapshots_installed(), 0u);
  c.Stop(down);
  c.Start(down);
  EXPECT_FALSE(std::filesystem::exists(incoming)) << "a cut-short transfer left its file";
  // 2. The incoming file cannot be created: nothing fails, nothing installs.
  std::filesystem::create_directory(incoming);
  chunks = 0;
  for (int i = 0; i < 300; ++i) c.Round();
  EXPECT_GT(chunks, 1u) << "the leader should keep offering the snapshot";
  EXPECT_TRUE(c.at(down).error().ok()) << c.at(down).error().ToString();
  EXPECT_EQ(c.at(down).snapshots_installed(), 0u);
  EXPECT_NE(c.at(down).snapshot_error().message().find(incoming), std::string::npos)
      << c.at(down).snapshot_error().ToString();
  // 3. Writable again: the transfer goes through.
  std::filesystem::remove(incoming);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  EXPECT_TRUE(c.at(down).snapshot_error().ok()) << c.at(down).snapshot_error().ToString();
  EXPECT_FALSE(std::filesystem::exists(incoming)) << "the incoming file should have become the snapshot file";
  EXPECT_EQ(c.at(down).raft().snapshot().data, nullptr);
  ExpectSameDatoms(c);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(CountName(c.at(down), "p" + std::to_string(i)), 1u);
}

// With snapshot_in_background a received snapshot's install (sync, copy,
// validation, reading the memory indexes) is prepared on a thread of its
// own: while it runs the replica's Ready waits and nothing else does (the
// host's other work, here the other replicas, goes on; the replica itself
// keeps taking messages). Then it installs as usual.
TEST(Replica, AReceivedSnapshotIsPreparedOffTheOwnerThread) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false, entered = false;
  Cluster c(TempDir("install_in_background"), [&](ReplicaOptions& o) {
    SmallSnapshots(o);
    o.snapshot_in_background = true;
    o.install_job_hook = [&] {
      std::unique_lock<std::mutex> lock(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    };
  });
  auto unblock = [&] {
    {
      std::lock_guard<std::mutex> lock(mu);
      release = true;
    }
    cv.notify_all();
  };
  struct Unblock {  // a failed assertion must not leave the job parked
    std::function<void()> f;
    ~Unblock() { f(); }
  } unblock_at_exit{unblock};
  const Behind b = WriteWhileAFollowerIsDown(c, "b", 30);
  const uint64_t leader = b.leader, down = b.down;
  c.Start(down);
  const LogIndex before = c.at(down).applied_index();
  auto job_entered = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return entered;
  };
  for (int i = 0; i < 2000 && !job_entered(); ++i) {
    c.Round();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(job_entered()) << "no install was prepared in the background";
  // The job is parked in the hook: the replica holds its Ready, the others
  // commit and apply more.
  const LogIndex leader_before = c.at(leader).applied_index();
  c.Propose(leader, "during", 500, "[{:person/name \"during\"}]");
  for (int i = 0; i < 20; ++i) c.Round();
  EXPECT_GT(c.at(leader).applied_index(), leader_before);
  EXPECT_EQ(c.at(down).applied_index(), before);
  EXPECT_EQ(c.at(down).snapshots_installed(), 0u);
  EXPECT_TRUE(c.at(down).error().ok()) << c.at(down).error().ToString();
  unblock();
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(down), "during"), 1u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(CountName(c.at(down), "p" + std::to_string(i)), 1u);
  // And from its files after a restart. Loading built the AVET of the
  // unique :person/name (read by every upsert) before any transaction asked,
  // and not that of :person/age.
  c.Stop(down);
  c.Start(down);
  {
    auto src = std::dynamic_pointer_cast<const StoreSource>(c.at(down).db(false));
    ASSERT_NE(src, nullptr);
    const Snapshot& snap = src->snapshot();
    std::optional<uint32_t> name = snap.attrs->Find(Keyword::Intern("person/name"));
    std::optional<uint32_t> age = snap.attrs->Find(Keyword::Intern("person/age"));
    ASSERT_TRUE(name && age);
    EXPECT_TRUE(snap.current->AvetBuilt(*name));
    EXPECT_FALSE(snap.current->AvetBuilt(*age));
  }
  c.Settle();
  ExpectSameDatoms(c);
}

// After a restart the snapshot's bytes stay in their file (nothing read at
// open); a follower that needs the snapshot afterwards gets it read back.
TEST(Replica, SnapshotBytesAreReadFromTheFileAfterARestart) {
  Cluster c(TempDir("snapshot_after_restart"), SmallSnapshots);
  const uint64_t down = WriteWhileAFollowerIsDown(c, "r", 30).down;
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id != down) c.Stop(id);
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id == down) continue;
    c.Start(id);
    EXPECT_GT(c.at(id).raft().snapshot().meta.index.value(), 10u);
    EXPECT_EQ(c.at(id).raft().snapshot().data, nullptr) << "replica " << id << " read its snapshot at open";
  }
  c.Start(down);
  c.WaitLeader();
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(CountName(c.at(down), "p" + std::to_string(i)), 1u);
}

// Deferred datom commits (commit_interval_ms > 0): a crash loses the datom
// file's open transaction, never an applied entry: the replica reopens at
// the file's older applied index and re-applies the rest from its Raft log,
// to the same datoms, t and outcomes.
void NeverCommitByTime(ReplicaOptions& o) {
  o.commit_interval_ms = 1'000'000;
  o.commit_entries = 1'000'000;
}

void CopyDatabaseFiles(const std::string& from, const std::string& to) {
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::error_code ec;
    std::filesystem::remove(to + suffix, ec);
    if (std::filesystem::exists(from + suffix)) std::filesystem::copy_file(from + suffix, to + suffix);
  }
}

TEST(Replica, DeferredCommitsAreReplayedFromTheLogAfterACrash) {
  Cluster c(TempDir("deferred_crash"), NeverCommitByTime);
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  std::vector<std::string> ids = {"schema"};
  for (int i = 0; i < 6; ++i) {
    ids.push_back("x" + std::to_string(i));
    c.Propose(leader, ids.back(), 10 + i, PersonTx(i));
  }
  c.Settle();
  const uint64_t victim = leader == 3 ? 2 : 3;
  ASSERT_GT(c.at(victim).unflushed_entries(), 0u) << "nothing left uncommitted: the test would prove nothing";
  const std::string datoms = c.dir() + "/datoms_" + std::to_string(victim) + ".db";
  const std::string raft_db = c.dir() + "/raft_" + std::to_string(victim) + ".db";
  const uint64_t applied = c.at(victim).applied_index().value();
  const std::string tempids_before = OutcomeDump(c.at(victim), ids);
  // The files as a kill -9 now would leave them: only what SQLite committed.
  c.frozen.insert(victim);
  CopyDatabaseFiles(datoms, datoms + ".crash");
  CopyDatabaseFiles(raft_db, raft_db + ".crash");
  c.Stop(victim);  // a clean close commits; the crash copy is what counts
  CopyDatabaseFiles(datoms + ".crash", datoms);
  CopyDatabaseFiles(raft_db + ".crash", raft_db);
  FileState crashed = ReadFileState(datoms);
  ASSERT_LT(crashed.applied, applied) << "the crash copy holds everything: nothing was deferred";
  EXPECT_EQ(CountName(c.at(leader), "p5"), 1u);
  c.frozen.erase(victim);
  c.Start(victim);
  EXPECT_EQ(c.at(victim).applied_index().value(), crashed.applied);
  c.Settle();
  EXPECT_GE(c.at(victim).applied_index().value(), applied);
  ExpectSameDatoms(c);
  EXPECT_EQ(OutcomeDump(c.at(victim), ids), tempids_before);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(CountName(c.at(victim), "p" + std::to_string(i)), 1u);
  // A retry of an applied request id still applies once.
  c.Propose(leader, "x0", 100, PersonTx(0));
  c.Settle();
  for (int id = 1; id <= 3; ++id) EXPECT_EQ(CountName(c.at(static_cast<uint64_t>(id)), "friend-of-0"), 1u);
}

// A snapshot taken while work is uncommitted commits it first: the copy
// holds everything the compacted log no longer does.
TEST(Replica, DeferredCommitsAreInASnapshotAndItsCatchUp) {
  Cluster c(TempDir("deferred_snapshot"), [](ReplicaOptions& o) {
    SmallSnapshots(o);
    NeverCommitByTime(o);
  });
  const Behind b = WriteWhileAFollowerIsDown(c, "d", 30);
  const uint64_t leader = b.leader, down = b.down;
  ASSERT_GT(c.at(leader).snapshots_taken(), 0u);
  c.Start(down);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(CountName(c.at(down), "p" + std::to_string(i)), 1u);
}

// With snapshot_in_background the datom file is copied by a thread of its
// own while the replicas go on applying; each copy is recorded (log compacted,
// snapshot file named in the log store, the previous file removed) by a later
// round. A follower behind the compacted log catches up from such a snapshot,
// and every replica restarts from its snapshot file and log.
TEST(Replica, BackgroundSnapshotsCompactTheLogAndServeCatchUpAndRestart) {
  const std::string dir = TempDir("background_snapshot");
  Cluster c(dir, [](ReplicaOptions& o) {
    SmallSnapshots(o);
    o.snapshot_in_background = true;
  });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  uint64_t down = leader == 3 ? 2 : 3;
  LogIndex behind = c.at(down).applied_index();
  c.Stop(down);
  // Rounds until every live replica recorded a snapshot past `index`
  // (copies finish on their own time; a round records a finished one).
  auto wait_snapshots_past = [&](uint64_t index) {
    for (int i = 0; i < 5000; ++i) {
      bool all = true;
      for (uint64_t id = 1; id <= 3; ++id) {
        if (id != down && c.at(id).raft().snapshot().meta.index.value() <= index) all = false;
      }
      if (all) return true;
      c.Round();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  std::vector<std::string> ids = {"schema"};
  for (std::string& id : ProposePeople(c, leader, "b", 40, 5)) ids.push_back(std::move(id));
  c.Settle();
  ASSERT_TRUE(wait_snapshots_past(behind.value() + 10)) << "no background snapshot was recorded";
  ASSERT_GT(c.at(leader).raft().log().first_index(), behind.Next()) << "the leader's log still covers the follower";
  // Once the copies in flight are recorded, one snapshot file per replica:
  // the one its log store names (each recorded snapshot removed the one
  // before).
  std::set<std::string> files, named;
  for (int i = 0; i < 200; ++i) {
    c.Round();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.find(".snapshot-") != std::string::npos) files.insert(name);
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    if (id == down) continue;
    Result<std::string> file = c.log_store(id).SnapshotFile(raft::GroupId(1));
    ASSERT_TRUE(file.ok());
    named.insert(*file);
  }
  EXPECT_EQ(files, named);
  c.Start(down);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
  EXPECT_EQ(OutcomeDump(c.at(down), ids), OutcomeDump(c.at(leader), ids));
  for (uint64_t id = 1; id <= 3; ++id) c.Stop(id);
  for (uint64_t id = 1; id <= 3; ++id) c.Start(id);
  EXPECT_GT(c.at(leader).raft().snapshot().meta.index, behind) << "the restart should load the snapshot file";
  leader = c.WaitLeader();
  c.Propose(leader, "after", 100, "[{:person/name \"after\"}]");
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(down), "after"), 1u);
  EXPECT_EQ(OutcomeDump(c.at(down), ids), OutcomeDump(c.at(leader), ids));
}

// A snapshot copy that fails (here: its temp path is a directory that
// cannot be removed) leaves the replica applying, its log uncompacted and
// snapshot_error() saying why; the next attempt after snapshot_retry_ms
// succeeds once the obstacle is gone.
TEST(Replica, AFailedSnapshotCopyIsRetriedAndDoesNotStopTheReplica) {
  const std::string dir = TempDir("snapshot_fails");
  Cluster c(dir, [](ReplicaOptions& o) {
    SmallSnapshots(o);
    o.snapshot_retry_ms = 0;
  });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  const std::string blocker = dir + "/datoms_" + std::to_string(leader) + ".db.snapshot-copy";
  std::filesystem::create_directories(blocker);
  std::ofstream(blocker + "/in-the-way") << "x";
  for (int i = 0; i < 20; ++i) {
    c.Propose(leader, "f" + std::to_string(i), 10 + i, PersonTx(i));
    if (i % 5 == 0) c.Round();
  }
  c.Settle();
  EXPECT_TRUE(c.at(leader).error().ok()) << c.at(leader).error().ToString();
  EXPECT_EQ(c.at(leader).snapshots_taken(), 0u);
  EXPECT_EQ(c.at(leader).raft().snapshot().meta.index.value(), 1u) << "the leader compacted without a snapshot";
  ASSERT_FALSE(c.at(leader).snapshot_error().ok());
  EXPECT_NE(c.at(leader).snapshot_error().message().find("taking a snapshot"), std::string::npos)
      << c.at(leader).snapshot_error().ToString();
  std::filesystem::remove_all(blocker);
  c.Propose(leader, "after", 100, "[{:person/name \"after\"}]");
  c.Settle();
  EXPECT_GT(c.at(leader).snapshots_taken(), 0u);
  EXPECT_TRUE(c.at(leader).snapshot_error().ok()) << c.at(leader).snapshot_error().ToString();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(leader), "p19"), 1u);
}

// Large commands trigger a snapshot long before the entry count does (the
// in-memory log would otherwise grow with their size), and a follower
// catches up from it.
TEST(Replica, SnapshotBytesTriggerASnapshotBeforeTheEntryCount) {
  Cluster c(TempDir("snapshot_bytes"), [](ReplicaOptions& o) {
    o.snapshot_entries = 1'000'000;
    o.snapshot_bytes = 4096;
    o.raft.compaction_retain_entries = 2;
  });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  ASSERT_EQ(c.at(leader).snapshots_taken(), 0u) << "the schema alone is under 4 KiB";
  uint64_t down = leader == 3 ? 2 : 3;
  c.Stop(down);
  for (int i = 0; i < 40; ++i) c.Propose(leader, "b" + std::to_string(i), 10 + i, PersonTx(i));
  c.Settle();
  EXPECT_GT(c.at(leader).snapshots_taken(), 0u);
  EXPECT_LT(c.at(leader).snapshots_taken(), 40u);
  c.Start(down);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
}

// A snapshot whose bytes are not a valid datom file of this group is refused
// before anything is persisted: the follower fails with Corruption, its file
// and its Raft log are as they were, and after a restart it recovers its old
// state and then installs a good snapshot.
TEST(Replica, CorruptSnapshotIsRefusedAndChangesNothing) {
  Cluster c(TempDir("corrupt_snapshot"), SmallSnapshots);
  const uint64_t down = WriteWhileAFollowerIsDown(c, "e", 30).down;
  c.Start(down);
  LogIndex applied = c.at(down).applied_index();
  Result<std::vector<Datom>> datoms = c.at(down).LogDatoms();
  ASSERT_TRUE(datoms.ok());
  const std::string path = c.dir() + "/datoms_" + std::to_string(down) + ".db";
  FileState file = ReadFileState(path);
  // Garble the first chunk: the SQLite header no longer says what it is.
  c.mutate = [&](raft::Message& m) {
    if (m.type != raft::MessageType::kSnapshot || m.to.value() != down || m.snapshot->offset_bytes != 0) return;
    auto chunk = std::make_shared<raft::SnapshotChunk>(*m.snapshot);
    for (size_t i = 0; i < 100 && i < chunk->data.size(); ++i) chunk->data[i] = static_cast<char>(0x5A ^ i);
    m.snapshot = chunk;
  };
  c.tolerate_failures = true;
  for (int i = 0; i < 500 && c.at(down).error().ok(); ++i) c.Round();
  ASSERT_EQ(c.at(down).error().code(), StatusCode::kCorruption) << c.at(down).error().ToString();
  EXPECT_NE(c.at(down).error().message().find("refused"), std::string::npos) << c.at(down).error().ToString();
  EXPECT_EQ(c.at(down).applied_index(), applied);
  Result<std::vector<Datom>> still = c.at(down).LogDatoms();
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(Dump(*still), Dump(*datoms));
  EXPECT_EQ(ReadFileState(path).Dump(), file.Dump());
  EXPECT_FALSE(std::filesystem::exists(path + ".install"));
  // A failed replica ignores input instead of crashing.
  c.at(down).Tick();
  EXPECT_FALSE(c.at(down).ReadIndex(5).ok());
  // Restart: the old state, then a good snapshot.
  c.Stop(down);
  c.mutate = nullptr;
  c.tolerate_failures = false;
  c.Start(down);
  EXPECT_EQ(c.at(down).applied_index(), applied);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ExpectSameDatoms(c);
}

// A crash after the host persisted a received snapshot (the Raft log now
// starts after it) but before the replica installed it: the next open
// installs the snapshot the log store kept, and the replica goes on.
TEST(Replica, CrashBetweenSavingAndInstallingASnapshotInstallsItAtOpen) {
  Cluster c(TempDir("install_at_open"), SmallSnapshots);
  const uint64_t down = WriteWhileAFollowerIsDown(c, "i", 30).down;
  c.Start(down);
  LogIndex before = c.at(down).applied_index();
  bool crashed = false;
  c.handle_ready = [&](uint64_t id, Replica& r, RaftLogStore& store, const Replica::SendFn& send) {
    if (id != down || crashed) return crashed && id == down;
    std::optional<raft::Ready> rd = r.TakeReady();
    if (!rd) return true;
    EXPECT_TRUE(store.Save({{r.group(), &*rd, r.prepared_snapshot_file()}}).ok());
    if (rd->snapshot && rd->snapshot->meta.index > r.applied_index()) {
      crashed = true;  // durable in the log store, never installed
      c.frozen.insert(down);
      return true;
    }
    EXPECT_TRUE(r.FinishReady(*rd, send).ok());
    return true;
  };
  for (int i = 0; i < 500 && !crashed; ++i) c.Round();
  ASSERT_TRUE(crashed);
  EXPECT_EQ(c.at(down).applied_index(), before);
  c.Stop(down);
  c.handle_ready = nullptr;
  c.frozen.clear();
  c.Start(down);
  EXPECT_GT(c.at(down).applied_index(), before);
  EXPECT_EQ(c.at(down).applied_index(), c.at(down).raft().snapshot().meta.index);
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  EXPECT_FALSE(std::filesystem::exists(c.dir() + "/datoms_" + std::to_string(down) + ".db.install"));
  c.Settle();
  ExpectSameDatoms(c);
  EXPECT_EQ(CountName(c.at(down), "p29"), 1u);
}

// Outcomes older than the window are pruned at the same log positions on
// every replica, even when one replica applies the log in other batches (it
// was down and catches up in big batches): the outcome tables and the
// datoms are identical. A retry inside the window is deduplicated; a retry
// of a request whose outcome left the window applies again, on every
// replica alike (the documented limit of deduplication).
TEST(Replica, OutcomePruningIsIdenticalOnEveryReplica) {
  Cluster c(TempDir("prune"), [](ReplicaOptions& o) { o.outcome_window_entries = 8; });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "old", 2, "[{:person/name \"old\" :person/age 1}]");
  c.Settle();
  uint64_t down = leader == 3 ? 2 : 3;
  c.Stop(down);
  for (int i = 0; i < 20; ++i) {
    c.Propose(leader, "w" + std::to_string(i), 10 + i, PersonTx(i));
    c.Round();
  }
  // Inside the window: deduplicated. Outside: applies again (age 2).
  c.Propose(leader, "w19", 40, "[{:person/name \"w19-retry\"}]");
  c.Propose(leader, "old", 41, "[{:person/name \"old\" :person/age 2}]");
  c.Settle();
  c.Start(down);
  c.Settle();
  ExpectSameDatoms(c);
  std::string first;
  for (uint64_t id = 1; id <= 3; ++id) {
    FileState f = ReadFileState(c.dir() + "/datoms_" + std::to_string(id) + ".db");
    for (auto& [rid, o] : f.outcomes) EXPECT_GT(o.first + 8, f.applied) << rid << " outlived the window";
    EXPECT_LE(f.outcomes.size(), 8u);
    if (id == 1) first = f.Dump();
    EXPECT_EQ(f.Dump(), first) << "replica " << id;
    EXPECT_EQ(CountName(c.at(id), "w19-retry"), 0u);
    EXPECT_FALSE(c.at(id).Outcome("w0").has_value());
    ASSERT_TRUE(c.at(id).Outcome("old").has_value());
    EXPECT_EQ(c.at(id).Outcome("old")->t, TxTime::FromParts(kBaseMs + 41, 0));
  }
}

// A transaction that writes an entity in a partition the shard does not own
// fails with WrongShard on every replica and writes nothing; one in an owned
// partition (and schema, in partition 0) applies.
TEST(Replica, OwnershipGuardRefusesForeignPartitions) {
  Cluster c(TempDir("guard"), [](ReplicaOptions& o) { o.owns_partition = [](uint32_t p) { return p % 2 == 1; }; });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  // :person/age is not unique, so :db/partition places the new entity.
  c.Propose(leader, "mine", 2, "[{:db/partition 3 :person/age 3}]");
  c.Propose(leader, "foreign", 3, "[{:db/partition 4 :person/age 4}]");
  c.Propose(leader, "mixed", 4, "[{:db/partition 5 :person/age 5} {:db/partition 6 :person/age 6}]");
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(c.at(id).Outcome("schema")->status.ok());
    ASSERT_TRUE(c.at(id).Outcome("mine")->status.ok()) << c.at(id).Outcome("mine")->status.ToString();
    EXPECT_EQ(c.at(id).Outcome("mine")->tempids.size(), 0u);
    for (const char* rid : {"foreign", "mixed"}) {
      std::optional<ApplyOutcome> o = c.at(id).Outcome(rid);
      ASSERT_TRUE(o.has_value());
      EXPECT_EQ(o->status.code(), StatusCode::kWrongShard) << o->status.ToString();
      EXPECT_FALSE(o->t.valid());
    }
    EXPECT_NE(c.at(id).Outcome("foreign")->status.message().find("partition 4"), std::string::npos)
        << c.at(id).Outcome("foreign")->status.ToString();
    datalog::DatomPattern p;
    p.a = Keyword::Intern("person/age");
    std::vector<std::pair<uint32_t, Value>> ages;
    ASSERT_TRUE(c.at(id)
                    .db()
                    ->Scan(p,
                           [&](const Datom& d) {
                             ages.emplace_back(d.e.partition(), d.v);
                             return true;
                           })
                    .ok());
    ASSERT_EQ(ages.size(), 1u);
    EXPECT_EQ(ages[0].first, 3u);
    EXPECT_EQ(ages[0].second, Value::Long(3));
  }
  // Nothing of the refused transactions was written: two transactions only.
  FileState f = ReadFileState(c.dir() + "/datoms_1.db");
  EXPECT_EQ(f.tx_ts.size(), 2u);
}

// A cross-shard ref as the cluster router writes it (a lookup ref to another
// shard's entity rewritten to that entity's id): the target shard accepts the
// foreign id in VALUE position on every replica, still refuses a missing id in
// an owned partition, and refuses the foreign id in entity position.
TEST(Replica, CrossShardRefValueApplies) {
  Cluster c(TempDir("xref"), [](ReplicaOptions& o) { o.owns_partition = [](uint32_t p) { return p % 2 == 1; }; });
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  EntityId foreign = EntityId::Make(4, 17);  // lives on the shard owning partition 4
  EntityId missing = EntityId::Make(3, 17);  // owned here, never created
  c.Propose(leader, "xref", 2, "[{:db/partition 3 :person/age 30 :person/friend " + std::to_string(foreign.raw) + "}]");
  c.Propose(leader, "missing", 3, "[{:db/partition 3 :person/age 31 :person/friend " + std::to_string(missing.raw) + "}]");
  c.Propose(leader, "entity", 4, "[[:db/add " + std::to_string(foreign.raw) + " :person/age 32]]");
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<ApplyOutcome> x = c.at(id).Outcome("xref");
    ASSERT_TRUE(x.has_value());
    ASSERT_TRUE(x->status.ok()) << x->status.ToString();
    datalog::DatomPattern p;
    p.a = Keyword::Intern("person/friend");
    std::vector<Datom> refs;
    ASSERT_TRUE(c.at(id)
                    .db()
                    ->Scan(p,
                           [&](const Datom& d) {
                             refs.push_back(d);
                             return true;
                           })
                    .ok());
    ASSERT_EQ(refs.size(), 1u);
    EXPECT_EQ(refs[0].e.partition(), 3u);
    EXPECT_EQ(refs[0].v, Value::Ref(foreign));
    std::optional<ApplyOutcome> m = c.at(id).Outcome("missing");
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->status.code(), StatusCode::kNotFound) << m->status.ToString();
    std::optional<ApplyOutcome> e = c.at(id).Outcome("entity");
    ASSERT_TRUE(e.has_value());
    EXPECT_FALSE(e->status.ok());
  }
}

// Two groups on each of three nodes: a node's groups share one Raft log
// database and are persisted with ONE Save per node per round (group
// commit); a node's messages to a peer travel as one batch of both groups.
TEST(Replica, GroupsOfANodeShareOneLogAndOneSave) {
  std::string dir = TempDir("groups");
  struct NodeState {
    std::unique_ptr<storage::Sqlite> db;
    std::unique_ptr<RaftLogStore> store;
    std::map<uint64_t, std::unique_ptr<Replica>> groups;
  };
  std::map<uint64_t, NodeState> nodes;
  for (uint64_t id = 1; id <= 3; ++id) {
    NodeState& n = nodes[id];
    auto db =
        storage::Sqlite::Open(dir + "/raft_" + std::to_string(id) + ".db", storage::Sqlite::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.ok());
    n.db = std::move(*db);
    auto store = RaftLogStore::Open(n.db.get());
    ASSERT_TRUE(store.ok());
    n.store = std::move(*store);
    for (uint64_t g = 1; g <= 2; ++g) {
      ReplicaOptions o;
      o.raft.id = NodeId(id);
      o.raft.group = raft::GroupId(g);
      o.raft.seed = 7 * id + g;
      o.datoms_path = dir + "/datoms_" + std::to_string(id) + "_" + std::to_string(g) + ".db";
      o.store.sync = false;
      o.store.partitions = 16;
      o.bootstrap = raft::ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}};
      auto r = Replica::Open(o, n.db.get(), n.store.get());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      n.groups[g] = std::move(*r);
    }
  }
  std::vector<std::pair<uint64_t, std::string>> wire;
  size_t saves = 0, multi_group_saves = 0, multi_group_batches = 0;
  auto round = [&] {
    for (auto& [id, n] : nodes) {
      std::vector<std::pair<Replica*, raft::Ready>> readies;
      for (auto& [g, r] : n.groups) {
        if (std::optional<raft::Ready> rd = r->TakeReady()) readies.emplace_back(r.get(), std::move(*rd));
      }
      if (readies.empty()) continue;
      std::vector<RaftLogStore::GroupWrite> writes;
      for (auto& [r, rd] : readies) writes.push_back({r->group(), &rd, r->prepared_snapshot_file()});
      ASSERT_TRUE(n.store->Save(writes).ok());
      ++saves;
      if (readies.size() > 1) ++multi_group_saves;
      std::map<uint64_t, std::vector<raft::Message>> by_peer;
      for (auto& [r, rd] : readies) {
        ASSERT_TRUE(r->FinishReady(rd, [&](std::vector<raft::Message> msgs) {
                       for (auto& m : msgs) by_peer[m.to.value()].push_back(std::move(m));
                     }).ok());
      }
      for (auto& [to, batch] : by_peer) {
        bool g1 = false, g2 = false;
        for (const raft::Message& m : batch) (m.group.value() == 1 ? g1 : g2) = true;
        if (g1 && g2) ++multi_group_batches;
        wire.emplace_back(to, EncodeBatch(batch));
      }
    }
    std::vector<std::pair<uint64_t, std::string>> now;
    now.swap(wire);
    for (auto& [to, bytes] : now) {
      Result<std::vector<raft::Message>> msgs = DecodeBatch(bytes);
      ASSERT_TRUE(msgs.ok());
      for (const raft::Message& m : *msgs) ASSERT_TRUE(nodes[to].groups[m.group.value()]->Step(m).ok());
    }
    for (auto& [id, n] : nodes)
      for (auto& [g, r] : n.groups) r->Tick();
  };
  auto leader_of = [&](uint64_t g) -> Replica* {
    for (auto& [id, n] : nodes) {
      Replica* r = n.groups[g].get();
      if (r->raft().role() == raft::Role::kLeader && r->raft().commit().value() > 1 &&
          r->applied_index() >= r->raft().commit())
        return r;
    }
    return nullptr;
  };
  for (int i = 0; i < 1000 && (!leader_of(1) || !leader_of(2)); ++i) round();
  ASSERT_TRUE(leader_of(1) && leader_of(2));
  for (uint64_t g = 1; g <= 2; ++g) {
    Replica* l = leader_of(g);
    ASSERT_TRUE(l->Propose({"schema", TxTime::FromParts(kBaseMs, 0), kSchema}).ok());
    for (int i = 0; i < 5; ++i) {
      std::string name = "g" + std::to_string(g) + "-" + std::to_string(i);
      ASSERT_TRUE(l->Propose({name, TxTime::FromParts(kBaseMs + 1 + i, 0), "[{:person/name \"" + name + "\"}]"}).ok());
    }
  }
  auto settled = [&] {
    for (uint64_t g = 1; g <= 2; ++g) {
      Replica* l = leader_of(g);
      if (!l) return false;
      for (auto& [id, n] : nodes)
        if (n.groups[g]->applied_index() < l->raft().log().last_index()) return false;
    }
    return true;
  };
  for (int i = 0; i < 2000 && !settled(); ++i) round();
  ASSERT_TRUE(settled());
  for (uint64_t g = 1; g <= 2; ++g) {
    Result<std::vector<Datom>> first = nodes[1].groups[g]->LogDatoms();
    ASSERT_TRUE(first.ok());
    for (uint64_t id = 2; id <= 3; ++id) {
      Result<std::vector<Datom>> other = nodes[id].groups[g]->LogDatoms();
      ASSERT_TRUE(other.ok());
      EXPECT_EQ(Dump(*first), Dump(*other)) << "group " << g << " node " << id;
    }
    std::string own = "\"g" + std::to_string(g) + "-", foreign = "\"g" + std::to_string(3 - g) + "-";
    EXPECT_NE(Dump(*first).find(own), std::string::npos);
    EXPECT_EQ(Dump(*first).find(foreign), std::string::npos);
  }
  EXPECT_GT(multi_group_saves, 0u) << "never saved two groups in one transaction (" << saves << " saves)";
  EXPECT_GT(multi_group_batches, 0u);
}

// Datoms without the Raft log that produced them cannot be replayed safely.
TEST(Replica, RefusesDatomsWithoutTheirRaftLog) {
  Cluster c(TempDir("lost_log"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  uint64_t victim = leader == 3 ? 2 : 3;
  c.Stop(victim);
  std::string raft_db = c.dir() + "/raft_" + std::to_string(victim) + ".db";
  std::filesystem::remove(raft_db);
  std::filesystem::remove(raft_db + "-wal");
  std::filesystem::remove(raft_db + "-shm");
  auto db = storage::Sqlite::Open(raft_db, storage::Sqlite::OpenMode::kReadWriteCreate);
  ASSERT_TRUE(db.ok());
  auto store = RaftLogStore::Open(db->get());
  ASSERT_TRUE(store.ok());
  ReplicaOptions o;
  o.raft.id = NodeId(victim);
  o.raft.group = raft::GroupId(1);
  o.datoms_path = c.dir() + "/datoms_" + std::to_string(victim) + ".db";
  o.bootstrap = raft::ConfState{{NodeId(1), NodeId(2), NodeId(3)}, {}};
  auto r = Replica::Open(o, db->get(), store->get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("no Raft state for group 1"), std::string::npos) << r.status().ToString();
}

TEST(Replica, RefusesTxDataThatIsNotEdn) {
  Cluster c(TempDir("bad_edn"));
  uint64_t leader = c.WaitLeader();
  Result<LogIndex> r = c.at(leader).Propose(ReplicaCommand{"x", TxTime::FromParts(kBaseMs, 0), "[{:a"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  uint64_t follower = leader == 1 ? 2 : 1;
  Result<LogIndex> nl = c.at(follower).Propose(ReplicaCommand{"x", TxTime::FromParts(kBaseMs, 0), "[]"});
  ASSERT_FALSE(nl.ok());
  EXPECT_EQ(nl.status().code(), StatusCode::kNotLeader);
}

// The time views a replica hands out (as-of each t, since each t, history,
// current) equal the embedded Database's views after the same transactions:
// while it applies, after a restart (indexes rebuilt from the datom file) and
// on a follower that caught up by installing a snapshot. The two stores have
// different clocks, so datoms are compared with each t replaced by the
// number of the transaction that wrote it.
class TimeViews {
 public:
  explicit TimeViews(const std::string& dir) {
    Options o;
    o.sync = false;
    o.partitions = 16;  // as the replicas (Cluster::Start)
    auto db = Database::open(dir + "/embedded.db", o);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }

  // Runs `edn` on the embedded store and records the replica's t for it.
  void Record(const std::string& edn, TxTime replica_t) {
    Result<TxReport> r = db_->transact(edn);
    ASSERT_TRUE(r.ok()) << r.status().ToString() << " for " << edn;
    ASSERT_TRUE(replica_t.valid());
    replica_ts_.push_back(replica_t);
    embedded_ts_.push_back(r->t);
  }
  size_t size() const { return replica_ts_.size(); }

  // Compares every view of `r` with the embedded store's.
  void Compare(Replica& r, const std::string& what) {
    using Kind = StoreSource::Kind;
    std::shared_ptr<const datalog::IndexSource> current = r.db();
    ASSERT_NE(dynamic_cast<const StoreSource*>(current.get()), nullptr);
    struct V {
      Kind kind;
      size_t k;  // the transaction whose t the view takes (as-of, since)
    };
    std::vector<V> views = {{Kind::kCurrent, 0}, {Kind::kHistory, 0}};
    for (size_t k = 0; k < size(); ++k) views.push_back({Kind::kAsOf, k}), views.push_back({Kind::kSince, k});
    int nonempty = 0;
    for (const V& v : views) {
      Db want_db = db_->db();
      TxTime rt, et;
      if (v.kind == Kind::kAsOf || v.kind == Kind::kSince) rt = replica_ts_[v.k], et = embedded_ts_[v.k];
      if (v.kind == Kind::kAsOf) want_db = want_db.as_of(et);
      if (v.kind == Kind::kSince) want_db = want_db.since(et);
      if (v.kind == Kind::kHistory) want_db = want_db.history();
      Result<std::shared_ptr<const datalog::IndexSource>> got = ViewOf(current, v.kind, rt);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      const auto& want = *want_db.impl()->source;
      std::string name = what + ", view " + std::to_string(static_cast<int>(v.kind)) + " of tx " + std::to_string(v.k);
      EXPECT_EQ(want.is_history(), (*got)->is_history()) << name;
      for (const datalog::DatomPattern& p : Patterns()) {
        std::string w = Scan(want, p, embedded_ts_), g = Scan(**got, p, replica_ts_);
        if (!w.empty()) ++nonempty;
        EXPECT_EQ(w, g) << name;
      }
      // The index access of Db::datoms (its own code path over the view).
      const auto* store = dynamic_cast<const StoreSource*>(got->get());
      ASSERT_NE(store, nullptr);
      for (IndexType index : {IndexType::kEavt, IndexType::kAevt, IndexType::kVaet}) {
        Result<std::vector<Datom>> w = want_db.datoms(index, {});
        Result<std::vector<Datom>> g = store->Datoms(index, {});
        ASSERT_TRUE(w.ok() && g.ok()) << name;
        EXPECT_EQ(Normalize(*w, embedded_ts_), Normalize(*g, replica_ts_)) << name << " index " << static_cast<int>(index);
      }
    }
    EXPECT_GT(nonempty, static_cast<int>(views.size())) << "the views compared nothing";
  }

 private:
  static std::vector<datalog::DatomPattern> Patterns() {
    std::vector<datalog::DatomPattern> out(1);  // everything
    datalog::DatomPattern by_attr;
    by_attr.a = Keyword::Intern("person/age");
    out.push_back(by_attr);
    datalog::DatomPattern by_value;
    by_value.a = Keyword::Intern("person/name");
    by_value.v = Value::String("p2");
    out.push_back(by_value);
    datalog::DatomPattern retracted;
    retracted.added = false;
    out.push_back(retracted);
    return out;
  }

  // Datoms in scan order, each t replaced by "t<k>" (k = the transaction's
  // number) and :db/txInstant values dropped (the clocks differ).
  static std::string Normalize(const std::vector<Datom>& ds, const std::vector<TxTime>& ts) {
    auto tnum = [&](TxTime t) {
      auto it = std::find(ts.begin(), ts.end(), t);
      return it == ts.end() ? "t?" + std::to_string(t.raw) : "t" + std::to_string(it - ts.begin());
    };
    std::string out;
    for (const Datom& d : ds) {
      std::string e = d.e.is_tx() ? tnum(d.e.tx_time()) : std::to_string(d.e.raw);
      std::string v = d.a.str() == "db/txInstant" ? "inst" : d.v.ToString();
      out += "[" + e + " " + d.a.ToString() + " " + v + " " + tnum(d.tx) + (d.added ? " +" : " -") + "]\n";
    }
    return out;
  }

  static std::string Scan(const datalog::IndexSource& src, const datalog::DatomPattern& p, const std::vector<TxTime>& ts) {
    std::vector<Datom> ds;
    Status st = src.Scan(p, [&](const Datom& d) {
      ds.push_back(d);
      return true;
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return Normalize(ds, ts);
  }

  std::unique_ptr<Database> db_;
  std::vector<TxTime> replica_ts_, embedded_ts_;
};

TEST(Replica, TimeViewsEqualTheEmbeddedDatabase) {
  std::string dir = TempDir("time_views");
  Cluster c(dir, SmallSnapshots);
  TimeViews ref(dir);
  uint64_t leader = c.WaitLeader();
  uint64_t down = leader == 3 ? 2 : 3;
  uint64_t other = 6 - leader - down;
  int n = 0;
  auto run = [&](const std::string& edn) {
    std::string id = "tv" + std::to_string(n++);
    c.Propose(leader, id, 10 + n, edn);
    c.Settle();
    std::optional<ApplyOutcome> o = c.at(leader).Outcome(id);
    ASSERT_TRUE(o.has_value() && o->status.ok()) << edn << ": " << (o ? o->status.ToString() : "not applied");
    ref.Record(edn, o->t);
  };
  // Assertions, cardinality-one updates (retraction + assertion), a
  // cardinality-many retraction, an entity retraction and a re-assertion.
  run(kSchema);
  for (int i = 0; i < 4; ++i) run(PersonTx(i));
  run("[[:db/add [:person/name \"p1\"] :person/age 41]]");
  run("[[:db/retract [:person/name \"friend-of-2\"] :person/friend [:person/name \"p2\"]]]");
  c.Stop(down);  // misses the rest and catches up by a snapshot
  run("[[:db/retractEntity [:person/name \"p0\"]]]");
  run("[[:db/add [:person/name \"p2\"] :person/age 52] [:db/add [:person/name \"p3\"] :person/age 53]]");
  for (int i = 4; i < 14; ++i) run(PersonTx(i));  // past several snapshots (SmallSnapshots: every 5 entries)
  run("[{:person/name \"p0\" :person/age 7}]");
  run("[[:db/add [:person/name \"p2\"] :person/age 62]]");
  ASSERT_FALSE(HasFailure());
  ref.Compare(c.at(leader), "leader while applying");
  ref.Compare(c.at(other), "follower while applying");
  // Restarted: both indexes rebuilt from the datom file.
  c.Stop(other);
  c.Start(other);
  c.Settle();
  ref.Compare(c.at(other), "follower after a restart");
  // Behind the compacted log: installs a snapshot, then applies the log.
  c.Start(down);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  ref.Compare(c.at(down), "follower after a snapshot install");
  run("[[:db/add [:person/name \"p3\"] :person/age 73] [:db/retract [:person/name \"p4\"] :person/age 4]]");
  ref.Compare(c.at(down), "follower applying after the install");
  ref.Compare(c.at(leader), "leader");
}

TEST(ReplicaCommand, RoundTripsAndRefusesMalformedBytes) {
  ReplicaCommand c{"req-1", TxTime::FromParts(kBaseMs, 3), "[[:db/add \"x\" :a/b 1]]"};
  std::string bytes = c.Encode();
  Result<ReplicaCommand> back = ReplicaCommand::Decode(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, c);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_EQ(ReplicaCommand::Decode(bytes.substr(0, n)).status().code(), StatusCode::kInvalidArgument) << n;
  }
  EXPECT_FALSE(ReplicaCommand::Decode(bytes + "z").ok());
  std::string v3 = bytes;
  v3[0] = 3;
  Result<ReplicaCommand> unknown = ReplicaCommand::Decode(v3);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown kind"), std::string::npos) << unknown.status().ToString();
  // A transaction's bytes are still the original version-1 format.
  EXPECT_EQ(static_cast<uint8_t>(bytes[0]), 1);

  ReplicaCommand close = ReplicaCommand::Close(TxTime::FromParts(kBaseMs, 9));
  std::string cb = close.Encode();
  EXPECT_EQ(static_cast<uint8_t>(cb[0]), 2);
  Result<ReplicaCommand> cback = ReplicaCommand::Decode(cb);
  ASSERT_TRUE(cback.ok()) << cback.status().ToString();
  EXPECT_EQ(cback->kind, ReplicaCommand::Kind::kClose);
  EXPECT_EQ(cback->proposed_t, TxTime::FromParts(kBaseMs, 9));
  EXPECT_EQ(*cback, close);
  for (size_t n = 0; n < cb.size(); ++n) EXPECT_FALSE(ReplicaCommand::Decode(cb.substr(0, n)).ok()) << n;
  EXPECT_FALSE(ReplicaCommand::Decode(cb + "z").ok());
}

// ---------------------------------------------------------------- close(T)

LogIndex ProposeClose(Cluster& c, uint64_t leader, uint64_t ms) {
  Result<LogIndex> idx = c.at(leader).Propose(ReplicaCommand::Close(TxTime::FromParts(kBaseMs + ms, 0)));
  EXPECT_TRUE(idx.ok()) << idx.status().ToString();
  return idx.ok() ? *idx : LogIndex();
}

// close(T) then a transaction whose leader clock reading is below T: it
// applies with t > T on every replica, and closed_t() reports T.
TEST(Replica, CloseMakesLaterTransactionsApplyAboveTheClosedTime) {
  Cluster c(TempDir("close"));
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "before", 2, PersonTx(1));
  c.Settle();
  for (uint64_t id = 1; id <= 3; ++id) EXPECT_EQ(c.at(id).closed_t(), c.at(id).last_t());
  ProposeClose(c, leader, 500);
  // A smaller close applied later changes nothing (closed_t only grows).
  ProposeClose(c, leader, 100);
  c.Propose(leader, "after", 3, PersonTx(2));  // leader clock far behind the close
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<ApplyOutcome> before = c.at(id).Outcome("before");
    std::optional<ApplyOutcome> after = c.at(id).Outcome("after");
    ASSERT_TRUE(before && after);
    ASSERT_TRUE(after->status.ok()) << after->status.ToString();
    EXPECT_EQ(before->t, TxTime::FromParts(kBaseMs + 2, 0));
    EXPECT_GT(after->t, TxTime::FromParts(kBaseMs + 500, 0)) << "replica " << id;
    EXPECT_EQ(after->t, TxTime::FromParts(kBaseMs + 500, 1));
    EXPECT_EQ(c.at(id).last_t(), after->t);
    EXPECT_EQ(c.at(id).closed_t(), after->t);
  }
  // A close with no transaction after it: closed_t() is the close itself.
  ProposeClose(c, leader, 900);
  c.Settle();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.at(id).closed_t(), TxTime::FromParts(kBaseMs + 900, 0));
    EXPECT_LT(c.at(id).last_t(), c.at(id).closed_t());
  }
  // Out of range: refused at the leader.
  Result<LogIndex> bad = c.at(leader).Propose(ReplicaCommand::Close(TxTime::Max()));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// The closed time is durable with the applied index: a restart (from the
// file) and a snapshot install (a follower behind the compacted log) both
// keep it, and a transaction after either still applies above it.
TEST(Replica, ClosedTimeSurvivesRestartAndSnapshotInstall) {
  Cluster c(TempDir("close_durable"), SmallSnapshots);
  uint64_t leader = c.WaitLeader();
  c.Propose(leader, "schema", 1, kSchema);
  c.Settle();
  uint64_t down = leader == 3 ? 2 : 3;
  uint64_t up = 6 - leader - down;
  c.Stop(down);
  ProposeClose(c, leader, 1000);
  // Enough entries after the close that the leader compacts past it.
  for (int i = 0; i < 20; ++i) {
    ProposeClose(c, leader, 10 + i);  // below the closed time: no effect
    if (i % 4 == 0) c.Round();
  }
  c.Settle();
  const TxTime closed = TxTime::FromParts(kBaseMs + 1000, 0);
  EXPECT_EQ(c.at(leader).closed_t(), closed);
  ASSERT_GT(c.at(leader).raft().log().first_index().value(), 5u) << "the leader did not compact";

  // Restart from the file.
  c.Stop(up);
  c.Start(up);
  EXPECT_EQ(c.at(up).closed_t(), closed);

  // Snapshot install on the follower that missed the close entry.
  c.Start(down);
  EXPECT_LT(c.at(down).closed_t(), closed);
  c.Settle();
  EXPECT_EQ(c.at(down).snapshots_installed(), 1u);
  EXPECT_EQ(c.at(down).closed_t(), closed);
  c.Stop(down);
  c.Start(down);
  EXPECT_EQ(c.at(down).closed_t(), closed);

  leader = c.WaitLeader();
  c.Propose(leader, "after", 5, PersonTx(3));
  c.Settle();
  ExpectSameDatoms(c);
  for (uint64_t id = 1; id <= 3; ++id) {
    std::optional<ApplyOutcome> o = c.at(id).Outcome("after");
    ASSERT_TRUE(o.has_value());
    EXPECT_GT(o->t, closed) << "replica " << id;
  }
}

}  // namespace
}  // namespace cairn::shard

namespace cairn::shard {
namespace {

const AttrStatsCache* StatsOf(const std::shared_ptr<const datalog::IndexSource>& db) {
  const auto* source = dynamic_cast<const StoreSource*>(db.get());
  return source == nullptr ? nullptr : source->snapshot().stats.get();
}

// Every db() of one replica state shares one statistics cache (the query
// planner's samples are computed once per state, not once per query); an
// applied transaction starts the next state's cache.
TEST(Replica, DbValuesOfOneStateShareThePlannerStatistics) {
  Cluster c(TempDir("stats"));
  uint64_t leader = c.WaitLeader();
  ASSERT_NE(leader, 0u);
  c.Propose(leader, "schema", 1, kSchema);
  c.Propose(leader, "p0", 10, PersonTx(0));
  c.Settle();
  std::shared_ptr<const datalog::IndexSource> db0 = c.at(leader).db();  // keeps its cache alive
  const AttrStatsCache* first = StatsOf(db0);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(StatsOf(c.at(leader).db()), first);
  c.Propose(leader, "p1", 11, PersonTx(1));
  c.Settle();
  EXPECT_NE(StatsOf(c.at(leader).db()), first);
}

}  // namespace
}  // namespace cairn::shard
