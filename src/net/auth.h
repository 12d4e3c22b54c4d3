// Mutual HMAC-SHA256 challenge-response over the shared cluster secret.
//
//   server -> client  kHello  {server_id u32, server_nonce[32]}
//   client -> server  kAuth   {client_id u32, client_nonce[32], mac_c[32]}
//       mac_c = HMAC(secret, "cairn/client" | server_nonce | client_id)
//   server -> client  kAuthOk {mac_s[32]}
//       mac_s = HMAC(secret, "cairn/server" | client_nonce | server_id)
//
// Each side proves knowledge of the secret over a nonce the other side chose,
// so a recorded handshake cannot be replayed. The secret never crosses the
// wire. (Confidentiality is TLS's job, optional and separate.)
//
// Thread-safety: pure functions (OpenSSL's RAND and HMAC are thread-safe).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/status.h"

namespace cairn::net {

inline constexpr size_t kNonceBytes = 32;
inline constexpr size_t kMacBytes = 32;

std::string RandomNonce();
std::string HmacSha256(std::string_view key, std::string_view data);
bool ConstantTimeEquals(std::string_view a, std::string_view b);

std::string EncodeHello(uint32_t server_id, const std::string& server_nonce);
Status DecodeHello(std::string_view payload, uint32_t* server_id, std::string* server_nonce);

std::string EncodeAuth(std::string_view secret, uint32_t client_id, const std::string& client_nonce,
                       const std::string& server_nonce);
// Verifies the client's proof; on success sets *client_id and *client_nonce.
Status VerifyAuth(std::string_view secret, std::string_view payload, const std::string& server_nonce,
                  uint32_t* client_id, std::string* client_nonce);

std::string EncodeAuthOk(std::string_view secret, uint32_t server_id, const std::string& client_nonce);
Status VerifyAuthOk(std::string_view secret, std::string_view payload, uint32_t server_id,
                    const std::string& client_nonce);

}  // namespace cairn::net
