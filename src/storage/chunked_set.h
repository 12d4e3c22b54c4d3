// ChunkedSet<T, Less>: a sorted set stored as a vector of immutable, shared
// chunks (a two-level persistent B-tree).
//
// Copying a ChunkedSet copies only the chunk pointers, so a copy is a cheap,
// independent snapshot; Apply() on the copy rewrites only the chunks it
// touches (copy-on-write) and leaves every other snapshot unchanged. This is
// what makes a cairn::Db value an immutable snapshot while commits go on.
//
// Range queries take a "probe": a callable int(const T&) returning < 0 for
// items before the range, 0 inside, > 0 after (items in sorted order must
// give a non-decreasing probe). Rank() counts items before a position in
// O(log n) thanks to per-chunk prefix counts.
//
// Thread-safety: const methods are safe concurrently; Apply() needs exclusive
// access to this object (other snapshots are unaffected).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "core/check.h"

namespace cairn::storage {

// FlatChunkedSet: one run of chunks (the lower level of ChunkedSet below).
template <typename T, typename Less>
class FlatChunkedSet {
 public:
  // Small enough that a scattered insert copies little, large enough that
  // the chunk pointer vector stays short.
  static constexpr size_t kChunkTarget = 64;

  struct Chunk {
    std::vector<T> items;
  };
  // A position: chunk index and index within the chunk.
  struct Pos {
    size_t chunk = 0;
    size_t index = 0;
  };

  FlatChunkedSet() = default;

  size_t size() const { return prefix_.empty() ? 0 : prefix_.back(); }
  bool empty() const { return size() == 0; }
  size_t chunk_count() const { return chunks_.size(); }
  // REQUIRES: !empty().
  const T& front() const { return chunks_.front()->items.front(); }
  const T& back() const { return lasts_.back(); }
  // Chunks [begin, end) as a set of their own (sharing them).
  FlatChunkedSet Slice(size_t begin, size_t end) const {
    FlatChunkedSet out;
    out.chunks_.assign(chunks_.begin() + static_cast<std::ptrdiff_t>(begin),
                       chunks_.begin() + static_cast<std::ptrdiff_t>(end));
    out.RebuildPrefix();
    return out;
  }
  // Bytes held by items of this snapshot (shared chunks counted in full).
  size_t MemoryBytes() const {
    size_t bytes = chunks_.capacity() * sizeof(chunks_[0]) + prefix_.capacity() * sizeof(size_t) +
                   lasts_.capacity() * sizeof(T);
    for (const auto& c : chunks_) bytes += sizeof(Chunk) + c->items.capacity() * sizeof(T);
    return bytes;
  }

  // First position whose item has probe(item) >= 0.
  template <typename Probe>
  Pos LowerBound(const Probe& probe) const {
    return Bound(probe, [](int c) { return c < 0; });
  }
  // First position whose item has probe(item) > 0.
  template <typename Probe>
  Pos UpperBound(const Probe& probe) const {
    return Bound(probe, [](int c) { return c <= 0; });
  }
  size_t Rank(Pos p) const { return (p.chunk == 0 ? 0 : prefix_[p.chunk - 1]) + p.index; }
  // Items with probe(item) == 0.
  template <typename Probe>
  size_t CountRange(const Probe& probe) const {
    return Rank(UpperBound(probe)) - Rank(LowerBound(probe));
  }

  // Calls fn(item) for each item with probe(item) == 0 in order until fn
  // returns false. Returns false if stopped early.
  template <typename Probe, typename Fn>
  bool ForEach(const Probe& probe, const Fn& fn) const {
    Pos p = LowerBound(probe);
    for (size_t c = p.chunk; c < chunks_.size(); ++c) {
      const std::vector<T>& items = chunks_[c]->items;
      for (size_t i = (c == p.chunk ? p.index : 0); i < items.size(); ++i) {
        if (probe(items[i]) > 0) return true;
        if (!fn(items[i])) return false;
      }
    }
    return true;
  }
  template <typename Fn>
  bool ForEachAll(const Fn& fn) const {
    for (const auto& c : chunks_)
      for (const T& item : c->items)
        if (!fn(item)) return false;
    return true;
  }

