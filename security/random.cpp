#include "security/random.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace tsunagu::security {

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

void wipe(std::span<std::byte> secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
}

}  // namespace tsunagu::security
