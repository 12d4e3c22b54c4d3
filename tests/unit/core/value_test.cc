#include "cairn/value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <thread>
#include <unordered_set>

#include "cairn/datom.h"
#include "core/encoding.h"

namespace cairn {
namespace {

TEST(Keyword, InternReturnsSamePointerForSameText) {
  Keyword a = Keyword::Intern("user/email");
  Keyword b = Keyword::Intern(std::string("user/") + "email");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.id(), b.id());
  EXPECT_NE(a, Keyword::Intern("user/name"));
  EXPECT_EQ(a.str(), "user/email");
  EXPECT_EQ(a.ns(), "user");
  EXPECT_EQ(a.name(), "email");
  EXPECT_EQ(a.ToString(), ":user/email");
}

TEST(Keyword, NamespaceAndNameParts) {
  EXPECT_EQ(Keyword::Intern("db.type/string").ns(), "db.type");
  EXPECT_EQ(Keyword::Intern("plain").ns(), "");
  EXPECT_EQ(Keyword::Intern("plain").name(), "plain");
  EXPECT_EQ(Keyword::Intern("_attr").name(), "_attr");
  EXPECT_EQ(Keyword::Intern("/").name(), "/");
  EXPECT_EQ(Keyword::Intern("/").ns(), "");
}

TEST(Keyword, InvalidKeyword) {
  Keyword k;
  EXPECT_FALSE(k.valid());
  EXPECT_EQ(k.str(), "");
  EXPECT_EQ(k.id(), 0u);
  EXPECT_LT(k, Keyword::Intern("a"));
  EXPECT_LT(k, Keyword::Intern(""));
  EXPECT_GT(Keyword::Intern(""), k);
}

TEST(Keyword, OrdersByTextNotByInternOrder) {
  Keyword z = Keyword::Intern("order-test/zzz");
  Keyword a = Keyword::Intern("order-test/aaa");
  EXPECT_LT(a, z);
  EXPECT_GT(z, a);
  EXPECT_EQ(a <=> a, std::strong_ordering::equal);
}

TEST(Keyword, ManyKeywordsStayStableAcrossTableGrowth) {
  std::vector<Keyword> ks;
  for (int i = 0; i < 20000; ++i) ks.push_back(Keyword::Intern("grow/k" + std::to_string(i)));
  for (int i = 0; i < 20000; ++i) {
    EXPECT_EQ(ks[i], Keyword::Intern("grow/k" + std::to_string(i)));
    EXPECT_EQ(ks[i].str(), "grow/k" + std::to_string(i));
  }
}

TEST(Keyword, ConcurrentInterningAgrees) {
  constexpr int kThreads = 4, kN = 5000;
  std::vector<std::vector<Keyword>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &got] {
      for (int i = 0; i < kN; ++i) {
        int j = (t % 2 == 0) ? i : kN - 1 - i;
        got[t].push_back(Keyword::Intern("conc/k" + std::to_string(j)));
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kN; ++i) {
      int j = (t % 2 == 0) ? i : kN - 1 - i;
      EXPECT_EQ(got[t][i], got[0][j]);
    }
  }
  std::unordered_set<uint32_t> ids;
  for (Keyword k : got[0]) ids.insert(k.id());
  EXPECT_EQ(ids.size(), size_t{kN});
}

