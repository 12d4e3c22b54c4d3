// Relation: a bag of tuples over named variables, stored as one flat vector
// of Values (row-major) so adding a row never allocates per row. RowIndex (a
// chained hash index of row numbers on chosen columns, for joins) and RowSet
// (open addressing on all columns, for deduplication) need no per-row heap
// nodes.
//
// Thread-safety: plain values; no shared state.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cairn/value.h"
#include "datalog/ast.h"

namespace cairn::datalog {

struct Relation {
  std::vector<VarId> vars;  // column -> variable
  std::vector<Value> data;  // rows() * arity() values
  size_t count = 0;         // number of rows (needed when arity is 0)
  // A column whose values are entity ids (longs) in ascending order, as an
  // index scan produced them (merge joins use it); -1 if none is known.
  int sorted_col = -1;
  // Whether the rows are known to be distinct (a rule's relation is a set).
  bool distinct = false;

  size_t arity() const { return vars.size(); }
  size_t rows() const { return count; }
  bool empty() const { return count == 0; }
  const Value* Row(size_t i) const { return data.data() + i * vars.size(); }
  Value* MutableRow(size_t i) { return data.data() + i * vars.size(); }
  int Col(VarId v) const {
    for (size_t i = 0; i < vars.size(); ++i)
      if (vars[i] == v) return static_cast<int>(i);
    return -1;
  }
  bool Has(VarId v) const { return Col(v) >= 0; }
  void AddRow(const Value* row) {
    data.insert(data.end(), row, row + vars.size());
    ++count;
  }
  void Clear() {
    data.clear();
    count = 0;
    sorted_col = -1;
    distinct = false;
  }

  // The relation with no columns and one row: the identity of joins.
  static Relation Unit() {
    Relation r;
    r.count = 1;
    return r;
  }
};

inline size_t HashValues(const Value* row, const int* cols, size_t n) {
  size_t h = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= row[cols[i]].Hash() + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  }
  return h;
}

// Hash index over some columns of a relation: maps key -> chain of rows.
// The constructor indexes the rows present; if the relation only grows by
// appended rows (a rule's relation during a fixpoint), Sync() indexes the
// rows added since. One class serves both uses (benchmarked: no slower on the
// hash-join path than a build-once table).
class RowIndex {
 public:
  // `rel` must outlive the index and only ever grow by appended rows.
  RowIndex(const Relation& rel, std::vector<int> cols) : rel_(rel), cols_(std::move(cols)) {
    size_t cap = 16;
    while (cap < rel.rows() * 2) cap <<= 1;
    Rehash(cap);
    Sync();
  }

  // Indexes the rows appended since the last call (or construction).
  void Sync() {
    size_t n = rel_.rows();
    if (n * 2 > heads_.size()) {
      size_t cap = heads_.size();
      while (cap < n * 2) cap <<= 1;
      Rehash(cap);
      indexed_ = 0;
      next_.clear();
      hashes_.clear();
    }
    next_.reserve(n);
    hashes_.reserve(n);
    for (size_t i = indexed_; i < n; ++i) {
      size_t h = HashValues(rel_.Row(i), cols_.data(), cols_.size());
      hashes_.push_back(h);
      next_.push_back(heads_[h & mask_]);
      heads_[h & mask_] = static_cast<int64_t>(i);
    }
    indexed_ = n;
  }

  // Calls fn(row_index) for each indexed row whose key columns equal
  // `probe[probe_cols[k]]`.
  template <typename Fn>
  void ForEachMatch(const Value* probe, const int* probe_cols, Fn&& fn) const {
    size_t h = HashValues(probe, probe_cols, cols_.size());
    for (int64_t i = heads_[h & mask_]; i >= 0; i = next_[static_cast<size_t>(i)]) {
      if (hashes_[static_cast<size_t>(i)] != h) continue;
      if (KeyEquals(static_cast<size_t>(i), probe, probe_cols)) fn(static_cast<size_t>(i));
    }
  }
  bool Contains(const Value* probe, const int* probe_cols) const {
    size_t h = HashValues(probe, probe_cols, cols_.size());
    for (int64_t i = heads_[h & mask_]; i >= 0; i = next_[static_cast<size_t>(i)]) {
      if (hashes_[static_cast<size_t>(i)] == h && KeyEquals(static_cast<size_t>(i), probe, probe_cols)) return true;
    }
    return false;
  }

