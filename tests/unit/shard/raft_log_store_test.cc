// RaftLogStore on real SQLite files, driven by a real RaftNode.
#include "shard/raft_log_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "raft/raft_node.h"
#include "storage/sqlite.h"

namespace cairn::shard {
namespace {

using raft::Entry;
using raft::GroupId;
using raft::LogIndex;
using raft::NodeId;
using raft::Term;

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("cairn_raftlog_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::filesystem::remove(p);
  return p.string();
}

Entry E(uint64_t index, uint64_t term, std::string data) {
  Entry e;
  e.index = LogIndex(index);
  e.term = Term(term);
  e.data = std::move(data);
  return e;
}

struct Fixture {
  std::unique_ptr<storage::Sqlite> db;
  std::unique_ptr<RaftLogStore> store;
  explicit Fixture(const std::string& path) {
    auto opened = storage::Sqlite::Open(path, storage::Sqlite::OpenMode::kReadWriteCreate);
    EXPECT_TRUE(opened.ok());
    db = std::move(*opened);
    auto s = RaftLogStore::Open(db.get());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    store = std::move(*s);
  }
};

TEST(RaftLogStore, SavesManyGroupsInOneTransactionAndReloads) {
  std::string path = TempPath("groups.db");
  {
    Fixture f(path);
    raft::Ready a, b;
    a.entries = {E(1, 1, "a1"), E(2, 1, "a2")};
    a.hard_state = raft::HardState{Term(1), NodeId(3), LogIndex(2)};
    b.entries = {E(1, 2, "b1")};
    b.hard_state = raft::HardState{Term(2), NodeId(1), LogIndex(0)};
    ASSERT_TRUE(f.store->Save({{GroupId(7), &a}, {GroupId(9), &b}}).ok());
  }
  Fixture f(path);
  auto groups = f.store->Groups();
  ASSERT_TRUE(groups.ok());
  EXPECT_EQ(*groups, (std::vector<GroupId>{GroupId(7), GroupId(9)}));
  auto a = f.store->Load(GroupId(7));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->entries, (std::vector<Entry>{E(1, 1, "a1"), E(2, 1, "a2")}));
  EXPECT_EQ(a->hard_state, (raft::HardState{Term(1), NodeId(3), LogIndex(2)}));
  auto b = f.store->Load(GroupId(9));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->entries.size(), 1u);
  EXPECT_EQ(b->hard_state.vote, NodeId(1));
  auto none = f.store->Load(GroupId(99));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->entries.empty());
  EXPECT_FALSE(none->snapshot.has_value());
}

TEST(RaftLogStore, EntriesOverwriteTheConflictingTail) {
  Fixture f(TempPath("tail.db"));
  raft::Ready r1;
  r1.entries = {E(1, 1, "x"), E(2, 1, "y"), E(3, 1, "z")};
  ASSERT_TRUE(f.store->Save({{GroupId(1), &r1}}).ok());
  raft::Ready r2;  // a new leader's entries replace index 2 onwards
  r2.entries = {E(2, 2, "y2")};
  ASSERT_TRUE(f.store->Save({{GroupId(1), &r2}}).ok());
  auto s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->entries, (std::vector<Entry>{E(1, 1, "x"), E(2, 2, "y2")}));
}

TEST(RaftLogStore, SnapshotReplacesTheLogAndCompactionDropsThePrefix) {
  Fixture f(TempPath("snap.db"));
  raft::Ready r1;
  for (uint64_t i = 1; i <= 10; ++i) r1.entries.push_back(E(i, 1, "e" + std::to_string(i)));
  ASSERT_TRUE(f.store->Save({{GroupId(1), &r1}}).ok());
  raft::Ready compact;
  compact.compacted_through = LogIndex(4);
  ASSERT_TRUE(f.store->Save({{GroupId(1), &compact}}).ok());
  auto s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->entries.size(), 6u);
  EXPECT_EQ(s->entries.front().index, LogIndex(5));

  raft::Ready snap;
  raft::Snapshot sn;
  sn.meta.index = LogIndex(20);
  sn.meta.term = Term(3);
  sn.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
  sn.meta.conf.learners = {NodeId(4)};
  sn.data = std::make_shared<const std::string>("state machine image");
  snap.snapshot = sn;
  snap.entries = {E(21, 3, "after")};
  ASSERT_TRUE(f.store->Save({{GroupId(1), &snap}}).ok());
  s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->snapshot.has_value());
  EXPECT_EQ(s->snapshot->meta.index, LogIndex(20));
  EXPECT_EQ(s->snapshot->meta.conf, sn.meta.conf);
  EXPECT_EQ(*s->snapshot->data, "state machine image");
  EXPECT_EQ(s->entries, (std::vector<Entry>{E(21, 3, "after")}));
}

