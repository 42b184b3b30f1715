#include "cards/base45.hpp"

#include <doctest/doctest.h>

#include "cards/qr_text.hpp"

namespace tsunagu::cards {

TEST_CASE("base45: RFC 9285 section 4.3 examples encode") {
  CHECK(base45_encode(as_bytes("AB")) == "BB8");
  CHECK(base45_encode(as_bytes("Hello!!")) == "%69 VD92EX0");
  CHECK(base45_encode(as_bytes("base-45")) == "UJCLQE7W581");
  CHECK(base45_encode({}) == "");
}

TEST_CASE("base45: RFC 9285 section 4.4 example decodes") {
  auto decoded = base45_decode("QED8WEX0");
  REQUIRE(decoded.has_value());
  CHECK(as_chars(*decoded) == "ietf!");
}

TEST_CASE("base45: every byte value and length round-trips") {
  Bytes bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(std::byte(static_cast<uint8_t>(255 - i)));
    auto back = base45_decode(base45_encode(bytes));
    REQUIRE(back.has_value());
    CHECK(*back == bytes);
  }
}

TEST_CASE("base45: a group above 65535, a lone last character and characters outside the alphabet are refused") {
  CHECK_FALSE(base45_decode("GGW").has_value());  // 65536, the RFC's example of invalid input
  CHECK_FALSE(base45_decode(":::").has_value());  // 44 + 44*45 + 44*2025
  CHECK(base45_decode("U5").has_value());  // 5*45+30 = 255 is the largest two-character group
  CHECK_FALSE(base45_decode("V5").has_value());   // 256
  CHECK_FALSE(base45_decode("BB8B").has_value());
  CHECK_FALSE(base45_decode("bb8").has_value());  // lowercase is not in the alphabet
  CHECK_FALSE(base45_decode("BB\n").has_value());
}

TEST_CASE("qr text: TSU1: and Base45 round-trip; a trailing newline is tolerated") {
  Bytes card = {std::byte{0xD2}, std::byte{0x84}, std::byte{0x00}};
  std::string text = encode_qr_text(card);
  CHECK(text.starts_with("TSU1:"));
  auto back = decode_qr_text(text + "\n");
  REQUIRE(back.has_value());
  CHECK(*back == card);
}

TEST_CASE("qr text: another prefix, bad Base45 and oversized text are refused with their reason") {
  CHECK(decode_qr_text("TSU2:BB8").error().code == QrTextErrc::not_a_card);
  CHECK(decode_qr_text("https://example.net").error().code == QrTextErrc::not_a_card);
  CHECK(decode_qr_text("TSU1:GGW").error().code == QrTextErrc::bad_base45);
  CHECK(decode_qr_text("TSU1:" + std::string(max_qr_text_size, '0')).error().code == QrTextErrc::too_large);
}

}  // namespace tsunagu::cards
