// Writes a card's QR text as a PNG (libqrencode + libpng), apart from the
// codec so that reading a card needs neither library.
#pragma once

#include <string>
#include <string_view>

#include "base/expected.hpp"

namespace tsunagu::cards {

struct QrImageOptions {
  int pixels_per_module = 4;
  int quiet_zone_modules = 4;  // the margin ISO/IEC 18004 asks scanners to have
};

// The PNG bytes of `text` as a QR code: alphanumeric mode where the text allows (Base45 does), error
// correction level M, as an 8-bit greyscale image. The error says what
// failed (the text too long for any QR version, say).
Expected<std::string, std::string> qr_png(std::string_view text, const QrImageOptions& options = {});
// qr_png() written to `path` atomically (base/files.hpp), mode 0644.
Expected<void, std::string> write_qr_png(std::string_view text, const std::string& path,
                                         const QrImageOptions& options = {});

}  // namespace tsunagu::cards
