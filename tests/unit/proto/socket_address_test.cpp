#include "proto/socket_address.hpp"

#include <arpa/inet.h>
#include <doctest/doctest.h>

using tsunagu::proto::SocketAddress;

TEST_CASE("socket address: IPv4 with port parses and prints back") {
  auto a = SocketAddress::parse("192.0.2.1:32853");
  REQUIRE(a.has_value());
  CHECK(a->family == SocketAddress::Family::ipv4);
  CHECK(*a == SocketAddress::v4({192, 0, 2, 1}, 32853));
  CHECK(a->ip_size() == 4);
  CHECK(a->ip_string() == "192.0.2.1");
  CHECK(a->to_string() == "192.0.2.1:32853");
}

TEST_CASE("socket address: IPv6 is bracketed with a port and printed bracketed") {
  auto a = SocketAddress::parse("[2001:db8::1]:443");
  REQUIRE(a.has_value());
  CHECK(a->family == SocketAddress::Family::ipv6);
  CHECK(a->ip_size() == 16);
  CHECK(a->port == 443);
  CHECK(a->ip[0] == 0x20);
  CHECK(a->ip[1] == 0x01);
  CHECK(a->ip[15] == 0x01);
  CHECK(a->ip_string() == "2001:db8::1");
  CHECK(a->to_string() == "[2001:db8::1]:443");
  CHECK(SocketAddress::parse("[::1]:5")->to_string() == "[::1]:5");
  CHECK(SocketAddress::parse("[::ffff:192.0.2.1]:7")->to_string() == "[::ffff:192.0.2.1]:7");
}

TEST_CASE("socket address: a bare address takes the default port, if one is given") {
  CHECK(SocketAddress::parse("10.0.0.1", 3478) == SocketAddress::v4({10, 0, 0, 1}, 3478));
  CHECK(SocketAddress::parse("::1", 3478)->to_string() == "[::1]:3478");
  CHECK(SocketAddress::parse("[::1]", 3478)->to_string() == "[::1]:3478");
  CHECK(SocketAddress::parse("10.0.0.1:80", 3478)->port == 80);
  CHECK_FALSE(SocketAddress::parse("10.0.0.1").has_value());
  CHECK_FALSE(SocketAddress::parse("::1").has_value());
  CHECK_FALSE(SocketAddress::parse("[::1]").has_value());
}

TEST_CASE("socket address: malformed text is refused") {
  for (const char* text : {"", ":", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1", "1.2.3.4:+5", "1.2.3.4:5a",
                           "1.2.3.4: 5", "1.2.3.4:123456", "1.2.3:5", "256.1.1.1:5", "host:5", "[::1:5",
                           "[::1]5", "[::1]:", "[1.2.3.4]:5", "[]:5", "[::g]:5", "::1:5:x",
                           "1.2.3.4:5:6"}) {
    CAPTURE(text);
    CHECK_FALSE(SocketAddress::parse(text).has_value());
    CHECK_FALSE(SocketAddress::parse(text, 80).has_value());
  }
  CHECK(SocketAddress::parse("1.2.3.4:0")->port == 0);
  CHECK(SocketAddress::parse("1.2.3.4:65535")->port == 65535);
}

TEST_CASE("socket address: factories and equality") {
  auto a = SocketAddress::v4({127, 0, 0, 1}, 1);
  auto b = SocketAddress::v4({127, 0, 0, 1}, 2);
  CHECK(a != b);
  b.port = 1;
  CHECK(a == b);
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  auto v6 = SocketAddress::v6(loopback, 1);
  CHECK(v6 != a);
  CHECK(v6.to_string() == "[::1]:1");
  // A default-constructed address is 0.0.0.0:0.
  CHECK(SocketAddress{}.to_string() == "0.0.0.0:0");
}

TEST_CASE("socket address: IPv4 prints as inet_ntop does, for every octet value in every position") {
  for (unsigned value = 0; value < 256; ++value) {
    auto octet = static_cast<uint8_t>(value);
    for (size_t position = 0; position < 4; ++position) {
      std::array<uint8_t, 4> bytes{1, 20, 255, 0};
      bytes[position] = octet;
      char expected[INET_ADDRSTRLEN] = {};
      REQUIRE(inet_ntop(AF_INET, bytes.data(), expected, sizeof expected) != nullptr);
      CHECK(SocketAddress::v4(bytes, 9).ip_string() == expected);
    }
  }
}
