// An IPv4 or IPv6 transport address as it travels in STUN attributes. Pure value
// type: parsing and printing only, no sockets.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tsunagu::proto {

struct SocketAddress {
  enum class Family : uint8_t { ipv4 = 1, ipv6 = 2 };  // the STUN family codes
  Family family = Family::ipv4;
  std::array<uint8_t, 16> ip{};  // IPv4 uses the first 4 bytes
  uint16_t port = 0;

  static SocketAddress v4(std::array<uint8_t, 4> addr, uint16_t port);
  static SocketAddress v6(std::array<uint8_t, 16> addr, uint16_t port);
  // "1.2.3.4:5", "[::1]:5"; a bare address without port is accepted when
  // default_port is given.
  static std::optional<SocketAddress> parse(std::string_view text, std::optional<uint16_t> default_port = {});
  std::string ip_string() const;
  std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"
  size_t ip_size() const { return family == Family::ipv4 ? 4 : 16; }

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;
};

}  // namespace tsunagu::proto
