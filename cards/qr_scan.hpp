// Reads a QR code's text from a PNG image in memory: libpng decodes it to
// 8-bit grey, libzbar finds the code. Apart from the codec (like
// qr_image.*) so that only what reads images links either library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/expected.hpp"

namespace tsunagu::cards {

struct QrScanLimits {
  // A card's QR code as issued is a few kilobytes; a photograph of one
  // from a phone is a few megabytes.
  size_t max_file_bytes = 8 * 1024 * 1024;
  // width * height, checked from the PNG header before any pixel is
  // decoded: 16 megapixels (a 4000 x 4000 photo) is 16 MB of grey.
  uint64_t max_pixels = 16'000'000;
};

enum class QrScanErrc {
  file_too_large,   // above max_file_bytes
  not_png,          // no PNG signature
  image_too_large,  // width * height above max_pixels
  bad_png,          // truncated or corrupt: libpng's message is the detail
  no_qr_code,       // decoded, but zbar found no QR code in it
};
struct QrScanError {
  QrScanErrc code;
  std::string detail;
};
const char* qr_scan_error_label(QrScanErrc code);

// The text of the first QR code in the image (as zbar orders them; a card
// image holds one). What the text means is the caller's: decode_qr_text()
// for a card.
Expected<std::string, QrScanError> scan_qr_png(std::string_view png, const QrScanLimits& limits = {});

// True when `bytes` start with the PNG signature.
bool looks_like_png(std::string_view bytes);

}  // namespace tsunagu::cards
