// Placement of new entities into partitions (ARCHITECTURE §2).
//
// These functions are the one definition of "which partition does a new
// entity go to" shared by the transactor (which allocates ids) and the
// cluster coordinator (which routes lookup refs and upserts to a shard without
// a global index). Changing them moves data: never change them for an
// existing cluster.
//
// Partition 0 is the system partition (attributes and idents). Ordinary
// entities never land there when there is more than one partition, so user
// data and schema never share a partition:
//   UserPartition(h, n) = n > 1 ? 1 + h % (n - 1) : 0.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "cairn/value.h"

namespace cairn::shard {

// Maps a 64-bit stable hash to an ordinary (non-system) partition in
// [1, partitions) (or 0 when partitions == 1). REQUIRES: partitions >= 1.
uint32_t UserPartition(uint64_t stable_hash, uint32_t partitions);

// The partition of a new entity that has a :db.unique/identity value `v` for
// `attr`: UserPartition(StableHashOf(attr, v), partitions). A lookup ref
// [attr v] on an identity attribute routes to the same partition.
uint32_t UniqueIdentityPartition(Keyword attr, const Value& v, uint32_t partitions);

// The partition of a new entity known only by its tempid:
// UserPartition(Value::String(tempid).StableHash(), partitions).
uint32_t TempidPartition(std::string_view tempid, uint32_t partitions);

}  // namespace cairn::shard
