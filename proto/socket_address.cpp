#include "proto/socket_address.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace tsunagu::proto {

namespace {

// Parses a decimal port 0..65535: digits only, no sign, no spaces.
std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 0xFFFF) return std::nullopt;
  return static_cast<uint16_t>(value);
}

std::optional<SocketAddress> parse_ip(std::string_view text, bool want_v6, uint16_t port) {
  // inet_pton needs a NUL-terminated string; the longest textual IPv6 address
  // (with an embedded IPv4 part) is 45 characters.
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buffer[INET6_ADDRSTRLEN] = {};
  std::memcpy(buffer, text.data(), text.size());
  if (want_v6) {
    std::array<uint8_t, 16> ip{};
    if (inet_pton(AF_INET6, buffer, ip.data()) != 1) return std::nullopt;
    return SocketAddress::v6(ip, port);
  }
  std::array<uint8_t, 4> ip{};
  if (inet_pton(AF_INET, buffer, ip.data()) != 1) return std::nullopt;
  return SocketAddress::v4(ip, port);
}

}  // namespace

SocketAddress SocketAddress::v4(std::array<uint8_t, 4> addr, uint16_t port) {
  SocketAddress a;
  a.family = Family::ipv4;
  std::memcpy(a.ip.data(), addr.data(), addr.size());
  a.port = port;
  return a;
}

SocketAddress SocketAddress::v6(std::array<uint8_t, 16> addr, uint16_t port) {
  SocketAddress a;
  a.family = Family::ipv6;
  a.ip = addr;
  a.port = port;
  return a;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text, std::optional<uint16_t> default_port) {
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    // "[v6]:port" or, with a default port, "[v6]".
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    std::optional<uint16_t> port;
    if (rest.empty()) {
      port = default_port;
    } else if (rest.front() == ':') {
      port = parse_port(rest.substr(1));
    }
    if (!port) return std::nullopt;
    return parse_ip(host, true, *port);
  }
  size_t colons = 0;
  for (char c : text) colons += c == ':' ? 1 : 0;
  if (colons > 1) {
    // A bare IPv6 address: a port can only be given in brackets.
    if (!default_port) return std::nullopt;
    return parse_ip(text, true, *default_port);
  }
  if (colons == 1) {
    size_t colon = text.find(':');
    auto port = parse_port(text.substr(colon + 1));
    if (!port) return std::nullopt;
    return parse_ip(text.substr(0, colon), false, *port);
  }
  if (!default_port) return std::nullopt;
  return parse_ip(text, false, *default_port);
}

std::string SocketAddress::ip_string() const {
  if (family == Family::ipv4) {
    // By hand: glibc's inet_ntop formats IPv4 with sprintf, and the login
    // limiter's key asks for it on every login.
    std::string out;
    for (size_t i = 0; i < 4; ++i) {
      if (i != 0) out += '.';
      unsigned octet = ip[i];
      if (octet >= 100) out += static_cast<char>('0' + octet / 100);
      if (octet >= 10) out += static_cast<char>('0' + octet / 10 % 10);
      out += static_cast<char>('0' + octet % 10);
    }
    return out;
  }
  char buffer[INET6_ADDRSTRLEN] = {};
  int af = family == Family::ipv4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, ip.data(), buffer, sizeof buffer) == nullptr) return {};
  return buffer;
}

std::string SocketAddress::to_string() const {
  std::string out;
  if (family == Family::ipv6) {
    out = "[" + ip_string() + "]";
  } else {
    out = ip_string();
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace tsunagu::proto
