#include "core/edn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cairn {
namespace {

Edn Read(std::string_view text) {
  auto r = ReadEdn(text);
  EXPECT_TRUE(r.ok()) << text << " -> " << r.status().ToString();
  return r.ok() ? *r : Edn();
}

// Asserts that reading fails with InvalidArgument whose message starts with
// `where` ("LINE:COL") and contains `what`.
void ExpectError(std::string_view text, std::string_view where, std::string_view what) {
  auto r = ReadEdn(text);
  ASSERT_FALSE(r.ok()) << "expected an error for: " << text;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.substr(0, where.size() + 2), std::string(where) + ": ") << "input: " << text << "\nmessage: " << m;
  EXPECT_NE(m.find(what), std::string::npos) << "input: " << text << "\nmessage: " << m;
}

TEST(EdnReader, Scalars) {
  EXPECT_TRUE(Read("nil").is(Edn::Kind::kNil));
  EXPECT_TRUE(Read("true").b);
  EXPECT_TRUE(Read("false").is(Edn::Kind::kBool));
  EXPECT_FALSE(Read("false").b);
  EXPECT_EQ(Read("42").i, 42);
  EXPECT_EQ(Read("-42").i, -42);
  EXPECT_EQ(Read("+7").i, 7);
  EXPECT_EQ(Read("0").i, 0);
  EXPECT_EQ(Read("-0").i, 0);
  EXPECT_EQ(Read("12N").i, 12);
  EXPECT_EQ(Read("9223372036854775807").i, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(Read("-9223372036854775808").i, std::numeric_limits<int64_t>::min());
  EXPECT_TRUE(Read("1.5").is(Edn::Kind::kFloat));
  EXPECT_EQ(Read("1.5").d, 1.5);
  EXPECT_EQ(Read("-2.5e3").d, -2500);
  EXPECT_EQ(Read("1E-2").d, 0.01);
  EXPECT_EQ(Read("1e+2").d, 100);
  EXPECT_EQ(Read("3M").d, 3);
  EXPECT_TRUE(Read("3M").is(Edn::Kind::kFloat));
  EXPECT_EQ(Read("1.").d, 1.0);
  EXPECT_EQ(Read("0.000").d, 0.0);
  EXPECT_EQ(Read("1e-400").d, 0.0);  // underflow rounds to zero
  EXPECT_TRUE(std::isinf(Read("##Inf").d));
  EXPECT_LT(Read("##-Inf").d, 0);
  EXPECT_TRUE(std::isnan(Read("##NaN").d));
}

TEST(EdnReader, Strings) {
  EXPECT_EQ(Read(R"("hello")").text, "hello");
  EXPECT_EQ(Read(R"("")").text, "");
  EXPECT_EQ(Read(R"("a\tb\rc\nd\\e\"f\bg\fh")").text, "a\tb\rc\nd\\e\"f\bg\fh");
  EXPECT_EQ(Read(R"("\u00e9\u0041")").text,
            "\xc3\xa9"
            "A");
  EXPECT_EQ(Read(R"("\ud83d\ude00")").text, "\xf0\x9f\x98\x80");
  EXPECT_EQ(Read("\"caf\xc3\xa9\"").text, "caf\xc3\xa9");
  EXPECT_EQ(Read("\"two\nlines\"").text, "two\nlines");
}

TEST(EdnReader, Characters) {
  EXPECT_EQ(Read(R"(\a)").ch, U'a');
  EXPECT_TRUE(Read(R"(\a)").is(Edn::Kind::kChar));
  EXPECT_EQ(Read(R"(\newline)").ch, U'\n');
  EXPECT_EQ(Read(R"(\space)").ch, U' ');
  EXPECT_EQ(Read(R"(\tab)").ch, U'\t');
  EXPECT_EQ(Read(R"(\return)").ch, U'\r');
  EXPECT_EQ(Read(R"(\backspace)").ch, U'\b');
  EXPECT_EQ(Read(R"(\formfeed)").ch, U'\f');
  EXPECT_EQ(Read(R"(\u00e9)").ch, U'\u00e9');
  EXPECT_EQ(Read(R"(\()").ch, U'(');
  EXPECT_EQ(Read(R"(\\)").ch, U'\\');
  EXPECT_EQ(Read("\\\xc3\xa9").ch, U'\u00e9');
  EXPECT_EQ(Read(R"(\u)").ch, U'u');
  Edn v = Read(R"([\a \b])");
  ASSERT_EQ(v.items.size(), 2u);
  EXPECT_EQ(v.items[1].ch, U'b');
  Edn w = Read(R"([\a\b])");
  ASSERT_EQ(w.items.size(), 2u);
}

TEST(EdnReader, KeywordsAndSymbols) {
  for (std::string_view kw :
       {"db/id", "db.type/string", "_attr", "a", "db.unique/identity", "a-b?", "x/y.z", "1", "a:b", "a#"}) {
    Edn e = Read(":" + std::string(kw));
    EXPECT_TRUE(e.IsKeyword(kw)) << kw << " -> " << WriteEdn(e);
  }
  for (std::string_view sym : {"...", ".",          "_",  "?x",      "$",          "%",    "+",
                               "-",   "->",         "<=", "re-find", "ends-with?", "/",    "clojure.string/ends-with?",
                               "?e1", "*",          "!=", "a'",      "$db",        "?x.y", "-x",
                               "+x",  "caf\xc3\xa9"}) {
    Edn e = Read(sym);
    EXPECT_TRUE(e.IsSymbol(sym)) << sym << " -> " << WriteEdn(e);
  }
  EXPECT_TRUE(Read("nil?").IsSymbol("nil?"));
  EXPECT_TRUE(Read("truex").IsSymbol("truex"));
}

TEST(EdnReader, Collections) {
  Edn l = Read("(a 1 \"s\")");
  EXPECT_TRUE(l.is(Edn::Kind::kList));
  EXPECT_EQ(l.items.size(), 3u);
  Edn v = Read("[1, 2 ,3]");
  EXPECT_TRUE(v.is(Edn::Kind::kVector));
  EXPECT_EQ(v.items.size(), 3u);
  Edn m = Read("{:a 1 :b [2 3]}");
  EXPECT_TRUE(m.is(Edn::Kind::kMap));
  ASSERT_EQ(m.items.size(), 4u);
  EXPECT_TRUE(m.items[2].IsKeyword("b"));
  Edn s = Read("#{1 2 :x}");
  EXPECT_TRUE(s.is(Edn::Kind::kSet));
  EXPECT_EQ(s.items.size(), 3u);
  EXPECT_EQ(Read("[]").items.size(), 0u);
  EXPECT_EQ(Read("{}").items.size(), 0u);
  EXPECT_EQ(Read("#{}").items.size(), 0u);
  EXPECT_EQ(Read("()").items.size(), 0u);
  Edn nested = Read("[[[[]]]]");
  EXPECT_EQ(nested.items[0].items[0].items[0].items.size(), 0u);
}

TEST(EdnReader, InstAndUuid) {
  Edn i = Read(R"(#inst "1985-04-12T23:20:50.52Z")");
  EXPECT_TRUE(i.is(Edn::Kind::kInst));
  EXPECT_EQ(i.i, 482196050520);
  EXPECT_EQ(Read(R"(#inst "1996-12-19T16:39:57-08:00")").i, 851042397000);
  EXPECT_EQ(Read(R"(#inst "1970-01-01T00:00:00.001+00:00")").i, 1);
  EXPECT_EQ(Read(R"(#inst "2020")").i, 1577836800000);
  EXPECT_EQ(Read(R"(#inst   "1970-01-01")").i, 0);
  Edn u = Read(R"(#uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")");
  EXPECT_TRUE(u.is(Edn::Kind::kUuid));
  EXPECT_EQ(u.uuid.hi, 0xf81d4fae7dec11d0ull);
}

TEST(EdnReader, TaggedLiterals) {
  Edn t = Read(R"(#myapp/Person {:first "Fred"})");
  EXPECT_TRUE(t.is(Edn::Kind::kTagged));
  EXPECT_EQ(t.text, "myapp/Person");
  ASSERT_EQ(t.items.size(), 1u);
  EXPECT_TRUE(t.items[0].is(Edn::Kind::kMap));
  Edn b = Read(R"(#bytes "aGk=")");
  EXPECT_EQ(b.text, "bytes");
  Edn nested = Read("#a #b 1");
  EXPECT_EQ(nested.items[0].text, "b");
}

TEST(EdnReader, CommentsDiscardAndWhitespace) {
  Edn v = Read("; leading comment\n[1 ; one\n 2 #_ 3 #_#_ 4 5 6 #_ [7 8]] ; trailing");
  ASSERT_EQ(v.items.size(), 3u);
  EXPECT_EQ(v.items[2].i, 6);
  EXPECT_EQ(Read("#_ 1 2").i, 2);
  EXPECT_EQ(Read(",,, 3 ,,,").i, 3);
  EXPECT_EQ(Read("{:a #_ :b 1}").items.size(), 2u);
  Edn m = Read("[#_ {:x 1}]");
  EXPECT_EQ(m.items.size(), 0u);
}

TEST(EdnReader, PositionsAreLineAndColumn) {
  Edn v = Read("[1\n  :a\n\"x\" [\n sym]]");
  EXPECT_EQ(v.Where(), "1:1");
  EXPECT_EQ(v.items[0].Where(), "1:2");
  EXPECT_EQ(v.items[1].Where(), "2:3");
  EXPECT_EQ(v.items[2].Where(), "3:1");
  EXPECT_EQ(v.items[3].Where(), "3:5");
  EXPECT_EQ(v.items[3].items[0].Where(), "4:2");
  // Columns count characters, not bytes.
  Edn u = Read("[\"\xc3\xa9\xc3\xa9\" x]");
  EXPECT_EQ(u.items[1].Where(), "1:7");
  // After a string spanning lines.
  Edn s = Read("[\"a\nbc\" d]");
  EXPECT_EQ(s.items[1].Where(), "2:5");
}

TEST(EdnReader, ReadAll) {
  auto r = ReadEdnAll("1 [2] ; c\n :x #_ y");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_TRUE((*r)[2].IsKeyword("x"));
  auto empty = ReadEdnAll("  ; nothing\n");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto bad = ReadEdnAll("1 2 )");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().substr(0, 5), "1:5: ");
}

