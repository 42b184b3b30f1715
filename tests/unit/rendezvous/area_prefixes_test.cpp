// The node's map of address prefixes to card areas (rendezvous/area_prefixes.*).
#include <doctest/doctest.h>

#include "rendezvous/area_prefixes.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;

namespace {

std::string area_of(const AreaPrefixes& areas, std::string_view address) {
  auto parsed = proto::SocketAddress::parse(address, 40000);
  REQUIRE(parsed.has_value());
  const std::string* area = areas.area_of(*parsed);
  return area ? *area : "(none)";
}

}  // namespace

TEST_CASE("area prefixes: the longest prefix holding the address names the area") {
  AreaPrefixes areas;
  REQUIRE_FALSE(areas.add("198.51.0.0/16", "kansai").has_value());
  REQUIRE_FALSE(areas.add("198.51.100.0/24", "kanto").has_value());
  REQUIRE_FALSE(areas.add("198.51.100.128/25", "tohoku").has_value());
  REQUIRE_FALSE(areas.add("203.0.113.7", "hokkaido").has_value());  // a bare address: /32
  REQUIRE_FALSE(areas.add("2001:db8::/32", "kyushu").has_value());
  REQUIRE_FALSE(areas.add("2001:db8:100::/40", "shikoku").has_value());
  CHECK(area_of(areas, "198.51.7.1") == "kansai");
  CHECK(area_of(areas, "198.51.100.127") == "kanto");
  CHECK(area_of(areas, "198.51.100.128") == "tohoku");
  CHECK(area_of(areas, "198.52.0.1") == "(none)");
  CHECK(area_of(areas, "203.0.113.7") == "hokkaido");
  CHECK(area_of(areas, "203.0.113.8") == "(none)");
  CHECK(area_of(areas, "[2001:db8:1::1]") == "kyushu");
  CHECK(area_of(areas, "[2001:db8:1ff::1]") == "shikoku");  // 0x01ff: the /40 holds 0x01..
  CHECK(area_of(areas, "[2001:db9::1]") == "(none)");
  // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
  CHECK(area_of(areas, "[::ffff:198.51.100.200]") == "tohoku");
}

TEST_CASE("area prefixes: a zero-length prefix holds every address of its family") {
  AreaPrefixes areas;
  REQUIRE_FALSE(areas.add("0.0.0.0/0", "anywhere").has_value());
  REQUIRE_FALSE(areas.add("127.0.0.0/8", "here").has_value());
  CHECK(area_of(areas, "192.0.2.1") == "anywhere");
  CHECK(area_of(areas, "127.0.0.1") == "here");
  CHECK(area_of(areas, "[::1]") == "(none)");
}

TEST_CASE("area prefixes: malformed, misaligned, duplicate prefixes and ports are refused with the prefix named") {
  AreaPrefixes areas;
  REQUIRE_FALSE(areas.add("198.51.100.0/24", "kansai").has_value());
  for (const char* bad : {"198.51.100.1/24", "198.51.100.0/33", "2001:db8::/129", "198.51.100/24", "198.51.100.0/",
                          "198.51.100.0/x", "198.51.100.0/24/8", "198.51.100.0:7400", "[2001:db8::]/32", "",
                          "kansai", "198.51.100.0/-1"}) {
    auto error = areas.add(bad, "x");
    CAPTURE(bad);
    CHECK(error.has_value());
  }
  auto twice = areas.add("198.51.100.0/24", "kanto");
  REQUIRE(twice.has_value());
  CHECK(twice->find("given twice") != std::string::npos);
  CHECK(areas.size() == 1);
}
