// SinceView: the since(T) database value of a current view: exactly the
// datoms of `current` asserted after T (tx > T), as the embedded store's
// since view defines it. It lets a node serve since(T) reads of a shard
// replica, whose own source (shard::ReplicaSource) is a current view only.
// (As-of and history need the replica's history index, which it does not
// keep yet: docs/cluster.md.)
//
// Thread-safety: immutable; safe concurrently if `current` is.
#pragma once

#include <memory>

#include "datalog/index_source.h"

namespace cairn::cluster {

class SinceView final : public datalog::IndexSource {
 public:
  // REQUIRES: current non-null and not a history view.
  SinceView(std::shared_ptr<const datalog::IndexSource> current, TxTime t);

  const Schema& schema() const override { return current_->schema(); }
  bool is_history() const override { return false; }
  Status Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const override;
  Status ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                   const std::function<bool(const Datom&)>& fn) const override;
  // The current view's estimates (upper bounds of this view's).
  uint64_t EstimateCount(const datalog::DatomPattern& p) const override { return current_->EstimateCount(p); }
  uint64_t EstimateRange(const datalog::DatomPattern& p, const datalog::ValueRange& r) const override {
    return current_->EstimateRange(p, r);
  }
  uint64_t EstimateDistinct(Keyword a, int position) const override { return current_->EstimateDistinct(a, position); }

  TxTime t() const { return t_; }

 private:
  std::shared_ptr<const datalog::IndexSource> current_;
  TxTime t_;
};

}  // namespace cairn::cluster
