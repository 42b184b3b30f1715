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

// Found walking docs/lan-agent.md (reading the rule beside `bind`'s check, not
// through a server: dnsmasq refuses such names, ISC dhcpd passes them as sent):
// "-.phones" was learned as extension "-", which `show`, `unbind` and every
// caller refuse as an ID, so no admin could remove the binding.
TEST_CASE("hostname rule {id} learns only what an admin can name: a letter or digit first") {
  auto rule = HostnameRule::parse("{id}.phones");
  REQUIRE(rule);
  CHECK(!rule->extension_for("-.phones"));
  CHECK(!rule->extension_for("_.phones"));
  CHECK(!rule->extension_for("-alice.phones"));
  CHECK(!rule->extension_for("_admin.phones"));
  CHECK(*rule->extension_for("a-_.phones") == "a-_");
  CHECK(*rule->extension_for("4106_b.phones") == "4106_b");
}

TEST_CASE("hostname rule patterns without exactly one placeholder are refused") {
  CHECK(HostnameRule::parse("ext").error().code == ParseErrc::bad_pattern);
  CHECK(!HostnameRule::parse("{ext}-{ext}"));
  CHECK(!HostnameRule::parse("{ext}{id}"));
  CHECK(!HostnameRule::parse("Ext-{ext}"));
}

// Issue 10, item 6: docs/lan-agent.md's table of what each rule gives; keep both in step.
TEST_CASE("hostname rules give exactly the IDs docs/lan-agent.md lists, and lan1 only under a bare {id}") {
  struct Row {
    const char* hostname;  // as normalised (lowercase, no trailing dot)
    const char* ext_prefix;  // ext-{ext}
    const char* id_phones;   // {id}.phones
    const char* bare_ext;    // {ext}
    const char* bare_id;     // {id}
  };
  const Row rows[] = {
      {"ext-4106", "4106", nullptr, nullptr, "ext-4106"},
      {"lan1", nullptr, nullptr, nullptr, "lan1"},
      {"4106", nullptr, nullptr, "4106", "4106"},
      {"alice.phones", nullptr, "alice", nullptr, nullptr},
      {"ext-41a6", nullptr, nullptr, nullptr, "ext-41a6"},
      {"ext-", nullptr, nullptr, nullptr, "ext-"},
      {"-4106", nullptr, nullptr, nullptr, nullptr},
      {"_x.phones", nullptr, nullptr, nullptr, nullptr},
  };
  const char* patterns[] = {"ext-{ext}", "{id}.phones", "{ext}", "{id}"};
  for (const Row& row : rows) {
    const char* expected[] = {row.ext_prefix, row.id_phones, row.bare_ext, row.bare_id};
    for (size_t i = 0; i < 4; ++i) {
      CAPTURE(row.hostname);
      CAPTURE(patterns[i]);
      auto rule = HostnameRule::parse(patterns[i]);
      REQUIRE(rule);
      auto got = rule->extension_for(row.hostname);
      if (expected[i] == nullptr) {
        CHECK(!got);
      } else {
        REQUIRE(got);
        CHECK(*got == expected[i]);
      }
    }
  }
}