TEST(EdnReaderErrors, StructureErrors) {
  ExpectError("", "1:1", "expected a form, found end of input");
  ExpectError("  ; only a comment\n ", "2:2", "end of input");
  ExpectError("(+ 1 2))", "1:8", "unexpected ')'");
  ExpectError(")", "1:1", "unexpected ')'");
  ExpectError("[1 2", "1:5", "the vector opened at 1:1 needs a closing ']'");
  ExpectError("{:a 1\n", "2:1", "the map opened at 1:1");
  ExpectError("(1 2]", "1:5", "unexpected ']': the list opened at 1:1 is closed by ')'");
  ExpectError("#{1 2)", "1:6", "the set opened at 1:1");
  ExpectError("1 2", "1:3", "after the form");
  ExpectError("[1] [2]", "1:5", "after the form");
  ExpectError("{:a 1 :b}", "1:1", "odd number of forms (3)");
  ExpectError("{:a 1\n :b}", "1:1", "the key ':b' at 2:2 has no value");
  ExpectError("{:a 1 :a 2}", "1:7", "duplicate key :a in map");
  // Of several duplicates, the smallest key at its second occurrence.
  ExpectError("{:b 1 :a 2 :a 3 :b 4}", "1:12", "duplicate key :a in map");
  ExpectError("{:b 1 :b 2 :a 3 :c 4 :a 5}", "1:22", "duplicate key :a in map");
  ExpectError("{:x 1 :x 2 :x 3}", "1:7", "duplicate key :x in map");
  ExpectError("{[1 2] 1 [1 2] 2}", "1:10", "duplicate key [1 2]");
  ExpectError("{{:x 1 :y 2} 1 {:y 2 :x 1} 2}", "1:16", "duplicate key");
  ExpectError("#{1 2 1}", "1:7", "duplicate element 1 in set");
  ExpectError("#{#{1 2} #{2 1}}", "1:10", "duplicate element");
  ExpectError("#_", "1:1", "#_ must be followed by a form");
  ExpectError("[#_]", "1:2", "#_ must be followed by a form");
  ExpectError(std::string(600, '[') + std::string(600, ']'), "1:513", "nesting deeper than 512");
  ExpectError("^meta", "1:1", "unexpected character '^'");
  ExpectError("[1 `a]", "1:4", "unexpected character '`'");
  ExpectError(std::string("[\x01]", 3), "1:2", "control character 0x01");
}

