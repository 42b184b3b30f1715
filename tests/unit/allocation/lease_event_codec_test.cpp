#include <doctest/doctest.h>

#include "allocation/field_normalisation.hpp"
#include "allocation/lease_event_codec.hpp"

using namespace tsunagu::alloc;

namespace {
LeaseEvent sample_event() {
  LeaseEvent e;
  e.action = LeaseAction::grant;
  e.source = ServerKind::dnsmasq;
  e.address = *parse_ip_address("10.99.0.68");
  e.mac = "02:0a:0b:0c:0d:0e";
  e.client_id = "01:02:0a:0b:0c:0d:0e";
  e.hostname = "ext-4106";
  e.server = "lan0";
  e.expires = 1795334187;
  e.reported_at = 1795334067;
  return e;
}
}  // namespace

TEST_CASE("a lease event survives encode and decode unchanged, v4 and v6") {
  LeaseEvent v6 = sample_event();
  v6.address = *parse_ip_address("fd99::15b");
  v6.expires = LeaseEvent::kInfinite;
  v6.action = LeaseAction::remove;
  for (const LeaseEvent& e : {sample_event(), v6}) {
    tsunagu::Bytes bytes;
    REQUIRE(encode_lease_event(e, bytes));
    auto decoded = decode_lease_event(bytes);
    REQUIRE(decoded);
    CHECK(decoded->consumed == bytes.size());
    CHECK(decoded->event == e);
  }
}

TEST_CASE("every truncated prefix of a record needs more") {
  tsunagu::Bytes bytes;
  REQUIRE(encode_lease_event(sample_event(), bytes));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = decode_lease_event(tsunagu::ByteView(bytes).first(n));
    REQUIRE(!decoded);
    CHECK(decoded.error().code == ParseErrc::need_more);
  }
}

TEST_CASE("every flipped byte of a record is an error, never a wrong event") {
  tsunagu::Bytes bytes;
  REQUIRE(encode_lease_event(sample_event(), bytes));
  for (size_t i = 0; i < bytes.size(); ++i) {
    tsunagu::Bytes copy = bytes;
    copy[i] ^= std::byte{0x40};
    auto decoded = decode_lease_event(copy);
    CHECK(!decoded);
  }
}

TEST_CASE("a record of an unknown version with a good CRC is refused as bad_version") {
  tsunagu::Bytes bytes;
  REQUIRE(encode_lease_event(sample_event(), bytes));
  bytes[4] = std::byte{2};
  const size_t body = tsunagu::load_be16(bytes.data() + 5);
  tsunagu::store_be32(bytes.data() + 7 + body, crc32(tsunagu::ByteView(bytes).subspan(4, 3 + body)));
  CHECK(decode_lease_event(bytes).error().code == ParseErrc::bad_version);
}

TEST_CASE("fields over their limits are refused by the encoder") {
  LeaseEvent e = sample_event();
  e.server = std::string(65, 's');
  tsunagu::Bytes bytes;
  CHECK(encode_lease_event(e, bytes).error().code == ParseErrc::too_large);
}

// Found walking docs/lan-agent.md as a local user allowed on the hook socket:
// a record written by hand (not by the hook's parsers) carried ESC sequences
// and a bidi override in its hostname and server tag, and `list`, `show` and
// the log printed them to the admin's terminal as they were.
TEST_CASE("a record whose hostname or server tag the parsers could not have made is refused") {
  for (std::string hostname : {std::string("ext-4106\x1b[2J"), std::string("\xe2\x80\xae" "6014-txe"),
                               std::string("Ext-4106"), std::string("ext 4106"), std::string("ext-4106."),
                               std::string("*"), std::string("\xff\xfe")}) {
    CAPTURE(hostname);
    LeaseEvent e = sample_event();
    e.hostname = hostname;
    tsunagu::Bytes bytes;
    REQUIRE(encode_lease_event(e, bytes));
    CHECK(decode_lease_event(bytes).error().code == ParseErrc::bad_hostname);
  }
  for (std::string server : {std::string("lan0\x1b]0;owned\x07"), std::string("lan 0"), std::string("l\xc3\xa4n0"),
                             std::string("lan0\n")}) {
    CAPTURE(server);
    LeaseEvent e = sample_event();
    e.server = server;
    tsunagu::Bytes bytes;
    REQUIRE(encode_lease_event(e, bytes));
    CHECK(!decode_lease_event(bytes));
  }
  LeaseEvent plain = sample_event();
  plain.hostname.clear();
  plain.server.clear();
  tsunagu::Bytes bytes;
  REQUIRE(encode_lease_event(plain, bytes));
  CHECK(decode_lease_event(bytes));
}

TEST_CASE("server tags are 1-64 bytes of printable ASCII without spaces") {
  CHECK(valid_server_tag("lan0"));
  CHECK(valid_server_tag("00:01:00:01:2c:9b:3e:10:02:00:00:00:00:01"));
  CHECK(!valid_server_tag(""));
  CHECK(!valid_server_tag(std::string(65, 'a')));
  CHECK(!valid_server_tag("lan\x1b"));
  CHECK(!valid_server_tag("lan\x7f"));
  CHECK(!valid_server_tag("l\xc3\xa4n0"));
}
