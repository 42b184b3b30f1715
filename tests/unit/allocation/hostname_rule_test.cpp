#include <doctest/doctest.h>

#include "allocation/hostname_rule.hpp"

using namespace tsunagu::alloc;

TEST_CASE("hostname rule ext-{ext} takes the digits after the prefix") {
  auto rule = HostnameRule::parse("ext-{ext}");
  REQUIRE(rule);
  CHECK(*rule->extension_for("ext-4106") == "4106");
  CHECK(!rule->extension_for("ext-"));
  CHECK(!rule->extension_for("ext-41a6"));
  CHECK(!rule->extension_for("pc-4106"));
  CHECK(!rule->extension_for("ext-4106.lan"));
}

TEST_CASE("hostname rule {id}.phones takes a name before the suffix") {
  auto rule = HostnameRule::parse("{id}.phones");
  REQUIRE(rule);
  CHECK(*rule->extension_for("alice.phones") == "alice");
  CHECK(!rule->extension_for(".phones"));
}

TEST_CASE("hostname rule patterns without exactly one placeholder are refused") {
  CHECK(HostnameRule::parse("ext").error().code == ParseErrc::bad_pattern);
  CHECK(!HostnameRule::parse("{ext}-{ext}"));
  CHECK(!HostnameRule::parse("{ext}{id}"));
  CHECK(!HostnameRule::parse("Ext-{ext}"));
}
