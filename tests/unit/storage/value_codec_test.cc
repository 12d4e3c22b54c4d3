#include "storage/value_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

namespace cairn::storage {
namespace {

int Sign(int x) { return (x > 0) - (x < 0); }

int CompareBytes(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  int c = n ? std::memcmp(a.data(), b.data(), n) : 0;
  if (c != 0) return Sign(c);
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

std::vector<Value> SampleValues() {
  std::vector<Value> vs = {
      Value(),
      Value::Bool(false),
      Value::Bool(true),
      Value::Long(std::numeric_limits<int64_t>::min()),
      Value::Long(-1),
      Value::Long(0),
      Value::Long(1),
      Value::Long(255),
      Value::Long(256),
      Value::Long(std::numeric_limits<int64_t>::max()),
      Value::Double(-std::numeric_limits<double>::infinity()),
      Value::Double(-1.5),
      Value::Double(-0.0),
      Value::Double(0.0),
      Value::Double(1e-300),
      Value::Double(2.5),
      Value::Double(std::numeric_limits<double>::infinity()),
      Value::Double(std::nan("")),
      Value::Instant(-1000),
      Value::Instant(0),
      Value::Instant(1700000000000),
      Value::String(""),
      Value::String(std::string("\0", 1)),
      Value::String(std::string("a\0b", 3)),
      Value::String("a"),
      Value::String("ab"),
      Value::String("b"),
      Value::String("\xff\xfe"),
      Value::Kw("a"),
      Value::Kw("a/b"),
      Value::Kw("a.b/c"),
      Value::Kw("user/name"),
      Value::Ref(EntityId{1}),
      Value::Ref(EntityId::Make(3, 7)),
      Value::Ref(EntityId::ForTx(TxTime{12345})),
      Value::UuidValue(Uuid{0, 1}),
      Value::UuidValue(Uuid{~0ull, 0}),
      Value::Bytes(""),
      Value::Bytes(std::string("\0\0", 2)),
      Value::Bytes("xyz"),
      Value::Tuple({}),
      Value::Tuple({Value::Long(1)}),
      Value::Tuple({Value::Long(1), Value()}),
      Value::Tuple({Value::Long(1), Value::String("x")}),
      Value::Tuple({Value::Long(2)}),
      Value::Tuple({Value::Tuple({Value::String("n")}), Value::Kw("k")}),
  };
  return vs;
}

TEST(ValueCodec, RoundTripsEveryType) {
  for (const Value& v : SampleValues()) {
    std::string enc = EncodeValue(v);
    Result<Value> back = DecodeValue(enc);
    ASSERT_TRUE(back.ok()) << v.ToString() << ": " << back.status().ToString();
    EXPECT_EQ(back->type(), v.type()) << v.ToString();
    EXPECT_EQ(back->Compare(v), 0) << v.ToString() << " came back as " << back->ToString();
  }
}

TEST(ValueCodec, ByteOrderMatchesValueOrder) {
  std::vector<Value> vs = SampleValues();
  for (const Value& a : vs) {
    for (const Value& b : vs) {
      EXPECT_EQ(CompareBytes(EncodeValue(a), EncodeValue(b)), Sign(a.Compare(b)))
          << a.ToString() << " vs " << b.ToString();
    }
  }
}

TEST(ValueCodec, RandomValuesKeepOrder) {
  std::mt19937_64 rng(42);
  auto random_value = [&](auto& self, int depth) -> Value {
    switch (rng() % (depth > 1 ? 6 : 7)) {
      case 0: return Value::Long(static_cast<int64_t>(rng()) >> (rng() % 64));
      case 1: {
        double d;
        uint64_t bits = rng();
        std::memcpy(&d, &bits, 8);
        return Value::Double(d);
      }
      case 2: {
        std::string s;
        for (size_t i = rng() % 5; i > 0; --i) s.push_back(static_cast<char>("\0\1ab\xff"[rng() % 5]));
        return Value::String(s);
      }
      case 3: return Value::Ref(EntityId{rng() % 1000});
      case 4: return Value::Bool(rng() % 2);
      case 5: return Value::Instant(static_cast<int64_t>(rng() % 2000) - 1000);
      default: {
        std::vector<Value> items;
        for (size_t i = rng() % 3; i > 0; --i) items.push_back(self(self, depth + 1));
        return Value::Tuple(std::move(items));
      }
    }
  };
  for (int i = 0; i < 20000; ++i) {
    Value a = random_value(random_value, 0), b = random_value(random_value, 0);
    std::string ea = EncodeValue(a), eb = EncodeValue(b);
    ASSERT_EQ(CompareBytes(ea, eb), Sign(a.Compare(b))) << a.ToString() << " vs " << b.ToString();
    Result<Value> back = DecodeValue(ea);
    ASSERT_TRUE(back.ok());
    ASSERT_EQ(back->Compare(a), 0);
  }
}

TEST(ValueCodec, GarbageIsCorruptionNotACrash) {
  EXPECT_EQ(DecodeValue("").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(DecodeValue("\x63").status().code(), StatusCode::kCorruption);          // unknown tag
  EXPECT_EQ(DecodeValue(std::string("\x03\x01", 2)).status().code(), StatusCode::kCorruption);  // short long
  EXPECT_EQ(DecodeValue(std::string("\x06" "abc", 4)).status().code(), StatusCode::kCorruption);  // unterminated
  std::string two = EncodeValue(Value::Long(1)) + EncodeValue(Value::Long(2));
  EXPECT_EQ(DecodeValue(two).status().code(), StatusCode::kCorruption);  // trailing bytes
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string junk;
    for (size_t n = rng() % 24; n > 0; --n) junk.push_back(static_cast<char>(rng()));
    Result<Value> r = DecodeValue(junk);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    }
  }
  // Deep nesting is refused, not a stack overflow.
  std::string deep(100000, '\x0b');
  EXPECT_EQ(DecodeValue(deep).status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace cairn::storage
