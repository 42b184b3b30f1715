// lan-agent/doctor.cpp: the hook paths read out of each DHCP server's
// configuration text (what `tsunagu-lan-agent doctor` then checks on disk).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lan-agent/doctor.hpp"

using namespace tsunagu::lanagent;
using Paths = std::vector<std::string>;

TEST_CASE("doctor: dnsmasq's dhcp-script lines, with or without --, comments and spaces") {
  CHECK(dnsmasq_hook_paths("# dhcp-script=/commented/out\n"
                           "dhcp-range=10.0.0.50,10.0.0.99,2m\n"
                           "  dhcp-script = /usr/lib/tsunagu/tsunagu-dhcp-hook  # ours\n"
                           "--dhcp-script=/opt/other\n"
                           "dhcp-scriptuser=nobody\n"
                           "script-on-renewal\n") == Paths{"/usr/lib/tsunagu/tsunagu-dhcp-hook", "/opt/other"});
  CHECK(dnsmasq_hook_paths("interface=lan0\n").empty());
}

TEST_CASE("doctor: Kea's run_script hook name, and no name from another hook library") {
  std::string conf = R"({"Dhcp4": {"hooks-libraries": [
      {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_lease_cmds.so"},
      {"library": "/usr/lib/x86_64-linux-gnu/kea/hooks/libdhcp_run_script.so",
       "parameters": {"name": "/usr/lib/tsunagu/tsunagu-dhcp-hook", "sync": false}}]}})";
  CHECK(kea_hook_paths(conf) == Paths{"/usr/lib/tsunagu/tsunagu-dhcp-hook"});
  CHECK(kea_hook_paths(R"({"Dhcp4": {"hooks-libraries": []}})").empty());
}

TEST_CASE("doctor: ISC dhcpd's execute() programs, each once") {
  std::string conf = "on commit { execute(\"/usr/lib/tsunagu/tsunagu-dhcp-hook\", \"commit\", x); }\n"
                     "on release { execute( \"/usr/lib/tsunagu/tsunagu-dhcp-hook\", \"release\"); }\n"
                     "on expiry { execute(\"/usr/local/bin/other\", \"expiry\"); }\n";
  CHECK(isc_hook_paths(conf) == Paths{"/usr/lib/tsunagu/tsunagu-dhcp-hook", "/usr/local/bin/other"});
}
