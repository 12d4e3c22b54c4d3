// SeqAllocator: hands out entity ids from a store's per-partition counters.
//
// The embedded Database and every shard replica allocate the same way, so the
// counters are replicated state: every replica allocates the same ids for the
// same entry. The counters it advanced (advanced()) are committed with the
// datoms in the same SQLite transaction. Partition 0 (the system partition)
// keeps its first ids for built-in entities.
//
// Thread-safety: none; one transaction at a time.
#pragma once

#include <cstdint>
#include <map>

#include "core/check.h"
#include "shard/transactor.h"

namespace cairn::shard {

class SeqAllocator final : public IdAllocator {
 public:
  SeqAllocator(const std::map<uint32_t, uint64_t>& base, uint32_t partitions)
      : base_(base), partitions_(partitions) {}

  static constexpr uint64_t kFirstSystemSeq = 1024;

  EntityId Allocate(uint32_t partition) override {
    CAIRN_CHECK_MSG(partition < partitions_, "partition out of range");
    uint64_t seq;
    auto it = next_.find(partition);
    if (it != next_.end()) {
      seq = it->second;
    } else {
      auto b = base_.find(partition);
      seq = b != base_.end() ? b->second : (partition == EntityId::kSystemPartition ? kFirstSystemSeq : 1);
    }
    CAIRN_CHECK_MSG(seq < (uint64_t{1} << EntityId::kSeqBits), "partition exhausted");
    next_[partition] = seq + 1;
    return EntityId::Make(partition, seq);
  }
  const std::map<uint32_t, uint64_t>& advanced() const { return next_; }

 private:
  const std::map<uint32_t, uint64_t>& base_;
  uint32_t partitions_;
  std::map<uint32_t, uint64_t> next_;
};

}  // namespace cairn::shard
