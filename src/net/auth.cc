#include "net/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/check.h"

namespace cairn::net {

namespace {
void PutU32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t GetU32(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(s[i])} << (8 * i);
  return v;
}
std::string ClientMac(std::string_view secret, const std::string& server_nonce, uint32_t client_id) {
  std::string data = "cairn/client" + server_nonce;
  PutU32(&data, client_id);
  return HmacSha256(secret, data);
}
std::string ServerMac(std::string_view secret, const std::string& client_nonce, uint32_t server_id) {
  std::string data = "cairn/server" + client_nonce;
  PutU32(&data, server_id);
  return HmacSha256(secret, data);
}
}  // namespace

std::string RandomNonce() {
  std::string nonce(kNonceBytes, '\0');
  CAIRN_CHECK_MSG(RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), kNonceBytes) == 1,
                  "OpenSSL RAND_bytes failed");
  return nonce;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CAIRN_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                   reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) != nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string EncodeHello(uint32_t server_id, const std::string& server_nonce) {
  std::string s;
  PutU32(&s, server_id);
  return s + server_nonce;
}

Status DecodeHello(std::string_view payload, uint32_t* server_id, std::string* server_nonce) {
  if (payload.size() != 4 + kNonceBytes) return Status::InvalidArgument("malformed handshake hello");
  *server_id = GetU32(payload);
  server_nonce->assign(payload.substr(4));
  return Status::OK();
}

std::string EncodeAuth(std::string_view secret, uint32_t client_id, const std::string& client_nonce,
                       const std::string& server_nonce) {
  std::string s;
  PutU32(&s, client_id);
  return s + client_nonce + ClientMac(secret, server_nonce, client_id);
}

Status VerifyAuth(std::string_view secret, std::string_view payload, const std::string& server_nonce,
                  uint32_t* client_id, std::string* client_nonce) {
  if (payload.size() != 4 + kNonceBytes + kMacBytes) return Status::InvalidArgument("malformed handshake auth");
  *client_id = GetU32(payload);
  client_nonce->assign(payload.substr(4, kNonceBytes));
  if (!ConstantTimeEquals(payload.substr(4 + kNonceBytes), ClientMac(secret, server_nonce, *client_id))) {
    return Status::InvalidArgument("peer " + std::to_string(*client_id) +
                                   " failed authentication (wrong cluster secret)");
  }
  return Status::OK();
}

std::string EncodeAuthOk(std::string_view secret, uint32_t server_id, const std::string& client_nonce) {
  return ServerMac(secret, client_nonce, server_id);
}

Status VerifyAuthOk(std::string_view secret, std::string_view payload, uint32_t server_id,
                    const std::string& client_nonce) {
  if (!ConstantTimeEquals(payload, ServerMac(secret, client_nonce, server_id))) {
    return Status::InvalidArgument("node " + std::to_string(server_id) +
                                   " failed authentication (wrong cluster secret)");
  }
  return Status::OK();
}

}  // namespace cairn::net
