// Property tests: random EDN trees and Values survive write -> read, and
// mutated text never crashes the reader. Seeded: a failure prints the seed
// and the case; rerun with CAIRN_EDN_SEED=<seed> to replay.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

#include "core/edn.h"

namespace cairn {
namespace {

uint64_t BaseSeed() {
  const char* s = std::getenv("CAIRN_EDN_SEED");
  return s ? std::strtoull(s, nullptr, 10) : 20261122;
}

// splitmix64: fully specified, so a seed means the same case everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return Next() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

 private:
  uint64_t s_;
};

char32_t RandomCodePoint(Rng& r) {
  switch (r.Below(4)) {
    case 0:
      return static_cast<char32_t>(r.Below(0x80));
    case 1:
      return static_cast<char32_t>(0x20 + r.Below(0x5F));
    case 2:
      return static_cast<char32_t>(0x80 + r.Below(0xD800 - 0x80));
    default:
      return static_cast<char32_t>(0xE000 + r.Below(0x110000 - 0xE000));
  }
}

std::string RandomString(Rng& r) {
  std::string s;
  size_t n = r.Below(12);
  for (size_t i = 0; i < n; ++i) {
    if (r.OneIn(6)) {
      s.push_back("\"\\\n\t\r\b\f"[r.Below(7)]);
    } else {
      AppendUtf8(&s, RandomCodePoint(r));
    }
  }
  return s;
}

std::string RandomName(Rng& r) {
  static const char kStart[] = "abcdefghijklmnopqrstuvwxyzABCXYZ*!_?$%&=<>";
  static const char kRest[] = "abcdefghijklmnopqrstuvwxyz0123456789*!_?$%&=<>.-+:#'";
  std::string s(1, kStart[r.Below(sizeof kStart - 1)]);
  size_t n = r.Below(8);
  for (size_t i = 0; i < n; ++i) s.push_back(kRest[r.Below(sizeof kRest - 1)]);
  if (s == "nil" || s == "true" || s == "false") s += "x";
  return s;
}

std::string RandomSymbolText(Rng& r) {
  switch (r.Below(6)) {
    case 0:
      return RandomName(r) + "/" + RandomName(r);
    case 1: {
      static const char* kSpecial[] = {"...", ".", "_", "?x", "$", "%", "+", "-", "->", "<=", "/", "re-find"};
      return kSpecial[r.Below(12)];
    }
    default:
      return RandomName(r);
  }
}

double RandomDouble(Rng& r) {
  switch (r.Below(8)) {
    case 0:
      return std::nan("");
    case 1:
      return r.OneIn(2) ? INFINITY : -INFINITY;
    case 2:
      return r.OneIn(2) ? 0.0 : -0.0;
    case 3:
      return static_cast<double>(static_cast<int64_t>(r.Next() >> 20)) / 1024.0;
    case 4:
      return std::numeric_limits<double>::denorm_min() * static_cast<double>(r.Below(1000) + 1);
    default: {
      uint64_t bits = r.Next();
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return std::isfinite(d) ? d : 1.25;
    }
  }
}

int64_t RandomInt(Rng& r) {
  switch (r.Below(4)) {
    case 0:
      return static_cast<int64_t>(r.Below(100)) - 50;
    case 1:
      return r.OneIn(2) ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
    default:
      return static_cast<int64_t>(r.Next());
  }
}

Edn RandomEdn(Rng& r, int depth);

// Adds `item` unless an equal one is already present (keys for maps).
void AddDistinct(Edn* coll, Edn item, Edn value, bool is_map) {
  size_t stride = is_map ? 2 : 1;
  for (size_t i = 0; i < coll->items.size(); i += stride) {
    if (EdnEquals(coll->items[i], item)) return;
  }
  coll->items.push_back(std::move(item));
  if (is_map) coll->items.push_back(std::move(value));
}

Edn RandomEdn(Rng& r, int depth) {
  Edn e;
  int kinds = depth > 4 ? 10 : 15;
  switch (r.Below(kinds)) {
    case 0:
      e.kind = Edn::Kind::kNil;
      break;
    case 1:
      e.kind = Edn::Kind::kBool;
      e.b = r.OneIn(2);
      break;
    case 2:
      e = Edn::Int(RandomInt(r));
      break;
    case 3:
      e.kind = Edn::Kind::kFloat;
      e.d = RandomDouble(r);
      break;
    case 4:
      e = Edn::String(RandomString(r));
      break;
    case 5:
      e.kind = Edn::Kind::kChar;
      e.ch = RandomCodePoint(r);
      break;
    case 6:
      e = Edn::KeywordNode(RandomSymbolText(r) == "/" ? "slash" : RandomSymbolText(r));
      break;
    case 7:
      e = Edn::Symbol(RandomSymbolText(r));
      break;
    case 8:
      e.kind = Edn::Kind::kInst;
      e.i = RandomInt(r);
      break;
    case 9:
      e.kind = Edn::Kind::kUuid;
      e.uuid = Uuid{r.Next(), r.Next()};
      break;
    case 10:
    case 11: {
      e.kind = r.OneIn(2) ? Edn::Kind::kList : Edn::Kind::kVector;
      size_t n = r.Below(6);
      for (size_t i = 0; i < n; ++i) e.items.push_back(RandomEdn(r, depth + 1));
      break;
    }
    case 12: {
      e.kind = Edn::Kind::kMap;
      size_t n = r.Below(5);
      for (size_t i = 0; i < n; ++i) AddDistinct(&e, RandomEdn(r, depth + 1), RandomEdn(r, depth + 1), true);
      break;
    }
    case 13: {
      e.kind = Edn::Kind::kSet;
      size_t n = r.Below(5);
      for (size_t i = 0; i < n; ++i) AddDistinct(&e, RandomEdn(r, depth + 1), Edn(), false);
      break;
    }
    default: {
      e.kind = Edn::Kind::kTagged;
      // A tag starts with a letter.
      e.text = "t" + (r.OneIn(2) ? RandomName(r) : RandomName(r) + "/" + RandomName(r));
      e.items.push_back(RandomEdn(r, depth + 1));
      break;
    }
  }
  // Keywords built from RandomSymbolText may be "/" (not a keyword): fix up.
  if (e.kind == Edn::Kind::kKeyword && e.text == "/") e.text = "slash";
  return e;
}

// Writes `e` with random extra whitespace, commas, comments and #_ discards.
void WriteNoisy(Rng& r, const Edn& e, std::string* out) {
  auto noise = [&] {
    switch (r.Below(6)) {
      case 0:
        out->append(" \n\t");
        break;
      case 1:
        out->append(" ; a comment ] } )\n");
        break;
      case 2:
        out->append(" #_ [1 {:a \"x\"}] ");
        break;
      case 3:
        out->append(",,");
        break;
      default:
        out->push_back(' ');
        break;
    }
  };
  switch (e.kind) {
    case Edn::Kind::kList:
    case Edn::Kind::kVector:
    case Edn::Kind::kMap:
    case Edn::Kind::kSet: {
      out->append(e.kind == Edn::Kind::kList     ? "("
                  : e.kind == Edn::Kind::kVector ? "["
                  : e.kind == Edn::Kind::kMap    ? "{"
                                                 : "#{");
      for (const Edn& x : e.items) {
        noise();
        WriteNoisy(r, x, out);
      }
      noise();
      out->append(e.kind == Edn::Kind::kList ? ")" : e.kind == Edn::Kind::kVector ? "]" : "}");
      return;
    }
    case Edn::Kind::kTagged:
      out->append("#" + e.text);
      noise();
      WriteNoisy(r, e.items[0], out);
      return;
    default:
      out->append(WriteEdn(e));
  }
}

TEST(EdnProperty, RandomTreesRoundTripThroughText) {
  const uint64_t seed = BaseSeed();
  for (int c = 0; c < 5000; ++c) {
    Rng r(seed * 1000003 + static_cast<uint64_t>(c));
    Edn e = RandomEdn(r, 0);
    std::string text = WriteEdn(e);
    auto back = ReadEdn(text);
    ASSERT_TRUE(back.ok()) << "seed " << seed << " case " << c << "\n" << text << "\n" << back.status().ToString();
    ASSERT_TRUE(EdnEquals(e, *back)) << "seed " << seed << " case " << c << "\n" << text << "\n" << WriteEdn(*back);
    ASSERT_EQ(WriteEdn(*back), text) << "seed " << seed << " case " << c;

    std::string noisy;
    WriteNoisy(r, e, &noisy);
    auto back2 = ReadEdn(noisy);
    ASSERT_TRUE(back2.ok()) << "seed " << seed << " case " << c << "\n" << noisy << "\n" << back2.status().ToString();
    ASSERT_TRUE(EdnEquals(e, *back2)) << "seed " << seed << " case " << c << "\n" << noisy;
  }
}

TEST(EdnProperty, MutatedTextNeverCrashes) {
  const uint64_t seed = BaseSeed();
  int errors = 0;
  for (int c = 0; c < 5000; ++c) {
    Rng r(seed * 7919 + static_cast<uint64_t>(c));
    std::string text = WriteEdn(RandomEdn(r, 0));
    switch (r.Below(3)) {
      case 0:
        text.resize(r.Below(text.size() + 1));
        break;
      case 1:
        if (!text.empty()) text[r.Below(text.size())] = static_cast<char>(r.Below(256));
        break;
      default:
        text.insert(r.Below(text.size() + 1), 1, "()[]{}#\"\\;:^"[r.Below(12)]);
        break;
    }
    auto res = ReadEdn(text);
    if (!res.ok()) {
      ++errors;
      const std::string& m = res.status().message();
      // Every error starts with "LINE:COL: ".
      size_t colon1 = m.find(':');
      ASSERT_NE(colon1, std::string::npos) << m;
      size_t colon2 = m.find(": ", colon1 + 1);
      ASSERT_NE(colon2, std::string::npos) << m;
      ASSERT_GT(std::atoi(m.c_str()), 0) << m;
      ASSERT_GT(std::atoi(m.c_str() + colon1 + 1), 0) << m;
    } else {
      // Whatever was read writes back to text that reads the same.
      auto again = ReadEdn(WriteEdn(*res));
      ASSERT_TRUE(again.ok()) << text;
      ASSERT_TRUE(EdnEquals(*res, *again)) << text;
    }
  }
  EXPECT_GT(errors, 1000);
}

Value RandomValue(Rng& r, int depth) {
  int kinds = depth > 3 ? 10 : 12;
  switch (r.Below(kinds)) {
    case 0:
      return Value();
    case 1:
      return Value::Bool(r.OneIn(2));
    case 2:
      return Value::Long(RandomInt(r));
    case 3:
      return Value::Double(RandomDouble(r));
    case 4:
      return Value::Instant(RandomInt(r));
    case 5:
      return Value::String(RandomString(r));
    case 6:
      return Value::Kw(RandomSymbolText(r) == "/" ? "slash" : RandomName(r) + "/" + RandomName(r));
    case 7:
      return Value::UuidValue(Uuid{r.Next(), r.Next()});
    case 8: {
      std::string b;
      size_t n = r.Below(10);
      for (size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(r.Below(256)));
      return Value::Bytes(std::move(b));
    }
    case 9:
      return Value::Kw(RandomName(r));
    case 10: {
      std::vector<Value> items;
      size_t n = r.Below(5);
      for (size_t i = 0; i < n; ++i) items.push_back(RandomValue(r, depth + 1));
      return Value::Tuple(std::move(items));
    }
    default: {
      std::vector<std::pair<Value, Value>> entries;
      size_t n = r.Below(4);
      for (size_t i = 0; i < n; ++i) entries.emplace_back(RandomValue(r, depth + 1), RandomValue(r, depth + 1));
      return Value::Map(std::move(entries));
    }
  }
}

TEST(EdnProperty, ValuesRoundTripThroughEdnText) {
  const uint64_t seed = BaseSeed();
  for (int c = 0; c < 5000; ++c) {
    Rng r(seed * 31337 + static_cast<uint64_t>(c));
    Value v = RandomValue(r, 0);
    std::string text = v.ToString();
    auto edn = ReadEdn(text);
    ASSERT_TRUE(edn.ok()) << "seed " << seed << " case " << c << "\n" << text << "\n" << edn.status().ToString();
    auto back = EdnToValue(*edn);
    ASSERT_TRUE(back.ok()) << "seed " << seed << " case " << c << "\n" << text << "\n" << back.status().ToString();
    ASSERT_EQ(back->Compare(v), 0) << "seed " << seed << " case " << c << "\n" << text << "\n" << back->ToString();
    ASSERT_EQ(back->Hash(), v.Hash()) << text;
    ASSERT_EQ(back->StableHash(), v.StableHash()) << text;
    ASSERT_EQ(back->ToString(), text);
    auto via_edn = EdnToValue(ValueToEdn(v));
    ASSERT_TRUE(via_edn.ok());
    ASSERT_EQ(via_edn->Compare(v), 0) << text;
  }
}

TEST(ValueProperty, CompareIsATotalOrder) {
  const uint64_t seed = BaseSeed();
  Rng r(seed);
  std::vector<Value> vs;
  for (int i = 0; i < 300; ++i) vs.push_back(RandomValue(r, 0));
  for (int i = 0; i < 60; ++i) vs.push_back(vs[r.Below(vs.size())]);  // equal pairs
  for (const Value& a : vs) {
    ASSERT_EQ(a.Compare(a), 0);
    for (const Value& b : vs) {
      int ab = a.Compare(b), ba = b.Compare(a);
      ASSERT_EQ(ab<0, ba> 0) << a.ToString() << " vs " << b.ToString();
      ASSERT_EQ(ab == 0, ba == 0);
      if (ab == 0) {
        ASSERT_EQ(a.Hash(), b.Hash());
        ASSERT_EQ(a.StableHash(), b.StableHash());
      }
    }
  }
  std::vector<Value> sorted = vs;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) {
    ASSERT_LE(sorted[i - 1].Compare(sorted[i]), 0);
    // Transitivity across a window.
    for (size_t j = i + 1; j < std::min(sorted.size(), i + 20); ++j) ASSERT_LE(sorted[i - 1].Compare(sorted[j]), 0);
  }
}

}  // namespace
}  // namespace cairn