TEST(EdnReaderErrors, NumberErrors) {
  ExpectError("9223372036854775808", "1:1", "integer 9223372036854775808 is out of range for a 64-bit long");
  ExpectError("[1\n -9223372036854775809]", "2:2", "out of range");
  ExpectError("99999999999999999999N", "1:1", "out of range");
  ExpectError("1e400", "1:1", "float 1e400 is out of range for a double");
  ExpectError("12abc", "1:1", "invalid number '12abc'");
  ExpectError("007", "1:1", "leading zeros");
  ExpectError("1/2", "1:1", "invalid number '1/2'");
  ExpectError("1e", "1:1", "exponent needs digits");
  ExpectError("1.5N", "1:1", "'N' marks an integer");
  ExpectError("0x1F", "1:1", "invalid number");
  ExpectError("##Foo", "1:1", "unknown symbolic value '##Foo'");
}

TEST(EdnReaderErrors, StringAndCharErrors) {
  ExpectError("[\"abc", "1:2", "unterminated string");
  ExpectError("\"a\\qb\"", "1:3", "unsupported escape '\\q'");
  ExpectError("\"\\u12\"", "1:2", "\\u needs 4 hex digits");
  ExpectError("\"\\ud800\"", "1:2", "unpaired surrogate");
  ExpectError("\"\\udc00\"", "1:2", "unpaired surrogate");
  ExpectError("\"ab\xff\"", "1:4", "invalid UTF-8 in string");
  ExpectError("\"\xc0\xaf\"", "1:2", "invalid UTF-8");  // overlong '/'
  ExpectError("\\", "1:1", "must be followed by a character");
  ExpectError("[\\ ]", "1:2", "must be followed by a character");
  ExpectError("\\foo", "1:1", "unsupported character literal '\\foo'");
  ExpectError("\\ab", "1:1", "unsupported character literal");
  ExpectError("\\a:", "1:1", "invalid character literal");
  ExpectError("\\ud800", "1:1", "lone surrogate");
}

