#include "security/aead.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <climits>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace {

[[noreturn]] void fail(const char* what) { detail::abort_with_openssl_errors("ChaCha20-Poly1305", what); }

void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

const unsigned char* uchars(const std::byte* p) { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* uchars(std::byte* p) { return reinterpret_cast<unsigned char*>(p); }

int int_size(size_t size) {
  require(size <= static_cast<size_t>(INT_MAX), "length out of range");
  return static_cast<int>(size);
}

}  // namespace

void ChaCha20Poly1305::ContextFree::operator()(evp_cipher_ctx_st* context) const { EVP_CIPHER_CTX_free(context); }

ChaCha20Poly1305::ChaCha20Poly1305(const AeadKey& key, Mode mode) : context_(EVP_CIPHER_CTX_new()), mode_(mode) {
  require(context_ != nullptr, "EVP_CIPHER_CTX_new failed (out of memory?)");
  // The key is set once; each message sets only its nonce.
  int ok = mode == Mode::seal
               ? EVP_EncryptInit_ex2(context_.get(), EVP_chacha20_poly1305(), uchars(key.data()), nullptr, nullptr)
               : EVP_DecryptInit_ex2(context_.get(), EVP_chacha20_poly1305(), uchars(key.data()), nullptr, nullptr);
  require(ok == 1, "cannot set up the cipher");
  require(EVP_CIPHER_CTX_get_iv_length(context_.get()) == static_cast<int>(aead_nonce_size), "unexpected nonce length");
}

void ChaCha20Poly1305::seal(const AeadNonce& nonce, std::initializer_list<ByteView> associated, ByteView plaintext,
                            std::span<std::byte> ciphertext, std::span<std::byte, aead_tag_size> tag) {
  require(context_ != nullptr && mode_ == Mode::seal, "seal on a cipher not keyed for sealing");
  require(ciphertext.size() == plaintext.size(), "seal: ciphertext and plaintext sizes differ");
  evp_cipher_ctx_st* context = context_.get();
  require(EVP_EncryptInit_ex2(context, nullptr, nullptr, uchars(nonce.data()), nullptr) == 1, "seal: cannot set nonce");
  int written = 0;
  for (ByteView part : associated) {
    if (part.empty()) continue;
    require(EVP_EncryptUpdate(context, nullptr, &written, uchars(part.data()), int_size(part.size())) == 1,
            "seal: associated data rejected");
  }
  if (!plaintext.empty()) {
    require(EVP_EncryptUpdate(context, uchars(ciphertext.data()), &written, uchars(plaintext.data()),
                              int_size(plaintext.size())) == 1 &&
                static_cast<size_t>(written) == plaintext.size(),
            "seal: encryption failed");
  }
  int final_written = 0;
  require(EVP_EncryptFinal_ex(context, uchars(ciphertext.data() + ciphertext.size()), &final_written) == 1 &&
              final_written == 0,
          "seal: encryption failed");
  require(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(aead_tag_size), tag.data()) == 1,
          "seal: cannot read the tag");
}

bool ChaCha20Poly1305::open(const AeadNonce& nonce, std::initializer_list<ByteView> associated, ByteView ciphertext,
                            std::span<const std::byte, aead_tag_size> tag, std::span<std::byte> plaintext) {
  require(context_ != nullptr && mode_ == Mode::open, "open on a cipher not keyed for opening");
  require(plaintext.size() == ciphertext.size(), "open: ciphertext and plaintext sizes differ");
  evp_cipher_ctx_st* context = context_.get();
  require(EVP_DecryptInit_ex2(context, nullptr, nullptr, uchars(nonce.data()), nullptr) == 1, "open: cannot set nonce");
  int written = 0;
  for (ByteView part : associated) {
    if (part.empty()) continue;
    require(EVP_DecryptUpdate(context, nullptr, &written, uchars(part.data()), int_size(part.size())) == 1,
            "open: associated data rejected");
  }
  if (!ciphertext.empty()) {
    require(EVP_DecryptUpdate(context, uchars(plaintext.data()), &written, uchars(ciphertext.data()),
                              int_size(ciphertext.size())) == 1 &&
                static_cast<size_t>(written) == ciphertext.size(),
            "open: decryption failed");
  }
  // OpenSSL wants a writable tag buffer although it only reads it.
  std::array<std::byte, aead_tag_size> expected{};
  std::copy(tag.begin(), tag.end(), expected.begin());
  require(EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(aead_tag_size), expected.data()) == 1,
          "open: cannot set the tag");
  int final_written = 0;
  if (EVP_DecryptFinal_ex(context, uchars(plaintext.data() + plaintext.size()), &final_written) != 1) {
    // Forged or corrupted: no unauthenticated plaintext leaves this function.
    if (!plaintext.empty()) OPENSSL_cleanse(plaintext.data(), plaintext.size());
    detail::discard_openssl_errors();
    return false;
  }
  return true;
}

}  // namespace tsunagu::security
