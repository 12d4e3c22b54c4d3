// What the CLI needs to know about a running cluster's layout, read from a
// node's GET /v1/status (status.cc, which holds the JSON parsing).
#pragma once

#include <cstdint>

#include "cairn/client.h"
#include "cairn/status.h"

namespace cairn::cli {

struct ClusterShape {
  bool cluster = false;  // false: an embedded `cairn serve --db`
  uint32_t shards = 1;
  uint32_t partitions = 256;
};

// shards: the status's shard count if it reports one, else the largest shard
// id it lists; partitions: the status's if reported, else the default 256.
// A wrong guess only costs the demo extra transactions (it splits a batch the
// server refuses as cross_shard).
Result<ClusterShape> FetchClusterShape(const Client& client);

}  // namespace cairn::cli
