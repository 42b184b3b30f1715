#include "security/passwords.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "security/encoding.hpp"
#include "security/random.hpp"

namespace tsunagu::security {

namespace {

constexpr std::string_view scrypt_prefix = "$scrypt$";
constexpr size_t salt_size = 16;
constexpr size_t hash_size = 32;
// Stored salts are accepted within these bounds so the salt size may change later.
constexpr size_t min_salt_size = 8;
constexpr size_t max_salt_size = 64;

// Bounds on parameters read back from a store: a tampered or corrupt entry must
// not make the node allocate gigabytes or spin for minutes.
constexpr unsigned max_log2_n = 20;
constexpr unsigned max_r_times_p = 64;
constexpr uint64_t max_scrypt_memory = uint64_t{256} << 20;  // 128 * r * N bytes

bool acceptable(const ScryptParameters& p) {
  if (p.log2_n < 1 || p.log2_n > max_log2_n) return false;
  if (p.r < 1 || p.p < 1 || p.r > max_r_times_p || p.p > max_r_times_p) return false;
  if (p.r * p.p > max_r_times_p) return false;
  return uint64_t{128} * p.r * (uint64_t{1} << p.log2_n) <= max_scrypt_memory;
}

// What EVP_PBE_scrypt needs (V and B arrays), plus room to spare.
uint64_t scrypt_memory_limit(const ScryptParameters& p) {
  uint64_t n = uint64_t{1} << p.log2_n;
  return uint64_t{128} * p.r * (n + 2) + uint64_t{128} * p.r * p.p + (uint64_t{1} << 20);
}

bool derive(std::string_view password, ByteView salt, const ScryptParameters& p, std::span<std::byte> out) {
  static const char empty = '\0';
  const char* pass = password.empty() ? &empty : password.data();
  int ok = EVP_PBE_scrypt(pass, password.size(), reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                          uint64_t{1} << p.log2_n, p.r, p.p, scrypt_memory_limit(p),
                          reinterpret_cast<unsigned char*>(out.data()), out.size());
  ERR_clear_error();
  return ok == 1;
}

// A decimal without sign or leading zeros, at most 4 digits.
std::optional<unsigned> take_number(std::string_view& text, std::string_view label) {
  if (text.substr(0, label.size()) != label) return std::nullopt;
  text.remove_prefix(label.size());
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 4 || (digits > 1 && text[0] == '0')) return std::nullopt;
  unsigned value = 0;
  for (size_t i = 0; i < digits; ++i) value = value * 10 + static_cast<unsigned>(text[i] - '0');
  text.remove_prefix(digits);
  return value;
}

bool take_literal(std::string_view& text, std::string_view literal) {
  if (text.substr(0, literal.size()) != literal) return false;
  text.remove_prefix(literal.size());
  return true;
}

struct ParsedHash {
  ScryptParameters parameters;
  Bytes salt;
  Bytes hash;
};

std::optional<ParsedHash> parse(std::string_view encoded) {
  if (encoded.size() > 512) return std::nullopt;
  std::string_view rest = encoded;
  if (!take_literal(rest, scrypt_prefix)) return std::nullopt;
  ParsedHash parsed;
  auto ln = take_number(rest, "ln=");
  if (!ln || !take_literal(rest, ",")) return std::nullopt;
  auto r = take_number(rest, "r=");
  if (!r || !take_literal(rest, ",")) return std::nullopt;
  auto p = take_number(rest, "p=");
  if (!p || !take_literal(rest, "$")) return std::nullopt;
  parsed.parameters = ScryptParameters{*ln, *r, *p};
  if (!acceptable(parsed.parameters)) return std::nullopt;

  size_t separator = rest.find('$');
  if (separator == std::string_view::npos) return std::nullopt;
  auto salt = base64_decode(rest.substr(0, separator));
  auto hash = base64_decode(rest.substr(separator + 1));
  if (!salt || !hash) return std::nullopt;
  if (salt->size() < min_salt_size || salt->size() > max_salt_size || hash->size() != hash_size) return std::nullopt;
  parsed.salt = std::move(*salt);
  parsed.hash = std::move(*hash);
  return parsed;
}

}  // namespace

std::string hash_password(std::string_view password, const ScryptParameters& parameters) {
  if (!acceptable(parameters)) {
    std::fprintf(stderr, "tsunagu: hash_password called with unsupported scrypt parameters ln=%u r=%u p=%u\n",
                 parameters.log2_n, parameters.r, parameters.p);
    std::abort();
  }
  Bytes salt = random_bytes(salt_size);
  Bytes hash(hash_size);
  if (!derive(password, salt, parameters, hash)) {
    std::fprintf(stderr, "tsunagu: scrypt failed (out of memory?)\n");
    std::abort();
  }
  std::string encoded(scrypt_prefix);
  encoded += "ln=" + std::to_string(parameters.log2_n) + ",r=" + std::to_string(parameters.r) +
             ",p=" + std::to_string(parameters.p) + "$";
  encoded += base64_encode(salt);
  encoded += '$';
  encoded += base64_encode(hash);
  return encoded;
}

bool verify_password(std::string_view password, std::string_view encoded) {
  auto parsed = parse(encoded);
  if (!parsed) return false;
  Bytes computed(hash_size);
  if (!derive(password, parsed->salt, parsed->parameters, computed)) return false;
  return CRYPTO_memcmp(computed.data(), parsed->hash.data(), hash_size) == 0;
}

}  // namespace tsunagu::security
