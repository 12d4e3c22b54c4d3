#include "datalog/index_source.h"

#include <cmath>

#include "datalog/functions.h"

namespace cairn::datalog {

namespace {

// Entity ids are longs inside the engine.
Value Plain(const Value& v) {
  return v.type() == ValueType::kRef ? Value::Long(static_cast<int64_t>(v.as_ref().raw)) : v;
}

bool IsNumber(const Value& v) { return v.type() == ValueType::kLong || v.type() == ValueType::kDouble; }

bool SameClass(const Value& a, const Value& b) {
  return a.type() == b.type() || (IsNumber(a) && IsNumber(b));
}

}  // namespace

bool ValueRange::Contains(const Value& v) const {
  if (lo) {
    int c = CompareValues(Plain(v), *lo);
    if (c < 0 || (c == 0 && !lo_inclusive)) return false;
  }
  if (hi) {
    int c = CompareValues(Plain(v), *hi);
    if (c > 0 || (c == 0 && !hi_inclusive)) return false;
  }
  return true;
}

bool ValueRange::Tighten(std::string_view op, const Value& bound) {
  Value b = Plain(bound);
  if (b.type() == ValueType::kDouble && std::isnan(b.as_double())) return false;
  bool inclusive = op == "<=" || op == ">=";
  bool upper = op == "<" || op == "<=";
  // Both ends of a range may differ in type (each is checked on its own),
  // but two bounds on one end may only be merged within one class.
  if (upper ? (hi && !SameClass(*hi, b)) : (lo && !SameClass(*lo, b))) return false;
  if (upper) {
    int c = hi ? CompareValues(b, *hi) : -1;
    if (c < 0 || (c == 0 && !inclusive)) {
      hi = b;
      hi_inclusive = inclusive;
    }
  } else {
    int c = lo ? CompareValues(b, *lo) : 1;
    if (c > 0 || (c == 0 && !inclusive)) {
      lo = b;
      lo_inclusive = inclusive;
    }
  }
  return true;
}

}  // namespace cairn::datalog
