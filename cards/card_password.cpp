#include "cards/card_password.hpp"

#include <cstdio>
#include <cstdlib>

#include "security/digest.hpp"

namespace tsunagu::cards {

namespace {
constexpr std::string_view derivation_label = "tsunagu card password 1";
}

std::string derive_card_password(ByteView issuer_secret, const CardId& card_id) {
  if (issuer_secret.size() < min_issuer_secret_size) {
    std::fprintf(stderr, "tsunagu: card password derivation with a secret below 32 bytes\n");
    std::abort();
  }
  std::string message(derivation_label);
  message.push_back('\0');
  message += card_id.text();
  Bytes mac = security::hmac_sha256(issuer_secret, as_bytes(message));
  uint64_t number = load_be64(mac.data()) % 1'000'000'000'000ULL;
  char digits[16];
  std::snprintf(digits, sizeof digits, "%012llu", static_cast<unsigned long long>(number));
  std::string text(digits);
  return text.substr(0, 4) + "-" + text.substr(4, 4) + "-" + text.substr(8, 4);
}

std::string normalized_card_password(std::string_view typed) {
  std::string out;
  for (char c : typed)
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) out.push_back(c);
  return out;
}

const char* holder_password_problem(std::string_view typed, size_t max_bytes) {
  if (typed.size() > max_bytes) return "too long";
  if (normalized_card_password(typed).size() < min_holder_password_size)
    return "fewer than 8 letters and digits (other characters are not counted)";
  return nullptr;
}

std::string hash_card_password(std::string_view typed, const security::ScryptParameters& parameters) {
  return security::hash_password(normalized_card_password(typed), parameters);
}

bool check_card_password(std::string_view typed, std::string_view stored_hash) {
  return security::verify_password(normalized_card_password(typed), stored_hash);
}

}  // namespace tsunagu::cards
