// EDN reader and writer (src/core/edn.h); the dialect is written up in
// docs/edn.md.
//
// The reader is a recursive-descent parser over the input bytes. It tracks
// the line and the column (in characters: UTF-8 continuation bytes are not
// counted) of the current position so that every node and every error names
// where it is. Nesting is limited to kMaxDepth so hostile input cannot blow
// the stack.
#include "core/edn.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "core/encoding.h"

namespace cairn {

void AppendUtf8(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

constexpr int kMaxDepth = 512;

// Character classes, one table lookup per byte on the hot paths.
enum : uint8_t {
  kWs = 1,        // whitespace (comma included)
  kSym = 2,       // may appear inside a symbol or keyword
  kSymStart = 4,  // may start a symbol
  kDelim = 8,     // ends a token
};

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (char c : std::string_view(" \n\t\r,\f")) t[static_cast<unsigned char>(c)] |= kWs | kDelim;
  for (char c : std::string_view("()[]{}\";\\")) t[static_cast<unsigned char>(c)] |= kDelim;
  for (int c = 'a'; c <= 'z'; ++c) t[c] |= kSym | kSymStart;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] |= kSym | kSymStart;
  for (int c = '0'; c <= '9'; ++c) t[c] |= kSym;
  for (int c = 0x80; c < 0x100; ++c) t[c] |= kSym | kSymStart;  // UTF-8, validated separately
  for (char c : std::string_view("*!_?$%&=<>.+-/")) t[static_cast<unsigned char>(c)] |= kSym | kSymStart;
  for (char c : std::string_view(":#'")) t[static_cast<unsigned char>(c)] |= kSym;
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

inline bool Is(char c, uint8_t cls) { return (kClasses[static_cast<unsigned char>(c)] & cls) != 0; }
inline bool IsWhitespace(char c) { return Is(c, kWs); }
inline bool IsDelimiter(char c) { return Is(c, kDelim); }
inline bool IsSymbolChar(char c) { return Is(c, kSym); }
inline bool IsSymbolStart(char c) { return Is(c, kSymStart); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

const char* KindNoun(Edn::Kind k) {
  switch (k) {
    case Edn::Kind::kList:
      return "list";
    case Edn::Kind::kVector:
      return "vector";
    case Edn::Kind::kMap:
      return "map";
    case Edn::Kind::kSet:
      return "set";
    default:
      return "form";
  }
}

char CloserOf(Edn::Kind k) {
  switch (k) {
    case Edn::Kind::kList:
      return ')';
    case Edn::Kind::kVector:
      return ']';
    default:
      return '}';
  }
}


// Decodes one UTF-8 code point at s[0..n); returns its length or 0 if invalid
// (overlong forms, surrogates and values past U+10FFFF are invalid).
int DecodeUtf8(const char* s, size_t n, char32_t* cp) {
  auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  if (n == 0) return 0;
  unsigned char c = b(0);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int len;
  char32_t v;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (n < static_cast<size_t>(len)) return 0;
  for (int i = 1; i < len; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i) & 0x3F);
  }
  static const char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (s.size() > 40) out += "...";
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text.data()), n_(text.size()) {}

  // Reads the next form at nesting `depth`. Returns true with *out filled, or
  // false: either an error (error_ set) or no form before `closer` / the end
  // (error_ empty; the closer is not consumed).
  bool ReadNext(Edn* out, int depth) {
    for (;;) {
      SkipWhitespace();
      if (pos_ >= n_) return false;
      char c = s_[pos_];
      if (c == ')' || c == ']' || c == '}') return false;
      if (c == '#' && pos_ + 1 < n_ && s_[pos_ + 1] == '_') {
        int line = line_, col = Column();
        pos_ += 2;
        Edn discarded;
        if (!ReadNext(&discarded, depth)) {
          if (error_.empty()) Fail(line, col, "#_ must be followed by a form to discard");
          return false;
        }
        continue;
      }
      return ReadForm(out, depth);
    }
  }

  // After the last form: only whitespace and comments may follow.
  bool ExpectEnd() {
    Edn extra;
    if (ReadNext(&extra, 0)) {
      Fail(extra.line, extra.column, "unexpected " + Describe(extra) + " after the form (expected end of input)");
      return false;
    }
    if (failed()) return false;
    if (pos_ < n_) {
      FailStrayCloser();
      return false;
    }
    return true;
  }

  bool AtEnd() {
    SkipWhitespace();
    return pos_ >= n_;
  }

  // ReadNext found no form: at the end of input or at a stray closer.
  void FailNoForm() {
    if (AtEnd()) {
      Fail(line_, Column(), "expected a form, found end of input");
    } else {
      FailStrayCloser();
    }
  }

  // At a closing bracket with no open collection.
  void FailStrayCloser() { Fail(line_, Column(), std::string("unexpected '") + s_[pos_] + "' (nothing to close)"); }

  const std::string& error() const { return error_; }
  bool failed() const { return !error_.empty(); }

 private:
  int Column() const { return static_cast<int>(pos_ - line_start_ - cont_) + 1; }

  void Fail(int line, int col, std::string what) {
    if (!error_.empty()) return;  // keep the first error
    error_ = std::to_string(line) + ":" + std::to_string(col) + ": " + std::move(what);
  }

  static std::string Describe(const Edn& e) {
    switch (e.kind) {
      case Edn::Kind::kList:
        return "list";
      case Edn::Kind::kVector:
        return "vector";
      case Edn::Kind::kMap:
        return "map";
      case Edn::Kind::kSet:
        return "set";
      default:
        return "'" + Printable(WriteEdn(e)) + "'";
    }
  }

  void NewLine() {
    ++line_;
    line_start_ = pos_;
    cont_ = 0;
  }

  void SkipWhitespace() {
    while (pos_ < n_) {
      char c = s_[pos_];
      if (c == '\n') {
        ++pos_;
        NewLine();
      } else if (IsWhitespace(c)) {
        ++pos_;
      } else if (c == ';') {
        const void* nl = std::memchr(s_ + pos_, '\n', n_ - pos_);
        pos_ = nl ? static_cast<size_t>(static_cast<const char*>(nl) - s_) : n_;
      } else {
        return;
      }
    }
  }

  // Consumes a run of symbol characters and returns it; counts UTF-8
  // continuation bytes for the column.
  // Also notes the token's slashes and whether it has non-ASCII bytes, for
  // ValidName and ValidUtf8.
  std::string_view Token() {
    size_t start = pos_;
    token_slashes_ = 0;
    token_high_ = false;
    while (pos_ < n_ && IsSymbolChar(s_[pos_])) {
      unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '/') {
        if (token_slashes_++ == 0) token_slash_ = pos_ - start;
      } else if (c >= 0x80) {
        token_high_ = true;
        if ((c & 0xC0) == 0x80) ++cont_;
      }
      ++pos_;
    }
    return std::string_view(s_ + start, pos_ - start);
  }

  // REQUIRES: t is the last Token().
  bool ValidUtf8(std::string_view t) {
    if (!token_high_) return true;
    for (size_t i = 0; i < t.size();) {
      char32_t cp;
      int len = DecodeUtf8(t.data() + i, t.size() - i, &cp);
      if (len == 0) return false;
      i += static_cast<size_t>(len);
    }
    return true;
  }

  bool ReadForm(Edn* out, int depth) {
    out->line = line_;
    out->column = Column();
    char c = s_[pos_];
    switch (c) {
      case '(':
        return ReadColl(out, Edn::Kind::kList, 1, depth);
      case '[':
        return ReadColl(out, Edn::Kind::kVector, 1, depth);
      case '{':
        return ReadColl(out, Edn::Kind::kMap, 1, depth);
      case '"':
        return ReadString(out);
      case '\\':
        return ReadChar(out);
      case ':':
        return ReadKeyword(out);
      case '#':
        return ReadDispatch(out, depth);
      default:
        break;
    }
    if (IsDigit(c) || ((c == '+' || c == '-') && pos_ + 1 < n_ && IsDigit(s_[pos_ + 1]))) return ReadNumber(out);
    if (IsSymbolStart(c)) return ReadSymbol(out);
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      Fail(out->line, out->column, std::string("unexpected control character ") + buf);
    } else {
      Fail(out->line, out->column, std::string("unexpected character '") + c + "'");
    }
    return false;
  }

  bool ReadColl(Edn* out, Edn::Kind kind, size_t opener_len, int depth) {
    int line = out->line, col = out->column;
    if (depth >= kMaxDepth) {
      Fail(line, col, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      return false;
    }
    out->kind = kind;
    pos_ += opener_len;
    char closer = CloserOf(kind);
    // Children are parsed into a scratch vector reused per depth, then moved
    // into an exactly-sized vector: one allocation per collection instead of
    // a cascade of regrowths.
    if (scratch_.size() <= static_cast<size_t>(depth)) scratch_.resize(static_cast<size_t>(depth) + 1);
    std::vector<Edn>& items = scratch_[static_cast<size_t>(depth)];
    size_t base = items.size();  // always 0: each depth has one open collection
    for (;;) {
      items.emplace_back();
      if (ReadNext(&items.back(), depth + 1)) continue;
      items.pop_back();
      if (failed()) {
        items.resize(base);
        return false;
      }
      if (pos_ >= n_) {
        items.resize(base);
        Fail(line_, Column(),
             std::string("unexpected end of input: the ") + KindNoun(kind) + " opened at " + std::to_string(line) +
                 ":" + std::to_string(col) + " needs a closing '" + closer + "'");
        return false;
      }
      if (s_[pos_] != closer) {
        items.resize(base);
        Fail(line_, Column(),
             std::string("unexpected '") + s_[pos_] + "': the " + KindNoun(kind) + " opened at " +
                 std::to_string(line) + ":" + std::to_string(col) + " is closed by '" + closer + "'");
        return false;
      }
      ++pos_;
      break;
    }
    out->items.reserve(items.size() - base);
    for (size_t i = base; i < items.size(); ++i) out->items.push_back(std::move(items[i]));
    items.resize(base);
    if (kind == Edn::Kind::kMap) {
      if (out->items.size() % 2 != 0) {
        const Edn& last = out->items.back();
        Fail(line, col,
             "map literal has an odd number of forms (" + std::to_string(out->items.size()) + "): the key " +
                 Describe(last) + " at " + last.Where() + " has no value");
        return false;
      }
      return CheckDistinct(*out, 2, "duplicate key ", " in map");
    }
    if (kind == Edn::Kind::kSet) return CheckDistinct(*out, 1, "duplicate element ", " in set");
    return true;
  }

  // Rejects two structurally equal items (keys for maps: stride 2).
  bool CheckDistinct(const Edn& coll, size_t stride, const char* pre, const char* post) {
    const auto& items = coll.items;
    size_t n = items.size() / stride;
    if (n < 2) return true;
    auto fail = [&](size_t j) {
      const Edn& dup = items[j * stride];
      Fail(dup.line, dup.column, pre + Printable(WriteEdn(dup)) + post);
      return false;
    };
    if (n <= 32) {
      // Common case: keys that are all keywords (tx-data maps). Sort their
      // texts and look for neighbours; no allocation.
      bool all_keywords = true;
      for (size_t j = 0; j < n && all_keywords; ++j) all_keywords = items[j * stride].is(Edn::Kind::kKeyword);
      if (all_keywords && n <= 8) {
        // A few keys: compare every pair (mostly their lengths differ). Of
        // several duplicates, name the one the sort below would: the
        // smallest text, at its second occurrence.
        size_t dup = n;
        for (size_t j = 1; j < n; ++j) {
          const std::string& t = items[j * stride].text;
          for (size_t k = 0; k < j; ++k) {
            const std::string& u = items[k * stride].text;
            if (t.size() == u.size() && std::memcmp(t.data(), u.data(), t.size()) == 0) {
              if (dup == n || t < items[dup * stride].text) dup = j;
              break;
            }
          }
        }
        return dup == n ? true : fail(dup);
      }
      if (all_keywords) {
        std::array<uint32_t, 32> order;
        for (uint32_t j = 0; j < n; ++j) order[j] = j;
        std::sort(order.begin(), order.begin() + static_cast<long>(n), [&](uint32_t x, uint32_t y) {
          int c = items[x * stride].text.compare(items[y * stride].text);
          return c < 0 || (c == 0 && x < y);
        });
        for (size_t j = 1; j < n; ++j) {
          if (items[order[j] * stride].text == items[order[j - 1] * stride].text) return fail(order[j]);
        }
        return true;
      }
    }
    if (n <= 8) {
      for (size_t j = 1; j < n; ++j) {
        for (size_t i = 0; i < j; ++i) {
          if (EdnEquals(items[i * stride], items[j * stride])) return fail(j);
        }
      }
      return true;
    }
    std::unordered_multimap<uint64_t, size_t> seen;
    seen.reserve(n);
    for (size_t j = 0; j < n; ++j) {
      uint64_t h = EdnHash(items[j * stride]);
      auto range = seen.equal_range(h);
      for (auto it = range.first; it != range.second; ++it) {
        if (EdnEquals(items[it->second * stride], items[j * stride])) return fail(j);
      }
      seen.emplace(h, j);
    }
    return true;
  }

 public:
  // Structural hash consistent with EdnEquals (positions ignored; maps and
  // sets order-independent; 0.0 == -0.0; NaN == NaN).
  static uint64_t EdnHash(const Edn& e) {
    auto mix = [](uint64_t h) {
      h ^= h >> 33;
      h *= 0xff51afd7ed558ccdull;
      h ^= h >> 33;
      return h;
    };
    uint64_t h = static_cast<uint64_t>(e.kind) * 0x9E3779B97F4A7C15ull;
    switch (e.kind) {
      case Edn::Kind::kNil:
        break;
      case Edn::Kind::kBool:
        h ^= e.b;
        break;
      case Edn::Kind::kInt:
      case Edn::Kind::kInst:
        h ^= static_cast<uint64_t>(e.i);
        break;
      case Edn::Kind::kFloat: {
        double d = std::isnan(e.d) ? NAN : (e.d == 0 ? 0.0 : e.d);
        uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        h ^= bits;
        break;
      }
      case Edn::Kind::kChar:
        h ^= e.ch;
        break;
      case Edn::Kind::kString:
      case Edn::Kind::kKeyword:
      case Edn::Kind::kSymbol:
        h ^= std::hash<std::string>()(e.text);
        break;
      case Edn::Kind::kUuid:
        h ^= e.uuid.hi ^ mix(e.uuid.lo);
        break;
      case Edn::Kind::kTagged:
        h ^= std::hash<std::string>()(e.text);
        [[fallthrough]];
      case Edn::Kind::kList:
      case Edn::Kind::kVector:
        for (const Edn& x : e.items) h = mix(h ^ EdnHash(x)) + 1;
        break;
      case Edn::Kind::kMap:
      case Edn::Kind::kSet: {
        uint64_t sum = 0;
        size_t stride = e.kind == Edn::Kind::kMap ? 2 : 1;
        for (size_t i = 0; i + stride <= e.items.size(); i += stride) {
          uint64_t x = EdnHash(e.items[i]);
          if (stride == 2) x = mix(x * 31 + EdnHash(e.items[i + 1]));
          sum += mix(x);
        }
        h ^= sum;
        break;
      }
    }
    return mix(h);
  }

 private:
  bool ReadString(Edn* out) {
    int line = out->line, col = out->column;
    out->kind = Edn::Kind::kString;
    ++pos_;
    std::string& t = out->text;
    for (;;) {
      // Copy the run of ordinary ASCII bytes in one go.
      size_t start = pos_;
      while (pos_ < n_) {
        unsigned char c = static_cast<unsigned char>(s_[pos_]);
        if (c == '"' || c == '\\' || c == '\n' || c >= 0x80) break;
        ++pos_;
      }
      t.append(s_ + start, pos_ - start);
      if (pos_ >= n_) {
        Fail(line, col, "unterminated string (no closing '\"' before end of input)");
        return false;
      }
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\n') {
        t.push_back('\n');
        ++pos_;
        NewLine();
        continue;
      }
      if (c == '\\') {
        if (!ReadEscape(&t)) return false;
        continue;
      }
      char32_t cp;
      int len = DecodeUtf8(s_ + pos_, n_ - pos_, &cp);
      if (len == 0) {
        Fail(line_, Column(), "invalid UTF-8 in string");
        return false;
      }
      t.append(s_ + pos_, static_cast<size_t>(len));
      pos_ += static_cast<size_t>(len);
      cont_ += static_cast<size_t>(len - 1);
    }
  }

  bool ReadHex4(int line, int col, char32_t* cp) {
    if (pos_ + 4 > n_) {
      Fail(line, col, "\\u needs 4 hex digits");
      return false;
    }
    char32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      int d = IsDigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
      if (d < 0) {
        Fail(line, col, "\\u needs 4 hex digits");
        return false;
      }
      v = v * 16 + static_cast<char32_t>(d);
    }
    pos_ += 4;
    *cp = v;
    return true;
  }

  bool ReadEscape(std::string* t) {
    int line = line_, col = Column();
    ++pos_;
    if (pos_ >= n_) {
      Fail(line, col, "unterminated escape at end of input");
      return false;
    }
    char c = s_[pos_++];
    switch (c) {
      case 't':
        t->push_back('\t');
        return true;
      case 'r':
        t->push_back('\r');
        return true;
      case 'n':
        t->push_back('\n');
        return true;
      case 'b':
        t->push_back('\b');
        return true;
      case 'f':
        t->push_back('\f');
        return true;
      case '\\':
        t->push_back('\\');
        return true;
      case '"':
        t->push_back('"');
        return true;
      case 'u': {
        char32_t cp;
        if (!ReadHex4(line, col, &cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          // A high surrogate must be followed by an escaped low surrogate.
          char32_t lo = 0;
          if (pos_ + 2 <= n_ && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
            pos_ += 2;
            if (!ReadHex4(line, col, &lo)) return false;
          }
          if (lo < 0xDC00 || lo > 0xDFFF) {
            Fail(line, col, "unpaired surrogate in \\u escape");
            return false;
          }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          Fail(line, col, "unpaired surrogate in \\u escape");
          return false;
        }
        AppendUtf8(t, cp);
        return true;
      }
      default:
        if (static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7F) {
          Fail(line, col, std::string("unsupported escape '\\") + c + "' in string");
        } else {
          Fail(line, col, "unsupported escape in string");
        }
        return false;
    }
  }

  bool ReadChar(Edn* out) {
    int line = out->line, col = out->column;
    out->kind = Edn::Kind::kChar;
    ++pos_;
    if (pos_ >= n_ || (IsWhitespace(s_[pos_]) && s_[pos_] != ',')) {  // \, is the comma
      Fail(line, col, "'\\' must be followed by a character");
      return false;
    }
    char32_t first;
    int len = DecodeUtf8(s_ + pos_, n_ - pos_, &first);
    if (len == 0) {
      Fail(line, col, "invalid UTF-8 in character literal");
      return false;
    }
    size_t start = pos_;
    pos_ += static_cast<size_t>(len);
    cont_ += static_cast<size_t>(len - 1);
    if (first < 0x80 && IsAlpha(static_cast<char>(first))) {
      while (pos_ < n_ && (IsAlpha(s_[pos_]) || IsDigit(s_[pos_]))) ++pos_;
    }
    std::string_view tok(s_ + start, pos_ - start);
    if (pos_ < n_ && !IsDelimiter(s_[pos_])) {
      Fail(line, col, "invalid character literal '\\" + Printable(tok) + "'");
      return false;
    }
    if (tok.size() == static_cast<size_t>(len)) {
      out->ch = first;
      return true;
    }
    if (tok == "newline") {
      out->ch = '\n';
    } else if (tok == "space") {
      out->ch = ' ';
    } else if (tok == "tab") {
      out->ch = '\t';
    } else if (tok == "return") {
      out->ch = '\r';
    } else if (tok == "backspace") {
      out->ch = '\b';
    } else if (tok == "formfeed") {
      out->ch = '\f';
    } else if (tok.size() == 5 && tok[0] == 'u') {
      size_t save = pos_;
      pos_ = start + 1;
      char32_t cp;
      if (!ReadHex4(line, col, &cp)) return false;
      pos_ = save;
      if (cp >= 0xD800 && cp <= 0xDFFF) {
        Fail(line, col, "character literal is a lone surrogate");
        return false;
      }
      out->ch = cp;
    } else {
      Fail(line, col, "unsupported character literal '\\" + Printable(tok) + "'");
      return false;
    }
    return true;
  }

  // Checks the ns/name split of a symbol or keyword body: at most one '/',
  // neither first nor last, or the symbol "/" itself.
  // REQUIRES: body is the last Token().
  bool ValidName(std::string_view body) const {
    if (token_slashes_ == 0) return true;
    if (body.size() == 1) return true;  // "/"
    return token_slashes_ == 1 && token_slash_ != 0 && token_slash_ + 1 != body.size();
  }

  bool ReadKeyword(Edn* out) {
    int line = out->line, col = out->column;
    out->kind = Edn::Kind::kKeyword;
    ++pos_;
    std::string_view body = Token();
    if (body.empty()) {
      Fail(line, col, "':' must be followed by a keyword name");
      return false;
    }
    if (body[0] == ':') {
      Fail(line, col, "auto-resolved keyword ':" + Printable(body) + "' is not EDN");
      return false;
    }
    if (body == "/" || !ValidName(body)) {
      Fail(line, col, "invalid keyword ':" + Printable(body) + "'");
      return false;
    }
    if (!ValidUtf8(body)) {
      Fail(line, col, "invalid UTF-8 in keyword");
      return false;
    }
    out->text.assign(body);
    return true;
  }

  bool ReadSymbol(Edn* out) {
    int line = out->line, col = out->column;
    std::string_view tok = Token();
    if (tok == "nil") {
      out->kind = Edn::Kind::kNil;
      return true;
    }
    if (tok == "true" || tok == "false") {
      out->kind = Edn::Kind::kBool;
      out->b = tok == "true";
      return true;
    }
    if (!ValidName(tok)) {
      Fail(line, col, "invalid symbol '" + Printable(tok) + "'");
      return false;
    }
    if (!ValidUtf8(tok)) {
      Fail(line, col, "invalid UTF-8 in symbol");
      return false;
    }
    out->kind = Edn::Kind::kSymbol;
    out->text.assign(tok);
    return true;
  }

  bool ReadNumber(Edn* out) {
    int line = out->line, col = out->column;
    std::string_view tok = Token();
    auto bad = [&](const std::string& why) {
      Fail(line, col, "invalid number '" + Printable(tok) + "'" + why);
      return false;
    };
    size_t i = 0;
    bool neg = false;
    if (tok[i] == '+' || tok[i] == '-') neg = tok[i++] == '-';
    size_t int_start = i;
    while (i < tok.size() && IsDigit(tok[i])) ++i;
    size_t int_end = i;
    bool is_float = false;
    if (i < tok.size() && tok[i] == '.') {
      is_float = true;
      ++i;
      while (i < tok.size() && IsDigit(tok[i])) ++i;
    }
    if (i < tok.size() && (tok[i] == 'e' || tok[i] == 'E')) {
      is_float = true;
      ++i;
      if (i < tok.size() && (tok[i] == '+' || tok[i] == '-')) ++i;
      size_t exp_start = i;
      while (i < tok.size() && IsDigit(tok[i])) ++i;
      if (i == exp_start) return bad(": the exponent needs digits");
    }
    char suffix = 0;
    if (i < tok.size() && (tok[i] == 'N' || tok[i] == 'M')) suffix = tok[i++];
    if (i != tok.size()) return bad("");
    if (suffix == 'N' && is_float) return bad(": 'N' marks an integer");
    if (suffix == 'M') is_float = true;
    if (int_end - int_start > 1 && tok[int_start] == '0') return bad(": leading zeros are not allowed");
    std::string_view body = tok.substr(0, suffix ? tok.size() - 1 : tok.size());
    if (!is_float) {
      // Accumulate the magnitude as unsigned so that INT64_MIN is readable.
      uint64_t mag = 0;
      const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
      for (size_t k = int_start; k < int_end; ++k) {
        uint64_t d = static_cast<uint64_t>(tok[k] - '0');
        if (mag > (limit - d) / 10) {
          Fail(line, col, "integer " + Printable(tok) + " is out of range for a 64-bit long");
          return false;
        }
        mag = mag * 10 + d;
      }
      out->kind = Edn::Kind::kInt;
      out->i = neg ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
      return true;
    }
    // from_chars takes no '+' and needs a digit after '.'.
    std::string buf;
    buf.reserve(body.size() + 1);
    for (size_t k = (body[0] == '+') ? 1 : 0; k < body.size(); ++k) {
      buf.push_back(body[k]);
      if (body[k] == '.' && (k + 1 == body.size() || !IsDigit(body[k + 1]))) buf.push_back('0');
    }
    double d = 0;
    auto res = std::from_chars(buf.data(), buf.data() + buf.size(), d);
    if (res.ec == std::errc::result_out_of_range) {
      d = std::strtod(buf.c_str(), nullptr);  // tells overflow (inf) from underflow (0 or subnormal)
      if (std::isinf(d)) {
        Fail(line, col, "float " + Printable(tok) + " is out of range for a double");
        return false;
      }
    } else if (res.ec != std::errc() || res.ptr != buf.data() + buf.size()) {
      return bad("");
    }
    out->kind = Edn::Kind::kFloat;
    out->d = d;
    return true;
  }

  bool ReadDispatch(Edn* out, int depth) {
    int line = out->line, col = out->column;
    if (pos_ + 1 >= n_) {
      Fail(line, col, "'#' at end of input");
      return false;
    }
    char c = s_[pos_ + 1];
    if (c == '{') return ReadColl(out, Edn::Kind::kSet, 2, depth);
    if (c == '#') {
      pos_ += 2;
      std::string_view tok = Token();
      out->kind = Edn::Kind::kFloat;
      if (tok == "Inf") {
        out->d = INFINITY;
      } else if (tok == "-Inf") {
        out->d = -INFINITY;
      } else if (tok == "NaN") {
        out->d = NAN;
      } else {
        Fail(line, col, "unknown symbolic value '##" + Printable(tok) + "' (expected ##Inf, ##-Inf or ##NaN)");
        return false;
      }
      return true;
    }
    if (c == '"') {
      Fail(line, col, "regex literals (#\"...\") are not EDN");
      return false;
    }
    if (!IsAlpha(c)) {
      Fail(line, col, std::string("unsupported dispatch '#") + c + "'");
      return false;
    }
    ++pos_;
    std::string_view tag = Token();
    if (!ValidName(tag) || !ValidUtf8(tag)) {
      Fail(line, col, "invalid tag '#" + Printable(tag) + "'");
      return false;
    }
    if (depth >= kMaxDepth) {
      Fail(line, col, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      return false;
    }
    Edn value;
    if (!ReadNext(&value, depth + 1)) {
      if (!failed()) Fail(line, col, "tag '#" + std::string(tag) + "' must be followed by a form");
      return false;
    }
    if (tag == "inst") {
      if (!value.is(Edn::Kind::kString)) {
        Fail(value.line, value.column, "#inst needs a string, found " + Describe(value));
        return false;
      }
      std::string why;
      auto ms = ParseInstant(value.text, &why);
      if (!ms) {
        Fail(value.line, value.column, "invalid #inst \"" + Printable(value.text) + "\": " + why);
        return false;
      }
      out->kind = Edn::Kind::kInst;
      out->i = *ms;
      return true;
    }
    if (tag == "uuid") {
      if (!value.is(Edn::Kind::kString)) {
        Fail(value.line, value.column, "#uuid needs a string, found " + Describe(value));
        return false;
      }
      if (!Uuid::Parse(value.text, &out->uuid)) {
        Fail(value.line, value.column,
             "invalid #uuid \"" + Printable(value.text) + "\" (expected 8-4-4-4-12 hex digits)");
        return false;
      }
      out->kind = Edn::Kind::kUuid;
      return true;
    }
    out->kind = Edn::Kind::kTagged;
    out->text.assign(tag);
    out->items.push_back(std::move(value));
    return true;
  }

  const char* s_;
  size_t n_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  size_t cont_ = 0;  // UTF-8 continuation bytes between line_start_ and pos_
  std::string error_;
  size_t token_slashes_ = 0;  // of the last Token()
  size_t token_slash_ = 0;    // offset of its first '/'
  bool token_high_ = false;   // it has bytes >= 0x80
  // Per nesting depth, see ReadColl. A deque: growing it must not move the
  // vectors of the collections still open.
  std::deque<std::vector<Edn>> scratch_;
};

// ---------------------------------------------------------------------------
// Writer

void AppendChar(std::string* out, char32_t ch) {
  out->push_back('\\');
  switch (ch) {
    case '\n':
      out->append("newline");
      return;
    case ' ':
      out->append("space");
      return;
    case '\t':
      out->append("tab");
      return;
    case '\r':
      out->append("return");
      return;
    case '\b':
      out->append("backspace");
      return;
    case '\f':
      out->append("formfeed");
      return;
    default:
      break;
  }
  if (ch < 0x20 || ch == 0x7F || (ch >= 0xD800 && ch <= 0xDFFF) || ch > 0x10FFFF) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "u%04x", static_cast<unsigned>(ch & 0xFFFF));
    out->append(buf);
    return;
  }
  AppendUtf8(out, ch);
}

