#include "cards/qr_scan.hpp"

#include <png.h>
#include <zbar.h>

#include <memory>
#include <vector>

namespace tsunagu::cards {

// zbar.h declares its C API inside namespace zbar when read as C++.
using namespace ::zbar;

namespace {

constexpr std::string_view png_signature = "\x89PNG\r\n\x1a\n";

struct PngImageRelease {
  void operator()(png_image* image) const { png_image_free(image); }
};
struct ScannerRelease {
  void operator()(zbar_image_scanner_t* scanner) const { zbar_image_scanner_destroy(scanner); }
};
struct ZbarImageRelease {
  void operator()(zbar_image_t* image) const { zbar_image_destroy(image); }
};

Unexpected<QrScanError> failure(QrScanErrc code, std::string detail) {
  return Unexpected(QrScanError{code, std::move(detail)});
}

}  // namespace

const char* qr_scan_error_label(QrScanErrc code) {
  switch (code) {
    case QrScanErrc::file_too_large: return "file too large";
    case QrScanErrc::not_png: return "not a PNG image";
    case QrScanErrc::image_too_large: return "image too large";
    case QrScanErrc::bad_png: return "truncated or corrupt PNG";
    case QrScanErrc::no_qr_code: return "no QR code in the image";
  }
  return "unknown";
}

bool looks_like_png(std::string_view bytes) { return bytes.starts_with(png_signature); }

Expected<std::string, QrScanError> scan_qr_png(std::string_view png, const QrScanLimits& limits) {
  if (png.size() > limits.max_file_bytes)
    return failure(QrScanErrc::file_too_large, std::to_string(png.size()) + " bytes, at most " +
                                                   std::to_string(limits.max_file_bytes));
  if (!looks_like_png(png)) return failure(QrScanErrc::not_png, "no PNG signature");

  // libpng's simplified API: it converts any colour type and bit depth to
  // 8-bit grey itself and reports errors through image.message rather than
  // by longjmp, so no C++ object is skipped by a jump.
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  std::unique_ptr<png_image, PngImageRelease> release(&image);
  if (png_image_begin_read_from_memory(&image, png.data(), png.size()) == 0)
    return failure(QrScanErrc::bad_png, image.message);
  const uint64_t pixels = uint64_t{image.width} * uint64_t{image.height};
  if (pixels > limits.max_pixels)
    return failure(QrScanErrc::image_too_large, std::to_string(image.width) + " x " + std::to_string(image.height) +
                                                    " pixels, at most " + std::to_string(limits.max_pixels));
  image.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> grey(static_cast<size_t>(pixels));
  // A transparent background is paper: composed onto white, as on screen.
  png_color white{255, 255, 255};
  if (png_image_finish_read(&image, &white, grey.data(), 0, nullptr) == 0)
    return failure(QrScanErrc::bad_png, image.message);

  std::unique_ptr<zbar_image_scanner_t, ScannerRelease> scanner(zbar_image_scanner_create());
  std::unique_ptr<zbar_image_t, ZbarImageRelease> frame(zbar_image_create());
  if (scanner == nullptr || frame == nullptr) return failure(QrScanErrc::no_qr_code, "zbar could not start");
  // Only QR codes: a card has no other symbology, and fewer decoders means
  // less of zbar sees untrusted pixels.
  zbar_image_scanner_set_config(scanner.get(), ZBAR_NONE, ZBAR_CFG_ENABLE, 0);
  zbar_image_scanner_set_config(scanner.get(), ZBAR_QRCODE, ZBAR_CFG_ENABLE, 1);
  // The bytes as coded, without zbar's guess at a character set.
  zbar_image_scanner_set_config(scanner.get(), ZBAR_QRCODE, ZBAR_CFG_BINARY, 1);
  zbar_image_set_format(frame.get(), zbar_fourcc('Y', '8', '0', '0'));
  zbar_image_set_size(frame.get(), image.width, image.height);
  zbar_image_set_data(frame.get(), grey.data(), grey.size(), nullptr);
  if (zbar_scan_image(scanner.get(), frame.get()) <= 0)
    return failure(QrScanErrc::no_qr_code,
                   std::to_string(image.width) + " x " + std::to_string(image.height) + " pixels, no QR code found");
  for (const zbar_symbol_t* symbol = zbar_image_first_symbol(frame.get()); symbol != nullptr;
       symbol = zbar_symbol_next(symbol)) {
    if (zbar_symbol_get_type(symbol) != ZBAR_QRCODE) continue;
    return std::string(zbar_symbol_get_data(symbol), zbar_symbol_get_data_length(symbol));
  }
  return failure(QrScanErrc::no_qr_code, "no QR code found");
}

}  // namespace tsunagu::cards
