// ChaCha20-Poly1305 (RFC 8439) with the key set once and a nonce per message:
// the AEAD under the data plane's packet protection (terminal/), kept here so
// that OpenSSL stays inside security/.
//
// ChaCha20-Poly1305 rather than AES-256-GCM: it is constant-time in software,
// so terminals on CPUs without AES-NI/PMULL (small ARM boards, old x86) are
// neither slow nor exposed to cache-timing leaks of table-based AES.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>

#include "base/bytes.hpp"

struct evp_cipher_ctx_st;  // OpenSSL's EVP_CIPHER_CTX; only aead.cpp includes OpenSSL

namespace tsunagu::security {

inline constexpr size_t aead_key_size = 32;
inline constexpr size_t aead_nonce_size = 12;
inline constexpr size_t aead_tag_size = 16;
using AeadKey = std::array<std::byte, aead_key_size>;
using AeadNonce = std::array<std::byte, aead_nonce_size>;

class ChaCha20Poly1305 {
 public:
  enum class Mode : uint8_t { seal, open };

  // An instance without a key: any use aborts. Exists so owners can key it
  // after deriving the key in their constructor body.
  ChaCha20Poly1305() = default;
  // Keys a cipher for one mode; the caller wipes its copy of the key.
  ChaCha20Poly1305(const AeadKey& key, Mode mode);
  ChaCha20Poly1305(ChaCha20Poly1305&&) noexcept = default;
  ChaCha20Poly1305& operator=(ChaCha20Poly1305&&) noexcept = default;
  ~ChaCha20Poly1305() = default;

  // Encrypts `plaintext` into `ciphertext` (exactly as long) and writes the
  // tag. The associated data is the concatenation of `associated`. A nonce
  // must never be used twice under one key; the caller guarantees it. Misuse
  // (wrong mode, sizes, inputs over INT_MAX) and OpenSSL failures abort.
  void seal(const AeadNonce& nonce, std::initializer_list<ByteView> associated, ByteView plaintext,
            std::span<std::byte> ciphertext, std::span<std::byte, aead_tag_size> tag);

  // Authenticates and decrypts into `plaintext` (exactly as long as
  // `ciphertext`). False when the tag does not match (forged, corrupted, other
  // key, nonce or associated data); `plaintext` then holds only zeros.
  [[nodiscard]] bool open(const AeadNonce& nonce, std::initializer_list<ByteView> associated, ByteView ciphertext,
                          std::span<const std::byte, aead_tag_size> tag, std::span<std::byte> plaintext);

 private:
  struct ContextFree {
    void operator()(evp_cipher_ctx_st* context) const;
  };
  std::unique_ptr<evp_cipher_ctx_st, ContextFree> context_;
  Mode mode_ = Mode::seal;
};

}  // namespace tsunagu::security
