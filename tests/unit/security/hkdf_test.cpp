#include "security/hkdf.hpp"

#include <doctest/doctest.h>

#include "tests/unit/proto/test_bytes.hpp"

namespace tsunagu::security {
namespace {

using proto::test::hex;

Bytes derive(ByteView ikm, ByteView salt, ByteView info, size_t length) {
  Bytes out(length);
  hkdf_sha256(ikm, salt, info, out);
  return out;
}

Bytes counting(uint8_t first, size_t count) {
  Bytes out(count);
  for (size_t i = 0; i < count; ++i) out[i] = std::byte(static_cast<uint8_t>(first + i));
  return out;
}

}  // namespace

TEST_CASE("hkdf: RFC 5869 test case 1 (basic SHA-256)") {
  Bytes ikm(22, std::byte{0x0b});
  CHECK(derive(ikm, counting(0x00, 13), counting(0xf0, 10), 42) ==
        hex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"));
}

TEST_CASE("hkdf: RFC 5869 test case 2 (longer inputs and outputs)") {
  CHECK(derive(counting(0x00, 80), counting(0x60, 80), counting(0xb0, 80), 82) ==
        hex("b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87"));
}

TEST_CASE("hkdf: RFC 5869 test case 3 (empty salt and info)") {
  Bytes ikm(22, std::byte{0x0b});
  CHECK(derive(ikm, {}, {}, 42) ==
        hex("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"));
}

TEST_CASE("hkdf: a shorter output is a prefix of a longer one with the same inputs") {
  Bytes ikm(32, std::byte{0x42});
  Bytes longer = derive(ikm, as_bytes("salt"), as_bytes("info"), 64);
  Bytes shorter = derive(ikm, as_bytes("salt"), as_bytes("info"), 36);
  CHECK(Bytes(longer.begin(), longer.begin() + 36) == shorter);
  CHECK(derive(ikm, as_bytes("salt"), as_bytes("other info"), 36) != shorter);
}

}  // namespace tsunagu::security
