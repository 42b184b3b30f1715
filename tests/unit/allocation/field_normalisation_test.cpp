#include <doctest/doctest.h>

#include <string>
#include <vector>

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

TEST_CASE("a MAC is held inline in its normalised text; other hardware addresses are refused, not cut") {
  MacAddress none;
  CHECK(none.empty());
  CHECK(none == "");
  CHECK(none.size() == 0);
  auto upper = normalise_mac("02:0A:0B:0C:0D:0E");
  REQUIRE(upper);
  CHECK(upper->view() == "02:0a:0b:0c:0d:0e");
  CHECK(upper->size() == MacAddress::kTextLength);
  CHECK(*upper == *normalise_mac("02-0a-0b-0c-0d-0e"));
  CHECK(*upper != none);
  // InfiniBand's IPoIB hardware address is 20 octets (Kea and ISC dhcpd carry
  // up to 20): not a MAC, and not its first six octets either.
  const std::string infiniband = "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:01:02:03";
  CHECK(normalise_mac(infiniband).error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac("02:0a:0b:0c:0d:0e:0f").error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac("02:0a:0b:0c:0d:0e0f").error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac("").error().code == ParseErrc::bad_mac);
  CHECK(normalise_mac(std::string(400, 'a')).error().code == ParseErrc::bad_mac);
  // Assigning text normalises it; text that is no MAC leaves no MAC.
  MacAddress assigned;
  assigned = "AABBCCDDEEFF";
  CHECK(assigned == "aa:bb:cc:dd:ee:ff");
  assigned = infiniband;
  CHECK(assigned.empty());
  assigned = "02:0a:0b:0c:0d:0e";
  assigned = "";
  CHECK(assigned.empty());
  static_assert(sizeof(MacAddress) <= MacAddress::kTextLength + 1, "held inline, no pointer to a heap string");
}

TEST_CASE("client-ids and DUIDs up to 130 bytes are normalised; longer ones are refused") {
  CHECK(*normalise_client_id("01:02:0A:0B:0C:0D:0E") == "01:02:0a:0b:0c:0d:0e");
  CHECK(*normalise_client_id("1-2-a") == "01:02:0a");
  CHECK(*normalise_client_id("0102") == "01:02");
  std::string duid(130 * 2, 'a');
  CHECK(normalise_client_id(duid)->size() == 130 * 3 - 1);
  CHECK(normalise_client_id(duid + "aa").error().code == ParseErrc::too_large);
  std::string colon_duid;
  for (int i = 0; i < 131; ++i) colon_duid += i == 0 ? "a" : ":a";
  CHECK(normalise_client_id(colon_duid).error().code == ParseErrc::too_large);
  CHECK(normalise_client_id("").error().code == ParseErrc::bad_client_id);
  CHECK(normalise_client_id("012").error().code == ParseErrc::bad_client_id);
  CHECK(normalise_client_id("01::02").error().code == ParseErrc::bad_client_id);
  auto bytes = parse_hex_bytes("01:02:0a", 3);
  REQUIRE(bytes);
  CHECK(*bytes == std::vector<uint8_t>{1, 2, 10});
  CHECK(parse_hex_bytes("01:02:0a:0b", 3).error().code == ParseErrc::too_large);
  CHECK(hex_colon(std::vector<uint8_t>{}).empty());
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
