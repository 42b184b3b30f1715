// An access point's relay URIs (cards/relay_uri.*): what the terminal probes
// and the node hands out as a card call's TURN server.
#include "cards/relay_uri.hpp"

#include <doctest/doctest.h>

namespace tsunagu::cards {

TEST_CASE("relay uri: schemes, default ports and transports") {
  auto stun = parse_relay_uri("stun:relay.osaka.example.net");
  REQUIRE(stun);
  CHECK(stun->scheme == RelayScheme::stun);
  CHECK(stun->port == 3478);
  CHECK_FALSE(stun->tcp);
  CHECK(stun->host_port() == "relay.osaka.example.net:3478");

  auto turn = parse_relay_uri("turn:203.0.113.11:3479");
  REQUIRE(turn);
  CHECK(turn->scheme == RelayScheme::turn);
  CHECK(turn->host == "203.0.113.11");
  CHECK(turn->port == 3479);
  CHECK_FALSE(turn->tcp);

  auto turn_tcp = parse_relay_uri("turn:203.0.113.11?transport=tcp");
  REQUIRE(turn_tcp);
  CHECK(turn_tcp->tcp);
  CHECK(turn_tcp->port == 3478);

  auto turns = parse_relay_uri("turns:premium.example.net");
  REQUIRE(turns);
  CHECK(turns->scheme == RelayScheme::turns);
  CHECK(turns->tcp);
  CHECK(turns->port == 5349);

  auto v6 = parse_relay_uri("turn:[2001:db8::1]:3478");
  REQUIRE(v6);
  CHECK(v6->host == "2001:db8::1");
  CHECK(v6->host_port() == "[2001:db8::1]:3478");
}

TEST_CASE("relay uri: what is refused") {
  for (const char* bad : {"", "http://x", "stun:", "stun::3478", "stun:host:", "stun:host:0", "stun:host:65536",
                          "stun:host:34x", "stun:host?transport=udp", "turn:host?transport=sctp", "turns:host?transport=udp",
                          "turn:[2001:db8::1", "turn:[]:3478", "turn:[::1]x", "turn:2001:db8::1", "turn:us er@host",
                          "turn:host:3478:1"}) {
    INFO(bad);
    CHECK_FALSE(parse_relay_uri(bad));
  }
  CHECK_FALSE(parse_relay_uri("stun:" + std::string(251, 'a')));
}

}  // namespace tsunagu::cards
