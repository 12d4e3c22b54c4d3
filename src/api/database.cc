// cairn::Database: the embedded database. Glues the transactor (EDN ->
// datoms), the SQLite DatomStore (durable log) and the memory index
// (snapshots that Db values read).
//
// Concurrency: transactions and every SQLite access are serialized by
// Hub::tx_mu; published state (the current Snapshot and the history index)
// is guarded by Hub::snap_mu and swapped as a whole, so readers only copy
// shared pointers and never wait for a commit's fsync. Lock order: tx_mu,
// then snap_mu.
#include "cairn/database.h"

#include <algorithm>
#include <atomic>
#include <mutex>

#include "api/db_impl.h"
#include "shard/store_source.h"
#include "core/check.h"
#include "core/edn.h"
#include "core/hlc.h"
#include "shard/seq_allocator.h"
#include "shard/transactor.h"
#include "storage/datom_store.h"

namespace cairn {

using shard::HistoryState;
using shard::Snapshot;
using shard::ApplyTo;
using shard::StoreSource;

namespace {

// State shared by the Database and (weakly) by every Db value it hands out.
struct Hub {
  std::mutex tx_mu;
  std::unique_ptr<storage::DatomStore> store;  // guarded by tx_mu; null once closed
  // Transaction times; started past the last t on disk so t keeps growing
  // even if the wall clock went backwards between runs.
  HybridClock clock{SystemClock::Default()};

  // Rows in the store's log, published after each commit (status pages read
  // it without waiting for tx_mu).
  std::atomic<uint64_t> datom_count{0};

  mutable std::mutex snap_mu;
  Snapshot snap;         // guarded by snap_mu
  HistoryState history;  // guarded by snap_mu; built on first use

  Snapshot Current() const {
    std::lock_guard<std::mutex> lock(snap_mu);
    return snap;
  }

  // The history index, built from the log on first use and then kept up to
  // date by every commit. Empty once the database is closed.
  HistoryState History() {
    {
      std::lock_guard<std::mutex> lock(snap_mu);
      if (history.index) return history;
    }
    std::lock_guard<std::mutex> tx_lock(tx_mu);
    {
      std::lock_guard<std::mutex> lock(snap_mu);
      if (history.index) return history;
    }
    if (!store) return {};
    std::vector<storage::IndexEntry> log;
    log.reserve(store->datom_count());
    Status s = store->ReadAll([&](const storage::IndexEntry& x) { log.push_back(x); });
    if (!s.ok()) return {};
    auto index = std::make_shared<storage::HistoryIndex>();
    index->Build(std::move(log));
    std::lock_guard<std::mutex> lock(snap_mu);
    history = HistoryState{std::move(index), store->attrs()};
    return history;
  }

  Result<std::vector<Datom>> Diff(TxTime t1, TxTime t2) {
    std::vector<Datom> out;
    if (!(t1 < t2)) return out;
    std::lock_guard<std::mutex> tx_lock(tx_mu);
    if (!store) return Status::Unavailable("the database was closed");
    std::shared_ptr<const storage::AttrTable> attrs = store->attrs();
    CAIRN_RETURN_IF_ERROR(store->ReadLog(t1, t2, [&](const storage::IndexEntry& x) {
      out.push_back(Datom{x.e, attrs->Name(x.aid), x.v, x.tx, x.added});
    }));
    return out;
  }

