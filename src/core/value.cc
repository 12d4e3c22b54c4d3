// Keyword interning and Value (include/cairn/value.h).
//
// Keyword interning: a process-wide open-addressing hash table whose slots are
// atomic pointers to immortal Reps. Lookups of an existing keyword never lock:
// they load the current table (acquire) and probe it. Inserts take a mutex,
// re-probe, then publish the new Rep into its slot (release). When the table
// passes half full it is copied into one twice the size and the new table is
// published; old tables are kept alive forever (readers may still hold them;
// their total size is bounded by the size of the live table), and a reader on
// an old table that misses simply falls back to the locked path.
#include "cairn/value.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "core/check.h"
#include "core/encoding.h"
#include "core/stable_hash.h"

namespace cairn {

struct Keyword::Rep {
  std::string text;    // "ns/name"
  uint32_t slash = 0;  // index of the separating '/', or npos-like 0xFFFFFFFF
  uint32_t id = 0;     // 1-based, process-local
  uint64_t hash = 0;   // hash of text, for the intern table
  // The first 8 bytes of text, big-endian, zero-padded: comparing two
  // prefixes orders most keyword pairs without touching the text.
  uint64_t prefix = 0;
};

namespace {
// Text order of two distinct keywords (never equal: texts are unique).
inline int CompareKeywordReps(const Keyword::Rep* a, const Keyword::Rep* b) {
  if (a->prefix != b->prefix) return a->prefix < b->prefix ? -1 : 1;
  int c = std::string_view(a->text).compare(b->text);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}
}  // namespace

namespace {

uint64_t HashText(std::string_view s) {
  // FNV-1a-64 then a final avalanche; only used inside the process.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

struct InternTable {
  explicit InternTable(size_t n) : mask(n - 1), slots(new std::atomic<const Keyword::Rep*>[n]) {
    for (size_t i = 0; i < n; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
  }
  size_t mask;
  std::unique_ptr<std::atomic<const Keyword::Rep*>[]> slots;
};

class Interner {
 public:
  Interner() {
    auto* t = new InternTable(1024);
    tables_.emplace_back(t);
    current_.store(t, std::memory_order_release);
  }

  const Keyword::Rep* Find(const InternTable* t, std::string_view text, uint64_t h) const {
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
      const Keyword::Rep* r = t->slots[i].load(std::memory_order_acquire);
      if (r == nullptr) return nullptr;
      if (r->hash == h && r->text == text) return r;
    }
  }

  const Keyword::Rep* Intern(std::string_view text) {
    uint64_t h = HashText(text);
    if (const Keyword::Rep* r = Find(current_.load(std::memory_order_acquire), text, h)) return r;
    std::lock_guard<std::mutex> lock(mu_);
    InternTable* t = current_.load(std::memory_order_relaxed);
    if (const Keyword::Rep* r = Find(t, text, h)) return r;
    auto* rep = new Keyword::Rep;  // immortal: Keywords are raw pointers to it
    rep->text.assign(text);
    size_t slash = text.find('/');
    // "/" alone is a name, not a namespace separator.
    rep->slash = (slash == std::string_view::npos || text.size() == 1) ? 0xFFFFFFFFu : static_cast<uint32_t>(slash);
    rep->id = ++count_;
    rep->hash = h;
    for (size_t i = 0; i < 8; ++i) {
      rep->prefix = (rep->prefix << 8) | (i < text.size() ? static_cast<unsigned char>(text[i]) : 0u);
    }
    if ((size_t{count_} + 1) * 2 > t->mask + 1) {  // keep the table at most half full
      auto* bigger = new InternTable((t->mask + 1) * 2);
      for (size_t i = 0; i <= t->mask; ++i) {
        if (const Keyword::Rep* r = t->slots[i].load(std::memory_order_relaxed)) Insert(bigger, r);
      }
      tables_.emplace_back(bigger);
      Insert(bigger, rep);
      current_.store(bigger, std::memory_order_release);
    } else {
      Insert(t, rep);
    }
    return rep;
  }

 private:
  static void Insert(InternTable* t, const Keyword::Rep* rep) {
    for (size_t i = rep->hash & t->mask;; i = (i + 1) & t->mask) {
      if (t->slots[i].load(std::memory_order_relaxed) == nullptr) {
        t->slots[i].store(rep, std::memory_order_release);
        return;
      }
    }
  }

  std::mutex mu_;
  std::atomic<InternTable*> current_{nullptr};
  std::vector<std::unique_ptr<InternTable>> tables_;  // guarded by mu_
  uint32_t count_ = 0;                                // guarded by mu_
};

Interner& GlobalInterner() {
  static Interner* interner = new Interner;  // never destroyed: Keywords outlive statics
  return *interner;
}

template <typename T>
const T& HeapAs(const std::shared_ptr<const void>& p) {
  return *static_cast<const T*>(p.get());
}

int CompareBytes(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size());
  int c = n ? std::memcmp(a.data(), b.data(), n) : 0;
  if (c != 0) return c < 0 ? -1 : 1;
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

template <typename T>
int Cmp3(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int CompareDoubles(double a, double b) {
  bool an = std::isnan(a), bn = std::isnan(b);
  if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
  return Cmp3(a, b);  // -0.0 == 0.0
}

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

uint64_t CanonicalDoubleBits(double d) {
  if (std::isnan(d)) return 0x7FF8000000000000ull;
  if (d == 0) return 0;  // -0.0 equals 0.0
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

void AppendEscapedString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out->append(buf);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendValue(std::string* out, const Value& v);

}  // namespace

// ---------------------------------------------------------------------------
// Keyword

Keyword Keyword::Intern(std::string_view text) { return Keyword(GlobalInterner().Intern(text)); }

std::string_view Keyword::str() const { return rep_ ? std::string_view(rep_->text) : std::string_view(); }

std::string_view Keyword::ns() const {
  if (!rep_ || rep_->slash == 0xFFFFFFFFu) return {};
  return std::string_view(rep_->text).substr(0, rep_->slash);
}

std::string_view Keyword::name() const {
  if (!rep_) return {};
  if (rep_->slash == 0xFFFFFFFFu) return rep_->text;
  return std::string_view(rep_->text).substr(rep_->slash + 1);
}

std::string Keyword::ToString() const {
  std::string s = ":";
  s += str();
  return s;
}

uint32_t Keyword::id() const { return rep_ ? rep_->id : 0; }

std::strong_ordering operator<=>(Keyword a, Keyword b) {
  if (a.rep_ == b.rep_) return std::strong_ordering::equal;
  int c = (a.rep_ && b.rep_) ? CompareKeywordReps(a.rep_, b.rep_) : (a.valid() ? 1 : -1);
  return c < 0 ? std::strong_ordering::less : std::strong_ordering::greater;
}

// ---------------------------------------------------------------------------
// Uuid

namespace {
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

bool Uuid::Parse(std::string_view text, Uuid* out) {
  if (text.size() != 36) return false;
  uint64_t parts[2] = {0, 0};
  int nibble = 0;
  for (size_t i = 0; i < 36; ++i) {
    char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
      continue;
    }
    int d = HexDigit(c);
    if (d < 0) return false;
    uint64_t& p = parts[nibble / 16];
    p = (p << 4) | static_cast<uint64_t>(d);
    ++nibble;
  }
  out->hi = parts[0];
  out->lo = parts[1];
  return true;
}

std::string Uuid::ToString() const {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s.push_back('-');
    uint64_t word = i < 16 ? hi : lo;
    int shift = 60 - 4 * (i % 16);
    s.push_back(kHex[(word >> shift) & 0xF]);
  }
  return s;
}

// ---------------------------------------------------------------------------
// ValueType

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kNil:
      return "nil";
    case ValueType::kBool:
      return "boolean";
    case ValueType::kLong:
      return "long";
    case ValueType::kDouble:
      return "double";
    case ValueType::kInstant:
      return "instant";
    case ValueType::kString:
      return "string";
    case ValueType::kKeyword:
      return "keyword";
    case ValueType::kRef:
      return "ref";
    case ValueType::kUuid:
      return "uuid";
    case ValueType::kBytes:
      return "bytes";
    case ValueType::kTuple:
      return "tuple";
    case ValueType::kMap:
      return "map";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Value factories and accessors

Value Value::Bool(bool b) {
  Value v;
  v.type_ = ValueType::kBool;
  v.scalar_.u_ = 0;
  v.scalar_.b_ = b;
  return v;
}

Value Value::Long(int64_t i) {
  Value v;
  v.type_ = ValueType::kLong;
  v.scalar_.i_ = i;
  return v;
}

Value Value::Double(double d) {
  Value v;
  v.type_ = ValueType::kDouble;
  v.scalar_.d_ = d;
  return v;
}

Value Value::Instant(int64_t ms_since_epoch) {
  Value v;
  v.type_ = ValueType::kInstant;
  v.scalar_.i_ = ms_since_epoch;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.type_ = ValueType::kString;
  v.heap_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::Kw(Keyword k) {
  CAIRN_CHECK_MSG(k.valid(), "Value::Kw of an invalid keyword");
  Value v;
  v.type_ = ValueType::kKeyword;
  v.scalar_.k_ = k.rep_;
  return v;
}

Value Value::Ref(EntityId e) {
  Value v;
  v.type_ = ValueType::kRef;
  v.scalar_.u_ = e.raw;
  return v;
}

Value Value::UuidValue(Uuid u) {
  Value v;
  v.type_ = ValueType::kUuid;
  v.heap_ = std::make_shared<const Uuid>(u);
  return v;
}

Value Value::Bytes(std::string bytes) {
  Value v;
  v.type_ = ValueType::kBytes;
  v.heap_ = std::make_shared<const std::string>(std::move(bytes));
  return v;
}

Value Value::Tuple(std::vector<Value> items) {
  Value v;
  v.type_ = ValueType::kTuple;
  v.heap_ = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}

Value Value::Map(std::vector<std::pair<Value, Value>> entries) {
  // Canonical form: entries sorted by key; for a repeated key the last wins
  // (like assoc). This makes Compare, Hash and ToString order-insensitive.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const auto& x, const auto& y) { return x.first.Compare(y.first) < 0; });
  std::vector<std::pair<Value, Value>> out;
  out.reserve(entries.size());
  for (auto& e : entries) {
    if (!out.empty() && out.back().first == e.first) {
      out.back().second = std::move(e.second);
    } else {
      out.push_back(std::move(e));
    }
  }
  Value v;
  v.type_ = ValueType::kMap;
  v.heap_ = std::make_shared<const std::vector<std::pair<Value, Value>>>(std::move(out));
  return v;
}

bool Value::as_bool() const {
  CAIRN_CHECK(type_ == ValueType::kBool);
  return scalar_.b_;
}
int64_t Value::as_long() const {
  CAIRN_CHECK(type_ == ValueType::kLong);
  return scalar_.i_;
}
double Value::as_double() const {
  CAIRN_CHECK(type_ == ValueType::kDouble);
  return scalar_.d_;
}
int64_t Value::as_instant() const {
  CAIRN_CHECK(type_ == ValueType::kInstant);
  return scalar_.i_;
}
const std::string& Value::as_string() const {
  CAIRN_CHECK(type_ == ValueType::kString || type_ == ValueType::kBytes);
  return HeapAs<std::string>(heap_);
}
Keyword Value::as_keyword() const {
  CAIRN_CHECK(type_ == ValueType::kKeyword);
  return Keyword(scalar_.k_);
}
EntityId Value::as_ref() const {
  CAIRN_CHECK(type_ == ValueType::kRef);
  return EntityId{scalar_.u_};
}
Uuid Value::as_uuid() const {
  CAIRN_CHECK(type_ == ValueType::kUuid);
  return HeapAs<Uuid>(heap_);
}
const std::vector<Value>& Value::as_tuple() const {
  CAIRN_CHECK(type_ == ValueType::kTuple);
  return HeapAs<std::vector<Value>>(heap_);
}
const std::vector<std::pair<Value, Value>>& Value::as_map() const {
  CAIRN_CHECK(type_ == ValueType::kMap);
  return HeapAs<std::vector<std::pair<Value, Value>>>(heap_);
}

// ---------------------------------------------------------------------------
// Order and hashing

int Value::Compare(const Value& o) const {
  if (type_ != o.type_) return type_ < o.type_ ? -1 : 1;
  switch (type_) {
    case ValueType::kNil:
      return 0;
    case ValueType::kBool:
      return Cmp3<int>(scalar_.b_, o.scalar_.b_);
    case ValueType::kLong:
    case ValueType::kInstant:
      return Cmp3(scalar_.i_, o.scalar_.i_);
    case ValueType::kDouble:
      return CompareDoubles(scalar_.d_, o.scalar_.d_);
    case ValueType::kRef:
      return Cmp3(scalar_.u_, o.scalar_.u_);
    case ValueType::kKeyword: {
      if (scalar_.k_ == o.scalar_.k_) return 0;
      return CompareKeywordReps(scalar_.k_, o.scalar_.k_);
    }
    case ValueType::kString:
    case ValueType::kBytes:
      if (heap_ == o.heap_) return 0;
      return CompareBytes(HeapAs<std::string>(heap_), HeapAs<std::string>(o.heap_));
    case ValueType::kUuid: {
      const Uuid& a = HeapAs<Uuid>(heap_);
      const Uuid& b = HeapAs<Uuid>(o.heap_);
      if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
      return Cmp3(a.lo, b.lo);
    }
    case ValueType::kTuple: {
      if (heap_ == o.heap_) return 0;
      const auto& a = HeapAs<std::vector<Value>>(heap_);
      const auto& b = HeapAs<std::vector<Value>>(o.heap_);
      size_t n = std::min(a.size(), b.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = a[i].Compare(b[i])) return c;
      }
      return Cmp3(a.size(), b.size());
    }
    case ValueType::kMap: {
      if (heap_ == o.heap_) return 0;
      const auto& a = HeapAs<std::vector<std::pair<Value, Value>>>(heap_);
      const auto& b = HeapAs<std::vector<std::pair<Value, Value>>>(o.heap_);
      size_t n = std::min(a.size(), b.size());
      for (size_t i = 0; i < n; ++i) {
        if (int c = a[i].first.Compare(b[i].first)) return c;
        if (int c = a[i].second.Compare(b[i].second)) return c;
      }
      return Cmp3(a.size(), b.size());
    }
  }
  return 0;
}

size_t Value::Hash() const {
  uint64_t t = static_cast<uint64_t>(type_) * 0x9E3779B97F4A7C15ull;
  switch (type_) {
    case ValueType::kNil:
      return static_cast<size_t>(Mix(t));
    case ValueType::kBool:
      return static_cast<size_t>(Mix(t ^ (scalar_.b_ ? 1 : 0)));
    case ValueType::kLong:
    case ValueType::kInstant:
    case ValueType::kRef:
      return static_cast<size_t>(Mix(t ^ scalar_.u_));
    case ValueType::kDouble:
      return static_cast<size_t>(Mix(t ^ CanonicalDoubleBits(scalar_.d_)));
    case ValueType::kKeyword:
      return static_cast<size_t>(Mix(t ^ scalar_.k_->id));
    case ValueType::kString:
    case ValueType::kBytes:
      return static_cast<size_t>(t ^ std::hash<std::string>()(HeapAs<std::string>(heap_)));
    case ValueType::kUuid: {
      const Uuid& u = HeapAs<Uuid>(heap_);
      return static_cast<size_t>(Mix(t ^ u.hi ^ Mix(u.lo)));
    }
    case ValueType::kTuple: {
      uint64_t h = t;
      for (const Value& x : HeapAs<std::vector<Value>>(heap_)) h = Mix(h ^ x.Hash()) + 0x9E3779B97F4A7C15ull;
      return static_cast<size_t>(h);
    }
    case ValueType::kMap: {
      uint64_t h = t;
      for (const auto& [k, x] : HeapAs<std::vector<std::pair<Value, Value>>>(heap_)) {
        h = Mix(h ^ k.Hash()) + 0x9E3779B97F4A7C15ull;
        h = Mix(h ^ x.Hash()) + 0x9E3779B97F4A7C15ull;
      }
      return static_cast<size_t>(h);
    }
  }
  return 0;
}

void internal::AppendStableEncoding(StableHasher* h, const Value& v) {
  h->Byte(static_cast<uint8_t>(v.type()));
  switch (v.type()) {
    case ValueType::kNil:
      return;
    case ValueType::kBool:
      h->Byte(v.as_bool() ? 1 : 0);
      return;
    case ValueType::kLong:
      h->U64(static_cast<uint64_t>(v.as_long()));
      return;
    case ValueType::kInstant:
      h->U64(static_cast<uint64_t>(v.as_instant()));
      return;
    case ValueType::kDouble:
      h->U64(CanonicalDoubleBits(v.as_double()));
      return;
    case ValueType::kRef:
      h->U64(v.as_ref().raw);
      return;
    case ValueType::kString:
    case ValueType::kBytes:
      h->Text(v.as_string());
      return;
    case ValueType::kKeyword:
      h->Text(v.as_keyword().str());
      return;
    case ValueType::kUuid: {
      Uuid u = v.as_uuid();
      h->U64(u.hi);
      h->U64(u.lo);
      return;
    }
    case ValueType::kTuple: {
      const auto& items = v.as_tuple();
      h->U64(items.size());
      for (const Value& x : items) AppendStableEncoding(h, x);
      return;
    }
    case ValueType::kMap: {
      const auto& entries = v.as_map();
      h->U64(entries.size());
      for (const auto& [k, x] : entries) {
        AppendStableEncoding(h, k);
        AppendStableEncoding(h, x);
      }
      return;
    }
  }
}

uint64_t Value::StableHash() const {
  internal::StableHasher h;
  internal::AppendStableEncoding(&h, *this);
  return h.value();
}

uint64_t StableHashOf(Keyword attr, const Value& v) {
  internal::StableHasher h;
  h.Text(attr.str());
  internal::AppendStableEncoding(&h, v);
  return h.value();
}

// ---------------------------------------------------------------------------
// Text

namespace {

void AppendDouble(std::string* out, double d) {
  if (std::isnan(d)) {
    out->append("##NaN");
    return;
  }
  if (std::isinf(d)) {
    out->append(d > 0 ? "##Inf" : "##-Inf");
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
  std::string_view s(buf, static_cast<size_t>(res.ptr - buf));
  out->append(s);
  // "1" or "1e+20" must still read back as a float: ensure '.' or 'e'.
  if (s.find_first_of(".eE") == std::string_view::npos) out->append(".0");
}

void AppendValue(std::string* out, const Value& v) {
  switch (v.type()) {
    case ValueType::kNil:
      out->append("nil");
      return;
    case ValueType::kBool:
      out->append(v.as_bool() ? "true" : "false");
      return;
    case ValueType::kLong:
      out->append(std::to_string(v.as_long()));
      return;
    case ValueType::kDouble:
      AppendDouble(out, v.as_double());
      return;
    case ValueType::kInstant:
      out->append("#inst \"");
      out->append(FormatInstant(v.as_instant()));
      out->push_back('"');
      return;
    case ValueType::kString:
      AppendEscapedString(out, v.as_string());
      return;
    case ValueType::kKeyword:
      out->push_back(':');
      out->append(v.as_keyword().str());
      return;
    case ValueType::kRef:
      out->append(std::to_string(v.as_ref().raw));
      return;
    case ValueType::kUuid:
      out->append("#uuid \"");
      out->append(v.as_uuid().ToString());
      out->push_back('"');
      return;
    case ValueType::kBytes:
      out->append("#bytes \"");
      out->append(Base64Encode(v.as_string()));
      out->push_back('"');
      return;
    case ValueType::kTuple: {
      out->push_back('[');
      bool first = true;
      for (const Value& x : v.as_tuple()) {
        if (!first) out->push_back(' ');
        first = false;
        AppendValue(out, x);
      }
      out->push_back(']');
      return;
    }
    case ValueType::kMap: {
      out->push_back('{');
      bool first = true;
      for (const auto& [k, x] : v.as_map()) {
        if (!first) out->append(", ");
        first = false;
        AppendValue(out, k);
        out->push_back(' ');
        AppendValue(out, x);
      }
      out->push_back('}');
      return;
    }
  }
}

}  // namespace

std::string Value::ToString() const {
  std::string s;
  AppendValue(&s, *this);
  return s;
}

namespace internal {
void AppendEdnString(std::string* out, std::string_view s) { AppendEscapedString(out, s); }
void AppendEdnDouble(std::string* out, double d) { AppendDouble(out, d); }
}  // namespace internal

}  // namespace cairn
