#include "cluster/redis/key_slot.hpp"

#include <charconv>

namespace tsunagu::cluster {

uint16_t redis_crc16(std::string_view data) {
  uint16_t crc = 0;
  for (char c : data) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(static_cast<unsigned char>(c)) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021) : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

uint16_t redis_key_slot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    // "{}" is no tag: the whole key is hashed, as the specification says.
    if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
  }
  return static_cast<uint16_t>(redis_crc16(key) % redis_slot_count);
}

namespace {

template <class Number>
bool parse_number(std::string_view text, Number& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

std::optional<RedisRedirect> parse_redis_redirect(std::string_view error_text) {
  RedisRedirect redirect;
  if (error_text.starts_with("MOVED ")) {
    error_text.remove_prefix(6);
  } else if (error_text.starts_with("ASK ")) {
    redirect.ask = true;
    error_text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  size_t space = error_text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  unsigned slot = 0;
  if (!parse_number(error_text.substr(0, space), slot) || slot >= redis_slot_count) return std::nullopt;
  redirect.slot = static_cast<uint16_t>(slot);
  std::string_view address = error_text.substr(space + 1);
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  if (!parse_number(address.substr(colon + 1), redirect.port) || redirect.port <= 0 || redirect.port > 65535) {
    return std::nullopt;
  }
  redirect.host = std::string(address.substr(0, colon));
  return redirect;
}

}  // namespace tsunagu::cluster
