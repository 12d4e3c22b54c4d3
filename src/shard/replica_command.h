// ReplicaCommand: what a shard's Raft entry carries (EntryType::kNormal).
//
// Two kinds (docs/cluster.md "Time"):
//  - kTransact: a transaction as the leader proposed it: the client's request
//    id (for idempotence: a shard applies a request id at most once and
//    remembers the outcome), the transaction time the leader proposed (read
//    from the node's hybrid clock; the state machine uses
//    max(proposed_t, last applied t + 1, closed_t + 1) so t is strictly
//    increasing and identical on every replica) and the EDN tx-data.
//  - kClose: close(T), T in proposed_t: applied, the shard's closed time
//    becomes max(closed_t, T), so no transaction with t <= T can commit
//    after it. request_id and tx_edn are empty.
//
// Encoding: the first byte is the kind (it doubles as the format version;
// kind 1 is the original version-1 transaction, so logs written before
// close(T) existed still decode):
//   kTransact: u8(1) varint(proposed_t.raw) varint(len) request_id
//              varint(len) tx_edn
//   kClose:    u8(2) varint(T.raw)
// Decoding checks every length; bad input is InvalidArgument.
//
// Thread-safety: values and pure functions.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "cairn/ids.h"
#include "cairn/status.h"

namespace cairn::shard {

struct ReplicaCommand {
  enum class Kind : uint8_t { kTransact = 1, kClose = 2 };

  std::string request_id;  // empty = no idempotence (never deduplicated)
  TxTime proposed_t;       // kClose: the time T to close
  std::string tx_edn;      // an EDN vector of tx forms
  Kind kind = Kind::kTransact;

  static ReplicaCommand Close(TxTime t) { return ReplicaCommand{{}, t, {}, Kind::kClose}; }

  std::string Encode() const;
  static Result<ReplicaCommand> Decode(std::string_view bytes);
  bool operator==(const ReplicaCommand&) const = default;
};

// A transaction's tempids (tempid string -> entity), as a request outcome
// keeps them: varint(count) (varint(len) tempid varint(entity.raw)){count},
// tempids in ascending order. Decoding checks every length and the order;
// bad bytes are Corruption (they come from the replica's own file).
std::string EncodeTempids(const std::map<std::string, EntityId>& tempids);
Result<std::map<std::string, EntityId>> DecodeTempids(std::string_view bytes);

}  // namespace cairn::shard
