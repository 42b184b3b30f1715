// Fuzz target: the QR text decoder (TSU1: + Base45). Base45 is canonical, so
// what decodes must encode back to the same text (less a trailing newline);
// the bytes then go to the card decoder as a scanned card would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cards/card_codec.hpp"
#include "cards/qr_text.hpp"

using namespace tsunagu;
using namespace tsunagu::cards;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto bytes = decode_qr_text(text);
  if (!bytes) return 0;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (encode_qr_text(*bytes) != text) std::abort();
  (void)decode_card(*bytes, {}, 0);
  return 0;
}
