// Fuzz target: the card ledger's durable records (an account, a history
// event), which a damaged or foreign data file can fill with anything. Each
// decodes or is refused, never crashes; whatever decodes re-encodes to the
// same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "rendezvous/card_ledger.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {
void require_same(const Bytes& again, ByteView input) {
  if (again.size() != input.size() || !std::equal(again.begin(), again.end(), input.begin())) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView input(reinterpret_cast<const std::byte*>(data), size);
  if (auto account = decode_card_account(input, 7)) {
    if (input.size() > max_card_account_record_size || account->serial != 7) std::abort();
    Bytes again = encode_card_account(*account);
    // A record from before password_set_at (decoded as -1) is written back with it.
    if (account->password_set_at == -1) again.resize(again.size() - 8);
    require_same(again, input);
  }
  if (auto event = decode_card_event(input, 9)) {
    if (input.size() > max_card_event_record_size || event->sequence != 9) std::abort();
    require_same(encode_card_event(*event), input);
  }
  return 0;
}
