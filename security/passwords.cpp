#include "security/passwords.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

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

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
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

void random_bytes(std::span<std::byte> out) {
  size_t offset = 0;
  while (offset < out.size()) {
    int chunk = static_cast<int>(std::min<size_t>(out.size() - offset, INT_MAX));
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data() + offset), chunk) != 1) {
      std::fprintf(stderr, "tsunagu: the random number generator failed (RAND_bytes); cannot continue\n");
      std::abort();
    }
    offset += static_cast<size_t>(chunk);
  }
}

Bytes random_bytes(size_t count) {
  Bytes out(count);
  random_bytes(std::span<std::byte>(out));
  return out;
}

std::string base64_encode(ByteView data) {
  // Whole groups of 3 bytes per call, so chunks concatenate without padding in between.
  constexpr size_t chunk_size = size_t{3} << 20;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t offset = 0; offset < data.size(); offset += chunk_size) {
    size_t length = std::min(chunk_size, data.size() - offset);
    size_t start = out.size();
    out.resize(start + (length + 2) / 3 * 4 + 1);  // EVP_EncodeBlock writes a final NUL
    int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                  reinterpret_cast<const unsigned char*>(data.data() + offset),
                                  static_cast<int>(length));
    out.resize(start + static_cast<size_t>(written));
  }
  return out;
}

std::optional<Bytes> base64_decode(std::string_view text) {
  // Strict RFC 4648: standard alphabet, padded to a multiple of 4, padding only at
  // the end, no whitespace, and the unused bits of the last group zero.
  if (text.size() % 4 != 0 || text.size() > INT_MAX) return std::nullopt;
  if (text.empty()) return Bytes{};
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  if (padding == 1 && text.back() != '=') return std::nullopt;  // "x=" followed by a letter
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (base64_value(text[i]) < 0) return std::nullopt;
  }
  int last = base64_value(text[text.size() - padding - 1]);
  if (padding == 2 && (last & 0x0f) != 0) return std::nullopt;
  if (padding == 1 && (last & 0x03) != 0) return std::nullopt;

  Bytes out(text.size() / 4 * 3);
  int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  // EVP_DecodeBlock counts the padding as if it were data (3 bytes per group).
  if (decoded < 0 || static_cast<size_t>(decoded) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

Bytes sha256(ByteView data) {
  static const std::byte empty{};
  Bytes digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(data.empty() ? &empty : data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()),
                 &length, EVP_sha256(), nullptr) != 1) {
    std::fprintf(stderr, "tsunagu: SHA-256 failed\n");
    std::abort();
  }
  digest.resize(length);
  return digest;
}

Bytes hmac_sha1(ByteView key, ByteView data) {
  static const std::byte empty{};
  if (key.size() > INT_MAX) {
    std::fprintf(stderr, "tsunagu: HMAC key too large\n");
    std::abort();
  }
  Bytes mac(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (HMAC(EVP_sha1(), key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.empty() ? &empty : data.data()), data.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &length) == nullptr) {
    std::fprintf(stderr, "tsunagu: HMAC-SHA1 failed\n");
    std::abort();
  }
  mac.resize(length);
  return mac;
}

}  // namespace tsunagu::security
