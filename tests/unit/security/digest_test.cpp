#include "security/digest.hpp"

#include <doctest/doctest.h>

#include <string_view>
#include <thread>

#include "tests/unit/proto/test_bytes.hpp"

namespace tsunagu::security {
namespace {

using proto::test::hex;

ByteView text(std::string_view s) { return ByteView(reinterpret_cast<const std::byte*>(s.data()), s.size()); }

TEST_CASE("digests and MACs match the published vectors, each call keyed by its own key") {
  CHECK(to_hex(sha256(text("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256({})) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(to_hex(sha1(text("abc"))) == "a9993e364706816aba3e25717850c26c9cd0d89d");
  // RFC 4231 test case 2, then case 1: the context kept between calls takes
  // the second key, not the first.
  CHECK(to_hex(hmac_sha256(text("Jefe"), text("what do ya want for nothing?"))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  CHECK(to_hex(hmac_sha256(hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), text("Hi There"))) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  // RFC 2202 test case 2.
  CHECK(to_hex(hmac_sha1(text("Jefe"), text("what do ya want for nothing?"))) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  // An empty key is a key of zero bytes, not "keep the previous one".
  CHECK(to_hex(hmac_sha256({}, {})) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  CHECK(to_hex(hmac_sha1({}, {})) == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

TEST_CASE("a MAC keyed as the call before reuses that key, and only that key") {
  const std::string_view case2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  const std::string_view case1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  Bytes key1 = hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  for (int i = 0; i < 3; ++i) CHECK(to_hex(hmac_sha256(text("Jefe"), text("what do ya want for nothing?"))) == case2);
  CHECK(to_hex(hmac_sha256(key1, text("Hi There"))) == case1);
  CHECK(to_hex(hmac_sha256(key1, text("Hi There"))) == case1);
  // A key that is a prefix of the last one, or the last one with a byte changed, is another key.
  CHECK(to_hex(hmac_sha256(text("Jef"), text("what do ya want for nothing?"))) != case2);
  CHECK(to_hex(hmac_sha256(text("Jefe"), text("what do ya want for nothing?"))) == case2);
  CHECK(to_hex(hmac_sha256(text("Jefd"), text("what do ya want for nothing?"))) != case2);
  CHECK(to_hex(hmac_sha256({}, {})) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  CHECK(to_hex(hmac_sha256({}, {})) == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  CHECK(to_hex(hmac_sha1(text("Jefe"), text("what do ya want for nothing?"))) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(to_hex(hmac_sha1(text("Jefe"), text("what do ya want for nothing?"))) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
}

TEST_CASE("each thread has its own MAC context") {
  Bytes other;
  std::thread worker([&] { other = hmac_sha256(text("Jefe"), text("what do ya want for nothing?")); });
  worker.join();
  CHECK(to_hex(other) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace tsunagu::security
