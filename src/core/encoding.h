// Text encodings shared by Value::ToString and the EDN reader/writer:
// RFC 3339 instants, base64, EDN string and float literals.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cairn {

// "2024-05-06T07:08:09.123Z" (always UTC, always milliseconds). Years outside
// 0000..9999 are written with a sign and at least 5 digits (+12345, -00001),
// which ParseInstant also accepts.
std::string FormatInstant(int64_t ms_since_epoch);

// Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" into ms since
// the epoch; also the EDN #inst prefixes "YYYY", "YYYY-MM", "YYYY-MM-DD",
// "YYYY-MM-DDTHH:MM" (missing parts are their minimum, offset defaults to
// UTC). Fractions beyond milliseconds are truncated toward the past
// (floor). On failure returns nullopt and sets *error to what is wrong.
std::optional<int64_t> ParseInstant(std::string_view text, std::string* error);

// Standard base64 (RFC 4648 §4) with '=' padding.
std::string Base64Encode(std::string_view bytes);
// Accepts padded or unpadded input; whitespace is not allowed.
std::optional<std::string> Base64Decode(std::string_view text);

namespace internal {
// EDN string literal with escapes ("\"", "\\", \n \t \r, \uXXXX for other
// control characters).
void AppendEdnString(std::string* out, std::string_view s);
// Shortest text that reads back as the same double; always contains '.' or
// 'e'; ##NaN, ##Inf, ##-Inf for the non-finite ones.
void AppendEdnDouble(std::string* out, double d);
}  // namespace internal

}  // namespace cairn
