#include "security/hkdf.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace {

[[noreturn]] void fail(const char* what) { detail::abort_with_openssl_errors("HKDF-SHA256", what); }

// OSSL_PARAM takes non-const pointers but only reads through them here.
void* readable(ByteView bytes) { return const_cast<std::byte*>(bytes.data()); }

}  // namespace

void hkdf_sha256(ByteView input_key, ByteView salt, ByteView info, std::span<std::byte> out) {
  if (out.empty() || out.size() > hkdf_sha256_max_output) fail("output length out of range");
  detail::Owned<EVP_KDF, EVP_KDF_free> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (kdf == nullptr) fail("HKDF not available");
  detail::Owned<EVP_KDF_CTX, EVP_KDF_CTX_free> context(EVP_KDF_CTX_new(kdf.get()));
  if (context == nullptr) fail("EVP_KDF_CTX_new failed (out of memory?)");

  char digest[] = "SHA256";
  OSSL_PARAM params[5];
  size_t count = 0;
  params[count++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, readable(input_key), input_key.size());
  // Left out when empty: OpenSSL then uses HashLen zeros, which is the RFC's default.
  if (!salt.empty()) params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, readable(salt), salt.size());
  if (!info.empty()) params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, readable(info), info.size());
  params[count] = OSSL_PARAM_construct_end();

  if (EVP_KDF_derive(context.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) != 1) {
    fail("derivation failed");
  }
}

}  // namespace tsunagu::security
