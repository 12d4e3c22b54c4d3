// Strong id types (STYLE 9) so an index is never passed as a count.
//
// EntityId layout (ARCHITECTURE §2): 64 bits.
//   bit 63 = 0: an ordinary entity. bits 48..62 = partition (15 bits),
//               bits 0..47 = sequence number within the partition.
//   bit 63 = 1: a transaction entity; bits 0..62 are its TxTime. So the entity
//               of the transaction committed at t is EntityId::ForTx(t), and a
//               5-tuple pattern's ?tx joins with [?tx :db/txInstant ...].
// Partition 0 is the system partition (attributes, idents).
//
// TxTime (ARCHITECTURE §3): a hybrid logical clock value,
//   (physical milliseconds since the Unix epoch << 16) | logical counter,
//   using 63 bits (47 bits of milliseconds last until the year ~6400).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace cairn {

struct TxTime {
  uint64_t raw = 0;

  static constexpr int kLogicalBits = 16;
  static constexpr TxTime FromParts(uint64_t physical_ms, uint32_t logical) {
    return TxTime{(physical_ms << kLogicalBits) | (logical & 0xFFFFu)};
  }
  static constexpr TxTime Max() { return TxTime{(uint64_t{1} << 63) - 1}; }
  constexpr uint64_t physical_ms() const { return raw >> kLogicalBits; }
  constexpr uint32_t logical() const { return static_cast<uint32_t>(raw & 0xFFFFu); }
  constexpr bool valid() const { return raw != 0; }
  friend constexpr auto operator<=>(TxTime, TxTime) = default;
};

struct EntityId {
  uint64_t raw = 0;

  static constexpr int kSeqBits = 48;
  static constexpr uint64_t kTxBit = uint64_t{1} << 63;
  static constexpr uint32_t kMaxPartitions = 1u << 15;
  static constexpr uint32_t kSystemPartition = 0;

  static constexpr EntityId Make(uint32_t partition, uint64_t seq) {
    return EntityId{(uint64_t{partition & 0x7FFFu} << kSeqBits) | (seq & ((uint64_t{1} << kSeqBits) - 1))};
  }
  static constexpr EntityId ForTx(TxTime t) { return EntityId{kTxBit | t.raw}; }

  constexpr bool is_tx() const { return (raw & kTxBit) != 0; }
  constexpr TxTime tx_time() const { return TxTime{raw & ~kTxBit}; }
  constexpr uint32_t partition() const { return is_tx() ? 0 : static_cast<uint32_t>(raw >> kSeqBits); }
  constexpr uint64_t seq() const { return raw & ((uint64_t{1} << kSeqBits) - 1); }
  constexpr bool valid() const { return raw != 0; }
  friend constexpr auto operator<=>(EntityId, EntityId) = default;
};

struct ShardId {
  uint32_t raw = 0;
  friend constexpr auto operator<=>(ShardId, ShardId) = default;
};

struct PartitionId {
  uint32_t raw = 0;
  friend constexpr auto operator<=>(PartitionId, PartitionId) = default;
};

}  // namespace cairn

template <>
struct std::hash<cairn::EntityId> {
  size_t operator()(cairn::EntityId e) const noexcept { return std::hash<uint64_t>()(e.raw * 0x9E3779B97F4A7C15ull); }
};
template <>
struct std::hash<cairn::TxTime> {
  size_t operator()(cairn::TxTime t) const noexcept { return std::hash<uint64_t>()(t.raw); }
};
