// Datom: one immutable fact (entity, attribute, value, tx, added).
#pragma once

#include <string>

#include "cairn/ids.h"
#include "cairn/value.h"

namespace cairn {

struct Datom {
  EntityId e;
  Keyword a;
  Value v;
  TxTime tx;
  bool added = true;

  // "[e :a v t true]" in EDN.
  std::string ToString() const;
  friend bool operator==(const Datom& x, const Datom& y) {
    return x.e == y.e && x.a == y.a && x.v == y.v && x.tx == y.tx && x.added == y.added;
  }
};

// The four access paths (ARCHITECTURE §5).
enum class IndexType { kEavt, kAevt, kAvet, kVaet };

}  // namespace cairn
