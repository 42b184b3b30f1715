#include "cards/card_codec.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include "tests/unit/cards/card_test_support.hpp"
#include "tests/unit/proto/test_bytes.hpp"

namespace tsunagu::cards {
namespace {

using test::Issuer;
using test::sample_card;
using test::sample_expiry;
using test::sample_now;

Bytes signed_sample(const Issuer& issuer) {
  auto bytes = sign_card(sample_card(issuer), issuer.key.private_key);
  REQUIRE(bytes.has_value());
  return *bytes;
}

CardErrc error_of(const Expected<Card, CardError>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

}  // namespace

TEST_CASE("card codec: a signed card decodes to the card that was signed") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  auto card = decode_card(bytes, trusted, sample_now);
  REQUIRE(card.has_value());
  CHECK(*card == sample_card(issuer));
  CHECK(card->card_id.text() == "20261205-0007-000042");
  CHECK(card->find_area("area-b")->internet[0].name == "b-net");
}

TEST_CASE("card codec: the envelope is COSE_Sign1 with EdDSA in the protected header and the kid unprotected") {
  Issuer issuer;
  Bytes bytes = signed_sample(issuer);
  // Tag 18, then an array of four.
  CHECK(bytes[0] == std::byte{0xD2});
  CHECK(bytes[1] == std::byte{0x84});
  // bstr of length 3 holding {1: -8}.
  CHECK(bytes[2] == std::byte{0x43});
  CHECK(bytes[3] == std::byte{0xA1});
  CHECK(bytes[4] == std::byte{0x01});
  CHECK(bytes[5] == std::byte{0x27});
  auto envelope = read_envelope(bytes);
  REQUIRE(envelope.has_value());
  CHECK(envelope->key_id == issuer_key_id(issuer.key.public_key));
  CHECK(envelope->signature.size() == 64);
  auto payload = parse_card_payload(envelope->payload);
  REQUIRE(payload.has_value());
  CHECK(*payload == sample_card(issuer));
}

TEST_CASE("card codec: the payload is a map with integer keys 1..6 in ascending order") {
  Issuer issuer;
  auto payload = encode_card_payload(sample_card(issuer));
  REQUIRE(payload.has_value());
  const Bytes& p = *payload;
  CHECK(p[0] == std::byte{0xA6});  // map of 6
  CHECK(p[1] == std::byte{0x01});  // key 1: issuer key ID
  CHECK(p[2] == std::byte{0x48});  // bstr of 8
  CHECK(p[11] == std::byte{0x02});  // key 2: serial
  CHECK(p[12] == std::byte{0x18});  // uint8 follows
  CHECK(p[13] == std::byte{42});
  CHECK(p[14] == std::byte{0x03});  // key 3: card ID
  CHECK(p[15] == std::byte{0x83});  // [date, group, sequence]
}

TEST_CASE("card codec: every truncated prefix is refused") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  for (size_t length = 0; length < bytes.size(); ++length) {
    auto result = decode_card(ByteView(bytes).first(length), trusted, sample_now);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == CardErrc::truncated);
  }
}

TEST_CASE("card codec: every truncated payload prefix is refused") {
  Issuer issuer;
  Bytes payload = *encode_card_payload(sample_card(issuer));
  for (size_t length = 0; length < payload.size(); ++length)
    CHECK(error_of(parse_card_payload(ByteView(payload).first(length))) == CardErrc::truncated);
}

TEST_CASE("card codec: a flipped bit in the signature is a bad signature") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  // The signature is the last 64 bytes.
  for (size_t i = bytes.size() - 64; i < bytes.size(); ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      Bytes bad = bytes;
      bad[i] ^= std::byte{bit};
      CHECK(error_of(decode_card(bad, trusted, sample_now)) == CardErrc::bad_signature);
    }
  }
}

TEST_CASE("card codec: rewritten units in the payload break the signature ([0043])") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  // units_issued = 1000 is 0x19 0x03 0xE8 after key 5; make it 9192 (0x23E8).
  Bytes needle = {std::byte{0x05}, std::byte{0x19}, std::byte{0x03}, std::byte{0xE8}};
  auto at = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  REQUIRE(at != bytes.end());
  at[2] = std::byte{0x23};
  CHECK(error_of(decode_card(bytes, trusted, sample_now)) == CardErrc::bad_signature);
}

