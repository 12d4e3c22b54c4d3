// EDN reader and writer (https://github.com/edn-format/edn).
//
// The reader produces an Edn tree that keeps symbols, lists and sets apart so
// the Datalog parser and the transaction parser see exactly what was written.
// Every node carries the 1-based line and column where it starts; every error
// is InvalidArgument with a message "LINE:COL: what is wrong".
//
// Supported: nil, true/false, strings with escapes (\t \r \n \\ \" \uXXXX),
// characters (\a \newline \space \tab \return \uXXXX), integers (with optional
// N suffix; out-of-int64 rejected), floats (with optional M suffix), keywords,
// symbols, lists, vectors, maps, sets, #inst "RFC3339", #uuid "...", other
// #tag forms (kept as kTagged), ; comments, #_ discard, commas as whitespace.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/status.h"
#include "cairn/value.h"

namespace cairn {

struct Edn {
  enum class Kind : uint8_t {
    kNil, kBool, kInt, kFloat, kString, kChar, kKeyword, kSymbol,
    kList, kVector, kMap, kSet, kInst, kUuid, kTagged,
  };
  Kind kind = Kind::kNil;
  bool b = false;
  int64_t i = 0;     // kInt; kInst: ms since epoch
  double d = 0;      // kFloat
  char32_t ch = 0;   // kChar
  // kString: contents; kSymbol: "ns/name" or "name"; kKeyword: text without
  // the colon; kTagged: the tag without '#'.
  std::string text;
  Uuid uuid;         // kUuid
  // kList/kVector/kSet: elements; kMap: k0 v0 k1 v1 ...; kTagged: one element.
  std::vector<Edn> items;
  int line = 0;
  int column = 0;

  bool is(Kind k) const { return kind == k; }
  bool IsSymbol(std::string_view name) const { return kind == Kind::kSymbol && text == name; }
  bool IsKeyword(std::string_view name) const { return kind == Kind::kKeyword && text == name; }
  // "3:14" — for error messages.
  std::string Where() const;

  static Edn Symbol(std::string name);
  static Edn KeywordNode(std::string name);
  static Edn Int(int64_t v);
  static Edn String(std::string s);
  static Edn Vector(std::vector<Edn> items);
  static Edn List(std::vector<Edn> items);
};

// Appends the UTF-8 encoding of code point `cp` (REQUIRES: cp <= 0x10FFFF).
void AppendUtf8(std::string* out, char32_t cp);

// "integer", "vector", "#inst", ... for error messages.
const char* EdnKindName(Edn::Kind kind);

// Reads exactly one form; anything but whitespace/comments after it is an error.
Result<Edn> ReadEdn(std::string_view text);
// Reads every form in `text`.
Result<std::vector<Edn>> ReadEdnAll(std::string_view text);

// Canonical text. Round trip: ReadEdn(WriteEdn(x)) equals x (modulo positions).
std::string WriteEdn(const Edn& edn);
// Structural equality ignoring positions; maps and sets compare as unordered.
bool EdnEquals(const Edn& a, const Edn& b);

// Value <-> Edn. kInt -> long, kFloat -> double, kString -> string,
// kKeyword -> keyword, kInst -> instant, kUuid -> uuid, kBool -> bool,
// vector -> tuple, map -> map, nil -> nil, #bytes "base64" -> bytes.
// Symbols, lists, sets, chars and other tags are InvalidArgument (with Where()).
Result<Value> EdnToValue(const Edn& edn);
// Refs become kInt.
Edn ValueToEdn(const Value& v);

}  // namespace cairn
