#include "security/ed25519.hpp"

#include <openssl/evp.h>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace {

using OwnedKey = detail::Owned<EVP_PKEY, EVP_PKEY_free>;
using OwnedDigestContext = detail::Owned<EVP_MD_CTX, EVP_MD_CTX_free>;

const unsigned char* raw(ByteView bytes) {
  static const unsigned char empty = 0;
  return bytes.empty() ? &empty : reinterpret_cast<const unsigned char*>(bytes.data());
}

}  // namespace

Ed25519KeyPair generate_ed25519_key() {
  detail::Owned<EVP_PKEY_CTX, EVP_PKEY_CTX_free> context(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* generated = nullptr;
  if (context == nullptr || EVP_PKEY_keygen_init(context.get()) != 1 ||
      EVP_PKEY_keygen(context.get(), &generated) != 1)
    detail::abort_with_openssl_errors("Ed25519", "key generation failed");
  OwnedKey key(generated);
  Ed25519KeyPair pair{Bytes(ed25519_key_size), Bytes(ed25519_key_size)};
  size_t private_size = pair.private_key.size();
  size_t public_size = pair.public_key.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(pair.private_key.data()),
                                   &private_size) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pair.public_key.data()),
                                  &public_size) != 1 ||
      private_size != ed25519_key_size || public_size != ed25519_key_size)
    detail::abort_with_openssl_errors("Ed25519", "raw key export failed");
  return pair;
}

Bytes ed25519_public_key(ByteView private_key) {
  if (private_key.size() != ed25519_key_size) return {};
  OwnedKey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw(private_key), private_key.size()));
  if (key == nullptr) detail::abort_with_openssl_errors("Ed25519", "loading a private key failed");
  Bytes public_key(ed25519_key_size);
  size_t size = public_key.size();
  if (EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(public_key.data()), &size) != 1 ||
      size != ed25519_key_size)
    detail::abort_with_openssl_errors("Ed25519", "raw public key export failed");
  return public_key;
}

Bytes ed25519_sign(ByteView private_key, ByteView message) {
  if (private_key.size() != ed25519_key_size) return {};
  OwnedKey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw(private_key), private_key.size()));
  OwnedDigestContext context(EVP_MD_CTX_new());
  if (key == nullptr || context == nullptr) detail::abort_with_openssl_errors("Ed25519", "signing setup failed");
  Bytes signature(ed25519_signature_size);
  size_t size = signature.size();
  // Ed25519 hashes internally: no digest is named and the message goes in one call.
  if (EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &size, raw(message),
                     message.size()) != 1 ||
      size != ed25519_signature_size)
    detail::abort_with_openssl_errors("Ed25519", "signing failed");
  return signature;
}

bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature) {
  if (public_key.size() != ed25519_key_size || signature.size() != ed25519_signature_size) return false;
  OwnedKey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw(public_key), public_key.size()));
  if (key == nullptr) {
    // A 32-byte string that is not a point on the curve: a bad key, not a broken install.
    detail::discard_openssl_errors();
    return false;
  }
  OwnedDigestContext context(EVP_MD_CTX_new());
  if (context == nullptr) detail::abort_with_openssl_errors("Ed25519", "EVP_MD_CTX_new failed");
  bool valid = EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
               EVP_DigestVerify(context.get(), raw(signature), signature.size(), raw(message), message.size()) == 1;
  detail::discard_openssl_errors();
  return valid;
}

}  // namespace tsunagu::security
