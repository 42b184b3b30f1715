#include "security/random.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tsunagu::security {
namespace {

void draw_from_generator(std::span<std::byte> out) {
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

// Small draws (token nonces, transaction IDs, SCRAM nonces) come from a
// per-thread block of OpenSSL's DRBG output: each RAND_bytes call pays a
// fixed cost (the per-thread DRBG look-up, OpenSSL's fork check and the
// CTR-DRBG's re-key after every request) that was about 5 % of a token login,
// for 16 bytes. The bytes are the same DRBG's, handed out once each: what is
// handed out is wiped from the block, the block is wiped when the thread ends,
// and a fork() child drops its parent's block (else both would hand out the
// same bytes).
constexpr size_t kPooledDrawLimit = 64;
constexpr size_t kBlockSize = 2048;

std::atomic<unsigned> fork_generation{0};

void count_fork_in_child() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

struct RandomBlock {
  std::array<std::byte, kBlockSize> bytes;
  size_t next = kBlockSize;  // nothing left to hand out
  unsigned generation = 0;
  RandomBlock() {
    static const bool registered = [] { return pthread_atfork(nullptr, nullptr, count_fork_in_child) == 0; }();
    if (!registered) {
      std::fprintf(stderr, "tsunagu: cannot register the random block's fork handler; cannot continue\n");
      std::abort();
    }
  }
  ~RandomBlock() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  RandomBlock(const RandomBlock&) = delete;
  RandomBlock& operator=(const RandomBlock&) = delete;

  void draw(std::span<std::byte> out) {
    unsigned current = fork_generation.load(std::memory_order_relaxed);
    if (current != generation || kBlockSize - next < out.size()) {
      OPENSSL_cleanse(bytes.data(), bytes.size());
      draw_from_generator(bytes);
      next = 0;
      generation = current;
    }
    std::memcpy(out.data(), bytes.data() + next, out.size());
    OPENSSL_cleanse(bytes.data() + next, out.size());
    next += out.size();
  }
};

}  // namespace

void random_bytes(std::span<std::byte> out) {
  if (out.empty()) return;
  if (out.size() > kPooledDrawLimit) {
    draw_from_generator(out);
    return;
  }
  thread_local RandomBlock block;
  block.draw(out);
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
