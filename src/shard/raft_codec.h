// RaftCodec: the wire encoding of raft::Message, alone or batched per peer.
//
// A node keeps one connection per peer node (src/net) and carries the
// messages of all groups it shares with that peer in one frame; the frame
// payload is a MessageBatch. The transport frames, checksums and
// authenticates; this codec only turns messages into bytes and back.
//
// Format (all integers unsigned LEB128 varints unless noted; docs/cluster.md):
//   message  := version:u8(=1) body
//   batch    := version:u8(=1) count body{count}   (each body length-prefixed)
//   body     := type:u8 group from to term index log_term commit reject_hint
//               context flags:u8 entry_count entry{entry_count} [chunk]
//   flags    := bit0 reject, bit1 quiesce, bit2 a snapshot chunk follows
//   entry    := term index type:u8 data_len data
//   chunk    := meta_index meta_term voter_count voter{n} learner_count
//               learner{n} offset_bytes total_bytes done:u8 data_len data
// A batch body is prefixed by its length so a decoder can skip or bound it.
//
// Decoding never trusts the input: every length is checked against the bytes
// that remain, enum values and flags are range-checked, varints longer than
// 10 bytes or overflowing 64 bits are refused, and trailing bytes are an
// error. Malformed or truncated input yields InvalidArgument naming what and
// the byte offset; it never crashes or allocates more than the input implies.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "raft/types.h"

namespace cairn::shard {

constexpr uint8_t kRaftCodecVersion = 1;

// Appends the encoding of `m` (with its version byte) to `out`.
void EncodeMessage(const raft::Message& m, std::string* out);
std::string EncodeMessage(const raft::Message& m);
Result<raft::Message> DecodeMessage(std::string_view bytes);

// Many messages (typically for one peer node, of many groups) in one payload.
std::string EncodeBatch(const std::vector<raft::Message>& msgs);
Result<std::vector<raft::Message>> DecodeBatch(std::string_view bytes);

}  // namespace cairn::shard
