// Fuzz target: `tsunagu card load IMAGE.png`'s path from the file's bytes to
// a card: libpng to grey, libzbar's QR decoder, the QR text, the card
// decoder. The pixel limit is lower than the terminal's (16 megapixels) so
// that a run is spent on varied inputs rather than on zbar scanning a few
// large blank images; the decoding is the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cards/card_codec.hpp"
#include "cards/qr_scan.hpp"
#include "cards/qr_text.hpp"

using namespace tsunagu;
using namespace tsunagu::cards;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view png(reinterpret_cast<const char*>(data), size);
  QrScanLimits limits;
  limits.max_pixels = 1'000'000;
  auto text = scan_qr_png(png, limits);
  if (!text) {
    if (text.error().detail.empty() && text.error().code != QrScanErrc::no_qr_code) std::abort();  // say why
    return 0;
  }
  auto bytes = decode_qr_text(*text);
  if (!bytes) return 0;
  (void)decode_card(*bytes, {}, 0);
  return 0;
}