  // Removes the items equal (under Less) to those in `erase`, then inserts
  // `insert`, replacing items that compare equal. Both inputs need not be
  // sorted. Only the chunks touched are rewritten; chunks shared with other
  // snapshots are copied, others reused in place.
  void Apply(std::vector<T> erase, std::vector<T> insert) {
    Less less;
    SortChanges(&erase, &insert);
    if (erase.empty() && insert.empty()) return;
    if (chunks_.empty()) {
      // Inserts (minus erased ones: erase applies last) become fresh chunks.
      Dedup(&insert);
      if (!erase.empty()) {
        std::vector<T> kept;
        std::set_difference(std::make_move_iterator(insert.begin()), std::make_move_iterator(insert.end()),
                            erase.begin(), erase.end(), std::back_inserter(kept), less);
        insert = std::move(kept);
      }
      AppendChunks(std::move(insert), &chunks_);
      RebuildPrefix();
      return;
    }
    // Group the changes by the chunk they fall in (binary searches, so the
    // cost does not grow with the number of untouched chunks). Items up to
    // and including a chunk's last item belong to it; the last chunk takes
    // everything beyond.
    std::vector<Touch> touches = GroupChanges(erase, insert, lasts_);
    // Rewrite each touched chunk into zero or more chunks.
    // All replacements in one vector (a scattered batch touches thousands of
    // chunks: no allocation per touch); touch k's are [start[k], start[k+1]).
    std::vector<std::shared_ptr<const Chunk>> replaced;
    replaced.reserve(touches.size() + 8);
    std::vector<size_t> start(touches.size() + 1);
    bool same_shape = true;
    for (size_t k = 0; k < touches.size(); ++k) {
      const Touch& t = touches[k];
      start[k] = replaced.size();
      RewriteChunk(t.run, erase, t.e_begin, t.e_end, insert, t.i_begin, t.i_end, &replaced);
      same_shape &= replaced.size() - start[k] == 1;
    }
    // Chunks before the first touched one keep their pointers and prefix
    // counts; later untouched chunks take their size from the old prefix
    // counts, so no untouched chunk is dereferenced (each would be a cache
    // miss, and a growing index has many).
    const size_t first = touches.front().run;
    size_t total = first == 0 ? 0 : prefix_[first - 1];
    bool none_vanished = true;
    start[touches.size()] = replaced.size();
    for (size_t k = 0; k < touches.size(); ++k) none_vanished &= start[k + 1] > start[k];
    if (!same_shape && none_vanished) {
      ShiftInPlace(touches.size(), [&](size_t k) { return touches[k].run; }, replaced, start, first);
    } else if (same_shape) {
      size_t k = 0, prev_old = total;
      for (size_t c = first; c < chunks_.size(); ++c) {
        size_t old_size = prefix_[c] - prev_old;
        prev_old = prefix_[c];
        if (k < touches.size() && touches[k].run == c) {
          chunks_[c] = std::move(replaced[start[k]]);
          total += chunks_[c]->items.size();
          lasts_[c] = chunks_[c]->items.back();
          ++k;
        } else {
          total += old_size;
        }
        prefix_[c] = total;
      }
    } else {
      std::vector<std::shared_ptr<const Chunk>> tail;
      std::vector<size_t> tail_prefix;
      std::vector<T> tail_lasts;
      tail.reserve(chunks_.size() - first + insert.size() / kChunkTarget + 1);
      tail_prefix.reserve(tail.capacity());
      tail_lasts.reserve(tail.capacity());
      size_t k = 0;
      for (size_t c = first; c < chunks_.size(); ++c) {
        if (k < touches.size() && touches[k].run == c) {
          for (size_t j = start[k]; j < start[k + 1]; ++j) {
            auto& r = replaced[j];
            total += r->items.size();
            tail_lasts.push_back(r->items.back());
            tail.push_back(std::move(r));
            tail_prefix.push_back(total);
          }
          ++k;
        } else {
          total += prefix_[c] - (c == 0 ? 0 : prefix_[c - 1]);
          tail.push_back(std::move(chunks_[c]));
          tail_lasts.push_back(std::move(lasts_[c]));
          tail_prefix.push_back(total);
        }
      }
      chunks_.resize(first);
      prefix_.resize(first);
      lasts_.resize(first);
      for (auto& chunk : tail) chunks_.push_back(std::move(chunk));
      for (auto& last : tail_lasts) lasts_.push_back(std::move(last));
      prefix_.insert(prefix_.end(), tail_prefix.begin(), tail_prefix.end());
    }
  }
  // The changes that fall in one run (a chunk, or a segment of chunks):
  // erase[e_begin, e_end) and insert[i_begin, i_end).
  struct Touch {
    size_t run, e_begin, e_end, i_begin, i_end;
  };
  // Groups sorted changes by the run each falls in, given each run's last
  // item (ascending): items up to and including a run's last item belong to
  // it, the last run takes everything beyond. Runs come out ascending.
  // REQUIRES: lasts non-empty.
  static std::vector<Touch> GroupChanges(const std::vector<T>& erase, const std::vector<T>& insert,
                                         const std::vector<T>& lasts) {
    Less less;
    std::vector<Touch> touches;
    size_t ei = 0, ii = 0;
    size_t from = 0;  // changes come in order: search onward from the last run
    while (ei < erase.size() || ii < insert.size()) {
      bool from_erase = ii == insert.size() || (ei < erase.size() && less(erase[ei], insert[ii]));
      const T& x = from_erase ? erase[ei] : insert[ii];
      // Gallop from `from`, then binary search: few reads (each one a likely
      // cache miss) when changes cluster.
      size_t lo = from, step = 1, hi = from;
      while (hi < lasts.size() && less(lasts[hi], x)) {
        lo = hi + 1;
        hi += step;
        step *= 2;
      }
      hi = std::min(hi, lasts.size());
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (less(lasts[mid], x)) lo = mid + 1;
        else hi = mid;
      }
      size_t c = std::min(lo, lasts.size() - 1);
      size_t e_end = erase.size(), i_end = insert.size();
      if (c + 1 < lasts.size()) {
        const T& back = lasts[c];
        e_end = static_cast<size_t>(std::upper_bound(erase.begin() + static_cast<std::ptrdiff_t>(ei), erase.end(),
                                                     back, less) - erase.begin());
        i_end = static_cast<size_t>(std::upper_bound(insert.begin() + static_cast<std::ptrdiff_t>(ii), insert.end(),
                                                     back, less) - insert.begin());
      }
      touches.push_back(Touch{c, ei, e_end, ii, i_end});
      from = c;
      ei = e_end;
      ii = i_end;
    }
    return touches;
  }
  // Sorts both change lists. Callers usually pass sorted input (MemoryIndex
  // sorts once by EAV): a linear check is cheaper than re-sorting.
  static void SortChanges(std::vector<T>* erase, std::vector<T>* insert) {
    Less less;
    for (std::vector<T>* v : {erase, insert}) {
      if (!std::is_sorted(v->begin(), v->end(), less)) std::sort(v->begin(), v->end(), less);
    }
  }
  // Validates the ordering invariant (tests).
  bool CheckInvariants() const {
    Less less;
    const T* prev = nullptr;
    if (prefix_.size() != chunks_.size() || lasts_.size() != chunks_.size()) return false;
    size_t total = 0;
    for (size_t k = 0; k < chunks_.size(); ++k) {
      total += chunks_[k]->items.size();
      if (prefix_[k] != total) return false;
      if (chunks_[k]->items.empty()) return false;
      const T& back = chunks_[k]->items.back();
      if (less(back, lasts_[k]) || less(lasts_[k], back)) return false;
    }
    for (const auto& c : chunks_) {
      if (c->items.empty()) return false;
      for (const T& item : c->items) {
        if (prev != nullptr && !less(*prev, item)) return false;
        prev = &item;
      }
    }
    return true;
  }