// Compaction drops at most drop_batch entries per Save, so a compaction of
// a long log is spread over many rounds; the entries still stored below the
// target stay invisible to nothing (Load returns them, contiguous).
TEST(RaftLogStore, CompactedEntriesAreDroppedAFewPerSave) {
  Fixture f(TempPath("drop.db"));
  f.store->set_drop_batch(10);
  raft::Ready r1;
  for (uint64_t i = 1; i <= 100; ++i) r1.entries.push_back(E(i, 1, "e" + std::to_string(i)));
  ASSERT_TRUE(f.store->Save({{GroupId(1), &r1}}).ok());
  auto rows = [&] { return *f.db->QueryInt("SELECT count(*) FROM raft_entries WHERE grp = 1"); };
  raft::Ready compact;
  compact.compacted_through = LogIndex(95);
  ASSERT_TRUE(f.store->Save({{GroupId(1), &compact}}).ok());
  EXPECT_EQ(rows(), 90);
  raft::Ready idle;  // any later Save of any group goes on dropping
  idle.hard_state = raft::HardState{Term(1), NodeId(1), LogIndex(100)};
  ASSERT_TRUE(f.store->Save({{GroupId(2), &idle}}).ok());
  EXPECT_EQ(rows(), 80);
  auto s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->entries.size(), 80u);
  EXPECT_EQ(s->entries.front().index, LogIndex(21));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(f.store->Save({{GroupId(2), &idle}}).ok());
  EXPECT_EQ(rows(), 5);
  s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->entries.front().index, LogIndex(96));
}

// A snapshot the application took is a file named by the row: Load returns
// its meta without the bytes (they stay in the file, read when needed), and a
// missing file is Corruption naming it.
TEST(RaftLogStore, ASnapshotFileStaysInTheFileTheRowNames) {
  const std::string path = TempPath("file_snap.db");
  const std::string dir = std::filesystem::path(path).parent_path().string();
  std::filesystem::remove(dir + "/snap-7");
  {
    std::ofstream(dir + "/snap-7", std::ios::binary) << "datom file image";
    Fixture f(path);
    EXPECT_EQ(f.store->snapshot_dir(), dir);
    raft::SnapshotMeta meta;
    meta.index = LogIndex(7);
    meta.term = Term(2);
    meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
    ASSERT_TRUE(f.store->SaveSnapshotFile(GroupId(3), meta, "snap-7").ok());
    EXPECT_EQ(*f.store->SnapshotFile(GroupId(3)), "snap-7");
  }
  Fixture f(path);
  auto s = f.store->Load(GroupId(3));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->snapshot.has_value());
  EXPECT_EQ(s->snapshot->meta.index, LogIndex(7));
  EXPECT_EQ(s->snapshot->meta.conf.voters, (std::vector<NodeId>{NodeId(1), NodeId(2), NodeId(3)}));
  EXPECT_EQ(s->snapshot->data, nullptr);
  EXPECT_EQ(f.store->SnapshotPath(*f.store->SnapshotFile(GroupId(3))), dir + "/snap-7");
  std::filesystem::remove(dir + "/snap-7");
  s = f.store->Load(GroupId(3));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
  EXPECT_NE(s.status().message().find(dir + "/snap-7"), std::string::npos) << s.status().ToString();
}

// A Ready's snapshot saved with GroupWrite::snapshot_file: the row names
// the file (no bytes in raft.db), and Load leaves them there.
TEST(RaftLogStore, AReceivedSnapshotSavedWithItsFileStaysInIt) {
  const std::string path = TempPath("received_snap.db");
  const std::string dir = std::filesystem::path(path).parent_path().string();
  std::ofstream(dir + "/received-30", std::ios::binary) << "leader's image";
  {
    Fixture f(path);
    raft::Ready r;
    raft::Snapshot sn;
    sn.meta.index = LogIndex(30);
    sn.meta.term = Term(4);
    sn.meta.conf.voters = {NodeId(1), NodeId(2), NodeId(3)};
    sn.data = std::make_shared<const std::string>("leader's image");
    r.snapshot = sn;
    ASSERT_TRUE(f.store->Save({{GroupId(2), &r, "received-30"}}).ok());
    EXPECT_EQ(*f.db->QueryInt("SELECT length(data) FROM raft_snapshot WHERE grp = 2"), 0);
  }
  Fixture f(path);
  EXPECT_EQ(*f.store->SnapshotFile(GroupId(2)), "received-30");
  auto s = f.store->Load(GroupId(2));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->snapshot.has_value());
  EXPECT_EQ(s->snapshot->meta.index, LogIndex(30));
  EXPECT_EQ(s->snapshot->data, nullptr);
  std::filesystem::remove(dir + "/received-30");
}

