#include "security/sha256_stream.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace tsunagu::security {
namespace {
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "tsunagu: OpenSSL %s failed\n", what);
  std::abort();
}
}  // namespace

Sha256Stream::Sha256Stream() : context_(EVP_MD_CTX_new()) {
  if (context_ == nullptr || EVP_DigestInit_ex(context_, EVP_sha256(), nullptr) != 1) fail("SHA-256 init");
}

Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(context_); }

void Sha256Stream::update(ByteView data) {
  if (!data.empty() && EVP_DigestUpdate(context_, data.data(), data.size()) != 1) fail("SHA-256 update");
}

Bytes Sha256Stream::finish() {
  Bytes digest(32);
  unsigned length = 0;
  if (EVP_DigestFinal_ex(context_, reinterpret_cast<unsigned char*>(digest.data()), &length) != 1 || length != 32)
    fail("SHA-256 final");
  return digest;
}

}  // namespace tsunagu::security