TEST(Uuid, ParsesAndFormats) {
  Uuid u;
  ASSERT_TRUE(Uuid::Parse("f81d4fae-7dec-11d0-a765-00a0c91e6bf6", &u));
  EXPECT_EQ(u.hi, 0xf81d4fae7dec11d0ull);
  EXPECT_EQ(u.lo, 0xa76500a0c91e6bf6ull);
  EXPECT_EQ(u.ToString(), "f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
  ASSERT_TRUE(Uuid::Parse("F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6", &u));
  EXPECT_EQ(u.ToString(), "f81d4fae-7dec-11d0-a765-00a0c91e6bf6");
}

TEST(Uuid, RejectsMalformed) {
  Uuid u;
  EXPECT_FALSE(Uuid::Parse("", &u));
  EXPECT_FALSE(Uuid::Parse("f81d4fae7dec11d0a76500a0c91e6bf6", &u));
  EXPECT_FALSE(Uuid::Parse("f81d4fae-7dec-11d0-a765-00a0c91e6bfg", &u));
  EXPECT_FALSE(Uuid::Parse("f81d4fae-7dec-11d0-a765_00a0c91e6bf6", &u));
  EXPECT_FALSE(Uuid::Parse("f81d4fae-7dec-11d0-a765-00a0c91e6bf6a", &u));
}

TEST(Value, FactoriesAndAccessors) {
  EXPECT_TRUE(Value().is_nil());
  EXPECT_EQ(Value::Bool(true).as_bool(), true);
  EXPECT_EQ(Value::Long(-5).as_long(), -5);
  EXPECT_EQ(Value::Double(1.5).as_double(), 1.5);
  EXPECT_EQ(Value::Instant(123).as_instant(), 123);
  EXPECT_EQ(Value::String("hi").as_string(), "hi");
  EXPECT_EQ(Value::Kw("a/b").as_keyword(), Keyword::Intern("a/b"));
  EXPECT_EQ(Value::Ref(EntityId{42}).as_ref(), EntityId{42});
  EXPECT_EQ(Value::UuidValue(Uuid{1, 2}).as_uuid(), (Uuid{1, 2}));
  EXPECT_EQ(Value::Bytes(std::string("\0\1", 2)).as_string().size(), 2u);
  EXPECT_EQ(Value::Tuple({Value::Long(1), Value::Long(2)}).as_tuple().size(), 2u);
  EXPECT_EQ(Value::Map({{Value::Kw("a"), Value::Long(1)}}).as_map().size(), 1u);
  EXPECT_EQ(Value::Long(1).type(), ValueType::kLong);
  EXPECT_EQ(ValueTypeName(ValueType::kString), "string");
  EXPECT_EQ(ValueTypeName(ValueType::kBool), "boolean");
  EXPECT_EQ(ValueTypeName(ValueType::kRef), "ref");
}

TEST(ValueDeathTest, AccessorOfWrongTypeCrashes) { EXPECT_DEATH((void)Value::Long(1).as_string(), "CAIRN_CHECK"); }

TEST(Value, CopiesShareHeapBlock) {
  Value s = Value::String(std::string(1000, 'x'));
  Value t = s;
  EXPECT_EQ(&s.as_string(), &t.as_string());
  EXPECT_EQ(sizeof(Value), 32u);
}

TEST(Value, CrossTypeOrderFollowsTypeRank) {
  std::vector<Value> ordered = {
      Value(),
      Value::Bool(false),
      Value::Long(std::numeric_limits<int64_t>::max()),
      Value::Double(-1e300),
      Value::Instant(-1),
      Value::String(""),
      Value::Kw("a"),
      Value::Ref(EntityId{0}),
      Value::UuidValue(Uuid{0, 0}),
      Value::Bytes(""),
      Value::Tuple({}),
      Value::Map({}),
  };
  for (size_t i = 0; i < ordered.size(); ++i) {
    for (size_t j = 0; j < ordered.size(); ++j) {
      int c = ordered[i].Compare(ordered[j]);
      EXPECT_EQ(c < 0, i < j) << i << " " << j;
      EXPECT_EQ(c == 0, i == j) << i << " " << j;
    }
  }
}

TEST(Value, WithinTypeOrder) {
  EXPECT_LT(Value::Bool(false), Value::Bool(true));
  EXPECT_LT(Value::Long(-3), Value::Long(2));
  EXPECT_LT(Value::Long(std::numeric_limits<int64_t>::min()), Value::Long(0));
  EXPECT_LT(Value::Double(-0.5), Value::Double(0.25));
  EXPECT_LT(Value::String("ab"), Value::String("abc"));
  EXPECT_LT(Value::String("abc"), Value::String("abd"));
  EXPECT_LT(Value::String("z"), Value::String("\xc3\xa9"));  // bytewise, unsigned
  EXPECT_LT(Value::Kw("a/z"), Value::Kw("b/a"));
  EXPECT_LT(Value::Ref(EntityId{1}), Value::Ref(EntityId{EntityId::kTxBit}));
  EXPECT_LT(Value::UuidValue(Uuid{1, 9}), Value::UuidValue(Uuid{2, 0}));
  EXPECT_LT(Value::UuidValue(Uuid{1, 1}), Value::UuidValue(Uuid{1, 2}));
  EXPECT_LT(Value::Instant(5), Value::Instant(6));
}

TEST(Value, NanSortsAfterAllDoublesAndEqualsItself) {
  double nan = std::nan("");
  Value n = Value::Double(nan);
  EXPECT_EQ(n, Value::Double(-nan));
  EXPECT_LT(Value::Double(std::numeric_limits<double>::infinity()), n);
  EXPECT_LT(n, Value::Instant(0));  // still a double by rank
  EXPECT_EQ(n.Hash(), Value::Double(-nan).Hash());
  EXPECT_EQ(n.StableHash(), Value::Double(-nan).StableHash());
}

TEST(Value, NegativeZeroEqualsZero) {
  EXPECT_EQ(Value::Double(-0.0), Value::Double(0.0));
  EXPECT_EQ(Value::Double(-0.0).Hash(), Value::Double(0.0).Hash());
  EXPECT_EQ(Value::Double(-0.0).StableHash(), Value::Double(0.0).StableHash());
}

TEST(Value, TuplesCompareLexicographically) {
  auto t = [](std::vector<Value> v) { return Value::Tuple(std::move(v)); };
  EXPECT_LT(t({Value::Long(1)}), t({Value::Long(1), Value::Long(0)}));
  EXPECT_LT(t({Value::Long(1), Value::Long(9)}), t({Value::Long(2)}));
  EXPECT_LT(t({Value::Long(1), Value::String("a")}), t({Value::Long(1), Value::String("b")}));
  EXPECT_EQ(t({Value::Long(1), Value()}), t({Value::Long(1), Value()}));
}

TEST(Value, MapsAreCanonicalAndCompareLexicographically) {
  Value m1 = Value::Map({{Value::Kw("b"), Value::Long(2)}, {Value::Kw("a"), Value::Long(1)}});
  Value m2 = Value::Map({{Value::Kw("a"), Value::Long(1)}, {Value::Kw("b"), Value::Long(2)}});
  EXPECT_EQ(m1, m2);
  EXPECT_EQ(m1.Hash(), m2.Hash());
  EXPECT_EQ(m1.StableHash(), m2.StableHash());
  EXPECT_EQ(m1.ToString(), "{:a 1, :b 2}");
  Value m3 = Value::Map({{Value::Kw("a"), Value::Long(1)}, {Value::Kw("b"), Value::Long(3)}});
  EXPECT_LT(m1, m3);
  // A repeated key keeps the last value.
  Value m4 = Value::Map({{Value::Kw("a"), Value::Long(1)}, {Value::Kw("a"), Value::Long(7)}});
  ASSERT_EQ(m4.as_map().size(), 1u);
  EXPECT_EQ(m4.as_map()[0].second, Value::Long(7));
}

TEST(Value, HashAgreesWithEquality) {
  std::vector<Value> vs = {Value(),
                           Value::Bool(true),
                           Value::Long(7),
                           Value::Double(7),
                           Value::Instant(7),
                           Value::String("7"),
                           Value::Kw("seven"),
                           Value::Ref(EntityId{7}),
                           Value::UuidValue(Uuid{7, 7}),
                           Value::Bytes("7"),
                           Value::Tuple({Value::Long(7)})};
  std::unordered_set<Value> set(vs.begin(), vs.end());
  EXPECT_EQ(set.size(), vs.size());
  for (const Value& v : vs) {
    Value copy = v;
    EXPECT_EQ(set.count(copy), 1u) << v.ToString();
  }
  EXPECT_EQ(Value::String("abc").Hash(), Value::String(std::string("ab") + "c").Hash());
  EXPECT_NE(Value::String("7").Hash(), Value::Bytes("7").Hash());
}

// These constants pin the StableHash encoding (docs/edn.md): placement of
// every stored entity depends on it, so a change here is a format break.
TEST(Value, StableHashIsPinned) {
  // Computed independently (Python) from the encoding in docs/edn.md.
  EXPECT_EQ(Value().StableHash(), 0xaf63bd4c8601b7dfull);
  EXPECT_EQ(Value::Long(1).StableHash(), 0x0cd92bf54dc61432ull);
  EXPECT_EQ(Value::String("a").StableHash(), 0xee9d27ba9069c8b6ull);
  EXPECT_EQ(Value::Kw("user/email").StableHash(), 0x41983ccace0e9987ull);
  EXPECT_EQ(StableHashOf(Keyword::Intern("user/email"), Value::String("a@b")), 0x4bdc4b3af681be64ull);
}

TEST(Value, StableHashDistinguishesTypes) {
  EXPECT_NE(Value::Long(7).StableHash(), Value::Instant(7).StableHash());
  EXPECT_NE(Value::Long(7).StableHash(), Value::Ref(EntityId{7}).StableHash());
  EXPECT_NE(Value::String("x").StableHash(), Value::Bytes("x").StableHash());
  EXPECT_NE(Value::Tuple({Value::String("ab"), Value::String("c")}).StableHash(),
            Value::Tuple({Value::String("a"), Value::String("bc")}).StableHash());
}

TEST(Value, ToStringIsEdn) {
  EXPECT_EQ(Value().ToString(), "nil");
  EXPECT_EQ(Value::Bool(false).ToString(), "false");
  EXPECT_EQ(Value::Long(-42).ToString(), "-42");
  EXPECT_EQ(Value::Double(1.5).ToString(), "1.5");
  EXPECT_EQ(Value::Double(2).ToString(), "2.0");
  EXPECT_EQ(Value::Double(1e300).ToString(), "1e+300");
  EXPECT_EQ(Value::Double(std::nan("")).ToString(), "##NaN");
  EXPECT_EQ(Value::Double(-std::numeric_limits<double>::infinity()).ToString(), "##-Inf");
  EXPECT_EQ(Value::Instant(0).ToString(), "#inst \"1970-01-01T00:00:00.000Z\"");
  EXPECT_EQ(Value::String("a\"b\\c\nd\te\x01").ToString(), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  EXPECT_EQ(Value::Kw("db/id").ToString(), ":db/id");
  EXPECT_EQ(Value::Ref(EntityId{17}).ToString(), "17");
  EXPECT_EQ(Value::UuidValue(Uuid{0x0123456789abcdefull, 0xfedcba9876543210ull}).ToString(),
            "#uuid \"01234567-89ab-cdef-fedc-ba9876543210\"");
  EXPECT_EQ(Value::Bytes("hello").ToString(), "#bytes \"aGVsbG8=\"");
  EXPECT_EQ(Value::Tuple({Value::Long(1), Value::String("x"), Value()}).ToString(), "[1 \"x\" nil]");
}

TEST(Datom, ToString) {
  Datom d{EntityId{5}, Keyword::Intern("user/name"), Value::String("Ann"), TxTime{99}, true};
  EXPECT_EQ(d.ToString(), "[5 :user/name \"Ann\" 99 true]");
  d.added = false;
  EXPECT_EQ(d.ToString(), "[5 :user/name \"Ann\" 99 false]");
}

TEST(Instant, FormatsAndParses) {
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatInstant(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatInstant(951782400000), "2000-02-29T00:00:00.000Z");
  std::string err;
  EXPECT_EQ(ParseInstant("2000-02-29T00:00:00.000Z", &err), 951782400000);
  EXPECT_EQ(ParseInstant("1970-01-01T01:00:00+01:00", &err), 0);
  EXPECT_EQ(ParseInstant("1969-12-31T19:00:00.5-05:00", &err), 500);
  EXPECT_EQ(ParseInstant("1970-01-01T00:00:00.123456789Z", &err), 123);
  EXPECT_EQ(ParseInstant("1970", &err), 0);
  EXPECT_EQ(ParseInstant("1970-02", &err), 31LL * 86400000);
  EXPECT_FALSE(ParseInstant("2001-02-29T00:00:00Z", &err));
  EXPECT_NE(err.find("day out of range"), std::string::npos) << err;
  EXPECT_FALSE(ParseInstant("2001-13-01", &err));
  EXPECT_FALSE(ParseInstant("2001-01-01T24:00:00Z", &err));
  EXPECT_FALSE(ParseInstant("2001-01-01T00:00:00X", &err));
  EXPECT_FALSE(ParseInstant("01-01-01", &err));
  EXPECT_FALSE(ParseInstant("2001-01-01T00:00:00.Z", &err));
  for (int64_t ms : {int64_t{0}, int64_t{-1}, int64_t{1700000000123}, int64_t{-62135596800000},
                     int64_t{253402300799999}, int64_t{253402300800000}, int64_t{-62135596800001},
                     std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    auto back = ParseInstant(FormatInstant(ms), &err);
    ASSERT_TRUE(back.has_value()) << FormatInstant(ms) << " " << err;
    EXPECT_EQ(*back, ms) << FormatInstant(ms);
  }
}

TEST(Base64, RoundTripsAndRejects) {
  for (std::string s : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"), std::string("foob"),
                        std::string("\0\xff\x10", 3)}) {
    auto back = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*Base64Decode("Zm8"), "fo");
  EXPECT_FALSE(Base64Decode("Zm9v!"));
  EXPECT_FALSE(Base64Decode("Z"));
  EXPECT_FALSE(Base64Decode("Zm9="));  // non-zero leftover bits
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(Keyword, OrderMatchesTextOrderIncludingSharedPrefixes) {
  std::vector<std::string> texts = {"a",
                                    "ab",
                                    "abcdefgh",
                                    "abcdefghi",
                                    "abcdefgh/x",
                                    "abcdefg",
                                    "person/age",
                                    "person/name",
                                    "person/a",
                                    "person/",
                                    "b",
                                    std::string("a\0", 2),
                                    std::string("ab\x01", 3),
                                    "\xc3\xa9",
                                    "z/z"};
  uint64_t x = 7;
  for (int i = 0; i < 300; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    std::string t = "p" + std::to_string(x % 5) + "/";
    for (int j = 0; j < static_cast<int>(x >> 60); ++j) t.push_back(static_cast<char>('a' + ((x >> (j * 3)) & 3)));
    texts.push_back(t);
  }
  for (const auto& a : texts) {
    for (const auto& b : texts) {
      Keyword ka = Keyword::Intern(a), kb = Keyword::Intern(b);
      int want = a.compare(b);
      auto got = ka <=> kb;
      EXPECT_EQ(want < 0, got < 0) << a << " vs " << b;
      EXPECT_EQ(want == 0, got == 0) << a << " vs " << b;
      int vc = Value::Kw(ka).Compare(Value::Kw(kb));
      EXPECT_EQ(want < 0, vc < 0) << a << " vs " << b;
      EXPECT_EQ(want == 0, vc == 0) << a << " vs " << b;
    }
  }
}

}  // namespace
}  // namespace cairn
