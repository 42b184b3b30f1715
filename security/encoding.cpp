#include "security/encoding.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>

namespace tsunagu::security {

namespace {

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string base64_encode(ByteView data) {
  // Whole groups of 3 bytes per call, so chunks concatenate without padding in between.
  constexpr size_t chunk_size = size_t{3} << 20;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (size_t offset = 0; offset < data.size(); offset += chunk_size) {
    size_t length = std::min(chunk_size, data.size() - offset);
    size_t start = out.size();
    out.resize(start + (length + 2) / 3 * 4 + 1);  // EVP_EncodeBlock writes a final NUL
    int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + start),
                                  reinterpret_cast<const unsigned char*>(data.data() + offset),
                                  static_cast<int>(length));
    out.resize(start + static_cast<size_t>(written));
  }
  return out;
}

std::optional<Bytes> base64_decode(std::string_view text) {
  // Strict RFC 4648: standard alphabet, padded to a multiple of 4, padding only at
  // the end, no whitespace, and the unused bits of the last group zero.
  if (text.size() % 4 != 0 || text.size() > INT_MAX) return std::nullopt;
  if (text.empty()) return Bytes{};
  size_t padding = 0;
  if (text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  if (padding == 1 && text.back() != '=') return std::nullopt;  // "x=" followed by a letter
  for (size_t i = 0; i < text.size() - padding; ++i) {
    if (base64_value(text[i]) < 0) return std::nullopt;
  }
  int last = base64_value(text[text.size() - padding - 1]);
  if (padding == 2 && (last & 0x0f) != 0) return std::nullopt;
  if (padding == 1 && (last & 0x03) != 0) return std::nullopt;

  Bytes out(text.size() / 4 * 3);
  int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  // EVP_DecodeBlock counts the padding as if it were data (3 bytes per group).
  if (decoded < 0 || static_cast<size_t>(decoded) != out.size()) return std::nullopt;
  out.resize(out.size() - padding);
  return out;
}

}  // namespace tsunagu::security
