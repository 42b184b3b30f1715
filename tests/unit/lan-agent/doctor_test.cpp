// lan-agent/doctor.cpp: the hook paths read out of each DHCP server's
// configuration text (what `tsunagu-lan-agent doctor` then checks on disk).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lan-agent/doctor.hpp"

#include <sys/stat.h>

#include "test_support.hpp"

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

// Found walking docs/lan-agent.md as the admin: with web.token_file mode 0644
// doctor said "0 failure(s)", and the agent then refused to start.
TEST_CASE("doctor: the web token file is checked as the agent reads it") {
  testing::TempDir dir;
  std::string data = dir.path() + "/data";
  REQUIRE(mkdir(data.c_str(), 0700) == 0);
  std::string token = dir.write("web.token", std::string(64, 'a') + "\n");
  std::string config = dir.write("agent.toml", "[agent]\ndata_directory = \"" + data + "\"\n[web]\nlisten = \"127.0.0.1:1\"\n"
                                               "token_file = \"" + token + "\"\n");
  auto finding = [&] {
    auto report = run_agent_doctor(config, DhcpServerFiles{}, tsunagu::ops::DoctorClock{1795334000});
    for (const auto& f : report.findings())
      if (f.check == "web token " + token) return std::optional<tsunagu::ops::Finding>(f);
    return std::optional<tsunagu::ops::Finding>();
  };
  REQUIRE(chmod(token.c_str(), 0600) == 0);
  auto good = finding();
  REQUIRE(good);
  CHECK(good->verdict == tsunagu::ops::Verdict::ok);
  REQUIRE(chmod(token.c_str(), 0644) == 0);
  auto readable = finding();
  REQUIRE(readable);
  CHECK(readable->verdict == tsunagu::ops::Verdict::fail);
  CHECK(readable->detail.find("readable by other users") != std::string::npos);
  dir.write("web.token", "short\n");
  REQUIRE(chmod(token.c_str(), 0600) == 0);
  auto short_token = finding();
  REQUIRE(short_token);
  CHECK(short_token->verdict == tsunagu::ops::Verdict::fail);
}
