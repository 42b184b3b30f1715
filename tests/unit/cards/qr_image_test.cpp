#include "cards/qr_image.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cards/qr_text.hpp"
#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tsunagu-qr-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// What zbarimg (zbar-tools) reads from the image; popen waits for it to exit.
std::string scan_with_zbarimg(const std::string& png_path) {
  // stderr is dropped: zbarimg complains there when it finds no D-Bus.
  std::string command = "zbarimg --quiet --raw '" + png_path + "' 2>/dev/null";
  std::FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  INFO("zbarimg output: " << out);
  REQUIRE_MESSAGE(WIFEXITED(status), "zbarimg did not exit normally");
  REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, "zbarimg failed (apt-get install zbar-tools)");
  return out;
}

}  // namespace

TEST_CASE("qr image: a signed card written as a PNG reads back through zbarimg and verifies") {
  test::Issuer issuer;
  std::vector<TrustedIssuer> trusted = {issuer.trusted()};
  auto card_bytes = sign_card(test::sample_card(issuer), issuer.key.private_key);
  REQUIRE(card_bytes.has_value());
  std::string text = encode_qr_text(*card_bytes);
  TempDir dir;
  std::string path = dir.file("card.png");
  auto written = write_qr_png(text, path);
  REQUIRE_MESSAGE(written.has_value(), (written ? "" : written.error()));

  std::string scanned = scan_with_zbarimg(path);
  CHECK(scanned == text + "\n");
  auto bytes = decode_qr_text(scanned);
  REQUIRE(bytes.has_value());
  auto card = decode_card(*bytes, trusted, test::sample_now);
  REQUIRE(card.has_value());
  CHECK(*card == test::sample_card(issuer));
}

TEST_CASE("qr image: the PNG starts with the PNG signature and grows with the module size") {
  auto small = qr_png("TSU1:BB8", QrImageOptions{1, 4});
  auto large = qr_png("TSU1:BB8", QrImageOptions{8, 4});
  REQUIRE(small.has_value());
  REQUIRE(large.has_value());
  CHECK(small->starts_with("\x89PNG\r\n\x1a\n"));
  CHECK(large->size() > small->size());
}

TEST_CASE("qr image: text beyond any QR version is refused with a reason") {
  auto result = qr_png(std::string(5000, 'A'));
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().find("too long for a QR code") != std::string::npos);
}

}  // namespace tsunagu::cards