TEST_CASE("card codec: a card signed by another key is an unknown key; a forged kid is a bad signature") {
  Issuer issuer, other;
  Bytes bytes = signed_sample(issuer);
  std::vector<TrustedIssuer> only_other = {other.trusted()};
  CHECK(error_of(decode_card(bytes, only_other, sample_now)) == CardErrc::unknown_key);
  CHECK(error_of(decode_card(bytes, {}, sample_now)) == CardErrc::unknown_key);
  // The other issuer's public key filed under this issuer's kid.
  std::vector<TrustedIssuer> forged = {TrustedIssuer{issuer_key_id(issuer.key.public_key), other.key.public_key}};
  CHECK(error_of(decode_card(bytes, forged, sample_now)) == CardErrc::bad_signature);
}

TEST_CASE("card codec: signing with a key the card does not name is refused") {
  Issuer issuer, other;
  auto result = sign_card(sample_card(issuer), other.key.private_key);
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == CardErrc::key_mismatch);
}

TEST_CASE("card codec: valid until the second before expires_at, expired from it on") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  CHECK(decode_card(bytes, trusted, sample_expiry - 1).has_value());
  CHECK(error_of(decode_card(bytes, trusted, sample_expiry)) == CardErrc::expired);
  CHECK(error_of(decode_card(bytes, trusted, sample_expiry + 1)) == CardErrc::expired);
}

TEST_CASE("card codec: input above 16 KiB is refused before parsing") {
  Bytes big(max_card_size + 1, std::byte{0xD2});
  CHECK(error_of(decode_card(big, {}, sample_now)) == CardErrc::too_large);
}

TEST_CASE("card codec: bytes after the envelope are refused") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_sample(issuer);
  bytes.push_back(std::byte{0x00});
  CHECK(error_of(decode_card(bytes, trusted, sample_now)) == CardErrc::trailing_bytes);
}

TEST_CASE("card codec: constructs cards never use are malformed, deep nesting exceeds a limit") {
  using proto::test::hex;
  CHECK(error_of(decode_card(hex("ff"), {}, sample_now)) == CardErrc::malformed);
  CHECK(error_of(decode_card(hex("9f ff"), {}, sample_now)) == CardErrc::malformed);       // indefinite array
  CHECK(error_of(decode_card(hex("f9 3c 00"), {}, sample_now)) == CardErrc::malformed);    // half float
  CHECK(error_of(decode_card(hex("c1 00"), {}, sample_now)) == CardErrc::malformed);       // tag 1
  CHECK(error_of(decode_card(hex("d2 d2 80"), {}, sample_now)) == CardErrc::malformed);    // tag 18 twice
  CHECK(error_of(decode_card(hex("d2 80"), {}, sample_now)) == CardErrc::not_cose_sign1);  // empty array
  CHECK(error_of(decode_card(hex("84 40 a0 40 40"), {}, sample_now)) == CardErrc::not_cose_sign1);  // untagged
  CHECK(error_of(decode_card(hex("81 81 81 81 81 81 81 81 81 00"), {}, sample_now)) == CardErrc::limit_exceeded);
  CHECK(error_of(decode_card(hex("98 41"), {}, sample_now)) == CardErrc::limit_exceeded);  // array of 65
  // An array announcing 2^32 entries is refused before anything is allocated.
  CHECK(error_of(decode_card(hex("9a ff ff ff ff"), {}, sample_now)) == CardErrc::limit_exceeded);
}

TEST_CASE("card codec: an algorithm other than EdDSA is refused") {
  using proto::test::hex;
  // 18([h'A10126' ({1: -7}, ES256), {4: h'01'}, h'A0', h'00'])
  CHECK(error_of(decode_card(hex("d2 84 43 a1 01 26 a1 04 41 01 41 a0 41 00"), {}, sample_now)) ==
        CardErrc::wrong_algorithm);
}

TEST_CASE("card codec: an unprotected header with more than one kid is refused") {
  using proto::test::hex;
  // 18([h'A10127', {4: h'01', 4: h'02'}, h'A0', h'00'])
  CHECK(error_of(decode_card(hex("d2 84 43 a1 01 27 a2 04 41 01 04 41 02 41 a0 41 00"), {}, sample_now)) ==
        CardErrc::not_cose_sign1);
}

