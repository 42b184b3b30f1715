// The key rollover statement (cards/card_codec.*): after `card rekey` the old
// issuer key endorses the new one, and a terminal that kept only the old key
// comes to trust the new one through that statement alone.
#include <doctest/doctest.h>

#include <algorithm>

#include "cards/card_codec.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

using test::Issuer;

Bytes rollover_from(const Issuer& old_key, const Issuer& new_key) {
  KeyRollover rollover{issuer_key_id(old_key.key.public_key), new_key.key.public_key, test::sample_now};
  auto bytes = sign_key_rollover(rollover, old_key.key.private_key);
  REQUIRE(bytes.has_value());
  return *bytes;
}

CardErrc error_of(const Expected<KeyRollover, CardError>& result) {
  REQUIRE_FALSE(result.has_value());
  return result.error().code;
}

}  // namespace

TEST_CASE("key rollover: a statement decodes to what the old key signed") {
  Issuer old_key, new_key;
  Bytes bytes = rollover_from(old_key, new_key);
  CHECK(bytes.size() <= max_key_rollover_size);
  std::vector<TrustedIssuer> trusted{old_key.trusted()};
  auto decoded = decode_key_rollover(bytes, trusted);
  REQUIRE(decoded.has_value());
  CHECK(decoded->old_key_id == issuer_key_id(old_key.key.public_key));
  CHECK(decoded->new_public_key == new_key.key.public_key);
  CHECK(decoded->issued_at == test::sample_now);
  // Every truncated prefix is refused; so is a byte appended.
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO(n);
    CHECK_FALSE(decode_key_rollover(ByteView(bytes.data(), n), trusted).has_value());
  }
  Bytes longer = bytes;
  longer.push_back(std::byte{0});
  CHECK_FALSE(decode_key_rollover(longer, trusted).has_value());
}

TEST_CASE("key rollover: forged statements are refused") {
  Issuer old_key, new_key, forger;
  std::vector<TrustedIssuer> trusted{old_key.trusted()};
  // Signed by a key the terminal does not trust, naming itself the old key.
  CHECK(error_of(decode_key_rollover(rollover_from(forger, new_key), trusted)) == CardErrc::unknown_key);
  // Every flipped bit of the signature or the payload breaks it.
  Bytes bytes = rollover_from(old_key, new_key);
  for (size_t at = bytes.size() - 64; at < bytes.size(); at += 7) {
    Bytes flipped = bytes;
    flipped[at] ^= std::byte{0x01};
    CHECK(error_of(decode_key_rollover(flipped, trusted)) == CardErrc::bad_signature);
  }
  // The new key taken for another (the last byte of the 32-byte key field).
  auto envelope = read_envelope(bytes);
  REQUIRE(envelope.has_value());
  Bytes swapped = bytes;
  auto key_at = std::search(swapped.begin(), swapped.end(), new_key.key.public_key.begin(), new_key.key.public_key.end());
  REQUIRE(key_at != swapped.end());
  key_at[31] ^= std::byte{0x80};
  CHECK(error_of(decode_key_rollover(swapped, trusted)) == CardErrc::bad_signature);
  // The signer must be the old key it names; the old key cannot endorse itself.
  KeyRollover lying{issuer_key_id(new_key.key.public_key), forger.key.public_key, test::sample_now};
  CHECK_FALSE(sign_key_rollover(lying, old_key.key.private_key).has_value());
  KeyRollover itself{issuer_key_id(old_key.key.public_key), old_key.key.public_key, test::sample_now};
  CHECK_FALSE(sign_key_rollover(itself, old_key.key.private_key).has_value());
  // A card or an update is not a rollover.
  Card card = test::sample_card(old_key);
  auto card_bytes = sign_card(card, old_key.key.private_key);
  REQUIRE(card_bytes.has_value());
  CHECK_FALSE(decode_key_rollover(*card_bytes, trusted).has_value());
}

TEST_CASE("key rollover: a chain is followed from the kept key, in any order, and only from it") {
  Issuer k1, k2, k3, stranger;
  std::vector<Bytes> statements{rollover_from(k2, k3), rollover_from(stranger, k1), rollover_from(k1, k2)};
  std::vector<TrustedIssuer> kept{k1.trusted()};
  auto added = follow_key_rollovers(kept, statements);
  REQUIRE(added.size() == 2);
  CHECK(added[0].public_key == k2.key.public_key);  // k1 -> k2 first, in the second place of the list
  CHECK(added[1].public_key == k3.key.public_key);
  CHECK(added[1].key_id == issuer_key_id(k3.key.public_key));
  // An update signed by k3 verifies with what was followed.
  CardUpdate update;
  update.issuer_key_id = issuer_key_id(k3.key.public_key);
  update.version = 2;
  update.issued_at = test::sample_now;
  update.revoked = {5};
  auto signed_update = sign_card_update(update, k3.key.private_key);
  REQUIRE(signed_update.has_value());
  CHECK_FALSE(decode_card_update(*signed_update, kept).has_value());
  kept.insert(kept.end(), added.begin(), added.end());
  CHECK(decode_card_update(*signed_update, kept).has_value());
  // Knowing only the stranger's key leads to k1 and on; knowing nothing, to nothing.
  CHECK(follow_key_rollovers(std::vector<TrustedIssuer>{}, statements).empty());
  CHECK(follow_key_rollovers(std::vector<TrustedIssuer>{k3.trusted()}, statements).empty());
  // Keys already trusted are not returned again.
  std::vector<TrustedIssuer> both{k1.trusted(), k2.trusted()};
  auto only_new = follow_key_rollovers(both, statements);
  REQUIRE(only_new.size() == 1);
  CHECK(only_new[0].public_key == k3.key.public_key);
}

}  // namespace tsunagu::cards