 private:
  bool KeyEquals(size_t i, const Value* probe, const int* probe_cols) const {
    const Value* row = rel_.Row(i);
    for (size_t k = 0; k < cols_.size(); ++k)
      if (!(row[cols_[k]] == probe[probe_cols[k]])) return false;
    return true;
  }
  void Rehash(size_t cap) {
    heads_.assign(cap, -1);
    mask_ = cap - 1;
  }

  const Relation& rel_;
  std::vector<int> cols_;
  size_t indexed_ = 0;
  size_t mask_ = 0;
  std::vector<int64_t> heads_;
  std::vector<int64_t> next_;
  std::vector<size_t> hashes_;
};

// A growing set of rows (all columns are the key): Insert() appends a row to
// `rel` only if it is new. Used for set semantics and rule fixpoints.
class RowSet {
 public:
  // `expected`: how many rows it will likely hold (sizes the table once).
  explicit RowSet(Relation* rel, size_t expected = 0) : rel_(rel) {
    for (size_t i = 0; i < rel_->arity(); ++i) all_cols_.push_back(static_cast<int>(i));
    size_t cap = 64;
    while (cap < std::max(expected, rel_->rows()) * 2) cap <<= 1;
    Rehash(cap);
    for (size_t i = 0; i < rel_->rows(); ++i) Place(i, Hash(rel_->Row(i)));
  }

  // Returns true if the row was added.
  bool Insert(const Value* row) {
    if (rel_->arity() == 0) {
      if (rel_->count > 0) return false;
      rel_->count = 1;
      return true;
    }
    size_t h = Hash(row);
    if (Find(row, h) >= 0) return false;
    rel_->AddRow(row);
    if ((rel_->rows()) * 2 > slots_.size()) {
      Rehash(slots_.size() * 2);
      for (size_t i = 0; i < rel_->rows(); ++i) Place(i, Hash(rel_->Row(i)));
    } else {
      Place(rel_->rows() - 1, h);
    }
    return true;
  }
  bool Contains(const Value* row) const {
    if (rel_->arity() == 0) return rel_->count > 0;
    return Find(row, Hash(row)) >= 0;
  }
  // Returns the row number of `row`, appending it first if it is new.
  size_t FindOrInsert(const Value* row) {
    if (rel_->arity() == 0) {
      rel_->count = 1;
      return 0;
    }
    int64_t at = Find(row, Hash(row));
    if (at >= 0) return static_cast<size_t>(at);
    Insert(row);
    return rel_->rows() - 1;
  }

 private:
  size_t Hash(const Value* row) const { return HashValues(row, all_cols_.data(), all_cols_.size()); }
  void Rehash(size_t cap) {
    slots_.assign(cap, -1);
    mask_ = cap - 1;
  }
  void Place(size_t i, size_t h) {
    size_t b = h & mask_;
    while (slots_[b] >= 0) b = (b + 1) & mask_;
    slots_[b] = static_cast<int64_t>(i);
  }
  int64_t Find(const Value* row, size_t h) const {
    size_t n = rel_->arity();
    for (size_t b = h & mask_; slots_[b] >= 0; b = (b + 1) & mask_) {
      const Value* r = rel_->Row(static_cast<size_t>(slots_[b]));
      bool eq = true;
      for (size_t k = 0; k < n; ++k) {
        if (!(r[k] == row[k])) {
          eq = false;
          break;
        }
      }
      if (eq) return slots_[b];
    }
    return -1;
  }

  Relation* rel_;
  std::vector<int> all_cols_;
  std::vector<int64_t> slots_;
  size_t mask_ = 0;
};

}  // namespace cairn::datalog
