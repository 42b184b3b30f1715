#include "security/ed25519.hpp"

#include <doctest/doctest.h>

#include "security/digest.hpp"
#include "tests/unit/proto/test_bytes.hpp"

namespace tsunagu::security {
namespace {

using proto::test::hex;

}  // namespace

TEST_CASE("ed25519: RFC 8032 test 1 (empty message) signs and verifies") {
  Bytes secret = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  Bytes expected_public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  Bytes expected_signature = hex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  CHECK(ed25519_public_key(secret) == expected_public);
  CHECK(ed25519_sign(secret, {}) == expected_signature);
  CHECK(ed25519_verify(expected_public, {}, expected_signature));
}

TEST_CASE("ed25519: RFC 8032 test 2 (one byte) signs and verifies") {
  Bytes secret = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
  Bytes expected_public = hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
  Bytes message = hex("72");
  Bytes expected_signature = hex(
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
  CHECK(ed25519_public_key(secret) == expected_public);
  CHECK(ed25519_sign(secret, message) == expected_signature);
  CHECK(ed25519_verify(expected_public, message, expected_signature));
}

TEST_CASE("ed25519: a flipped message, signature or key bit fails verification") {
  Ed25519KeyPair pair = generate_ed25519_key();
  Bytes message = to_bytes("card payload");
  Bytes signature = ed25519_sign(pair.private_key, message);
  REQUIRE(ed25519_verify(pair.public_key, message, signature));
  for (size_t i = 0; i < signature.size(); ++i) {
    Bytes bad = signature;
    bad[i] ^= std::byte{0x01};
    CHECK_FALSE(ed25519_verify(pair.public_key, message, bad));
  }
  Bytes other_message = message;
  other_message[0] ^= std::byte{0x20};
  CHECK_FALSE(ed25519_verify(pair.public_key, other_message, signature));
  CHECK_FALSE(ed25519_verify(generate_ed25519_key().public_key, message, signature));
}

TEST_CASE("ed25519: wrong sizes are refused, not read past") {
  Ed25519KeyPair pair = generate_ed25519_key();
  CHECK(pair.private_key.size() == 32);
  CHECK(pair.public_key.size() == 32);
  CHECK(ed25519_public_key(Bytes(31)).empty());
  CHECK(ed25519_sign(Bytes(33), {}).empty());
  Bytes signature = ed25519_sign(pair.private_key, {});
  CHECK_FALSE(ed25519_verify(Bytes(31), {}, signature));
  CHECK_FALSE(ed25519_verify(pair.public_key, {}, Bytes(63)));
}

TEST_CASE("hmac_sha256: RFC 4231 test case 2") {
  CHECK(hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?")) ==
        hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
}

}  // namespace tsunagu::security
