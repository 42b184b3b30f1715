#include <doctest/doctest.h>

#include "allocation/client_ref.hpp"
#include "allocation/field_normalisation.hpp"

using namespace tsunagu::alloc;

TEST_CASE("MACs are normalised from ISC's unpadded form, any case and any separator") {
  CHECK(*normalise_mac("1:f2:3c:4:5:6") == "01:f2:3c:04:05:06");
  CHECK(*normalise_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff");
  CHECK(*normalise_mac("aabbccddeeff") == "aa:bb:cc:dd:ee:ff");
  CHECK(normalise_mac("aa:bb:cc:dd:ee").error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac("aa:bb:cc:dd:ee:fg").error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac("aa::bb:cc:dd:ee").error().code == ParseErrc::bad_mac);
}

TEST_CASE("hostnames lose case and Kea's trailing dot; odd and over-long names are dropped") {
  CHECK(*normalise_hostname("Ext-4106.") == "ext-4106");
  CHECK(normalise_hostname("*")->empty());
  CHECK(normalise_hostname("John's phone")->empty());
  CHECK(normalise_hostname(std::string(254, 'a'))->empty());
  CHECK(normalise_hostname(std::string(253, 'a'))->size() == 253);
}

TEST_CASE("client references: six bytes are a MAC, longer hex a client-id") {
  CHECK(ClientRef::parse("02:0A:0B:0C:0D:0E")->kind == ClientRef::Kind::mac);
  auto cid = ClientRef::parse("01:02:0a:0b:0c:0d:0e");
  REQUIRE(cid);
  CHECK(cid->kind == ClientRef::Kind::client_id);
  CHECK(cid->index_key() == "c=01:02:0a:0b:0c:0d:0e");
  CHECK(*ClientRef::from_index_key(cid->index_key()) == *cid);
  CHECK(!ClientRef::parse(std::string(400, 'a')));
}

TEST_CASE("IP addresses parse to a SocketAddress with port 0 and print back") {
  auto v4 = parse_ip_address("10.99.0.68");
  REQUIRE(v4);
  CHECK(v4->port == 0);
  CHECK(ip_to_string(*v4) == "10.99.0.68");
  auto v6 = parse_ip_address("FD99::15B");
  REQUIRE(v6);
  CHECK(ip_to_string(*v6) == "fd99::15b");
  CHECK(!parse_ip_address("10.99.0"));
  CHECK(!parse_ip_address(std::string(100, '1')));
}
