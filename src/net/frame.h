// Frame: the unit of Cairn's peer and client wire protocol (ARCHITECTURE §7).
//
// On the wire a frame is a 16-byte header followed by the payload:
//
//   offset size field
//   0      4    magic "CRN\x01" (the last byte is the protocol version)
//   4      1    type   (what the payload is; see FrameType)
//   5      3    reserved, zero
//   8      4    payload length, little-endian
//   12     4    CRC-32C of the payload, little-endian
//
// A frame whose magic/version is wrong, whose length exceeds the receiver's
// limit, or whose checksum does not match is a protocol error: the connection
// is closed (there is no way to resynchronise a byte stream).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/status.h"

namespace cairn::net {

enum class FrameType : uint8_t {
  kHello = 1,      // handshake: server challenge
  kAuth = 2,       // handshake: client proof + its own challenge
  kAuthOk = 3,     // handshake: server proof
  kRaft = 16,      // a batch of Raft messages for one or more groups
  kRequest = 32,   // client request
  kResponse = 33,  // reply to a request
};

struct Frame {
  FrameType type = FrameType::kRaft;
  std::string payload;
};

inline constexpr size_t kFrameHeaderBytes = 16;
inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kDefaultFrameBytesMax = 16u << 20;

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (the value for the
// bytes before). With SSE4.2's crc32 instruction where the CPU has it
// (checked once), else Crc32cPortable.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);
// The same with a byte-at-a-time table: the reference, and any CPU.
uint32_t Crc32cPortable(std::string_view data, uint32_t crc = 0);

// Appends the encoded frame (header + payload) to `out`.
void EncodeFrame(const Frame& frame, std::string* out);

// Parses a header. On success sets *type, *payload_bytes and *crc.
// Errors (InvalidArgument/Corruption) name what is wrong.
Status DecodeFrameHeader(const uint8_t* header, size_t frame_bytes_max, FrameType* type, uint32_t* payload_bytes,
                         uint32_t* crc);

// Decodes the first complete frame in `buffer`. Returns the bytes consumed, 0 if
// the buffer holds no complete frame yet, or an error for a malformed frame.
Result<size_t> DecodeFrame(std::string_view buffer, size_t frame_bytes_max, Frame* frame);

}  // namespace cairn::net