TEST_CASE("card codec: payload fields with the wrong type, an unknown key or out of range are malformed fields") {
  using proto::test::hex;
  CHECK(error_of(parse_card_payload(hex("a0"))) == CardErrc::malformed_field);     // empty map
  CHECK(error_of(parse_card_payload(hex("80"))) == CardErrc::malformed_field);     // not a map
  CHECK(error_of(parse_card_payload(hex("a1 07 00"))) == CardErrc::malformed_field);  // unknown key 7
  CHECK(error_of(parse_card_payload(hex("a2 02 00 02 00"))) == CardErrc::malformed_field);  // duplicate key
  CHECK(error_of(parse_card_payload(hex("a1 61 61 00"))) == CardErrc::malformed_field);  // text key
}

TEST_CASE("card codec: what would not decode is not signed") {
  Issuer issuer;
  Card card = sample_card(issuer);
  auto refuse = [&](const Card& c, const char* why) {
    INFO(why);
    auto result = sign_card(c, issuer.key.private_key);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == CardErrc::malformed_field);
  };
  Card c = card;
  c.areas.clear();
  refuse(c, "no area");
  c = card;
  c.areas[1].code = "area-a";
  refuse(c, "duplicate area code");
  c = card;
  c.areas[1].internet[0].name = "a-net";
  refuse(c, "duplicate access point name");
  c = card;
  c.areas[0].internet[0].tariff = {TariffBand{600, 500, 1}};
  refuse(c, "band ends before it starts");
  c = card;
  c.areas[0].internet[0].tariff = {TariffBand{0, 600, 1}, TariffBand{500, 700, 1}};
  refuse(c, "overlapping bands");
  c = card;
  c.areas[0].internet[0].relays = {"http://relay"};
  refuse(c, "a relay that is not stun:/turn:");
  c = card;
  c.card_id.issue_date = 20261301;
  refuse(c, "month 13");
  c = card;
  c.areas[0].code = std::string(256, 'x');
  refuse(c, "area code above 255 bytes");
  c = card;
  c.areas[0].internet[0].cost_per_minute = max_cost_per_minute + 1;
  refuse(c, "cost above the limit");
}

TEST_CASE("card codec: a card at the limits round-trips; one too large for 16 KiB is refused") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Card card = sample_card(issuer);
  card.areas.clear();
  for (int i = 0; i < 12; ++i) {
    Area area;
    area.code = "area-" + std::to_string(i);
    for (int j = 0; j < 3; ++j) area.internet.push_back(test::point(area.code + "-p" + std::to_string(j), 1));
    card.areas.push_back(area);
  }
  auto bytes = sign_card(card, issuer.key.private_key);
  REQUIRE(bytes.has_value());
  auto back = decode_card(*bytes, trusted, sample_now);
  REQUIRE(back.has_value());
  CHECK(*back == card);

  for (int i = 12; i < 64; ++i) {
    Area area;
    area.code = "area-" + std::to_string(i);
    for (int j = 0; j < 4; ++j) area.internet.push_back(test::point(area.code + "-p" + std::to_string(j), 1));
    card.areas.push_back(area);
  }
  auto too_large = sign_card(card, issuer.key.private_key);
  REQUIRE_FALSE(too_large.has_value());
  CHECK(too_large.error().code == CardErrc::too_large);
}

TEST_CASE("card ID: text form round-trips; malformed text is refused") {
  CardId id{20261205, 7, 42};
  CHECK(CardId::parse(id.text()) == id);
  CHECK_FALSE(CardId::parse("20261205-7-42").has_value());
  CHECK_FALSE(CardId::parse("2026120x-0007-000042").has_value());
}

TEST_CASE("access point: the tariff band in force gives the cost, the base cost outside every band") {
  AccessPoint p = test::point("p", 1, {TariffBand{480, 1200, 3}, TariffBand{1200, 1320, 2}});
  CHECK(p.cost_at(0) == 1);
  CHECK(p.cost_at(479) == 1);
  CHECK(p.cost_at(480) == 3);
  CHECK(p.cost_at(1199) == 3);
  CHECK(p.cost_at(1200) == 2);
  CHECK(p.cost_at(1320) == 1);
}

}  // namespace tsunagu::cards

TEST_CASE("from_hex: either case back to bytes; an odd length or a non-digit is refused") {
  auto bytes = tsunagu::cards::from_hex("00ffA0");
  REQUIRE(bytes.has_value());
  CHECK(*bytes == tsunagu::Bytes{std::byte{0x00}, std::byte{0xff}, std::byte{0xa0}});
  CHECK(tsunagu::cards::from_hex("")->empty());
  CHECK_FALSE(tsunagu::cards::from_hex("abc").has_value());
  CHECK_FALSE(tsunagu::cards::from_hex("0g").has_value());
}