 private:
  // Applies erase[e_begin, e_end) and insert[i_begin, i_end) (sorted) to
  // chunk c and appends what replaces it to `out` (nothing if it empties).
  void RewriteChunk(size_t c, std::vector<T>& erase, size_t e_begin, size_t e_end, std::vector<T>& insert,
                    size_t i_begin, size_t i_end, std::vector<std::shared_ptr<const Chunk>>* out) {
    Less less;
    const std::vector<T>& items = chunks_[c]->items;
    bool exclusive = chunks_[c].use_count() == 1;
    if (exclusive) std::atomic_thread_fence(std::memory_order_acquire);  // see database.cc ApplyTo
    size_t ii = i_begin;
    // With few changes, a chunk no other snapshot shares is changed where it
    // is: a handful of element moves (new entities usually land at the end
    // of their partition's run). A shared one is copied first, then changed
    // the same way: binary searches instead of a merge that compares every
    // item (values compare slowly, and under concurrent readers most chunks
    // a commit touches are shared with the snapshot they hold).
    if ((e_end - e_begin) + (i_end - i_begin) <= 16 && items.size() + (i_end - i_begin) <= 2 * kChunkTarget) {
      std::shared_ptr<Chunk> copy;
      if (!exclusive) {
        copy = std::make_shared<Chunk>();
        copy->items.reserve(items.size() + (i_end - i_begin));
        copy->items.assign(items.begin(), items.end());
      }
      std::vector<T>& own = exclusive ? const_cast<Chunk&>(*chunks_[c]).items : copy->items;
      // Equal items are replaced where they are; the new ones are merged in
      // from the back, so each item after them moves once (inserting them
      // one by one moved the tail once per insert, and the datoms of a new
      // entity usually land together).
      size_t fresh[16];  // at most 16 inserts take this path
      size_t fresh_pos[16];
      size_t fresh_count = 0;
      for (; ii < i_end; ++ii) {
        if (ii + 1 < i_end && !less(insert[ii], insert[ii + 1])) continue;  // the last equal insert wins
        auto pos = std::lower_bound(own.begin(), own.end(), insert[ii], less);
        if (pos != own.end() && !less(insert[ii], *pos)) {
          *pos = std::move(insert[ii]);
        } else {
          fresh[fresh_count] = ii;
          fresh_pos[fresh_count++] = static_cast<size_t>(pos - own.begin());
        }
      }
      if (fresh_count > 0) {
        // Positions are in the chunk as it was: ascending, as are the inserts.
        size_t src = own.size();
        own.resize(src + fresh_count);
        size_t dst = own.size();
        for (size_t f = fresh_count; f-- > 0;) {
          const size_t p = fresh_pos[f];
          std::move_backward(own.begin() + static_cast<std::ptrdiff_t>(p), own.begin() + static_cast<std::ptrdiff_t>(src),
                             own.begin() + static_cast<std::ptrdiff_t>(dst));
          dst -= src - p;
          src = p;
          own[--dst] = std::move(insert[fresh[f]]);
        }
      }
      for (size_t e = e_begin; e < e_end; ++e) {
        auto pos = std::lower_bound(own.begin(), own.end(), erase[e], less);
        if (pos != own.end() && !less(erase[e], *pos)) own.erase(pos);
      }
      if (own.empty()) return;
      if (exclusive) {
        out->push_back(std::move(chunks_[c]));
      } else {
        out->push_back(std::move(copy));
      }
      return;
    }
    // Otherwise the chunk is rebuilt: an exclusive one gives up its items
    // (moves, no reference-count traffic), a shared one is copied
    // (copy-on-write).
    std::vector<T>& own = const_cast<Chunk&>(*chunks_[c]).items;
    std::vector<T> merged;
    merged.reserve(items.size() + (i_end - i_begin));
    size_t a = 0;
    while (a < items.size() || ii < i_end) {
      bool take_insert = a == items.size() || (ii < i_end && !less(items[a], insert[ii]));
      if (take_insert) {
        if (a < items.size() && !less(insert[ii], items[a])) ++a;  // replaces the equal item
        if (ii + 1 < i_end && !less(insert[ii], insert[ii + 1])) {   // the last equal insert wins
          ++ii;
          continue;
        }
        merged.push_back(insert[ii++]);
      } else if (exclusive) {
        merged.push_back(std::move(own[a++]));
      } else {
        merged.push_back(items[a++]);
      }
    }
    if (e_begin < e_end) {
      std::vector<T> kept;
      kept.reserve(merged.size());
      size_t e = e_begin;
      for (T& item : merged) {
        while (e < e_end && less(erase[e], item)) ++e;
        if (e < e_end && !less(item, erase[e])) continue;
        kept.push_back(std::move(item));
      }
      merged = std::move(kept);
    }
    if (merged.size() > 2 * kChunkTarget) {
      AppendChunks(std::move(merged), out);
    } else if (!merged.empty()) {
      auto chunk = std::make_shared<Chunk>();
      chunk->items = std::move(merged);
      out->push_back(std::move(chunk));
    }
  }