TEST(EdnReaderErrors, KeywordSymbolAndTagErrors) {
  ExpectError(":", "1:1", "':' must be followed by a keyword name");
  ExpectError("[: a]", "1:2", "':' must be followed");
  ExpectError("::auto", "1:1", "auto-resolved keyword '::auto' is not EDN");
  ExpectError(":a/", "1:1", "invalid keyword ':a/'");
  ExpectError(":/a", "1:1", "invalid keyword");
  ExpectError(":a/b/c", "1:1", "invalid keyword");
  ExpectError(":/", "1:1", "invalid keyword");
  ExpectError("a/", "1:1", "invalid symbol 'a/'");
  ExpectError("a/b/c", "1:1", "invalid symbol");
  ExpectError("#", "1:1", "'#' at end of input");
  ExpectError("#\"re\"", "1:1", "regex literals");
  ExpectError("#:ns{:a 1}", "1:1", "unsupported dispatch '#:'");
  ExpectError("#foo", "1:1", "tag '#foo' must be followed by a form");
  ExpectError("#inst 5", "1:7", "#inst needs a string");
  ExpectError("#inst \"2020-13-01\"", "1:7", "invalid #inst \"2020-13-01\": month out of range");
  ExpectError("[1\n  #inst \"2021-02-29T00:00:00Z\"]", "2:9", "day out of range");
  ExpectError("#inst \"2020-01-01T00:00:00+25:00\"", "1:7", "offset out of range");
  ExpectError("#inst \"2020-01-01 00:00:00Z\"", "1:7", "expected 'T'");
  ExpectError("#uuid \"not-a-uuid\"", "1:7", "invalid #uuid \"not-a-uuid\"");
  ExpectError("#uuid 12", "1:7", "#uuid needs a string");
}

