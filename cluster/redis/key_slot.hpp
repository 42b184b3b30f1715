// Redis Cluster's key-to-slot mapping (the cluster specification's "Keys
// distribution model"): CRC16/XMODEM of the key, or of its hash tag (the text
// between the first '{' and the next '}', when not empty), modulo 16384. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tsunagu::cluster {

inline constexpr uint16_t redis_slot_count = 16384;

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection.
uint16_t redis_crc16(std::string_view data);
uint16_t redis_key_slot(std::string_view key);

// A MOVED or ASK error reply: "MOVED 3999 127.0.0.1:6381".
struct RedisRedirect {
  bool ask = false;  // ASK: this one command goes there; MOVED: the slot lives there now
  uint16_t slot = 0;
  std::string host;
  int port = 0;
};
std::optional<RedisRedirect> parse_redis_redirect(std::string_view error_text);

}  // namespace tsunagu::cluster