  // Puts each touched chunk's replacements in place (touch k: chunk
  // touched(k), ascending; its replacements are replaced[start[k],
  // start[k+1]), at least one), moving the chunks after a split towards the
  // end: one backward pass over the arrays, grown in place, instead of
  // rebuilding their tail in temporary vectors (a bulk insert splits some
  // chunk nearly every time, and the tail of a large index is long). `first`
  // is the first touched chunk.
  template <typename TouchedChunk>
  void ShiftInPlace(size_t touches, const TouchedChunk& touched,
                    std::vector<std::shared_ptr<const Chunk>>& replaced, const std::vector<size_t>& start,
                    size_t first) {
    const size_t old_n = chunks_.size();
    size_t grow = 0;
    for (size_t k = 0; k < touches; ++k) grow += start[k + 1] - start[k] - 1;
    chunks_.resize(old_n + grow);
    prefix_.resize(old_n + grow);
    lasts_.resize(old_n + grow);
    // Backwards: every destination is at or after its source, and every
    // slot written was read before (prefix_ holds sizes until the last loop).
    size_t dst = old_n + grow;
    size_t k = touches;
    for (size_t c = old_n; c-- > first;) {
      if (k > 0 && touched(k - 1) == c) {
        --k;
        for (size_t r = start[k + 1]; r-- > start[k];) {
          --dst;
          prefix_[dst] = replaced[r]->items.size();
          lasts_[dst] = replaced[r]->items.back();
          chunks_[dst] = std::move(replaced[r]);
        }
      } else {
        --dst;
        size_t old_size = prefix_[c] - (c == 0 ? 0 : prefix_[c - 1]);
        if (dst != c) {
          chunks_[dst] = std::move(chunks_[c]);
          lasts_[dst] = std::move(lasts_[c]);
        }
        prefix_[dst] = old_size;
      }
    }
    CAIRN_CHECK(dst == first && k == 0);
    size_t total = first == 0 ? 0 : prefix_[first - 1];
    for (size_t c = first; c < chunks_.size(); ++c) {
      total += prefix_[c];
      prefix_[c] = total;
    }
  }

