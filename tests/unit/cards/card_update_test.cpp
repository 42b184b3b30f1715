// The issuer's signed update (area table and revoked serials; cards/card_codec.*).
#include <doctest/doctest.h>

#include <algorithm>

#include "cards/card_codec.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

using test::Issuer;

CardUpdate sample_update(const Issuer& issuer, uint64_t version = 3) {
  CardUpdate update;
  update.issuer_key_id = issuer_key_id(issuer.key.public_key);
  update.version = version;
  update.issued_at = test::sample_now;
  Area a;
  a.code = "area-a";
  a.internet = {test::point("a-net-new", 1)};
  update.areas = {a};
  update.revoked = {7, 42, 0x0102030405060708};
  return update;
}

Bytes signed_update(const Issuer& issuer, const CardUpdate& update) {
  auto bytes = sign_card_update(update, issuer.key.private_key);
  REQUIRE(bytes.has_value());
  return *bytes;
}

CardErrc error_of(const Expected<CardUpdate, CardError>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

}  // namespace

TEST_CASE("card update: a signed update decodes to what was signed; revokes() finds its serials") {
  Issuer issuer;
  CardUpdate update = sample_update(issuer);
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  auto decoded = decode_card_update(signed_update(issuer, update), trusted);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == update);
  CHECK(decoded->revokes(42));
  CHECK(decoded->revokes(0x0102030405060708));
  CHECK_FALSE(decoded->revokes(43));
}

TEST_CASE("card update: an update without areas or revocations (a cleared list) round-trips") {
  Issuer issuer;
  CardUpdate update = sample_update(issuer, 1);
  update.areas.clear();
  update.revoked.clear();
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  auto decoded = decode_card_update(signed_update(issuer, update), trusted);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == update);
}

TEST_CASE("card update: every truncated prefix is refused, of the envelope and of the payload") {
  Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_update(issuer, sample_update(issuer));
  for (size_t length = 0; length < bytes.size(); ++length)
    CHECK(error_of(decode_card_update(ByteView(bytes).first(length), trusted)) == CardErrc::truncated);
  auto envelope = read_envelope(bytes);
  REQUIRE(envelope.has_value());
  for (size_t length = 0; length < envelope->payload.size(); ++length)
    CHECK(error_of(parse_card_update_payload(ByteView(envelope->payload).first(length))) == CardErrc::truncated);
}

TEST_CASE("card update: a flipped bit anywhere in payload or signature, another key, a card are all refused") {
  Issuer issuer, other;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  Bytes bytes = signed_update(issuer, sample_update(issuer));
  auto envelope = read_envelope(bytes);
  REQUIRE(envelope.has_value());
  // The payload and the signature are the last payload.size() + 64 + 2 bytes (two bstr heads).
  for (size_t i = bytes.size() - 64; i < bytes.size(); ++i) {
    Bytes bad = bytes;
    bad[i] ^= std::byte{0x01};
    CHECK(error_of(decode_card_update(bad, trusted)) == CardErrc::bad_signature);
  }
  // A revoked serial taken off the list (42 -> 43) breaks the signature.
  Bytes needle = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                  std::byte{0}, std::byte{42}};
  auto at = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  REQUIRE(at != bytes.end());
  at[7] = std::byte{43};
  CHECK(error_of(decode_card_update(bytes, trusted)) == CardErrc::bad_signature);

  std::vector<TrustedIssuer> only_other = {other.trusted()};
  CHECK(error_of(decode_card_update(signed_update(issuer, sample_update(issuer)), only_other)) ==
        CardErrc::unknown_key);
  // A card is signed by the same key but is not an update: its fields are refused.
  auto card = sign_card(test::sample_card(issuer), issuer.key.private_key);
  REQUIRE(card.has_value());
  CHECK(error_of(decode_card_update(*card, trusted)) == CardErrc::malformed_field);
}

TEST_CASE("card update: what would not decode is not signed (version 0, unsorted or repeated serials, bad areas)") {
  Issuer issuer, other;
  auto refused = [&](CardUpdate update, CardErrc code) {
    auto result = sign_card_update(update, issuer.key.private_key);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == code);
  };
  CardUpdate u = sample_update(issuer);
  u.version = 0;
  refused(u, CardErrc::malformed_field);
  u = sample_update(issuer);
  u.revoked = {42, 7};
  refused(u, CardErrc::malformed_field);
  u.revoked = {7, 7};
  refused(u, CardErrc::malformed_field);
  u = sample_update(issuer);
  u.areas.front().internet.clear();
  refused(u, CardErrc::malformed_field);
  u = sample_update(issuer);
  u.issuer_key_id = issuer_key_id(other.key.public_key);
  refused(u, CardErrc::key_mismatch);
  u = sample_update(issuer);
  u.revoked.clear();
  for (uint64_t s = 1; s <= max_revoked_serials + 1; ++s) u.revoked.push_back(s);
  refused(u, CardErrc::malformed_field);
}

TEST_CASE("card update: 1024 revoked serials beside an area table fit; above 12 KiB is refused before parsing") {
  Issuer issuer;
  CardUpdate update = sample_update(issuer);
  update.revoked.clear();
  for (uint64_t s = 1; s <= max_revoked_serials; ++s) update.revoked.push_back(s * 1000);
  Bytes bytes = signed_update(issuer, update);
  CHECK(bytes.size() <= max_card_update_size);
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  auto decoded = decode_card_update(bytes, trusted);
  REQUIRE(decoded.has_value());
  CHECK(decoded->revoked.size() == max_revoked_serials);
  Bytes large(max_card_update_size + 1, std::byte{0});
  CHECK(error_of(decode_card_update(large, trusted)) == CardErrc::too_large);
}

}  // namespace tsunagu::cards
