#include "lan-agent/agent_config.hpp"

#include <doctest/doctest.h>

#include <string>

#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;

namespace {

using testing::kEnrolled;

std::string error_of(const std::string& text) {
  try {
    parse_agent_config(text, "/etc/tsunagu/agent.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: the enrolment bundle's agent.toml loads with defaults for the rest") {
  auto c = parse_agent_config(kEnrolled, "/etc/tsunagu/acme/agent.toml");
  REQUIRE(c.node.has_value());
  CHECK(c.node->address == "node.example:7401");
  CHECK(c.node->ca_certificate == "/etc/tsunagu/acme/ca.crt");
  CHECK(c.node->certificate == "/etc/tsunagu/acme/agent.crt");
  CHECK(c.node->private_key == "/etc/tsunagu/acme/agent.key");
  CHECK(c.node->heartbeat_interval_s == 10);
  CHECK(c.name == "acme");
  CHECK(c.domains == std::vector<std::string>{"acme"});
  CHECK(c.number_prefixes == std::vector<std::string>{"+81-6-1234-"});
  CHECK(c.hook.socket == "/run/tsunagu/agent-hook.sock");
  CHECK(c.hook.spool_directory == "/var/spool/tsunagu");
  CHECK(c.data_directory == "/var/lib/tsunagu/agent");
  CHECK(c.policy.default_allow);
  CHECK(c.policy.rules.empty());
  CHECK_NOTHROW(require_runnable(c));
}

TEST_CASE("config: server_name defaults to the address's host") {
  std::string text = kEnrolled;
  text.replace(text.find("server_name = \"node.example\"\n"), 29, "");
  CHECK(parse_agent_config(text, "a.toml").node->server_name == "node.example");
}

TEST_CASE("config: other_addresses lists a cluster's other nodes, each checked, named as server_name says") {
  std::string text = kEnrolled;
  text.replace(text.find("server_name = \"node.example\"\n"), 29,
               "other_addresses = [\"node-b.example:7401\", \"10.0.0.3:7401\"]\n");
  auto own_names = parse_agent_config(text, "a.toml");
  CHECK(own_names.node->other_nodes == std::vector<std::pair<std::string, std::string>>{
                                           {"node-b.example:7401", "node-b.example"}, {"10.0.0.3:7401", "10.0.0.3"}});
  auto one_name = parse_agent_config(std::string(kEnrolled).replace(
      std::string(kEnrolled).find("[node]\n"), 7, "[node]\nother_addresses = [\"10.0.0.3:7401\"]\n"), "a.toml");
  CHECK(one_name.node->other_nodes == std::vector<std::pair<std::string, std::string>>{{"10.0.0.3:7401", "node.example"}});
  CHECK(parse_agent_config(kEnrolled, "a.toml").node->other_nodes.empty());
  text = std::string(kEnrolled).replace(std::string(kEnrolled).find("[node]\n"), 7,
                                        "[node]\nother_addresses = [\"no-port\"]\n");
  CHECK(error_of(text).find("node.other_addresses") != std::string::npos);
}

TEST_CASE("config: every section is read") {
  auto c = parse_agent_config(std::string(kEnrolled) + R"(
[table]
hostname_rule = "ext-{ext}"
history_depth = 8
[hook]
socket = "/tmp/x.sock"
allowed_groups = ["_kea"]
allowed_users = ["dnsmasq"]
timeout_ms = 500
chain = "/usr/local/bin/old"
[sync]
lease_files = ["dnsmasq:/var/lib/misc/dnsmasq.leases", "kea:leases.csv"]
on_start = false
[policy]
default = "deny"
[[policy.rule]]
extensions = ["41*"]
allow_callers = ["*@acme", "alice"]
[[policy.rule]]
extensions = ["*"]
deny_callers = ["mallory"]
)", "/etc/tsunagu/agent.toml");
  CHECK(c.table.hostname_rule == "ext-{ext}");
  CHECK(c.table.history_depth == 8);
  CHECK(c.hook.timeout_ms == 500);
  REQUIRE(c.sync_sources.size() == 2);
  CHECK(c.sync_sources[1].kind == alloc::ServerKind::kea);
  CHECK(c.sync_sources[1].path == "/etc/tsunagu/leases.csv");
  CHECK_FALSE(c.sync_on_start);
  CHECK_FALSE(c.policy.default_allow);
  REQUIRE(c.policy.rules.size() == 2);
  CHECK(c.policy.rules[0].allow_callers.size() == 2);
  CHECK(c.policy.rules[1].deny_callers == std::vector<std::string>{"mallory"});
}

TEST_CASE("config: errors name the file, the key and what is wrong") {
  CHECK(error_of("[agent]\nnmae = \"acme\"\n").find("agent.nmae: unknown setting") != std::string::npos);
  CHECK(error_of("[nodes]\n").find("nodes: unknown section") != std::string::npos);
  CHECK(error_of("x = 1\n").find("x: unknown section") != std::string::npos);
  CHECK(error_of("[node]\nserver_name = \"n\"\n").find("node.address: required") != std::string::npos);
  CHECK(error_of("[node]\naddress = \"nohost\"\n").find("is not HOST:PORT") != std::string::npos);
  CHECK(error_of("[node]\naddress = \"h:1\"\n").find("node.ca_certificate: required") != std::string::npos);
  CHECK(error_of("[agent]\nname = \"Acme\"\n").find("agent.name") != std::string::npos);
  CHECK(error_of("[agent]\ndomains = \"acme\"\n").find("must be a list of strings") != std::string::npos);
  CHECK(error_of("[agent]\ndomains = [\"ac me\"]\n").find("agent.domains") != std::string::npos);
  CHECK(error_of("[agent]\nnumber_prefixes = [\"abc\"]\n").find("agent.number_prefixes") != std::string::npos);
  CHECK(error_of("[table]\nhostname_rule = \"ext-{nope}\"\n").find("table.hostname_rule") != std::string::npos);
  CHECK(error_of("[table]\nhistory_depth = -1\n").find("between") != std::string::npos);
  CHECK(error_of("[hook]\nchain = \"relative\"\n").find("absolute") != std::string::npos);
  CHECK(error_of("[sync]\nlease_files = [\"bogus:/x\"]\n").find("unknown lease file kind") != std::string::npos);
  CHECK(error_of("[policy]\ndefault = \"maybe\"\n").find("policy.default") != std::string::npos);
  CHECK(error_of("[[policy.rule]]\nallow_callers = [\"a\"]\n").find("policy.rule[1].extensions: required") !=
        std::string::npos);
  CHECK(error_of("[[policy.rule]]\nextensions = [\"4*1*\"]\n").find("policy.rule[1].extensions") !=
        std::string::npos);
  CHECK(error_of("[[policy.rule]]\nextensions = [\"*\"]\ncallers = [\"a\"]\n").find("unknown setting") !=
        std::string::npos);
  CHECK(error_of("[agent\n").find("/etc/tsunagu/agent.toml:1:") == 0);
  CHECK(error_of(std::string(kMaxConfigBytes + 1, '#')).find("larger than 1 MiB") != std::string::npos);
}

// Found walking docs/lan-agent.md as the admin: a pin "Alice=MAC" was bound at
// start (no caller can dial "Alice", and `unbind Alice` is refused), and a pin
// "4106 =MAC" passed the configuration check and doctor, then stopped `run`.
TEST_CASE("config: table.pins names extensions as bind does") {
  CHECK(error_of("[table]\npins = [\"4106=02:00:00:41:06:99\"]\n").empty());
  CHECK(error_of("[table]\npins = [\"alice.b=02:00:00:41:06:99\"]\n").empty());
  for (const char* bad : {"4106 ", " 4106", "Alice", "-4106", "4106@acme", "41\\u001b[2J06"}) {
    CAPTURE(bad);
    std::string error = error_of(std::string("[table]\npins = [\"") + bad + "=02:00:00:41:06:99\"]\n");
    CHECK(error.find("table.pins") != std::string::npos);
    CHECK(error.find("the extension is not") != std::string::npos);
  }
}

TEST_CASE("config: run needs a name and a route when a node is configured") {
  auto no_routes = parse_agent_config("[node]\naddress = \"h:1\"\nca_certificate = \"a\"\ncertificate = \"b\"\n"
                                      "private_key = \"c\"\n[agent]\nname = \"acme\"\n",
                                      "a.toml");
  CHECK_THROWS_AS(require_runnable(no_routes), ConfigError);
  auto lan_only = parse_agent_config("[agent]\ndata_directory = \"/tmp/x\"\n", "a.toml");
  CHECK_NOTHROW(require_runnable(lan_only));
}

TEST_CASE("config: sync sources are KIND:PATH") {
  std::string error;
  auto s = parse_sync_source("isc:/var/lib/dhcp/dhcpd.leases", "/", error);
  REQUIRE(s.has_value());
  CHECK(s->kind == alloc::ServerKind::isc_dhcpd);
  CHECK_FALSE(parse_sync_source("dnsmasq:", "/", error).has_value());
  CHECK_FALSE(parse_sync_source("/path", "/", error).has_value());
}