  template <typename Probe, typename Before>
  Pos Bound(const Probe& probe, const Before& before) const {
    // First chunk whose last item is not before the bound.
    size_t lo = 0, hi = chunks_.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (before(probe(chunks_[mid]->items.back()))) lo = mid + 1;
      else hi = mid;
    }
    if (lo == chunks_.size()) return Pos{chunks_.size(), 0};
    const std::vector<T>& items = chunks_[lo]->items;
    size_t a = 0, b = items.size();
    while (a < b) {
      size_t mid = (a + b) / 2;
      if (before(probe(items[mid]))) a = mid + 1;
      else b = mid;
    }
    return Pos{lo, a};
  }

  static void Dedup(std::vector<T>* items) {
    Less less;
    // Keep the last of equal items (sorted input).
    std::vector<T> out;
    out.reserve(items->size());
    for (size_t i = 0; i < items->size(); ++i) {
      if (i + 1 < items->size() && !less((*items)[i], (*items)[i + 1])) continue;
      out.push_back(std::move((*items)[i]));
    }
    *items = std::move(out);
  }

  static void AppendChunks(std::vector<T> items, std::vector<std::shared_ptr<const Chunk>>* out) {
    size_t n = items.size();
    size_t pieces = (n + kChunkTarget - 1) / kChunkTarget;
    for (size_t p = 0; p < pieces; ++p) {
      size_t begin = p * n / pieces, end = (p + 1) * n / pieces;
      auto chunk = std::make_shared<Chunk>();
      chunk->items.assign(std::make_move_iterator(items.begin() + begin), std::make_move_iterator(items.begin() + end));
      out->push_back(std::move(chunk));
    }
  }

  void RebuildPrefix() {
    prefix_.resize(chunks_.size());
    lasts_.clear();
    lasts_.reserve(chunks_.size());
    size_t total = 0;
    for (size_t c = 0; c < chunks_.size(); ++c) {
      total += chunks_[c]->items.size();
      prefix_[c] = total;
      lasts_.push_back(chunks_[c]->items.back());
    }
  }

  std::vector<std::shared_ptr<const Chunk>> chunks_;
  std::vector<size_t> prefix_;  // prefix_[c] = items in chunks 0..c
  // lasts_[c] = a copy of chunk c's last item: the searches that place
  // changes read this contiguous array instead of chasing two pointers per
  // probed chunk (cache misses that dominated bulk commits).
  std::vector<T> lasts_;
};

