#include "security/digest.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace tsunagu::security {

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

Bytes sha1(ByteView data) {
  static const std::byte empty{};
  Bytes digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(data.empty() ? &empty : data.data(), data.size(), reinterpret_cast<unsigned char*>(digest.data()),
                 &length, EVP_sha1(), nullptr) != 1) {
    std::fprintf(stderr, "tsunagu: SHA-1 failed\n");
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

Bytes hmac_sha256(ByteView key, ByteView data) {
  static const std::byte empty{};
  if (key.size() > INT_MAX) {
    std::fprintf(stderr, "tsunagu: HMAC key too large\n");
    std::abort();
  }
  Bytes mac(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.empty() ? &empty : key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.empty() ? &empty : data.data()), data.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &length) == nullptr) {
    std::fprintf(stderr, "tsunagu: HMAC-SHA256 failed\n");
    std::abort();
  }
  mac.resize(length);
  return mac;
}

}  // namespace tsunagu::security