  Result<TxReport> Transact(const Edn& tx_data);
};

std::shared_ptr<const internal::DbImpl> MakeDbImpl(const std::shared_ptr<Hub>& hub, const Snapshot& snap,
                                                   int kind, TxTime t);

std::shared_ptr<const datalog::IndexSource> MakeView(const std::shared_ptr<Hub>& hub, const Snapshot& snap,
                                                     int kind, TxTime t) {
  static const StoreSource::Kind kKinds[] = {StoreSource::Kind::kCurrent, StoreSource::Kind::kAsOf,
                                             StoreSource::Kind::kSince, StoreSource::Kind::kHistory};
  CAIRN_CHECK(kind >= 0 && kind <= 3);
  HistoryState history;
  if (kind == 1 || kind == 3) history = hub->History();
  return std::make_shared<StoreSource>(snap, kKinds[kind], t, std::move(history));
}

std::shared_ptr<const internal::DbImpl> MakeDbImpl(const std::shared_ptr<Hub>& hub, const Snapshot& snap,
                                                   int kind, TxTime t) {
  auto impl = std::make_shared<internal::DbImpl>();
  impl->source = MakeView(hub, snap, kind, t);
  std::weak_ptr<Hub> weak = hub;
  impl->make_view = [weak, snap](int k, TxTime at) -> std::shared_ptr<const datalog::IndexSource> {
    std::shared_ptr<Hub> h = weak.lock();
    if (!h) {  // the Database is gone: current-based views still work
      HistoryState none;
      static const StoreSource::Kind kKinds[] = {StoreSource::Kind::kCurrent, StoreSource::Kind::kAsOf,
                                                 StoreSource::Kind::kSince, StoreSource::Kind::kHistory};
      return std::make_shared<StoreSource>(snap, kKinds[k], at, none);
    }
    return MakeView(h, snap, k, at);
  };
  impl->diff = [weak](TxTime t1, TxTime t2) -> Result<std::vector<Datom>> {
    std::shared_ptr<Hub> h = weak.lock();
    if (!h) return Status::Unavailable("the database was closed");
    return h->Diff(t1, t2);
  };
  return impl;
}

}  // namespace

struct Database::Impl {
  std::shared_ptr<Hub> hub;
};

Result<TxReport> Hub::Transact(const Edn& tx_data) {
  std::lock_guard<std::mutex> tx_lock(tx_mu);
  if (!store) return Status::Unavailable("the database was closed");
  Snapshot base = Current();
  TxTime t = clock.Update(base.basis_t);

  shard::SeqAllocator ids(store->next_seqs(), store->partitions());
  shard::TransactorOptions topts;
  topts.partitions = store->partitions();
  topts.tx_instant_ms = 0;  // :db/txInstant = t.physical_ms()
  shard::Transactor transactor(topts);
  Result<shard::TxResult> prepared = [&] {
    StoreSource view(base, StoreSource::Kind::kCurrent, base.basis_t, {});
    return transactor.Prepare(tx_data, view, t, ids);
  }();
  if (!prepared.ok()) return prepared.status();
  shard::TxResult& result = *prepared;

  storage::CommitBatch batch;
  batch.t = t;
  batch.datoms = result.datoms;
  batch.next_seqs = ids.advanced();
  CAIRN_ASSIGN_OR_RETURN(std::vector<storage::IndexEntry> entries, store->Commit(batch));
  datom_count.store(store->datom_count(), std::memory_order_relaxed);

  // Durable: build and publish the new snapshot.
  Snapshot next;
  next.basis_t = t;
  next.attrs = store->attrs();
  next.stats = base.stats->Successor();
  if (result.schema_changes.empty()) {
    next.schema = base.schema;
  } else {
    auto schema = std::make_shared<Schema>(*base.schema);
    for (const Attribute& a : result.schema_changes) schema->Put(a);
    next.schema = std::move(schema);
  }
  base = Snapshot{};  // drop our references so the index may be exclusive
  {
    std::lock_guard<std::mutex> lock(snap_mu);
    // If no Db value holds the current index (only this hub does), nobody
    // can see it change: update it in place instead of copying. Holding
    // snap_mu keeps readers from taking it meanwhile.
    next.current = ApplyTo(std::move(snap.current), entries);
    snap = next;
    if (history.index) history = HistoryState{ApplyTo(std::move(history.index), entries), next.attrs};
  }
  TxReport report;
  report.t = t;
  report.tempids = std::move(result.tempids);
  report.datoms = std::move(result.datoms);
  return report;
}

Database::Database(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Database::~Database() {
  // Db values may outlive the Database; they keep their snapshot but lose
  // access to SQLite (as_of/history views built later report Unavailable).
  std::lock_guard<std::mutex> tx_lock(impl_->hub->tx_mu);
  impl_->hub->store.reset();
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path, const Options& options) {
  storage::StoreOptions so;
  so.create_if_missing = options.create_if_missing;
  so.sync = options.sync;
  so.partitions = options.partitions;
  CAIRN_ASSIGN_OR_RETURN(std::unique_ptr<storage::DatomStore> store, storage::DatomStore::Open(path, so));
  std::vector<storage::IndexEntry> log;
  log.reserve(store->datom_count());
  CAIRN_RETURN_IF_ERROR(store->ReadAll([&](const storage::IndexEntry& x) { log.push_back(x); }));
  auto current = std::make_shared<storage::CurrentIndex>();
  current->Build(std::move(log));

  auto hub = std::make_shared<Hub>();
  hub->snap.basis_t = store->last_t();
  hub->snap.attrs = store->attrs();
  hub->snap.schema = shard::LoadSchemaFromIndex(*current, *hub->snap.attrs);
  hub->snap.current = std::move(current);
  hub->datom_count.store(store->datom_count(), std::memory_order_relaxed);
  hub->store = std::move(store);
  auto impl = std::make_unique<Impl>();
  impl->hub = std::move(hub);
  return std::unique_ptr<Database>(new Database(std::move(impl)));
}

Result<TxReport> Database::transact(std::string_view tx_edn) {
  CAIRN_ASSIGN_OR_RETURN(Edn edn, ReadEdn(tx_edn));
  if (!edn.is(Edn::Kind::kVector))
    return Status::InvalidArgument(edn.Where() + ": transaction data must be a vector of forms");
  return impl_->hub->Transact(edn);
}

Result<TxReport> Database::transact(const TxBuilder& tx) { return transact(tx.ToEdn()); }

TxTime Database::latest_t() const { return impl_->hub->Current().basis_t; }

uint64_t Database::datom_count() const { return impl_->hub->datom_count.load(std::memory_order_relaxed); }

Db Database::db() const {
  const std::shared_ptr<Hub>& hub = impl_->hub;
  Snapshot snap = hub->Current();
  return Db(MakeDbImpl(hub, snap, 0, snap.basis_t));
}

}  // namespace cairn
