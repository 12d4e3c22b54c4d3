#include "storage/value_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace cairn::storage {

namespace {

constexpr uint8_t kEnd = 0x00;
constexpr int kMaxDepth = 64;

uint8_t Tag(ValueType t) { return static_cast<uint8_t>(static_cast<uint8_t>(t) + 1); }

void PutU64(uint64_t x, std::string* out) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(x & 0xFF);
    x >>= 8;
  }
  out->append(buf, 8);
}

void PutEscaped(std::string_view s, std::string* out) {
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\0') {
      out->append(s.data() + start, i - start);
      out->push_back('\0');
      out->push_back(static_cast<char>(0xFF));
      start = i + 1;
    }
  }
  out->append(s.data() + start, s.size() - start);
  out->push_back('\0');
  out->push_back('\x01');
}

uint64_t DoubleKey(double d) {
  if (d == 0) d = 0.0;  // -0.0 == 0.0 in Value order: one encoding
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  if (std::isnan(d)) bits = 0x7FF8000000000000ull;  // one NaN, after +inf
  return (bits & (uint64_t{1} << 63)) ? ~bits : bits ^ (uint64_t{1} << 63);
}

double DoubleFromKey(uint64_t key) {
  uint64_t bits = (key & (uint64_t{1} << 63)) ? key ^ (uint64_t{1} << 63) : ~key;
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : p_(bytes) {}

  bool done() const { return pos_ == p_.size(); }
  Status Error(std::string_view what) const {
    return Status::Corruption("bad value encoding at byte " + std::to_string(pos_) + ": " + std::string(what));
  }

  Result<uint64_t> U64() {
    if (p_.size() - pos_ < 8) return Error("truncated integer");
    uint64_t x = 0;
    for (int i = 0; i < 8; ++i) x = (x << 8) | static_cast<uint8_t>(p_[pos_ + i]);
    pos_ += 8;
    return x;
  }

  Result<std::string> Escaped() {
    std::string s;
    while (true) {
      size_t z = p_.find('\0', pos_);
      if (z == std::string_view::npos || z + 1 >= p_.size()) return Error("unterminated string");
      s.append(p_.data() + pos_, z - pos_);
      uint8_t next = static_cast<uint8_t>(p_[z + 1]);
      pos_ = z + 2;
      if (next == 0x01) return s;
      if (next != 0xFF) return Error("bad string escape");
      s.push_back('\0');
    }
  }

  Result<Value> Decode(int depth) {
    if (depth > kMaxDepth) return Error("nesting too deep");
    if (pos_ >= p_.size()) return Error("truncated value");
    uint8_t tag = static_cast<uint8_t>(p_[pos_++]);
    if (tag == 0 || tag > Tag(ValueType::kMap)) return Error("unknown type tag " + std::to_string(tag));
    auto type = static_cast<ValueType>(tag - 1);
    switch (type) {
      case ValueType::kNil: return Value();
      case ValueType::kBool: {
        if (pos_ >= p_.size()) return Error("truncated bool");
        uint8_t b = static_cast<uint8_t>(p_[pos_++]);
        if (b > 1) return Error("bad bool");
        return Value::Bool(b == 1);
      }
      case ValueType::kLong:
      case ValueType::kInstant: {
        CAIRN_ASSIGN_OR_RETURN(uint64_t x, U64());
        auto i = static_cast<int64_t>(x ^ (uint64_t{1} << 63));
        return type == ValueType::kLong ? Value::Long(i) : Value::Instant(i);
      }
      case ValueType::kDouble: {
        CAIRN_ASSIGN_OR_RETURN(uint64_t x, U64());
        return Value::Double(DoubleFromKey(x));
      }
      case ValueType::kString: {
        CAIRN_ASSIGN_OR_RETURN(std::string s, Escaped());
        return Value::String(std::move(s));
      }
      case ValueType::kBytes: {
        CAIRN_ASSIGN_OR_RETURN(std::string s, Escaped());
        return Value::Bytes(std::move(s));
      }
      case ValueType::kKeyword: {
        CAIRN_ASSIGN_OR_RETURN(std::string s, Escaped());
        if (s.empty()) return Error("empty keyword");
        return Value::Kw(Keyword::Intern(s));
      }
      case ValueType::kRef: {
        CAIRN_ASSIGN_OR_RETURN(uint64_t x, U64());
        return Value::Ref(EntityId{x});
      }
      case ValueType::kUuid: {
        CAIRN_ASSIGN_OR_RETURN(uint64_t hi, U64());
        CAIRN_ASSIGN_OR_RETURN(uint64_t lo, U64());
        return Value::UuidValue(Uuid{hi, lo});
      }
      case ValueType::kTuple:
      case ValueType::kMap: {
        std::vector<Value> items;
        while (true) {
          if (pos_ >= p_.size()) return Error("unterminated tuple");
          if (static_cast<uint8_t>(p_[pos_]) == kEnd) {
            ++pos_;
            break;
          }
          CAIRN_ASSIGN_OR_RETURN(Value item, Decode(depth + 1));
          items.push_back(std::move(item));
        }
        if (type == ValueType::kTuple) return Value::Tuple(std::move(items));
        if (items.size() % 2 != 0) return Error("odd map");
        std::vector<std::pair<Value, Value>> entries;
        for (size_t i = 0; i < items.size(); i += 2) entries.emplace_back(items[i], items[i + 1]);
        return Value::Map(std::move(entries));
      }
    }
    return Error("unknown type");
  }

 private:
  std::string_view p_;
  size_t pos_ = 0;
};

}  // namespace

void EncodeValue(const Value& v, std::string* out) {
  out->push_back(static_cast<char>(Tag(v.type())));
  switch (v.type()) {
    case ValueType::kNil: break;
    case ValueType::kBool: out->push_back(v.as_bool() ? '\x01' : '\x00'); break;
    case ValueType::kLong: PutU64(static_cast<uint64_t>(v.as_long()) ^ (uint64_t{1} << 63), out); break;
    case ValueType::kInstant: PutU64(static_cast<uint64_t>(v.as_instant()) ^ (uint64_t{1} << 63), out); break;
    case ValueType::kDouble: PutU64(DoubleKey(v.as_double()), out); break;
    case ValueType::kString:
    case ValueType::kBytes: PutEscaped(v.as_string(), out); break;
    case ValueType::kKeyword: PutEscaped(v.as_keyword().str(), out); break;
    case ValueType::kRef: PutU64(v.as_ref().raw, out); break;
    case ValueType::kUuid: {
      Uuid u = v.as_uuid();
      PutU64(u.hi, out);
      PutU64(u.lo, out);
      break;
    }
    case ValueType::kTuple:
      for (const Value& item : v.as_tuple()) EncodeValue(item, out);
      out->push_back(static_cast<char>(kEnd));
      break;
    case ValueType::kMap:
      for (const auto& [k, val] : v.as_map()) {
        EncodeValue(k, out);
        EncodeValue(val, out);
      }
      out->push_back(static_cast<char>(kEnd));
      break;
  }
}

std::string EncodeValue(const Value& v) {
  std::string out;
  EncodeValue(v, &out);
  return out;
}

Result<Value> DecodeValue(std::string_view bytes) {
  Decoder d(bytes);
  CAIRN_ASSIGN_OR_RETURN(Value v, d.Decode(0));
  if (!d.done()) return d.Error("trailing bytes");
  return v;
}

}  // namespace cairn::storage
