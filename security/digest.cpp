#include "security/digest.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

namespace tsunagu::security {

namespace {

// OpenSSL wants a valid pointer even for an empty input.
const std::byte empty_input{};

const unsigned char* bytes_or_empty(ByteView data) {
  return reinterpret_cast<const unsigned char*>(data.empty() ? &empty_input : data.data());
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tsunagu: %s failed\n", what);
  std::abort();
}

Bytes digest(const EVP_MD* md, ByteView data) {
  Bytes out(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(bytes_or_empty(data), data.size(), reinterpret_cast<unsigned char*>(out.data()), &length, md,
                 nullptr) != 1)
    fail(EVP_MD_get0_name(md));
  out.resize(length);
  return out;
}

Bytes hmac(const EVP_MD* md, ByteView key, ByteView data) {
  if (key.size() > INT_MAX) fail("HMAC (key too large)");
  Bytes mac(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (HMAC(md, bytes_or_empty(key), static_cast<int>(key.size()), bytes_or_empty(data), data.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &length) == nullptr)
    fail("HMAC");
  mac.resize(length);
  return mac;
}

}  // namespace

Bytes sha256(ByteView data) { return digest(EVP_sha256(), data); }
Bytes sha1(ByteView data) { return digest(EVP_sha1(), data); }
Bytes hmac_sha1(ByteView key, ByteView data) { return hmac(EVP_sha1(), key, data); }
Bytes hmac_sha256(ByteView key, ByteView data) { return hmac(EVP_sha256(), key, data); }

}  // namespace tsunagu::security