void Write(std::string* out, const Edn& e) {
  switch (e.kind) {
    case Edn::Kind::kNil:
      out->append("nil");
      return;
    case Edn::Kind::kBool:
      out->append(e.b ? "true" : "false");
      return;
    case Edn::Kind::kInt: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, e.i);
      out->append(buf, static_cast<size_t>(r.ptr - buf));
      return;
    }
    case Edn::Kind::kFloat:
      internal::AppendEdnDouble(out, e.d);
      return;
    case Edn::Kind::kString:
      internal::AppendEdnString(out, e.text);
      return;
    case Edn::Kind::kChar:
      AppendChar(out, e.ch);
      return;
    case Edn::Kind::kKeyword:
      out->push_back(':');
      out->append(e.text);
      return;
    case Edn::Kind::kSymbol:
      out->append(e.text);
      return;
    case Edn::Kind::kInst:
      out->append("#inst \"");
      out->append(FormatInstant(e.i));
      out->push_back('"');
      return;
    case Edn::Kind::kUuid:
      out->append("#uuid \"");
      out->append(e.uuid.ToString());
      out->push_back('"');
      return;
    case Edn::Kind::kTagged:
      out->push_back('#');
      out->append(e.text);
      out->push_back(' ');
      if (!e.items.empty()) Write(out, e.items[0]);
      return;
    case Edn::Kind::kList:
    case Edn::Kind::kVector:
    case Edn::Kind::kSet: {
      out->append(e.kind == Edn::Kind::kList ? "(" : e.kind == Edn::Kind::kVector ? "[" : "#{");
      for (size_t i = 0; i < e.items.size(); ++i) {
        if (i) out->push_back(' ');
        Write(out, e.items[i]);
      }
      out->push_back(e.kind == Edn::Kind::kList ? ')' : e.kind == Edn::Kind::kVector ? ']' : '}');
      return;
    }
    case Edn::Kind::kMap: {
      out->push_back('{');
      for (size_t i = 0; i < e.items.size(); ++i) {
        if (i) out->append(i % 2 == 0 ? ", " : " ");
        Write(out, e.items[i]);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Edn

std::string Edn::Where() const { return std::to_string(line) + ":" + std::to_string(column); }

Edn Edn::Symbol(std::string name) {
  Edn e;
  e.kind = Kind::kSymbol;
  e.text = std::move(name);
  return e;
}

Edn Edn::KeywordNode(std::string name) {
  Edn e;
  e.kind = Kind::kKeyword;
  e.text = std::move(name);
  return e;
}

Edn Edn::Int(int64_t v) {
  Edn e;
  e.kind = Kind::kInt;
  e.i = v;
  return e;
}

Edn Edn::String(std::string s) {
  Edn e;
  e.kind = Kind::kString;
  e.text = std::move(s);
  return e;
}

Edn Edn::Vector(std::vector<Edn> items) {
  Edn e;
  e.kind = Kind::kVector;
  e.items = std::move(items);
  return e;
}

Edn Edn::List(std::vector<Edn> items) {
  Edn e;
  e.kind = Kind::kList;
  e.items = std::move(items);
  return e;
}

Result<Edn> ReadEdn(std::string_view text) {
  Reader r(text);
  Edn out;
  if (!r.ReadNext(&out, 0)) {
    if (!r.failed()) r.FailNoForm();
    return Status::InvalidArgument(r.error());
  }
  if (!r.ExpectEnd()) return Status::InvalidArgument(r.error());
  return out;
}

Result<std::vector<Edn>> ReadEdnAll(std::string_view text) {
  Reader r(text);
  std::vector<Edn> out;
  for (;;) {
    Edn e;
    if (r.ReadNext(&e, 0)) {
      out.push_back(std::move(e));
      continue;
    }
    if (r.failed()) return Status::InvalidArgument(r.error());
    if (r.AtEnd()) return out;
    r.FailStrayCloser();
    return Status::InvalidArgument(r.error());
  }
}

std::string WriteEdn(const Edn& edn) {
  std::string out;
  Write(&out, edn);
  return out;
}

bool EdnEquals(const Edn& a, const Edn& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Edn::Kind::kNil:
      return true;
    case Edn::Kind::kBool:
      return a.b == b.b;
    case Edn::Kind::kInt:
    case Edn::Kind::kInst:
      return a.i == b.i;
    case Edn::Kind::kFloat:
      return a.d == b.d || (std::isnan(a.d) && std::isnan(b.d));
    case Edn::Kind::kChar:
      return a.ch == b.ch;
    case Edn::Kind::kString:
    case Edn::Kind::kKeyword:
    case Edn::Kind::kSymbol:
      return a.text == b.text;
    case Edn::Kind::kUuid:
      return a.uuid == b.uuid;
    case Edn::Kind::kTagged:
      if (a.text != b.text) return false;
      [[fallthrough]];
    case Edn::Kind::kList:
    case Edn::Kind::kVector:
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (!EdnEquals(a.items[i], b.items[i])) return false;
      }
      return true;
    case Edn::Kind::kMap: {
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i + 1 < a.items.size(); i += 2) {
        bool found = false;
        for (size_t j = 0; j + 1 < b.items.size(); j += 2) {
          if (EdnEquals(a.items[i], b.items[j])) {
            if (!EdnEquals(a.items[i + 1], b.items[j + 1])) return false;
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
    case Edn::Kind::kSet: {
      if (a.items.size() != b.items.size()) return false;
      for (const Edn& x : a.items) {
        bool found = false;
        for (const Edn& y : b.items) {
          if (EdnEquals(x, y)) {
            found = true;
            break;
          }
        }
        if (!found) return false;
      }
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Value <-> Edn

const char* EdnKindName(Edn::Kind k) {
  switch (k) {
    case Edn::Kind::kNil:
      return "nil";
    case Edn::Kind::kBool:
      return "boolean";
    case Edn::Kind::kInt:
      return "integer";
    case Edn::Kind::kFloat:
      return "float";
    case Edn::Kind::kString:
      return "string";
    case Edn::Kind::kChar:
      return "character";
    case Edn::Kind::kKeyword:
      return "keyword";
    case Edn::Kind::kSymbol:
      return "symbol";
    case Edn::Kind::kList:
      return "list";
    case Edn::Kind::kVector:
      return "vector";
    case Edn::Kind::kMap:
      return "map";
    case Edn::Kind::kSet:
      return "set";
    case Edn::Kind::kInst:
      return "#inst";
    case Edn::Kind::kUuid:
      return "#uuid";
    case Edn::Kind::kTagged:
      return "tagged literal";
  }
  return "form";
}

namespace {


Result<Value> ToValue(const Edn& e, int depth) {
  if (depth > kMaxDepth) return Status::InvalidArgument(e.Where() + ": value nested too deeply");
  switch (e.kind) {
    case Edn::Kind::kNil:
      return Value();
    case Edn::Kind::kBool:
      return Value::Bool(e.b);
    case Edn::Kind::kInt:
      return Value::Long(e.i);
    case Edn::Kind::kFloat:
      return Value::Double(e.d);
    case Edn::Kind::kString:
      return Value::String(e.text);
    case Edn::Kind::kKeyword:
      return Value::Kw(e.text);
    case Edn::Kind::kInst:
      return Value::Instant(e.i);
    case Edn::Kind::kUuid:
      return Value::UuidValue(e.uuid);
    case Edn::Kind::kVector: {
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const Edn& x : e.items) {
        CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(x, depth + 1));
        items.push_back(std::move(v));
      }
      return Value::Tuple(std::move(items));
    }
    case Edn::Kind::kMap: {
      std::vector<std::pair<Value, Value>> entries;
      entries.reserve(e.items.size() / 2);
      for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
        CAIRN_ASSIGN_OR_RETURN(Value k, ToValue(e.items[i], depth + 1));
        CAIRN_ASSIGN_OR_RETURN(Value v, ToValue(e.items[i + 1], depth + 1));
        entries.emplace_back(std::move(k), std::move(v));
      }
      return Value::Map(std::move(entries));
    }
    case Edn::Kind::kTagged:
      if (e.text == "bytes") {
        if (e.items.size() != 1 || !e.items[0].is(Edn::Kind::kString)) {
          return Status::InvalidArgument(e.Where() + ": #bytes needs a base64 string");
        }
        auto bytes = Base64Decode(e.items[0].text);
        if (!bytes) {
          return Status::InvalidArgument(e.items[0].Where() + ": invalid base64 in #bytes \"" +
                                         Printable(e.items[0].text) + "\"");
        }
        return Value::Bytes(std::move(*bytes));
      }
      return Status::InvalidArgument(e.Where() + ": unsupported tag #" + e.text + " (not a value)");
    case Edn::Kind::kSymbol:
      return Status::InvalidArgument(e.Where() + ": a symbol (" + Printable(e.text) + ") is not a value");
    case Edn::Kind::kList:
    case Edn::Kind::kSet:
    case Edn::Kind::kChar:
      return Status::InvalidArgument(e.Where() + ": a " + EdnKindName(e.kind) + " (" + Printable(WriteEdn(e)) +
                                     ") is not a value");
  }
  return Status::InvalidArgument(e.Where() + ": not a value");
}

}  // namespace

Result<Value> EdnToValue(const Edn& edn) { return ToValue(edn, 0); }

Edn ValueToEdn(const Value& v) {
  Edn e;
  switch (v.type()) {
    case ValueType::kNil:
      break;
    case ValueType::kBool:
      e.kind = Edn::Kind::kBool;
      e.b = v.as_bool();
      break;
    case ValueType::kLong:
      e.kind = Edn::Kind::kInt;
      e.i = v.as_long();
      break;
    case ValueType::kDouble:
      e.kind = Edn::Kind::kFloat;
      e.d = v.as_double();
      break;
    case ValueType::kInstant:
      e.kind = Edn::Kind::kInst;
      e.i = v.as_instant();
      break;
    case ValueType::kString:
      e.kind = Edn::Kind::kString;
      e.text = v.as_string();
      break;
    case ValueType::kKeyword:
      e.kind = Edn::Kind::kKeyword;
      e.text.assign(v.as_keyword().str());
      break;
    case ValueType::kRef:
      // Transaction entities (bit 63 set) come out negative: the bits are kept.
      e.kind = Edn::Kind::kInt;
      e.i = static_cast<int64_t>(v.as_ref().raw);
      break;
    case ValueType::kUuid:
      e.kind = Edn::Kind::kUuid;
      e.uuid = v.as_uuid();
      break;
    case ValueType::kBytes:
      e.kind = Edn::Kind::kTagged;
      e.text = "bytes";
      e.items.push_back(Edn::String(Base64Encode(v.as_string())));
      break;
    case ValueType::kTuple:
      e.kind = Edn::Kind::kVector;
      for (const Value& x : v.as_tuple()) e.items.push_back(ValueToEdn(x));
      break;
    case ValueType::kMap:
      e.kind = Edn::Kind::kMap;
      for (const auto& [k, x] : v.as_map()) {
        e.items.push_back(ValueToEdn(k));
        e.items.push_back(ValueToEdn(x));
      }
      break;
  }
  return e;
}

}  // namespace cairn