// A log written before snapshot files existed (no `file` column) opens: the
// column is added, and the snapshot bytes stay in the row.
TEST(RaftLogStore, OpensALogWrittenBeforeSnapshotFiles) {
  const std::string path = TempPath("old_format.db");
  {
    auto db = storage::Sqlite::Open(path, storage::Sqlite::OpenMode::kReadWriteCreate);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)
                    ->Exec("CREATE TABLE raft_snapshot(grp INTEGER PRIMARY KEY, idx INTEGER NOT NULL, "
                           "term INTEGER NOT NULL, voters TEXT NOT NULL, learners TEXT NOT NULL, data BLOB NOT NULL);"
                           "INSERT INTO raft_snapshot VALUES(1, 4, 1, '1,2,3', '', X'6F6C64');")
                    .ok());
  }
  Fixture f(path);
  auto s = f.store->Load(GroupId(1));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_TRUE(s->snapshot.has_value());
  EXPECT_EQ(*s->snapshot->data, "old");
  EXPECT_EQ(*f.store->SnapshotFile(GroupId(1)), "");
}

TEST(RaftLogStore, AGapInTheStoredLogIsCorruption) {
  Fixture f(TempPath("gap.db"));
  raft::Ready r;
  r.entries = {E(1, 1, "a"), E(2, 1, "b"), E(3, 1, "c")};
  ASSERT_TRUE(f.store->Save({{GroupId(1), &r}}).ok());
  ASSERT_TRUE(f.db->Exec("DELETE FROM raft_entries WHERE idx = 2").ok());
  auto s = f.store->Load(GroupId(1));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption);
  EXPECT_NE(s.status().message().find("expected index 2"), std::string::npos);
}

// A single-voter group commits proposals; after a "restart" from the store
// the replica has the same log and hard state and keeps going.
TEST(RaftLogStore, ARaftNodeRestartsFromWhatItPersisted) {
  std::string path = TempPath("node.db");
  raft::Config config;
  config.id = NodeId(1);
  raft::ConfState conf;
  conf.voters = {NodeId(1)};
  auto drain = [](raft::RaftNode& node, RaftLogStore& store, std::vector<std::string>* applied) {
    while (node.HasReady()) {
      raft::Ready rd = node.GetReady();
      ASSERT_TRUE(store.Save({{GroupId(5), &rd}}).ok());
      for (const auto& e : rd.committed_entries)
        if (e.type == raft::EntryType::kNormal && !e.data.empty()) applied->push_back(e.data);
      node.Advance(rd);
    }
  };
  uint64_t last_index = 0;
  std::vector<std::string> applied;
  {
    Fixture f(path);
    raft::RestoredState boot = raft::RaftNode::Bootstrap(conf);
    raft::Ready init;  // persist the bootstrap snapshot like a host would
    init.snapshot = boot.snapshot;
    init.hard_state = boot.hard_state;
    ASSERT_TRUE(f.store->Save({{GroupId(5), &init}}).ok());
    raft::RaftNode node(config, boot);
    node.Campaign();
    drain(node, *f.store, &applied);
    ASSERT_EQ(node.role(), raft::Role::kLeader);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(node.Propose("cmd" + std::to_string(i)).ok());
      drain(node, *f.store, &applied);
    }
    last_index = node.log().last_index().value();
  }
  EXPECT_EQ(applied.size(), 5u);
  Fixture f(path);
  auto restored = f.store->Load(GroupId(5));
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  ASSERT_FALSE(restored->entries.empty());
  EXPECT_EQ(restored->entries.back().index.value(), last_index);
  EXPECT_EQ(restored->entries.back().data, "cmd4");
  raft::RaftNode node(config, *restored);
  node.Campaign();
  std::vector<std::string> again;
  drain(node, *f.store, &again);
  ASSERT_EQ(node.role(), raft::Role::kLeader);
  ASSERT_TRUE(node.Propose("after restart").ok());
  drain(node, *f.store, &again);
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again.back(), "after restart");
}

}  // namespace
}  // namespace cairn::shard