// ChunkedSet<T, Less>: a sorted set as a sequence of segments, each a
// FlatChunkedSet of up to ~2 x kSegmentChunks chunks (a three-level
// persistent B-tree: segments -> chunks -> items).
//
// A copy shares every segment: copying costs O(segments) (= size / ~4,000)
// where a flat set's copy cost O(chunks) (= size / ~50), and that copy is
// what every commit pays while a reader holds the previous snapshot. Apply()
// copies only the segments it touches when they are shared (their chunks stay
// shared until touched in turn), splits a segment that grew past twice the
// target and drops one that emptied.
//
// Positions, ranges and probes work as in FlatChunkedSet (see there).
//
// Thread-safety: const methods are safe concurrently; Apply() needs
// exclusive access to this object (other snapshots are unaffected).
template <typename T, typename Less>
class ChunkedSet {
 public:
  using Flat = FlatChunkedSet<T, Less>;
  static constexpr size_t kChunkTarget = Flat::kChunkTarget;
  static constexpr size_t kSegmentChunks = 64;

  struct Pos {
    size_t segment = 0;
    typename Flat::Pos inner;
  };

  size_t size() const { return prefix_.empty() ? 0 : prefix_.back(); }
  bool empty() const { return size() == 0; }
  size_t segment_count() const { return segs_.size(); }
  size_t chunk_count() const {
    size_t n = 0;
    for (const auto& seg : segs_) n += seg->chunk_count();
    return n;
  }
  // Bytes held by this snapshot (shared segments and chunks counted in full).
  size_t MemoryBytes() const {
    size_t bytes = segs_.capacity() * sizeof(segs_[0]) + prefix_.capacity() * sizeof(size_t) +
                   lasts_.capacity() * sizeof(T);
    for (const auto& seg : segs_) bytes += sizeof(Flat) + seg->MemoryBytes();
    return bytes;
  }

