// A relay of an access point as the card writes it (RFC 7064 `stun:`, RFC 7065
// `turn:` / `turns:`): which host and port to probe before a call, and which
// TURN server the node hands a call on that access point. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tsunagu::cards {

enum class RelayScheme : uint8_t { stun, turn, turns };

struct RelayUri {
  RelayScheme scheme = RelayScheme::stun;
  std::string host;  // a name or an IP literal (IPv6 without its brackets)
  uint16_t port = 0;
  bool tcp = false;  // turns:, or ?transport=tcp: reached over TCP (TLS for turns:)

  // "host:port", IPv6 in brackets: what SocketAddress::parse and the resolver take.
  std::string host_port() const;
};

// At most 255 characters (the card's text limit); a port of 0, an empty host,
// a query other than transport=udp|tcp, or stun: with a query are refused.
std::optional<RelayUri> parse_relay_uri(std::string_view uri);

}  // namespace tsunagu::cards
