#include <gtest/gtest.h>

#include <unordered_set>

#include "cairn/ids.h"
#include "cairn/status.h"

namespace cairn {
namespace {

TEST(EntityId, PartitionAndSequenceLayout) {
  EntityId e = EntityId::Make(3, 42);
  EXPECT_EQ(e.raw, (uint64_t{3} << 48) | 42);
  EXPECT_EQ(e.partition(), 3u);
  EXPECT_EQ(e.seq(), 42u);
  EXPECT_FALSE(e.is_tx());
  EXPECT_TRUE(e.valid());
  EXPECT_FALSE(EntityId{}.valid());
  EntityId last = EntityId::Make(EntityId::kMaxPartitions - 1, (uint64_t{1} << 48) - 1);
  EXPECT_EQ(last.partition(), EntityId::kMaxPartitions - 1);
  EXPECT_FALSE(last.is_tx());
  // Out-of-range parts are masked, never spill into the tx bit.
  EXPECT_FALSE(EntityId::Make(0xFFFFFFFF, ~uint64_t{0}).is_tx());
}

TEST(EntityId, TransactionEntitiesCarryTheirTime) {
  TxTime t = TxTime::FromParts(1700000000000, 5);
  EntityId e = EntityId::ForTx(t);
  EXPECT_TRUE(e.is_tx());
  EXPECT_EQ(e.tx_time(), t);
  EXPECT_EQ(e.partition(), 0u);
  EXPECT_GT(e, EntityId::Make(EntityId::kMaxPartitions - 1, 1));  // tx entities sort last
}

TEST(TxTime, PhysicalAndLogicalParts) {
  TxTime t = TxTime::FromParts(123456, 7);
  EXPECT_EQ(t.physical_ms(), 123456u);
  EXPECT_EQ(t.logical(), 7u);
  EXPECT_LT(TxTime::FromParts(1, 0xFFFF), TxTime::FromParts(2, 0));
  EXPECT_LT(TxTime::FromParts(2, 0), TxTime::FromParts(2, 1));
  EXPECT_FALSE(TxTime{}.valid());
  EXPECT_EQ(TxTime::Max().raw >> 63, 0u);
}

TEST(Ids, HashAndOrder) {
  std::unordered_set<EntityId> s{EntityId{1}, EntityId{2}, EntityId{1}};
  EXPECT_EQ(s.size(), 2u);
  EXPECT_LT(ShardId{1}, ShardId{2});
  EXPECT_EQ(PartitionId{4}, PartitionId{4});
}

TEST(Status, CodesMessagesAndContext) {
  EXPECT_TRUE(Status::OK().ok());
  EXPECT_EQ(Status::OK().ToString(), "OK");
  Status s = Status::InvalidArgument("1:7: unexpected ')'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "InvalidArgument: 1:7: unexpected ')'");
  EXPECT_EQ(s.WithContext("tx-data").message(), "tx-data: 1:7: unexpected ')'");
  EXPECT_TRUE(Status::OK().WithContext("x").ok());
  EXPECT_EQ(StatusCodeName(StatusCode::kNotLeader), "NotLeader");
  EXPECT_EQ(Status::Conflict("c").code(), StatusCode::kConflict);
}

Result<int> Half(int x) {
  if (x % 2) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  CAIRN_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

Status CheckEven(int x) {
  CAIRN_RETURN_IF_ERROR(Half(x).status());
  return Status::OK();
}

TEST(Result, ValueOrErrorAndMacros) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_FALSE(Quarter(6).ok());
  EXPECT_EQ(Quarter(6).status().message(), "odd");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_FALSE(CheckEven(3).ok());
  Result<int> from_ok_status(Status::OK());  // a bug: becomes Internal
  EXPECT_EQ(from_ok_status.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace cairn