  template <typename Probe>
  Pos LowerBound(const Probe& probe) const {
    return Bound(probe, [](int c) { return c < 0; }, [&](const Flat& f) { return f.LowerBound(probe); });
  }
  template <typename Probe>
  Pos UpperBound(const Probe& probe) const {
    return Bound(probe, [](int c) { return c <= 0; }, [&](const Flat& f) { return f.UpperBound(probe); });
  }
  size_t Rank(Pos p) const {
    if (p.segment >= segs_.size()) return size();
    return (p.segment == 0 ? 0 : prefix_[p.segment - 1]) + segs_[p.segment]->Rank(p.inner);
  }
  template <typename Probe>
  size_t CountRange(const Probe& probe) const {
    return Rank(UpperBound(probe)) - Rank(LowerBound(probe));
  }

  template <typename Probe, typename Fn>
  bool ForEach(const Probe& probe, const Fn& fn) const {
    for (size_t k = FirstSegment(probe, [](int c) { return c < 0; }); k < segs_.size(); ++k) {
      if (!segs_[k]->ForEach(probe, fn)) return false;
      if (probe(lasts_[k]) > 0) return true;  // the range ended inside this segment
    }
    return true;
  }
  template <typename Fn>
  bool ForEachAll(const Fn& fn) const {
    for (const auto& seg : segs_)
      if (!seg->ForEachAll(fn)) return false;
    return true;
  }

  // As FlatChunkedSet::Apply: removes the items equal (under Less) to those
  // in `erase`, then inserts `insert`, replacing equal items.
  void Apply(std::vector<T> erase, std::vector<T> insert) {
    Flat::SortChanges(&erase, &insert);
    if (erase.empty() && insert.empty()) return;
    if (segs_.empty()) {
      Flat all;
      all.Apply(std::move(erase), std::move(insert));
      if (all.empty()) return;
      std::vector<std::shared_ptr<const Flat>> pieces;
      Split(all, &pieces);
      segs_ = std::move(pieces);
      RebuildIndex();
      return;
    }
    // The changes of each touched segment: items up to and including a
    // segment's last item belong to it; the last segment takes the rest.
    std::vector<typename Flat::Touch> touches = Flat::GroupChanges(erase, insert, lasts_);
    bool reshaped = false;  // a segment split or emptied
    std::vector<std::vector<std::shared_ptr<const Flat>>> replacements(touches.size());
    for (size_t t = 0; t < touches.size(); ++t) {
      const typename Flat::Touch& touch = touches[t];
      std::vector<T> seg_erase, seg_insert;
      if (touches.size() == 1) {  // the usual small commit: no copies of the change lists
        seg_erase = std::move(erase);
        seg_insert = std::move(insert);
      } else {
        seg_erase.assign(std::make_move_iterator(erase.begin() + static_cast<std::ptrdiff_t>(touch.e_begin)),
                         std::make_move_iterator(erase.begin() + static_cast<std::ptrdiff_t>(touch.e_end)));
        seg_insert.assign(std::make_move_iterator(insert.begin() + static_cast<std::ptrdiff_t>(touch.i_begin)),
                          std::make_move_iterator(insert.begin() + static_cast<std::ptrdiff_t>(touch.i_end)));
      }
      std::shared_ptr<const Flat>& slot = segs_[touch.run];
      Flat* own;
      if (slot.use_count() == 1) {
        std::atomic_thread_fence(std::memory_order_acquire);  // pairs with the last other holder's release
        own = const_cast<Flat*>(slot.get());
      } else {
        auto copy = std::make_shared<Flat>(*slot);  // shares its chunks
        own = copy.get();
        slot = std::move(copy);
      }
      own->Apply(std::move(seg_erase), std::move(seg_insert));
      if (own->empty() || own->chunk_count() > 2 * kSegmentChunks) {
        reshaped = true;
        if (!own->empty()) Split(*own, &replacements[t]);
      }
    }
    if (!reshaped) {
      for (const typename Flat::Touch& touch : touches) lasts_[touch.run] = segs_[touch.run]->back();
      RebuildPrefixFrom(touches.front().run);
      return;
    }
    std::vector<std::shared_ptr<const Flat>> next;
    next.reserve(segs_.size() + touches.size());
    size_t t = 0;
    for (size_t k = 0; k < segs_.size(); ++k) {
      if (t < touches.size() && touches[t].run == k) {
        const Flat& seg = *segs_[k];
        if (seg.empty()) {
          // dropped
        } else if (replacements[t].empty()) {
          next.push_back(std::move(segs_[k]));
        } else {
          for (auto& piece : replacements[t]) next.push_back(std::move(piece));
        }
        ++t;
      } else {
        next.push_back(std::move(segs_[k]));
      }
    }
    segs_ = std::move(next);
    RebuildIndex();
  }

