#include "core/encoding.h"

#include <cstdio>

namespace cairn {

namespace {

constexpr int64_t kMsPerDay = 86400000;

// Days since 1970-01-01 of a proleptic Gregorian date (era-based arithmetic:
// 400-year eras of 146097 days, years starting in March so that the leap day
// is the last day of the year).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2 ? 1 : 0);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

class InstantParser {
 public:
  InstantParser(std::string_view s, std::string* error) : s_(s), error_(error) {}

  std::optional<int64_t> Parse() {
    int64_t year = 0;
    int month = 1, day = 1, hour = 0, minute = 0, second = 0, ms = 0;
    int offset_min = 0;
    bool neg_year = false;
    size_t year_digits_min = 4;
    if (Peek() == '+' || Peek() == '-') {
      neg_year = Peek() == '-';
      ++pos_;
      year_digits_min = 5;
    }
    size_t start = pos_;
    while (pos_ < s_.size() && IsDigit(s_[pos_]) && pos_ - start < 12) year = year * 10 + (s_[pos_++] - '0');
    if (pos_ - start < year_digits_min) {
      return Fail(year_digits_min == 4 ? "expected a 4-digit year" : "expected a signed year of at least 5 digits");
    }
    if (pos_ < s_.size() && IsDigit(s_[pos_])) return Fail("year out of range");
    if (neg_year) year = -year;
    if (pos_ < s_.size()) {
      if (!Expect('-') || !Digits(2, &month)) return Fail("expected '-MM' after the year");
      if (month < 1 || month > 12) return Fail("month out of range");
      if (pos_ < s_.size()) {
        if (!Expect('-') || !Digits(2, &day)) return Fail("expected '-DD' after the month");
        if (day < 1 || day > DaysInMonth(year, month)) return Fail("day out of range");
        if (pos_ < s_.size()) {
          if (!(Expect('T') || Expect('t'))) return Fail("expected 'T' after the date");
          if (!Digits(2, &hour) || !Expect(':') || !Digits(2, &minute)) return Fail("expected 'HH:MM' after 'T'");
          if (hour > 23) return Fail("hour out of range");
          if (minute > 59) return Fail("minute out of range");
          if (Expect(':')) {
            if (!Digits(2, &second)) return Fail("expected 'SS' seconds");
            if (second > 60) return Fail("second out of range");  // 60: a leap second
            if (Expect('.')) {
              size_t fstart = pos_;
              int scale = 100;
              while (pos_ < s_.size() && IsDigit(s_[pos_])) {
                ms += scale * (s_[pos_] - '0');  // digits past milliseconds add 0 (floor)
                scale /= 10;
                ++pos_;
              }
              if (pos_ == fstart) return Fail("expected digits after '.'");
            }
          }
          if (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == 'Z' || c == 'z') {
              ++pos_;
            } else if (c == '+' || c == '-') {
              ++pos_;
              int oh = 0, om = 0;
              if (!Digits(2, &oh) || !Expect(':') || !Digits(2, &om)) return Fail("expected offset '±HH:MM'");
              if (oh > 23 || om > 59) return Fail("offset out of range");
              offset_min = (c == '-' ? -1 : 1) * (oh * 60 + om);
            } else {
              return Fail("expected 'Z' or an offset '±HH:MM'");
            }
          }
        }
      }
    }
    if (pos_ != s_.size()) return Fail("unexpected text after the instant");
    __int128 days = DaysFromCivil(year, month, day);
    __int128 total = days * kMsPerDay + static_cast<__int128>(((hour * 60 + minute) * 60 + second) * int64_t{1000}) + ms -
                     static_cast<__int128>(offset_min) * 60000;
    if (total > INT64_MAX || total < INT64_MIN) return Fail("instant out of range");
    return static_cast<int64_t>(total);
  }

 private:
  static bool IsDigit(char c) { return c >= '0' && c <= '9'; }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool Expect(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }
  bool Digits(int n, int* out) {
    int v = 0;
    for (int i = 0; i < n; ++i) {
      if (!IsDigit(Peek())) return false;
      v = v * 10 + (s_[pos_++] - '0');
    }
    *out = v;
    return true;
  }
  std::optional<int64_t> Fail(const char* what) {
    if (error_) *error_ = std::string(what) + " at offset " + std::to_string(pos_);
    return std::nullopt;
  }

  std::string_view s_;
  std::string* error_;
  size_t pos_ = 0;
};

}  // namespace

std::string FormatInstant(int64_t ms_since_epoch) {
  int64_t days = ms_since_epoch / kMsPerDay;
  int64_t rem = ms_since_epoch % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    days -= 1;
  }
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  int64_t secs = rem / 1000;
  int ms = static_cast<int>(rem % 1000);
  char buf[64];
  if (y >= 0 && y <= 9999) {
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", static_cast<long long>(y), m, d,
                  static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60), ms);
  } else {
    std::snprintf(buf, sizeof buf, "%c%05lld-%02d-%02dT%02d:%02d:%02d.%03dZ", y < 0 ? '-' : '+',
                  static_cast<long long>(y < 0 ? -y : y), m, d, static_cast<int>(secs / 3600),
                  static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60), ms);
  }
  return buf;
}

std::optional<int64_t> ParseInstant(std::string_view text, std::string* error) {
  return InstantParser(text, error).Parse();
}

namespace {
constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
int B64Index(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out.push_back(kB64[n >> 18]);
    out.push_back(kB64[(n >> 12) & 63]);
    out.push_back(kB64[(n >> 6) & 63]);
    out.push_back(kB64[n & 63]);
  }
  size_t rest = bytes.size() - i;
  if (rest == 1) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    out.push_back(kB64[n >> 18]);
    out.push_back(kB64[(n >> 12) & 63]);
    out.append("==");
  } else if (rest == 2) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out.push_back(kB64[n >> 18]);
    out.push_back(kB64[(n >> 12) & 63]);
    out.push_back(kB64[(n >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  size_t n = text.size();
  size_t pad = 0;
  while (n > 0 && text[n - 1] == '=' && pad < 2) {
    --n;
    ++pad;
  }
  if (pad > 0 && (n + pad) % 4 != 0) return std::nullopt;
  if (n % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(n * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    int v = B64Index(text[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero, so that every byte string has one encoding.
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace cairn