TEST(EdnWriter, CanonicalText) {
  EXPECT_EQ(WriteEdn(Read("[1 2.5 \"s\" :k sym nil true]")), "[1 2.5 \"s\" :k sym nil true]");
  EXPECT_EQ(WriteEdn(Read("{:a 1 :b 2}")), "{:a 1, :b 2}");
  EXPECT_EQ(WriteEdn(Read("#{1}")), "#{1}");
  EXPECT_EQ(WriteEdn(Read("(f x)")), "(f x)");
  EXPECT_EQ(WriteEdn(Read("1.0")), "1.0");
  EXPECT_EQ(WriteEdn(Read("-0.0")), "-0.0");
  EXPECT_EQ(WriteEdn(Read("1e300")), "1e+300");
  EXPECT_EQ(WriteEdn(Read("##NaN")), "##NaN");
  EXPECT_EQ(WriteEdn(Read(R"([\a \newline \space \u0001 \u00e9])")), "[\\a \\newline \\space \\u0001 \\\xc3\xa9]");
  EXPECT_EQ(WriteEdn(Read(R"(#inst "1996-12-19T16:39:57-08:00")")), "#inst \"1996-12-20T00:39:57.000Z\"");
  EXPECT_EQ(WriteEdn(Read(R"(#uuid "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6")")),
            "#uuid \"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\"");
  EXPECT_EQ(WriteEdn(Read(R"(#my/tag [1])")), "#my/tag [1]");
  EXPECT_EQ(WriteEdn(Read(R"("a\"\\\n\u0007")")), R"("a\"\\\n\u0007")");
}

TEST(EdnEquals, IgnoresPositionsAndOrderOfMapsAndSets) {
  EXPECT_TRUE(EdnEquals(Read("{:a 1 :b 2}"), Read("{:b 2\n :a 1}")));
  EXPECT_FALSE(EdnEquals(Read("{:a 1 :b 2}"), Read("{:a 2 :b 1}")));
  EXPECT_TRUE(EdnEquals(Read("#{1 2 3}"), Read("#{3 1 2}")));
  EXPECT_FALSE(EdnEquals(Read("[1 2]"), Read("[2 1]")));
  EXPECT_FALSE(EdnEquals(Read("[1 2]"), Read("(1 2)")));
  EXPECT_FALSE(EdnEquals(Read("1"), Read("1.0")));
  EXPECT_FALSE(EdnEquals(Read("a"), Read(":a")));
  EXPECT_FALSE(EdnEquals(Read("\"a\""), Read("a")));
  EXPECT_TRUE(EdnEquals(Read("##NaN"), Read("##NaN")));
}

TEST(EdnFactories, BuildNodes) {
  EXPECT_TRUE(Edn::Symbol("?x").IsSymbol("?x"));
  EXPECT_TRUE(Edn::KeywordNode("db/id").IsKeyword("db/id"));
  EXPECT_EQ(Edn::Int(5).i, 5);
  EXPECT_EQ(Edn::String("s").text, "s");
  EXPECT_EQ(WriteEdn(Edn::Vector({Edn::Symbol("?e"), Edn::KeywordNode("a/b"), Edn::List({Edn::Int(1)})})),
            "[?e :a/b (1)]");
}

TEST(EdnToValue, ConvertsValueForms) {
  auto v = EdnToValue(Read(R"([1 2.5 "s" :k nil true #inst "1970-01-01T00:00:00.007Z"
                                #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6" #bytes "aGk=" {:a [1]}])"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const auto& t = v->as_tuple();
  ASSERT_EQ(t.size(), 10u);
  EXPECT_EQ(t[0], Value::Long(1));
  EXPECT_EQ(t[1], Value::Double(2.5));
  EXPECT_EQ(t[2], Value::String("s"));
  EXPECT_EQ(t[3], Value::Kw("k"));
  EXPECT_TRUE(t[4].is_nil());
  EXPECT_EQ(t[5], Value::Bool(true));
  EXPECT_EQ(t[6], Value::Instant(7));
  EXPECT_EQ(t[7].type(), ValueType::kUuid);
  EXPECT_EQ(t[8], Value::Bytes("hi"));
  EXPECT_EQ(t[9], Value::Map({{Value::Kw("a"), Value::Tuple({Value::Long(1)})}}));
}

TEST(EdnToValue, RejectsNonValuesWithPosition) {
  auto expect = [](std::string_view text, std::string_view msg) {
    auto v = EdnToValue(Read(text));
    ASSERT_FALSE(v.ok()) << text;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(v.status().message(), msg);
  };
  expect("[1\n  foo]", "2:3: a symbol (foo) is not a value");
  expect("(1 2)", "1:1: a list ((1 2)) is not a value");
  expect("[#{1}]", "1:2: a set (#{1}) is not a value");
  expect("\\c", "1:1: a character (\\c) is not a value");
  expect("#foo/bar 1", "1:1: unsupported tag #foo/bar (not a value)");
  expect("#bytes 12", "1:1: #bytes needs a base64 string");
  expect("#bytes \"!!\"", "1:8: invalid base64 in #bytes \"!!\"");
}

TEST(ValueToEdn, ConvertsEveryType) {
  EXPECT_EQ(WriteEdn(ValueToEdn(Value::Ref(EntityId{17}))), "17");
  EXPECT_EQ(WriteEdn(ValueToEdn(Value::Bytes("hi"))), "#bytes \"aGk=\"");
  Value v = Value::Tuple({Value::Long(1), Value::String("x"), Value::Kw("a/b"), Value::Instant(0), Value(),
                          Value::Map({{Value::Kw("k"), Value::Double(0.5)}})});
  EXPECT_EQ(WriteEdn(ValueToEdn(v)), v.ToString());
}

}  // namespace
}  // namespace cairn
