// DatomStore::Transaction and CopyTo: several commits and the owner's own
// rows in one SQLite transaction, all or nothing (on disk and in memory);
// a consistent copy of the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "storage/datom_store.h"
#include "storage/sqlite.h"

namespace cairn::storage {
namespace {

namespace fs = std::filesystem;

class DatomStoreTransactionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cairn_store_txn_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "test.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static Status CommitOne(DatomStore& s, uint64_t seq, const std::string& attr) {
    Datom d{EntityId::Make(1, seq), Keyword::Intern(attr), Value::Long(static_cast<int64_t>(seq)), TxTime{}, true};
    CommitBatch b;
    b.t = TxTime{s.last_t().raw + 1};
    b.datoms = std::span<const Datom>(&d, 1);
    b.next_seqs[1] = seq + 1;
    return s.Commit(b).status();
  }
  static int64_t SideRows(DatomStore& s) { return *s.sql().QueryInt("SELECT count(*) FROM side"); }

  fs::path dir_;
  std::string path_;
};

TEST_F(DatomStoreTransactionTest, CommitsAndSideRowsAreAllOrNothing) {
  {
    auto s = std::move(*DatomStore::Open(path_, {}));
    ASSERT_TRUE(s->sql().Exec("CREATE TABLE side(k INTEGER PRIMARY KEY)").ok());
    // Success: three commits and a side row, one transaction.
    ASSERT_TRUE(s->Transaction([&]() -> Status {
                   for (uint64_t i = 1; i <= 3; ++i) CAIRN_RETURN_IF_ERROR(CommitOne(*s, i, "a/x"));
                   EXPECT_TRUE(s->in_transaction());
                   EXPECT_EQ(s->last_t().raw, 3u);  // visible inside, so commits chain
                   return s->sql().Exec("INSERT INTO side VALUES (1)");
                 }).ok());
    EXPECT_FALSE(s->in_transaction());
    // Failure after two more commits (one with a new attribute) and a side
    // row: nothing of it stays, on disk or in memory.
    const auto attrs_before = s->attrs();
    Status failed = s->Transaction([&]() -> Status {
      CAIRN_RETURN_IF_ERROR(CommitOne(*s, 4, "a/x"));
      CAIRN_RETURN_IF_ERROR(CommitOne(*s, 5, "a/new"));
      CAIRN_RETURN_IF_ERROR(s->sql().Exec("INSERT INTO side VALUES (2)"));
      return Status::IOError("injected");
    });
    EXPECT_EQ(failed.code(), StatusCode::kIOError);
    EXPECT_EQ(s->last_t().raw, 3u);
    EXPECT_EQ(s->next_seqs().at(1), 4u);
    EXPECT_EQ(s->attrs(), attrs_before);
    EXPECT_FALSE(s->attrs()->Find(Keyword::Intern("a/new")).has_value());
    EXPECT_EQ(s->datom_count(), 3u);
    EXPECT_EQ(SideRows(*s), 1);
    // A nested transaction is refused; the store still works afterwards.
    EXPECT_EQ(s->Transaction([&] { return s->Transaction([] { return Status::OK(); }); }).code(),
              StatusCode::kInvalidArgument);
    ASSERT_TRUE(CommitOne(*s, 4, "a/x").ok());
  }
  auto s = std::move(*DatomStore::Open(path_, {}));
  EXPECT_EQ(s->last_t().raw, 4u);
  EXPECT_EQ(s->datom_count(), 4u);
  EXPECT_EQ(SideRows(*s), 1);
}

TEST_F(DatomStoreTransactionTest, CopyToWritesAConsistentOpenableCopy) {
  const std::string copy = (dir_ / "copy.db").string();
  {
    auto s = std::move(*DatomStore::Open(path_, {}));
    for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(CommitOne(*s, i, "a/x").ok());
    ASSERT_TRUE(s->CopyTo(copy).ok());
    EXPECT_EQ(s->CopyTo(copy).code(), StatusCode::kIOError);  // never overwrites
    Status inside = s->Transaction([&] { return s->CopyTo((dir_ / "other.db").string()); });
    EXPECT_EQ(inside.code(), StatusCode::kInvalidArgument);
  }
  auto c = DatomStore::Open(copy, {});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->last_t().raw, 5u);
  EXPECT_EQ((*c)->datom_count(), 5u);
}

}  // namespace
}  // namespace cairn::storage