  // Validates the ordering invariant (tests).
  bool CheckInvariants() const {
    Less less;
    if (prefix_.size() != segs_.size() || lasts_.size() != segs_.size()) return false;
    size_t total = 0;
    for (size_t k = 0; k < segs_.size(); ++k) {
      const Flat& seg = *segs_[k];
      if (seg.empty() || !seg.CheckInvariants()) return false;
      total += seg.size();
      if (prefix_[k] != total) return false;
      if (less(seg.back(), lasts_[k]) || less(lasts_[k], seg.back())) return false;
      if (k > 0 && !less(lasts_[k - 1], seg.front())) return false;
    }
    return true;
  }

 private:
  // First segment whose last item is not `before` the bound.
  template <typename Probe, typename Before>
  size_t FirstSegment(const Probe& probe, const Before& before) const {
    size_t lo = 0, hi = segs_.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (before(probe(lasts_[mid]))) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  template <typename Probe, typename Before, typename Inner>
  Pos Bound(const Probe& probe, const Before& before, const Inner& inner) const {
    size_t k = FirstSegment(probe, before);
    if (k == segs_.size()) return Pos{segs_.size(), {}};
    return Pos{k, inner(*segs_[k])};
  }
  // `seg` cut into segments of kSegmentChunks chunks (the last takes up to
  // twice that), appended to `out`.
  static void Split(const Flat& seg, std::vector<std::shared_ptr<const Flat>>* out) {
    const size_t n = seg.chunk_count();
    for (size_t begin = 0; begin < n;) {
      size_t end = n - begin <= 2 * kSegmentChunks ? n : begin + kSegmentChunks;
      out->push_back(std::make_shared<Flat>(seg.Slice(begin, end)));
      begin = end;
    }
  }
  void RebuildIndex() {
    prefix_.resize(segs_.size());
    lasts_.clear();
    lasts_.reserve(segs_.size());
    for (const auto& seg : segs_) lasts_.push_back(seg->back());
    RebuildPrefixFrom(0);
  }
  void RebuildPrefixFrom(size_t first) {
    size_t total = first == 0 ? 0 : prefix_[first - 1];
    for (size_t k = first; k < segs_.size(); ++k) {
      total += segs_[k]->size();
      prefix_[k] = total;
    }
  }

  std::vector<std::shared_ptr<const Flat>> segs_;
  std::vector<size_t> prefix_;  // prefix_[k] = items in segments 0..k
  std::vector<T> lasts_;        // lasts_[k] = a copy of segment k's last item
};

}  // namespace cairn::storage
