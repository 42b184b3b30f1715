// scan_qr_png() on PNGs made by the product's own QR writer (qr_png), on
// PNGs libpng writes in other formats, and on broken and oversized ones.
#include "cards/qr_scan.hpp"

#include <doctest/doctest.h>
#include <png.h>

#include <string>
#include <vector>

#include "cards/qr_image.hpp"
#include "cards/qr_text.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

std::string signed_card_text(const test::Issuer& issuer) {
  auto bytes = sign_card(test::sample_card(issuer), issuer.key.private_key);
  REQUIRE(bytes.has_value());
  return encode_qr_text(*bytes);
}

// The grey pixels of a PNG, decoded with libpng's simplified API.
std::vector<unsigned char> grey_pixels(const std::string& png, png_uint_32& side) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE(png_image_begin_read_from_memory(&image, png.data(), png.size()) != 0);
  image.format = PNG_FORMAT_GRAY;
  std::vector<unsigned char> pixels(PNG_IMAGE_SIZE(image));
  REQUIRE(png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr) != 0);
  side = image.width;
  return pixels;
}

// The same picture as RGBA, dark modules opaque dark blue and light ones fully
// transparent: what a card drawn on a web page and saved might look like.
std::string as_transparent_rgba(const std::string& grey_png) {
  png_uint_32 side = 0;
  auto grey = grey_pixels(grey_png, side);
  std::vector<unsigned char> rgba;
  for (unsigned char value : grey) {
    bool dark = value < 128;
    rgba.insert(rgba.end(), {static_cast<unsigned char>(dark ? 10 : 255), static_cast<unsigned char>(dark ? 20 : 255),
                             static_cast<unsigned char>(dark ? 90 : 255), static_cast<unsigned char>(dark ? 255 : 0)});
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = side;
  image.height = side;
  image.format = PNG_FORMAT_RGBA;
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_to_memory(&image, nullptr, &size, 0, rgba.data(), 0, nullptr) != 0);
  std::string out(size, '\0');
  REQUIRE(png_image_write_to_memory(&image, out.data(), &size, 0, rgba.data(), 0, nullptr) != 0);
  out.resize(size);
  return out;
}

std::string blank_png(png_uint_32 side) {
  std::vector<unsigned char> white(static_cast<size_t>(side) * side, 0xFF);
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = side;
  image.height = side;
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_to_memory(&image, nullptr, &size, 0, white.data(), 0, nullptr) != 0);
  std::string out(size, '\0');
  REQUIRE(png_image_write_to_memory(&image, out.data(), &size, 0, white.data(), 0, nullptr) != 0);
  out.resize(size);
  return out;
}

}  // namespace

TEST_CASE("qr scan: the card's PNG as qr_png writes it reads back to the same text, and the card verifies") {
  test::Issuer issuer;
  std::string text = signed_card_text(issuer);
  auto png = qr_png(text);
  REQUIRE(png.has_value());
  auto scanned = scan_qr_png(*png);
  REQUIRE_MESSAGE(scanned.has_value(), (scanned ? "" : scanned.error().detail));
  CHECK(*scanned == text);
  auto bytes = decode_qr_text(*scanned);
  REQUIRE(bytes.has_value());
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  auto card = decode_card(*bytes, trusted, test::sample_now);
  REQUIRE(card.has_value());
  CHECK(*card == test::sample_card(issuer));
}

TEST_CASE("qr scan: an RGBA image with a transparent background is read as dark on white") {
  test::Issuer issuer;
  std::string text = signed_card_text(issuer);
  auto png = qr_png(text);
  REQUIRE(png.has_value());
  auto scanned = scan_qr_png(as_transparent_rgba(*png));
  REQUIRE_MESSAGE(scanned.has_value(), (scanned ? "" : scanned.error().detail));
  CHECK(*scanned == text);
}

TEST_CASE("qr scan: a QR code that is not a card's is returned as it is; decode_qr_text refuses it") {
  auto png = qr_png("https://example.org/");
  REQUIRE(png.has_value());
  auto scanned = scan_qr_png(*png);
  REQUIRE(scanned.has_value());
  CHECK(*scanned == "https://example.org/");
  CHECK_FALSE(decode_qr_text(*scanned).has_value());
}

TEST_CASE("qr scan: an image with no QR code says so") {
  auto scanned = scan_qr_png(blank_png(200));
  REQUIRE_FALSE(scanned.has_value());
  CHECK(scanned.error().code == QrScanErrc::no_qr_code);
  CHECK(scanned.error().detail.find("200 x 200") != std::string::npos);
}

TEST_CASE("qr scan: every prefix cut inside the image data is refused; one missing only the IEND reads whole") {
  test::Issuer issuer;
  std::string text = signed_card_text(issuer);
  auto png = qr_png(text);
  REQUIRE(png.has_value());
  // The last 12 bytes are the empty IEND chunk: libpng has every pixel
  // (CRC-checked) before it, and may read the image without it.
  const size_t iend_start = png->size() - 12;
  REQUIRE(png->substr(iend_start + 4, 4) == "IEND");
  for (size_t length = 0; length < png->size(); length += 1 + length / 16) {
    CAPTURE(length);
    auto scanned = scan_qr_png(std::string_view(*png).substr(0, length));
    if (length >= iend_start) {
      CHECK((!scanned.has_value() || *scanned == text));
      continue;
    }
    REQUIRE_FALSE(scanned.has_value());
    CHECK((scanned.error().code == (length < 8 ? QrScanErrc::not_png : QrScanErrc::bad_png)));
  }
  for (size_t length = iend_start - 64; length < iend_start; ++length) {  // every cut of the data's end
    CAPTURE(length);
    CHECK_FALSE(scan_qr_png(std::string_view(*png).substr(0, length)).has_value());
  }
}

TEST_CASE("qr scan: a damaged PNG (a flipped byte in the pixel data) is refused by its checksum") {
  auto png = qr_png("TSU1:BB8");
  REQUIRE(png.has_value());
  std::string damaged = *png;
  damaged[damaged.size() - 20] ^= 0x40;  // inside the last IDAT chunk, before its CRC and IEND
  auto scanned = scan_qr_png(damaged);
  REQUIRE_FALSE(scanned.has_value());
  CHECK(scanned.error().code == QrScanErrc::bad_png);
}

TEST_CASE("qr scan: the limits on file bytes and pixels are checked before decoding") {
  auto png = qr_png("TSU1:BB8", QrImageOptions{4, 4});  // 21 + 8 modules of 4 pixels: 116 x 116
  REQUIRE(png.has_value());
  REQUIRE(scan_qr_png(*png).has_value());

  auto too_many_bytes = scan_qr_png(*png, QrScanLimits{png->size() - 1, 16'000'000});
  REQUIRE_FALSE(too_many_bytes.has_value());
  CHECK(too_many_bytes.error().code == QrScanErrc::file_too_large);

  auto too_many_pixels = scan_qr_png(*png, QrScanLimits{8 * 1024 * 1024, 116 * 116 - 1});
  REQUIRE_FALSE(too_many_pixels.has_value());
  CHECK(too_many_pixels.error().code == QrScanErrc::image_too_large);
  CHECK(too_many_pixels.error().detail.find("116 x 116") != std::string::npos);
  CHECK(scan_qr_png(*png, QrScanLimits{8 * 1024 * 1024, 116 * 116}).has_value());

  auto text = scan_qr_png("TSU1:BB8");
  REQUIRE_FALSE(text.has_value());
  CHECK(text.error().code == QrScanErrc::not_png);
}

}  // namespace tsunagu::cards
