// Fuzz target: the card decoder. The envelope reader and the payload parser
// take the input as it is (a fuzzer cannot forge signatures, so the payload is
// fuzzed directly as well). What parses must encode again to bytes that parse
// to the same card; a mismatch aborts, so libFuzzer reports it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cards/card_codec.hpp"
#include "security/ed25519.hpp"

using namespace tsunagu;
using namespace tsunagu::cards;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

// A fixed issuer (the seed 32 bytes of 0x01: card_decode_corpus/ holds cards
// it signed, so the fuzzer starts past the signature check); a random one
// would make runs irreproducible.
const std::vector<TrustedIssuer>& trusted() {
  static const std::vector<TrustedIssuer> issuers = [] {
    Bytes public_key = security::ed25519_public_key(Bytes(32, std::byte{0x01}));
    return std::vector<TrustedIssuer>{TrustedIssuer{issuer_key_id(public_key), public_key}};
  }();
  return issuers;
}

void check_payload(ByteView payload) {
  auto card = parse_card_payload(payload);
  if (!card) return;
  require(validate_card(*card).has_value());
  auto encoded = encode_card_payload(*card);
  if (!encoded) {
    // Only size can refuse what parsed: the encoder leaves room for the envelope.
    require(encoded.error().code == CardErrc::too_large);
    return;
  }
  auto again = parse_card_payload(*encoded);
  require(again.has_value());
  require(*again == *card);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  auto decoded = decode_card(input, trusted(), 0);
  if (decoded) {
    require(decoded->issuer_key_id == trusted()[0].key_id);
    require(validate_card(*decoded).has_value());
  }
  if (auto envelope = read_envelope(input)) {
    require(envelope->key_id.size() >= 1 && envelope->key_id.size() <= 32);
    check_payload(envelope->payload);
  }
  check_payload(input);
  return 0;
}
