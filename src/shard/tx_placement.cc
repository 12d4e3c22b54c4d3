#include "shard/tx_placement.h"

#include <string>

#include "core/check.h"

namespace cairn::shard {

uint32_t UserPartition(uint64_t stable_hash, uint32_t partitions) {
  CAIRN_CHECK(partitions >= 1 && partitions <= EntityId::kMaxPartitions);
  if (partitions == 1) return EntityId::kSystemPartition;
  return 1 + static_cast<uint32_t>(stable_hash % (partitions - 1));
}

uint32_t UniqueIdentityPartition(Keyword attr, const Value& v, uint32_t partitions) {
  return UserPartition(StableHashOf(attr, v), partitions);
}

uint32_t TempidPartition(std::string_view tempid, uint32_t partitions) {
  return UserPartition(Value::String(std::string(tempid)).StableHash(), partitions);
}

}  // namespace cairn::shard
