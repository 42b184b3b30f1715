#include "security/resume_token.hpp"

#include <openssl/crypto.h>

#include "security/digest.hpp"

namespace tsunagu::security::resume_token {
namespace {

constexpr std::string_view key_label = "tsunagu resume token key\n";
constexpr std::string_view mac_label = "tsunagu resume token\n";
constexpr size_t signed_size = token_size - mac_size;

Bytes mac_of(ByteView key, std::string_view user_id, ByteView signed_part) {
  Bytes input;
  input.reserve(mac_label.size() + user_id.size() + 1 + signed_part.size());
  auto append = [&](ByteView part) { input.insert(input.end(), part.begin(), part.end()); };
  append(as_bytes(mac_label));
  append(as_bytes(user_id));
  input.push_back(std::byte{0});  // no user ID is a prefix-extension of another's input
  append(signed_part);
  return hmac_sha256(key, input);
}

}  // namespace

std::string_view to_string(Refusal refusal) {
  switch (refusal) {
    case Refusal::malformed: return "malformed";
    case Refusal::forged: return "forged";
    case Refusal::expired: return "expired";
  }
  return "?";
}

Bytes derive_key(ByteView store_secret) { return hmac_sha256(store_secret, as_bytes(key_label)); }

Bytes issue(ByteView key, std::string_view user_id, uint64_t generation, uint64_t expires_unix, ByteView random) {
  Bytes token(token_size);
  token[0] = std::byte{version};
  store_be64(token.data() + 1, expires_unix);
  store_be64(token.data() + 9, generation);
  for (size_t i = 0; i < random_size; ++i) token[17 + i] = i < random.size() ? random[i] : std::byte{0};
  Bytes mac = mac_of(key, user_id, ByteView(token.data(), signed_size));
  std::copy(mac.begin(), mac.end(), token.begin() + signed_size);
  return token;
}

Expected<Claims, Refusal> check(ByteView key, ByteView token, std::string_view user_id, uint64_t now_unix) {
  if (token.size() != token_size || token[0] != std::byte{version} || user_id.size() > max_user_id_size)
    return Unexpected(Refusal::malformed);
  Bytes mac = mac_of(key, user_id, token.subspan(0, signed_size));
  if (CRYPTO_memcmp(mac.data(), token.data() + signed_size, mac_size) != 0) return Unexpected(Refusal::forged);
  Claims claims{load_be64(token.data() + 1), load_be64(token.data() + 9)};
  if (now_unix >= claims.expires_unix) return Unexpected(Refusal::expired);
  return claims;
}

}  // namespace tsunagu::security::resume_token
