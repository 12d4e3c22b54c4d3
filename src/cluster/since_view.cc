#include "cluster/since_view.h"

#include "core/check.h"

namespace cairn::cluster {

SinceView::SinceView(std::shared_ptr<const datalog::IndexSource> current, TxTime t)
    : current_(std::move(current)), t_(t) {
  CAIRN_CHECK(current_ != nullptr && !current_->is_history());
}

Status SinceView::Scan(const datalog::DatomPattern& p, const std::function<bool(const Datom&)>& fn) const {
  if (p.tx && *p.tx <= t_) return Status::OK();
  return current_->Scan(p, [&](const Datom& d) { return d.tx <= t_ || fn(d); });
}

Status SinceView::ScanRange(const datalog::DatomPattern& p, const datalog::ValueRange& r,
                            const std::function<bool(const Datom&)>& fn) const {
  if (p.tx && *p.tx <= t_) return Status::OK();
  return current_->ScanRange(p, r, [&](const Datom& d) { return d.tx <= t_ || fn(d); });
}

}  // namespace cairn::cluster
