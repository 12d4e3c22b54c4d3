#include "datalog/functions.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <unordered_map>

#include "datalog/index_source.h"

namespace cairn::datalog {

struct RegexCache {
  std::unordered_map<std::string, std::regex> map;
};

std::unique_ptr<RegexCache, void (*)(RegexCache*)> MakeRegexCache() {
  return {new RegexCache(), [](RegexCache* c) { delete c; }};
}

namespace {

using VT = ValueType;

bool IsNum(const Value& v) { return v.type() == VT::kLong || v.type() == VT::kDouble || v.type() == VT::kRef; }
bool IsIntLike(const Value& v) { return v.type() == VT::kLong || v.type() == VT::kRef; }
int64_t AsInt(const Value& v) {
  return v.type() == VT::kRef ? static_cast<int64_t>(v.as_ref().raw) : v.as_long();
}
double AsDouble(const Value& v) {
  if (v.type() == VT::kDouble) return v.as_double();
  return static_cast<double>(AsInt(v));
}

Status TypeErr(const char* fn, const Value& v, const char* want) {
  return Status::InvalidArgument(std::string(fn) + ": expected " + want + ", got " + v.ToString());
}

// Cross-type comparison: numbers numerically, everything else by the total order.
int Cmp(const Value& a, const Value& b) {
  if (IsNum(a) && IsNum(b) && a.type() != b.type()) {
    if (IsIntLike(a) && IsIntLike(b)) {
      int64_t x = AsInt(a), y = AsInt(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    double x = AsDouble(a), y = AsDouble(b);
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  return a.Compare(b);
}

// Clojure's =: longs and refs (entity ids) compare as numbers; long vs double are different.
bool Eq(const Value& a, const Value& b) {
  if (a.type() != b.type() && IsIntLike(a) && IsIntLike(b)) return AsInt(a) == AsInt(b);
  return a == b;
}

std::string StrOf(const Value& v) {
  switch (v.type()) {
    case VT::kNil: return "";
    case VT::kString: return v.as_string();
    default: return v.ToString();
  }
}

const std::string* StrArg(const Value& v) {
  return v.type() == VT::kString ? &v.as_string() : nullptr;
}

Status Regex(const FnArgs& a, const Value& pat, const std::regex** out) {
  const std::string* p = StrArg(pat);
  if (p == nullptr) return TypeErr("regex", pat, "a pattern string");
  if (a.regex_cache == nullptr) return Status::Internal("no regex cache");
  auto it = a.regex_cache->map.find(*p);
  if (it == a.regex_cache->map.end()) {
    try {
      it = a.regex_cache->map.emplace(*p, std::regex(*p, std::regex::ECMAScript)).first;
    } catch (const std::regex_error& e) {
      return Status::InvalidArgument("bad regex \"" + *p + "\": " + e.what());
    }
  }
  *out = &it->second;
  return Status::OK();
}

// std::regex recurses per input character for some patterns; bound the input
// so a long string is an error, not a stack overflow.
constexpr size_t kRegexInputMax = 4096;
Status RegexInput(const char* fn, const Value& v, const std::string** out) {
  *out = StrArg(v);
  if (*out == nullptr) return TypeErr(fn, v, "a string");
  if ((*out)->size() > kRegexInputMax)
    return Status::InvalidArgument(std::string(fn) + ": input longer than " + std::to_string(kRegexInputMax) +
                                   " bytes");
  return Status::OK();
}

Value MatchValue(const std::smatch& m) {
  if (m.size() == 1) return Value::String(m.str(0));
  std::vector<Value> groups;
  for (size_t i = 0; i < m.size(); ++i) groups.push_back(m[i].matched ? Value::String(m.str(i)) : Value());
  return Value::Tuple(std::move(groups));
}

enum class Arith { kAdd, kSub, kMul };

Status Arithmetic(const FnArgs& a, Arith op, const char* name, Value* out) {
  bool all_int = true;
  for (size_t i = 0; i < a.n; ++i) {
    if (!IsNum(a.v[i])) return TypeErr(name, a.v[i], "a number");
    if (!IsIntLike(a.v[i])) all_int = false;
  }
  if (a.n == 0) {
    *out = Value::Long(op == Arith::kMul ? 1 : 0);
    return Status::OK();
  }
  if (all_int) {
    int64_t acc = AsInt(a.v[0]);
    if (a.n == 1 && op == Arith::kSub) acc = -acc;
    for (size_t i = 1; i < a.n; ++i) {
      int64_t x = AsInt(a.v[i]);
      bool overflow = op == Arith::kAdd   ? __builtin_add_overflow(acc, x, &acc)
                      : op == Arith::kSub ? __builtin_sub_overflow(acc, x, &acc)
                                          : __builtin_mul_overflow(acc, x, &acc);
      if (overflow) return Status::InvalidArgument(std::string(name) + ": integer overflow");
    }
    *out = Value::Long(acc);
    return Status::OK();
  }
  double acc = AsDouble(a.v[0]);
  if (a.n == 1 && op == Arith::kSub) acc = -acc;
  for (size_t i = 1; i < a.n; ++i) {
    double x = AsDouble(a.v[i]);
    acc = op == Arith::kAdd ? acc + x : op == Arith::kSub ? acc - x : acc * x;
  }
  *out = Value::Double(acc);
  return Status::OK();
}

template <typename Pred>
FunctionDef Compare(Pred pred) {
  return {[pred](const FnArgs& a, Value* out) {
            for (size_t i = 0; i + 1 < a.n; ++i) {
              if (!pred(Cmp(a.v[i], a.v[i + 1]))) {
                *out = Value::Bool(false);
                return Status::OK();
              }
            }
            *out = Value::Bool(true);
            return Status::OK();
          },
          1, -1};
}

template <typename Pred>
FunctionDef NumPred(const char* name, Pred pred) {
  return {[name, pred](const FnArgs& a, Value* out) {
            if (!IsNum(a.v[0])) return TypeErr(name, a.v[0], "a number");
            *out = Value::Bool(pred(a.v[0]));
            return Status::OK();
          },
          1, 1};
}

template <typename Pred>
FunctionDef StrPred(const char* name, Pred pred) {
  return {[name, pred](const FnArgs& a, Value* out) {
            const std::string* s = StrArg(a.v[0]);
            const std::string* t = StrArg(a.v[1]);
            if (s == nullptr) return TypeErr(name, a.v[0], "a string");
            if (t == nullptr) return TypeErr(name, a.v[1], "a string");
            *out = Value::Bool(pred(*s, *t));
            return Status::OK();
          },
          2, 2};
}

FunctionDef IntDiv(const char* name, int kind) {  // 0 quot, 1 rem, 2 mod
  return {[name, kind](const FnArgs& a, Value* out) {
            if (!IsNum(a.v[0])) return TypeErr(name, a.v[0], "a number");
            if (!IsNum(a.v[1])) return TypeErr(name, a.v[1], "a number");
            if (IsIntLike(a.v[0]) && IsIntLike(a.v[1])) {
              int64_t x = AsInt(a.v[0]), y = AsInt(a.v[1]);
              if (y == 0) return Status::InvalidArgument(std::string(name) + ": divide by zero");
              if (y == -1) {
                *out = Value::Long(kind == 0 ? -x : 0);
                return Status::OK();
              }
              int64_t r = x % y;
              if (kind == 0) *out = Value::Long(x / y);
              if (kind == 1) *out = Value::Long(r);
              if (kind == 2) *out = Value::Long((r != 0 && ((r < 0) != (y < 0))) ? r + y : r);
              return Status::OK();
            }
            double x = AsDouble(a.v[0]), y = AsDouble(a.v[1]);
            if (y == 0) return Status::InvalidArgument(std::string(name) + ": divide by zero");
            double q = std::trunc(x / y);
            if (kind == 0) *out = Value::Double(q);
            if (kind == 1) *out = Value::Double(x - q * y);
            if (kind == 2) {
              double r = x - std::floor(x / y) * y;
              *out = Value::Double(r);
            }
            return Status::OK();
          },
          2, 2};
}

// Reads the first value of attribute `attr` on entity `e` from `src`.
Status FirstValue(const IndexSource& src, const Value& e, const Value& attr, const char* name, Value* out,
                  bool* found) {
  *found = false;
  if (attr.type() != VT::kKeyword) return TypeErr(name, attr, "an attribute keyword");
  if (!IsIntLike(e)) return TypeErr(name, e, "an entity id");
  DatomPattern p;
  p.e = EntityId{static_cast<uint64_t>(AsInt(e))};
  p.a = attr.as_keyword();
  return src.Scan(p, [&](const Datom& d) {
    *out = d.v;
    *found = true;
    return false;
  });
}

// Deterministic pseudo-random generator (splitmix64) seeded from the data:
// the query engine has no clock and no global randomness.
uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
uint64_t SeedOf(const std::vector<Value>& values) {
  uint64_t s = values.size();
  for (const Value& v : values) s = s * 31 + v.Hash();
  return s;
}

Status NumericValues(const char* name, const std::vector<Value>& values) {
  for (const Value& v : values)
    if (!IsNum(v)) return TypeErr(name, v, "numbers");
  return Status::OK();
}

void SortByCmp(std::vector<Value>& values) {
  std::sort(values.begin(), values.end(), [](const Value& a, const Value& b) { return Cmp(a, b) < 0; });
}

}  // namespace

int CompareValues(const Value& a, const Value& b) { return Cmp(a, b); }

FunctionRegistry::FunctionRegistry() {
  auto& f = fns_;
  f["="] = {[](const FnArgs& a, Value* out) {
              bool eq = true;
              for (size_t i = 0; i + 1 < a.n && eq; ++i) eq = Eq(a.v[i], a.v[i + 1]);
              *out = Value::Bool(eq);
              return Status::OK();
            },
            1, -1};
  f["=="] = {[](const FnArgs& a, Value* out) {
               for (size_t i = 0; i < a.n; ++i)
                 if (!IsNum(a.v[i])) return TypeErr("==", a.v[i], "a number");
               bool eq = true;
               for (size_t i = 0; i + 1 < a.n && eq; ++i) eq = Cmp(a.v[i], a.v[i + 1]) == 0;
               *out = Value::Bool(eq);
               return Status::OK();
             },
             1, -1};
  f["not="] = {[](const FnArgs& a, Value* out) {
                 bool all_eq = true;
                 for (size_t i = 0; i + 1 < a.n && all_eq; ++i) all_eq = Eq(a.v[i], a.v[i + 1]);
                 *out = Value::Bool(!all_eq);
                 return Status::OK();
               },
               1, -1};
  f["!="] = f["not="];
  f["-differ?"] = f["not="];
  f["<"] = Compare([](int c) { return c < 0; });
  f[">"] = Compare([](int c) { return c > 0; });
  f["<="] = Compare([](int c) { return c <= 0; });
  f[">="] = Compare([](int c) { return c >= 0; });
  f["+"] = {[](const FnArgs& a, Value* out) { return Arithmetic(a, Arith::kAdd, "+", out); }, 0, -1};
  f["-"] = {[](const FnArgs& a, Value* out) { return Arithmetic(a, Arith::kSub, "-", out); }, 1, -1};
  f["*"] = {[](const FnArgs& a, Value* out) { return Arithmetic(a, Arith::kMul, "*", out); }, 0, -1};
  f["/"] = {[](const FnArgs& a, Value* out) {
              for (size_t i = 0; i < a.n; ++i)
                if (!IsNum(a.v[i])) return TypeErr("/", a.v[i], "a number");
              if (a.n == 1) {
                if (AsDouble(a.v[0]) == 0) return Status::InvalidArgument("/: divide by zero");
                *out = Value::Double(1.0 / AsDouble(a.v[0]));
                return Status::OK();
              }
              bool all_int = IsIntLike(a.v[0]);
              int64_t iacc = all_int ? AsInt(a.v[0]) : 0;
              double dacc = AsDouble(a.v[0]);
              for (size_t i = 1; i < a.n; ++i) {
                if (AsDouble(a.v[i]) == 0) return Status::InvalidArgument("/: divide by zero");
                if (all_int && IsIntLike(a.v[i]) && AsInt(a.v[i]) != -1 && iacc % AsInt(a.v[i]) == 0) {
                  iacc /= AsInt(a.v[i]);
                } else {
                  all_int = false;
                }
                dacc /= AsDouble(a.v[i]);
              }
              *out = all_int ? Value::Long(iacc) : Value::Double(dacc);
              return Status::OK();
            },
            1, -1};
  f["quot"] = IntDiv("quot", 0);
  f["rem"] = IntDiv("rem", 1);
  f["mod"] = IntDiv("mod", 2);
  f["inc"] = {[](const FnArgs& a, Value* out) {
                Value args[2] = {a.v[0], Value::Long(1)};
                return Arithmetic(FnArgs{args, 2, nullptr, nullptr}, Arith::kAdd, "inc", out);
              },
              1, 1};
  f["dec"] = {[](const FnArgs& a, Value* out) {
                Value args[2] = {a.v[0], Value::Long(1)};
                return Arithmetic(FnArgs{args, 2, nullptr, nullptr}, Arith::kSub, "dec", out);
              },
              1, 1};
  f["abs"] = {[](const FnArgs& a, Value* out) {
                if (!IsNum(a.v[0])) return TypeErr("abs", a.v[0], "a number");
                *out = IsIntLike(a.v[0]) ? Value::Long(std::llabs(AsInt(a.v[0])))
                                         : Value::Double(std::fabs(a.v[0].as_double()));
                return Status::OK();
              },
              1, 1};
  f["max"] = {[](const FnArgs& a, Value* out) {
                const Value* best = &a.v[0];
                for (size_t i = 1; i < a.n; ++i)
                  if (Cmp(a.v[i], *best) > 0) best = &a.v[i];
                *out = *best;
                return Status::OK();
              },
              1, -1};
  f["min"] = {[](const FnArgs& a, Value* out) {
                const Value* best = &a.v[0];
                for (size_t i = 1; i < a.n; ++i)
                  if (Cmp(a.v[i], *best) < 0) best = &a.v[i];
                *out = *best;
                return Status::OK();
              },
              1, -1};
  f["compare"] = {[](const FnArgs& a, Value* out) {
                    *out = Value::Long(Cmp(a.v[0], a.v[1]));
                    return Status::OK();
                  },
                  2, 2};
  f["zero?"] = NumPred("zero?", [](const Value& v) { return AsDouble(v) == 0; });
  f["pos?"] = NumPred("pos?", [](const Value& v) { return AsDouble(v) > 0; });
  f["neg?"] = NumPred("neg?", [](const Value& v) { return AsDouble(v) < 0; });
  f["even?"] = {[](const FnArgs& a, Value* out) {
                  if (!IsIntLike(a.v[0])) return TypeErr("even?", a.v[0], "an integer");
                  *out = Value::Bool(AsInt(a.v[0]) % 2 == 0);
                  return Status::OK();
                },
                1, 1};
  f["odd?"] = {[](const FnArgs& a, Value* out) {
                 if (!IsIntLike(a.v[0])) return TypeErr("odd?", a.v[0], "an integer");
                 *out = Value::Bool(AsInt(a.v[0]) % 2 != 0);
                 return Status::OK();
               },
               1, 1};
  f["nil?"] = {[](const FnArgs& a, Value* out) {
                 *out = Value::Bool(a.v[0].is_nil());
                 return Status::OK();
               },
               1, 1};
  f["some?"] = {[](const FnArgs& a, Value* out) {
                  *out = Value::Bool(!a.v[0].is_nil());
                  return Status::OK();
                },
                1, 1};
  f["true?"] = {[](const FnArgs& a, Value* out) {
                  *out = Value::Bool(a.v[0].type() == VT::kBool && a.v[0].as_bool());
                  return Status::OK();
                },
                1, 1};
  f["false?"] = {[](const FnArgs& a, Value* out) {
                   *out = Value::Bool(a.v[0].type() == VT::kBool && !a.v[0].as_bool());
                   return Status::OK();
                 },
                 1, 1};
  f["not"] = {[](const FnArgs& a, Value* out) {
                *out = Value::Bool(!Truthy(a.v[0]));
                return Status::OK();
              },
              1, 1};
  f["and"] = {[](const FnArgs& a, Value* out) {
                *out = Value::Bool(true);
                for (size_t i = 0; i < a.n; ++i) {
                  *out = a.v[i];
                  if (!Truthy(a.v[i])) break;
                }
                return Status::OK();
              },
              0, -1};
  f["or"] = {[](const FnArgs& a, Value* out) {
               *out = Value();
               for (size_t i = 0; i < a.n; ++i) {
                 *out = a.v[i];
                 if (Truthy(a.v[i])) break;
               }
               return Status::OK();
             },
             0, -1};
  auto type_pred = [](VT t) {
    return FunctionDef{[t](const FnArgs& a, Value* out) {
                         *out = Value::Bool(a.v[0].type() == t);
                         return Status::OK();
                       },
                       1, 1};
  };
  f["string?"] = type_pred(VT::kString);
  f["keyword?"] = type_pred(VT::kKeyword);
  f["boolean?"] = type_pred(VT::kBool);
  f["int?"] = type_pred(VT::kLong);
  f["integer?"] = type_pred(VT::kLong);
  f["double?"] = type_pred(VT::kDouble);
  f["inst?"] = type_pred(VT::kInstant);
  f["uuid?"] = type_pred(VT::kUuid);
  f["vector?"] = type_pred(VT::kTuple);
  f["number?"] = {[](const FnArgs& a, Value* out) {
                    *out = Value::Bool(a.v[0].type() == VT::kLong || a.v[0].type() == VT::kDouble);
                    return Status::OK();
                  },
                  1, 1};
  f["type"] = {[](const FnArgs& a, Value* out) {
                 *out = Value::Kw(std::string(ValueTypeName(a.v[0].type())));
                 return Status::OK();
               },
               1, 1};
  f["str"] = {[](const FnArgs& a, Value* out) {
                std::string s;
                for (size_t i = 0; i < a.n; ++i) s += StrOf(a.v[i]);
                *out = Value::String(std::move(s));
                return Status::OK();
              },
              0, -1};
  f["subs"] = {[](const FnArgs& a, Value* out) {
                 const std::string* s = StrArg(a.v[0]);
                 if (s == nullptr) return TypeErr("subs", a.v[0], "a string");
                 if (!IsIntLike(a.v[1])) return TypeErr("subs", a.v[1], "an index");
                 int64_t start = AsInt(a.v[1]);
                 int64_t end = static_cast<int64_t>(s->size());
                 if (a.n == 3) {
                   if (!IsIntLike(a.v[2])) return TypeErr("subs", a.v[2], "an index");
                   end = AsInt(a.v[2]);
                 }
                 if (start < 0 || end > static_cast<int64_t>(s->size()) || start > end)
                   return Status::InvalidArgument("subs: index out of range");
                 *out = Value::String(s->substr(static_cast<size_t>(start), static_cast<size_t>(end - start)));
                 return Status::OK();
               },
               2, 3};
  f["count"] = {[](const FnArgs& a, Value* out) {
                  const Value& v = a.v[0];
                  if (v.type() == VT::kString) {
                    int64_t n = 0;  // code points
                    for (unsigned char c : v.as_string()) n += (c & 0xC0) != 0x80;
                    *out = Value::Long(n);
                  } else if (v.type() == VT::kTuple) {
                    *out = Value::Long(static_cast<int64_t>(v.as_tuple().size()));
                  } else if (v.type() == VT::kMap) {
                    *out = Value::Long(static_cast<int64_t>(v.as_map().size()));
                  } else if (v.is_nil()) {
                    *out = Value::Long(0);
                  } else {
                    return TypeErr("count", v, "a string or collection");
                  }
                  return Status::OK();
                },
                1, 1};
  f["empty?"] = {[](const FnArgs& a, Value* out) {
                   const Value& v = a.v[0];
                   bool e = v.is_nil() || (v.type() == VT::kString && v.as_string().empty()) ||
                            (v.type() == VT::kTuple && v.as_tuple().empty()) ||
                            (v.type() == VT::kMap && v.as_map().empty());
                   *out = Value::Bool(e);
                   return Status::OK();
                 },
                 1, 1};
  f["re-pattern"] = {[](const FnArgs& a, Value* out) {
                       const std::regex* re;
                       CAIRN_RETURN_IF_ERROR(Regex(a, a.v[0], &re));
                       *out = a.v[0];
                       return Status::OK();
                     },
                     1, 1};
  f["re-find"] = {[](const FnArgs& a, Value* out) {
                    const std::regex* re;
                    CAIRN_RETURN_IF_ERROR(Regex(a, a.v[0], &re));
                    const std::string* s;
                    CAIRN_RETURN_IF_ERROR(RegexInput("re-find", a.v[1], &s));
                    std::smatch m;
                    *out = std::regex_search(*s, m, *re) ? MatchValue(m) : Value();
                    return Status::OK();
                  },
                  2, 2};
  f["re-matches"] = {[](const FnArgs& a, Value* out) {
                       const std::regex* re;
                       CAIRN_RETURN_IF_ERROR(Regex(a, a.v[0], &re));
                       const std::string* s;
                       CAIRN_RETURN_IF_ERROR(RegexInput("re-matches", a.v[1], &s));
                       std::smatch m;
                       *out = std::regex_match(*s, m, *re) ? MatchValue(m) : Value();
                       return Status::OK();
                     },
                     2, 2};
  f["re-seq"] = {[](const FnArgs& a, Value* out) {
                   const std::regex* re;
                   CAIRN_RETURN_IF_ERROR(Regex(a, a.v[0], &re));
                   const std::string* s;
                   CAIRN_RETURN_IF_ERROR(RegexInput("re-seq", a.v[1], &s));
                   std::vector<Value> all;
                   for (auto it = std::sregex_iterator(s->begin(), s->end(), *re); it != std::sregex_iterator(); ++it)
                     all.push_back(MatchValue(*it));
                   *out = all.empty() ? Value() : Value::Tuple(std::move(all));
                   return Status::OK();
                 },
                 2, 2};
  f["starts-with?"] = StrPred("starts-with?", [](const std::string& s, const std::string& t) {
    return s.compare(0, t.size(), t) == 0 && s.size() >= t.size();
  });
  f["ends-with?"] = StrPred("ends-with?", [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  });
  f["includes?"] = StrPred("includes?", [](const std::string& s, const std::string& t) {
    return s.find(t) != std::string::npos;
  });
  f["clojure.string/starts-with?"] = f["starts-with?"];
  f["clojure.string/ends-with?"] = f["ends-with?"];
  f["clojure.string/includes?"] = f["includes?"];
  f["blank?"] = {[](const FnArgs& a, Value* out) {
                   if (a.v[0].is_nil()) {
                     *out = Value::Bool(true);
                     return Status::OK();
                   }
                   const std::string* s = StrArg(a.v[0]);
                   if (s == nullptr) return TypeErr("blank?", a.v[0], "a string");
                   *out = Value::Bool(std::all_of(s->begin(), s->end(), [](unsigned char c) { return std::isspace(c); }));
                   return Status::OK();
                 },
                 1, 1};
  f["clojure.string/blank?"] = f["blank?"];
  auto str_map = [](const char* name, int kind) {
    return FunctionDef{[name, kind](const FnArgs& a, Value* out) {
                         const std::string* s = StrArg(a.v[0]);
                         if (s == nullptr) return TypeErr(name, a.v[0], "a string");
                         std::string r = *s;
                         if (kind == 0) for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                         if (kind == 1) for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                         if (kind == 2) {
                           size_t b = r.find_first_not_of(" \t\r\n");
                           size_t e = r.find_last_not_of(" \t\r\n");
                           r = b == std::string::npos ? "" : r.substr(b, e - b + 1);
                         }
                         *out = Value::String(std::move(r));
                         return Status::OK();
                       },
                       1, 1};
  };
  f["lower-case"] = f["clojure.string/lower-case"] = str_map("lower-case", 0);
  f["upper-case"] = f["clojure.string/upper-case"] = str_map("upper-case", 1);
  f["trim"] = f["clojure.string/trim"] = str_map("trim", 2);
  f["identity"] = {[](const FnArgs& a, Value* out) {
                     *out = a.v[0];
                     return Status::OK();
                   },
                   1, 1};
  f["ground"] = f["identity"];
  auto make_tuple = FunctionDef{[](const FnArgs& a, Value* out) {
                                  *out = Value::Tuple(std::vector<Value>(a.v, a.v + a.n));
                                  return Status::OK();
                                },
                                0, -1};
  f["vector"] = f["list"] = f["tuple"] = make_tuple;
  f["untuple"] = {[](const FnArgs& a, Value* out) {
                    if (a.v[0].type() != VT::kTuple) return TypeErr("untuple", a.v[0], "a tuple");
                    *out = a.v[0];
                    return Status::OK();
                  },
                  1, 1};
  f["keyword"] = {[](const FnArgs& a, Value* out) {
                    if (a.n == 1) {
                      if (a.v[0].type() == VT::kKeyword) {
                        *out = a.v[0];
                        return Status::OK();
                      }
                      const std::string* s = StrArg(a.v[0]);
                      if (s == nullptr) return TypeErr("keyword", a.v[0], "a string");
                      *out = Value::Kw(*s);
                      return Status::OK();
                    }
                    const std::string* ns = StrArg(a.v[0]);
                    const std::string* nm = StrArg(a.v[1]);
                    if (nm == nullptr) return TypeErr("keyword", a.v[1], "a string");
                    *out = Value::Kw(ns == nullptr || ns->empty() ? *nm : *ns + "/" + *nm);
                    return Status::OK();
                  },
                  1, 2};
  f["name"] = {[](const FnArgs& a, Value* out) {
                 if (a.v[0].type() == VT::kKeyword) {
                   *out = Value::String(std::string(a.v[0].as_keyword().name()));
                 } else if (a.v[0].type() == VT::kString) {
                   *out = a.v[0];
                 } else {
                   return TypeErr("name", a.v[0], "a keyword or string");
                 }
                 return Status::OK();
               },
               1, 1};
  f["namespace"] = {[](const FnArgs& a, Value* out) {
                      if (a.v[0].type() != VT::kKeyword) return TypeErr("namespace", a.v[0], "a keyword");
                      std::string_view ns = a.v[0].as_keyword().ns();
                      *out = ns.empty() ? Value() : Value::String(std::string(ns));
                      return Status::OK();
                    },
                    1, 1};
  f["get"] = {[](const FnArgs& a, Value* out) {
                *out = a.n == 3 ? a.v[2] : Value();
                if (a.v[0].type() == VT::kMap) {
                  for (const auto& [k, v] : a.v[0].as_map())
                    if (k == a.v[1]) *out = v;
                } else if (a.v[0].type() == VT::kTuple && IsIntLike(a.v[1])) {
                  int64_t i = AsInt(a.v[1]);
                  const auto& t = a.v[0].as_tuple();
                  if (i >= 0 && i < static_cast<int64_t>(t.size())) *out = t[static_cast<size_t>(i)];
                }
                return Status::OK();
              },
              2, 3};
  f["contains?"] = {[](const FnArgs& a, Value* out) {
                      bool found = false;
                      if (a.v[0].type() == VT::kMap) {
                        for (const auto& kv : a.v[0].as_map()) found = found || kv.first == a.v[1];
                      } else if (a.v[0].type() == VT::kTuple) {
                        for (const Value& x : a.v[0].as_tuple()) found = found || Eq(x, a.v[1]);
                      }
                      *out = Value::Bool(found);
                      return Status::OK();
                    },
                    2, 2};
  f["get-else"] = {[](const FnArgs& a, Value* out) {
                     if (a.v[2].is_nil()) return Status::InvalidArgument("get-else: nil default value is not supported");
                     bool found;
                     CAIRN_RETURN_IF_ERROR(FirstValue(*a.source, a.v[0], a.v[1], "get-else", out, &found));
                     if (!found) *out = a.v[2];
                     return Status::OK();
                   },
                   3, 3, true};
  f["get-some"] = {[](const FnArgs& a, Value* out) {
                     *out = Value();
                     for (size_t i = 1; i < a.n; ++i) {
                       bool found;
                       Value v;
                       CAIRN_RETURN_IF_ERROR(FirstValue(*a.source, a.v[0], a.v[i], "get-some", &v, &found));
                       if (found) {
                         *out = Value::Tuple({a.v[i], v});
                         break;
                       }
                     }
                     return Status::OK();
                   },
                   2, -1, true};
  f["missing?"] = {[](const FnArgs& a, Value* out) {
                     bool found;
                     Value v;
                     CAIRN_RETURN_IF_ERROR(FirstValue(*a.source, a.v[0], a.v[1], "missing?", &v, &found));
                     *out = Value::Bool(!found);
                     return Status::OK();
                   },
                   2, 2, true};

  f["identical?"] = f["="];
  f["set"] = {[](const FnArgs& a, Value* out) {
                if (a.v[0].type() != VT::kTuple) return TypeErr("set", a.v[0], "a collection");
                std::vector<Value> items = a.v[0].as_tuple();
                std::sort(items.begin(), items.end());
                items.erase(std::unique(items.begin(), items.end()), items.end());
                *out = Value::Tuple(std::move(items));
                return Status::OK();
              },
              1, 1};
  f["hash-map"] = {[](const FnArgs& a, Value* out) {
                     if (a.n % 2 != 0) return Status::InvalidArgument("hash-map: needs key/value pairs");
                     std::vector<std::pair<Value, Value>> entries;
                     for (size_t i = 0; i + 1 < a.n; i += 2) entries.emplace_back(a.v[i], a.v[i + 1]);
                     *out = Value::Map(std::move(entries));
                     return Status::OK();
                   },
                   0, -1};
  f["array-map"] = f["hash-map"];
  f["range"] = {[](const FnArgs& a, Value* out) {
                  for (size_t i = 0; i < a.n; ++i)
                    if (!IsIntLike(a.v[i])) return TypeErr("range", a.v[i], "an integer");
                  int64_t start = a.n >= 2 ? AsInt(a.v[0]) : 0;
                  int64_t end = a.n >= 2 ? AsInt(a.v[1]) : AsInt(a.v[0]);
                  int64_t step = a.n == 3 ? AsInt(a.v[2]) : 1;
                  if (step == 0) return Status::InvalidArgument("range: step must not be 0");
                  std::vector<Value> items;
                  for (int64_t x = start; step > 0 ? x < end : x > end; x += step) {
                    if (items.size() >= 10'000'000) return Status::InvalidArgument("range: more than 10,000,000 values");
                    items.push_back(Value::Long(x));
                  }
                  *out = Value::Tuple(std::move(items));
                  return Status::OK();
                },
                1, 3};
  f["not-empty"] = {[](const FnArgs& a, Value* out) {
                      const Value& v = a.v[0];
                      bool empty = v.is_nil() || (v.type() == VT::kString && v.as_string().empty()) ||
                                   (v.type() == VT::kTuple && v.as_tuple().empty()) ||
                                   (v.type() == VT::kMap && v.as_map().empty());
                      *out = empty ? Value() : v;
                      return Status::OK();
                    },
                    1, 1};
  auto printer = [](bool readable) {
    return FunctionDef{[readable](const FnArgs& a, Value* out) {
                         std::string s;
                         for (size_t i = 0; i < a.n; ++i) {
                           if (i > 0) s += " ";
                           s += readable || a.v[i].type() != VT::kString ? a.v[i].ToString() : a.v[i].as_string();
                         }
                         *out = Value::String(std::move(s));
                         return Status::OK();
                       },
                       0, -1};
  };
  f["pr-str"] = f["prn-str"] = printer(true);
  f["print-str"] = f["println-str"] = printer(false);
  f["rand-int"] = {[](const FnArgs& a, Value* out) {
                     // Deterministic: the engine has no randomness source.
                     if (!IsIntLike(a.v[0]) || AsInt(a.v[0]) <= 0) return TypeErr("rand-int", a.v[0], "a positive integer");
                     uint64_t seed = a.v[0].Hash();
                     *out = Value::Long(static_cast<int64_t>(SplitMix(seed) % static_cast<uint64_t>(AsInt(a.v[0]))));
                     return Status::OK();
                   },
                   1, 1};

  // Aggregates.
  auto& g = aggs_;
  g["count"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                  *out = Value::Long(static_cast<int64_t>(v.size()));
                  return Status::OK();
                }};
  g["count-distinct"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                           std::sort(v.begin(), v.end());
                           *out = Value::Long(std::unique(v.begin(), v.end()) - v.begin());
                           return Status::OK();
                         }};
  g["distinct"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                     std::sort(v.begin(), v.end());
                     v.erase(std::unique(v.begin(), v.end()), v.end());
                     *out = Value::Tuple(v);
                     return Status::OK();
                   }};
  g["sum"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                CAIRN_RETURN_IF_ERROR(NumericValues("sum", v));
                return Arithmetic(FnArgs{v.data(), v.size(), nullptr, nullptr}, Arith::kAdd, "sum", out);
              }};
  g["avg"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                CAIRN_RETURN_IF_ERROR(NumericValues("avg", v));
                double s = 0;
                for (const Value& x : v) s += AsDouble(x);
                *out = v.empty() ? Value() : Value::Double(s / static_cast<double>(v.size()));
                return Status::OK();
              }};
  auto moments = [](int kind) {  // 0 variance, 1 stddev
    return AggregateDef{[kind](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
      CAIRN_RETURN_IF_ERROR(NumericValues(kind == 0 ? "variance" : "stddev", v));
      if (v.empty()) {
        *out = Value();
        return Status::OK();
      }
      double mean = 0;
      for (const Value& x : v) mean += AsDouble(x);
      mean /= static_cast<double>(v.size());
      double var = 0;
      for (const Value& x : v) var += (AsDouble(x) - mean) * (AsDouble(x) - mean);
      var /= static_cast<double>(v.size());
      *out = Value::Double(kind == 0 ? var : std::sqrt(var));
      return Status::OK();
    }};
  };
  g["variance"] = moments(0);
  g["stddev"] = moments(1);
  g["median"] = {[](const std::vector<Value>&, std::vector<Value>& v, Value* out) {
                   CAIRN_RETURN_IF_ERROR(NumericValues("median", v));
                   if (v.empty()) {
                     *out = Value();
                     return Status::OK();
                   }
                   SortByCmp(v);
                   size_t n = v.size();
                   if (n % 2 == 1) {
                     *out = v[n / 2];
                   } else {
                     *out = Value::Double((AsDouble(v[n / 2 - 1]) + AsDouble(v[n / 2])) / 2);
                   }
                   return Status::OK();
                 }};
  auto extreme = [](bool is_max) {
    return [is_max](const std::vector<Value>& params, std::vector<Value>& v, Value* out) {
      if (params.empty()) {
        if (v.empty()) {
          *out = Value();
          return Status::OK();
        }
        const Value* best = &v[0];
        for (const Value& x : v) {
          int c = Cmp(x, *best);
          if (is_max ? c > 0 : c < 0) best = &x;
        }
        *out = *best;
        return Status::OK();
      }
      if (!IsIntLike(params[0]) || AsInt(params[0]) < 0)
        return Status::InvalidArgument(std::string(is_max ? "max" : "min") + ": n must be a non-negative integer");
      SortByCmp(v);
      v.erase(std::unique(v.begin(), v.end()), v.end());
      if (is_max) std::reverse(v.begin(), v.end());
      if (v.size() > static_cast<size_t>(AsInt(params[0]))) v.resize(static_cast<size_t>(AsInt(params[0])));
      *out = Value::Tuple(v);
      return Status::OK();
    };
  };
  g["max"] = {extreme(true)};
  g["min"] = {extreme(false)};
  g["rand"] = {[](const std::vector<Value>& params, std::vector<Value>& v, Value* out) {
    uint64_t s = SeedOf(v);
    if (params.empty()) {
      *out = v.empty() ? Value() : v[SplitMix(s) % v.size()];
      return Status::OK();
    }
    if (!IsIntLike(params[0]) || AsInt(params[0]) < 0) return Status::InvalidArgument("rand: n must be >= 0");
    std::vector<Value> r;
    for (int64_t i = 0; i < AsInt(params[0]) && !v.empty(); ++i) r.push_back(v[SplitMix(s) % v.size()]);
    *out = Value::Tuple(std::move(r));
    return Status::OK();
  }};
  g["sample"] = {[](const std::vector<Value>& params, std::vector<Value>& v, Value* out) {
                   if (!IsIntLike(params[0]) || AsInt(params[0]) < 0)
                     return Status::InvalidArgument("sample: n must be >= 0");
                   std::sort(v.begin(), v.end());
                   v.erase(std::unique(v.begin(), v.end()), v.end());
                   uint64_t s = SeedOf(v);
                   for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[SplitMix(s) % i]);
                   if (v.size() > static_cast<size_t>(AsInt(params[0]))) v.resize(static_cast<size_t>(AsInt(params[0])));
                   *out = Value::Tuple(v);
                   return Status::OK();
                 },
                 1};
}

const FunctionRegistry& FunctionRegistry::Default() {
  static const FunctionRegistry* reg = new FunctionRegistry();
  return *reg;
}

const FunctionDef* FunctionRegistry::FindFunction(const std::string& name) const {
  auto it = fns_.find(name);
  return it == fns_.end() ? nullptr : &it->second;
}

const AggregateDef* FunctionRegistry::FindAggregate(const std::string& name) const {
  auto it = aggs_.find(name);
  return it == aggs_.end() ? nullptr : &it->second;
}

}  // namespace cairn::datalog
