#include "cairn/datom.h"

namespace cairn {

std::string Datom::ToString() const {
  std::string s = "[";
  s += std::to_string(e.raw);
  s += ' ';
  s += a.ToString();
  s += ' ';
  s += v.ToString();
  s += ' ';
  s += std::to_string(tx.raw);
  s += added ? " true]" : " false]";
  return s;
}

}  // namespace cairn
