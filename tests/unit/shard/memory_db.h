// MemoryDb: an in-memory database value + id allocator for transactor tests.
//
// It holds the current datoms (sorted EAVT) and the schema, implements
// datalog::IndexSource over them and shard::IdAllocator, and applies
// TxResults the way a store would (assertions added, retractions removed,
// schema changes installed), checking that each result is consistent with
// the state it was prepared against. So multi-transaction scenarios run
// against the real Transactor without SQLite.
//
// Thread-safety: none (tests are single-threaded).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/edn.h"
#include "core/schema.h"
#include "datalog/index_source.h"
#include "shard/transactor.h"

namespace cairn::shard::testing {

class MemoryDb : public datalog::IndexSource, public IdAllocator {
 public:
  explicit MemoryDb(TransactorOptions options = {}) : options_(options), schema_(std::make_shared<Schema>()) {}

  // ---- IndexSource ----
  const Schema& schema() const override { return *schema_; }
  bool is_history() const override { return false; }
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override {
    for (const Datom& d : datoms_) {
      if (p.e && d.e != *p.e) continue;
      if (p.a && d.a != *p.a) continue;
      if (p.v && d.v != *p.v) continue;
      if (p.tx && d.tx != *p.tx) continue;
      if (p.added && d.added != *p.added) continue;
      if (!fn(d)) break;
    }
    return Status::OK();
  }
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override {
    uint64_t n = 0;
    (void)Scan(p, [&](const Datom&) {
      ++n;
      return true;
    });
    return n;
  }

  // ---- IdAllocator ----
  EntityId Allocate(uint32_t partition) override {
    ++allocations_;
    // The built-in attributes own the first ids of the system partition.
    uint64_t& seq = next_seq_[partition];
    if (partition == EntityId::kSystemPartition && seq < 1000) seq = 1000;
    return EntityId::Make(partition, ++seq);
  }

  // Parses `edn`, prepares it at the next t and, on success, applies it.
  Result<TxResult> Transact(std::string_view edn) {
    Result<Edn> parsed = ReadEdn(edn);
    if (!parsed.ok()) return parsed.status();
    TxTime t = TxTime::FromParts(1'700'000'000'000ull + (++tx_count_), 0);
    Transactor tx(options_);
    Result<TxResult> r = tx.Prepare(*parsed, *this, t, *this);
    if (r.ok()) Apply(*r);
    return r;
  }

  // Applies a prepared result, checking it against the current state.
  void Apply(const TxResult& r) {
    for (const Datom& d : r.datoms) {
      EXPECT_EQ(d.tx, r.t) << d.ToString();
      auto it = std::lower_bound(datoms_.begin(), datoms_.end(), d, Less);
      bool present = it != datoms_.end() && it->e == d.e && it->a == d.a && it->v == d.v;
      if (d.added) {
        EXPECT_FALSE(present) << "asserting a datom that is already true: " << d.ToString();
        if (!present) datoms_.insert(it, d);
      } else {
        EXPECT_TRUE(present) << "retracting a datom that is not true: " << d.ToString();
        if (present) datoms_.erase(it);
      }
    }
    if (!r.schema_changes.empty()) {
      auto next = std::make_shared<Schema>(*schema_);
      for (const Attribute& a : r.schema_changes) {
        EXPECT_TRUE(a.id.valid()) << a.ident.ToString();
        next->Put(a);
      }
      schema_ = std::move(next);
    }
  }

  // ---- helpers for assertions ----
  std::vector<Value> Values(EntityId e, std::string_view attr) const {
    std::vector<Value> out;
    Keyword a = Keyword::Intern(attr);
    for (const Datom& d : datoms_) {
      if (d.e == e && d.a == a) out.push_back(d.v);
    }
    return out;
  }
  std::optional<Value> Value1(EntityId e, std::string_view attr) const {
    auto v = Values(e, attr);
    if (v.size() != 1) return std::nullopt;
    return v[0];
  }
  std::optional<EntityId> Entid(std::string_view attr, const Value& v) const {
    return Lookup(Keyword::Intern(attr), v);
  }
  size_t EntityDatomCount(EntityId e) const {
    return static_cast<size_t>(std::count_if(datoms_.begin(), datoms_.end(), [&](const Datom& d) { return d.e == e; }));
  }
  const std::vector<Datom>& datoms() const { return datoms_; }
  uint64_t allocations() const { return allocations_; }
  TxTime last_t() const { return TxTime::FromParts(1'700'000'000'000ull + tx_count_, 0); }
  const TransactorOptions& options() const { return options_; }

 private:
  static bool Less(const Datom& x, const Datom& y) {
    if (x.e != y.e) return x.e < y.e;
    if (x.a != y.a) return x.a < y.a;
    return x.v < y.v;
  }

  TransactorOptions options_;
  std::shared_ptr<Schema> schema_;
  std::vector<Datom> datoms_;
  std::map<uint32_t, uint64_t> next_seq_;
  uint64_t allocations_ = 0;
  uint64_t tx_count_ = 0;
};

// Datoms of a result other than the transaction's own :db/txInstant.
inline std::vector<Datom> DataDatoms(const TxResult& r) {
  std::vector<Datom> out;
  for (const Datom& d : r.datoms) {
    if (!d.e.is_tx()) out.push_back(d);
  }
  return out;
}

// Expects `r` to have failed with `code` and a message containing each of `parts`.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& r, StatusCode code, std::vector<std::string> parts) {
  if (r.ok()) return ::testing::AssertionFailure() << "expected " << StatusCodeName(code) << ", got OK";
  if (r.status().code() != code) return ::testing::AssertionFailure() << "wrong code: " << r.status().ToString();
  for (const std::string& p : parts) {
    if (r.status().message().find(p) == std::string::npos) {
      return ::testing::AssertionFailure() << "message lacks \"" << p << "\": " << r.status().ToString();
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace cairn::shard::testing
