#include "cards/base45.hpp"

#include <algorithm>
#include <array>

namespace tsunagu::cards {

namespace {

constexpr std::string_view alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

constexpr std::array<int8_t, 256> make_values() {
  std::array<int8_t, 256> values{};
  for (auto& v : values) v = -1;
  for (size_t i = 0; i < alphabet.size(); ++i) values[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return values;
}
constexpr std::array<int8_t, 256> values = make_values();

}  // namespace

std::string base45_encode(ByteView bytes) {
  std::string out;
  out.reserve(bytes.size() / 2 * 3 + 2);
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) {
    unsigned n = std::to_integer<unsigned>(bytes[i]) * 256 + std::to_integer<unsigned>(bytes[i + 1]);
    out += alphabet[n % 45];
    out += alphabet[n / 45 % 45];
    out += alphabet[n / (45 * 45)];
  }
  if (i < bytes.size()) {
    unsigned n = std::to_integer<unsigned>(bytes[i]);
    out += alphabet[n % 45];
    out += alphabet[n / 45];
  }
  return out;
}

std::optional<Bytes> base45_decode(std::string_view text) {
  if (text.size() % 3 == 1) return std::nullopt;
  Bytes out;
  out.reserve(text.size() / 3 * 2 + 1);
  for (size_t i = 0; i < text.size(); i += 3) {
    size_t group = std::min<size_t>(3, text.size() - i);
    unsigned n = 0, weight = 1;
    for (size_t j = 0; j < group; ++j) {
      int v = values[static_cast<unsigned char>(text[i + j])];
      if (v < 0) return std::nullopt;
      n += static_cast<unsigned>(v) * weight;
      weight *= 45;
    }
    if (group == 3) {
      if (n > 0xFFFF) return std::nullopt;
      out.push_back(std::byte(n >> 8));
      out.push_back(std::byte(n & 0xFF));
    } else {
      if (n > 0xFF) return std::nullopt;
      out.push_back(std::byte(n));
    }
  }
  return out;
}

}  // namespace tsunagu::cards
