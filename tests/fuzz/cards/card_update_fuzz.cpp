// Fuzz target: the issuer's update decoder (area table and revoked serials,
// cards/card_codec.hpp). The signed form and the payload alone are both fed
// (a fuzzer cannot forge signatures). What parses is signed again with the
// fixed issuer and must decode to the same update; a mismatch aborts.
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstdlib>

#include "cards/card_codec.hpp"
#include "security/ed25519.hpp"

using namespace tsunagu;
using namespace tsunagu::cards;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// The seed 32 bytes of 0x01, as card_decode_fuzz.cpp: card_update_corpus/
// holds updates it signed.
const Bytes& issuer_seed() {
  static const Bytes seed(32, std::byte{0x01});
  return seed;
}

const std::vector<TrustedIssuer>& trusted() {
  static const std::vector<TrustedIssuer> issuers = [] {
    Bytes public_key = security::ed25519_public_key(issuer_seed());
    return std::vector<TrustedIssuer>{TrustedIssuer{issuer_key_id(public_key), public_key}};
  }();
  return issuers;
}

void check_payload(ByteView payload) {
  auto update = parse_card_update_payload(payload);
  if (!update) return;
  require(validate_card_update(*update).has_value());
  require(std::is_sorted(update->revoked.begin(), update->revoked.end()));
  update->issuer_key_id = trusted()[0].key_id;
  auto signed_again = sign_card_update(*update, issuer_seed());
  if (!signed_again) {
    // Only size can refuse what parsed: the envelope adds about 100 bytes.
    require(signed_again.error().code == CardErrc::too_large);
    return;
  }
  auto again = decode_card_update(*signed_again, trusted());
  require(again.has_value());
  require(*again == *update);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  if (auto decoded = decode_card_update(input, trusted())) {
    require(decoded->issuer_key_id == trusted()[0].key_id);
    require(decoded->version >= 1);
  }
  if (auto envelope = read_envelope(input)) check_payload(envelope->payload);
  check_payload(input);
  return 0;
}
