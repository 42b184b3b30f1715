#include "security/digest.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>

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

// OpenSSL 3 searches its provider tables by name on every one-shot call made
// with EVP_sha256() or HMAC() (string compares under a lock): a login's three
// digests and MACs paid that search each. The algorithms are fetched once per
// process and kept for its life.
const EVP_MD* fetched_sha256() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) fail("EVP_MD_fetch SHA256");
  return md;
}
const EVP_MD* fetched_sha1() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
  if (md == nullptr) fail("EVP_MD_fetch SHA1");
  return md;
}

Bytes digest(const EVP_MD* md, ByteView data) {
  Bytes out(static_cast<size_t>(EVP_MD_get_size(md)));
  unsigned int length = 0;
  if (EVP_Digest(bytes_or_empty(data), data.size(), reinterpret_cast<unsigned char*>(out.data()), &length, md,
                 nullptr) != 1)
    fail(EVP_MD_get0_name(md));
  out.resize(length);
  return out;
}

struct MacContextFree {
  void operator()(EVP_MAC_CTX* context) const { EVP_MAC_CTX_free(context); }
};
using MacContext = std::unique_ptr<EVP_MAC_CTX, MacContextFree>;

// An HMAC context with its digest set, kept per thread and given a new key per
// call (EVP_MAC_init with a key re-keys it; the digest stays).
MacContext new_hmac_context(const char* digest_name) {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) fail("EVP_MAC_fetch HMAC");
  MacContext context(EVP_MAC_CTX_new(mac));
  if (!context) fail("EVP_MAC_CTX_new");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest_name), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(context.get(), params) != 1) fail("HMAC digest");
  return context;
}

// A thread's HMAC context and the key it holds. Keying HMAC costs two
// SHA-256 blocks and OpenSSL's parameter plumbing; the same key again (the
// node's session-token key, on every token login) only restarts the context
// from the keyed state it keeps (EVP_MAC_init with a null key).
struct KeyedMac {
  MacContext context;
  Bytes key;
  bool keyed = false;
};

Bytes hmac(KeyedMac& keyed, ByteView key, ByteView data) {
  if (key.size() > INT_MAX) fail("HMAC (key too large)");
  EVP_MAC_CTX* context = keyed.context.get();
  // Compared in constant time: the keys are secrets (a user's SCRAM StoredKey, the token key).
  bool same_key = keyed.keyed && key.size() == keyed.key.size() &&
                  (key.empty() || CRYPTO_memcmp(key.data(), keyed.key.data(), key.size()) == 0);
  if (!same_key) {
    keyed.keyed = false;
    keyed.key.assign(key.begin(), key.end());
  }
  // A null key pointer means "keep the last key": passed only when it is this one.
  if (EVP_MAC_init(context, same_key ? nullptr : bytes_or_empty(key), same_key ? 0 : key.size(), nullptr) != 1 ||
      EVP_MAC_update(context, bytes_or_empty(data), data.size()) != 1)
    fail("HMAC");
  keyed.keyed = true;
  // EVP_MAC_CTX_get_mac_size asks the provider through an OSSL_PARAM query
  // (about 2 % of a token login, two MACs each); final says how much it wrote.
  Bytes mac(EVP_MAX_MD_SIZE);
  size_t length = 0;
  if (EVP_MAC_final(context, reinterpret_cast<unsigned char*>(mac.data()), &length, mac.size()) != 1) fail("HMAC");
  mac.resize(length);
  return mac;
}

}  // namespace

Bytes sha256(ByteView data) { return digest(fetched_sha256(), data); }
Bytes sha1(ByteView data) { return digest(fetched_sha1(), data); }
Bytes hmac_sha1(ByteView key, ByteView data) {
  thread_local KeyedMac keyed{new_hmac_context("SHA1"), {}, false};
  return hmac(keyed, key, data);
}
Bytes hmac_sha256(ByteView key, ByteView data) {
  thread_local KeyedMac keyed{new_hmac_context("SHA256"), {}, false};
  return hmac(keyed, key, data);
}

}  // namespace tsunagu::security
