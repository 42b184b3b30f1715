#include "cards/qr_image.hpp"

#include <png.h>
#include <qrencode.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "base/files.hpp"

namespace tsunagu::cards {

namespace {

struct QrRelease {
  void operator()(QRcode* code) const { QRcode_free(code); }
};

void append_to_string(png_structp png, png_bytep data, size_t length) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), length);
}
void no_flush(png_structp) {}

// libpng reports errors by longjmp; this function holds no C++ objects with
// destructors across setjmp, so the jump skips nothing.
bool write_png_rows(std::string& out, const std::vector<unsigned char>& pixels, int side) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (png == nullptr) return false;
  png_infop info = png_create_info_struct(png);
  if (info == nullptr || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &out, append_to_string, no_flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(side), static_cast<png_uint_32>(side), 8, PNG_COLOR_TYPE_GRAY,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < side; ++y)
    png_write_row(png, pixels.data() + static_cast<size_t>(y) * static_cast<size_t>(side));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

Expected<std::string, std::string> qr_png(std::string_view text, const QrImageOptions& options) {
  if (options.pixels_per_module < 1 || options.pixels_per_module > 32 || options.quiet_zone_modules < 0 ||
      options.quiet_zone_modules > 16)
    return Unexpected(std::string("QR image options out of range"));
  std::string copy(text);  // libqrencode wants a NUL-terminated string
  // libqrencode splits the text into mode segments itself: a Base45 text is
  // one alphanumeric segment. The hint only says how to treat Kanji.
  errno = 0;
  std::unique_ptr<QRcode, QrRelease> code(QRcode_encodeString(copy.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1));
  if (code == nullptr) {
    if (errno == ERANGE)
      return Unexpected("the text (" + std::to_string(text.size()) + " characters) is too long for a QR code");
    return Unexpected("QR encoding failed: " + std::string(std::strerror(errno)));
  }
  const int modules = code->width + 2 * options.quiet_zone_modules;
  const int side = modules * options.pixels_per_module;
  std::vector<unsigned char> pixels(static_cast<size_t>(side) * static_cast<size_t>(side), 0xFF);
  for (int y = 0; y < code->width; ++y) {
    for (int x = 0; x < code->width; ++x) {
      // Bit 0 of each module byte is "dark".
      if ((code->data[y * code->width + x] & 1) == 0) continue;
      for (int dy = 0; dy < options.pixels_per_module; ++dy) {
        int row = (y + options.quiet_zone_modules) * options.pixels_per_module + dy;
        int column = (x + options.quiet_zone_modules) * options.pixels_per_module;
        std::memset(&pixels[static_cast<size_t>(row) * static_cast<size_t>(side) + static_cast<size_t>(column)], 0,
                    static_cast<size_t>(options.pixels_per_module));
      }
    }
  }
  std::string png;
  if (!write_png_rows(png, pixels, side)) return Unexpected(std::string("PNG encoding failed"));
  return png;
}

Expected<void, std::string> write_qr_png(std::string_view text, const std::string& path,
                                         const QrImageOptions& options) {
  auto png = qr_png(text, options);
  if (!png) return Unexpected(png.error());
  return write_file_atomically(path, *png, 0644);
}

}  // namespace tsunagu::cards
