#include "lan-agent/agent_reload.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "test_support.hpp"

using namespace tsunagu::lanagent;

namespace {

// The enrolment bundle's agent.toml and a hostname rule.
const std::string kRunning = std::string(testing::kEnrolled) + "\n[table]\nhostname_rule = \"ext{ext}\"\n";

AgentConfig parsed(const std::string& text) { return parse_agent_config(text, "/etc/tsunagu/agent.toml"); }

bool lists(const AgentReloadPlan& plan, const std::string& key) {
  return std::find(plan.restart_needed.begin(), plan.restart_needed.end(), key) != plan.restart_needed.end();
}

}  // namespace

TEST_CASE("reload: an unchanged agent.toml changes nothing and needs no restart") {
  auto plan = plan_agent_reload(parsed(kRunning), parsed(kRunning));
  CHECK(plan.restart_needed.empty());
  CHECK_FALSE(plan.node_changed);
}

TEST_CASE("reload: log level, policy, hook access and lease files apply now") {
  std::string text = kRunning;
  text.insert(text.find("[agent]\n") + 8, "log_level = \"debug\"\n");
  text += "\n[policy]\nshow_lease_addresses = true\n\n[hook]\nallowed_users = [\"dnsmasq\"]\n"
          "\n[sync]\nlease_files = [\"dnsmasq:/var/lib/misc/dnsmasq.leases\"]\n";
  auto plan = plan_agent_reload(parsed(kRunning), parsed(text));
  CHECK(plan.restart_needed.empty());
  CHECK(plan.next.log_level == "debug");
  CHECK(plan.next.policy.show_lease_addresses);
  CHECK(plan.next.hook.allowed_users == std::vector<std::string>{"dnsmasq"});
  REQUIRE(plan.next.sync_sources.size() == 1);
  CHECK_FALSE(plan.node_changed);
}

TEST_CASE("reload: [node] changes are taken for the next connection") {
  std::string text = kRunning;
  text.replace(text.find("node.example:7401"), 17, "203.0.113.9:7401");
  auto plan = plan_agent_reload(parsed(kRunning), parsed(text));
  CHECK(plan.node_changed);
  CHECK(plan.restart_needed.empty());
  REQUIRE(plan.next.node.has_value());
  CHECK(plan.next.node->address == "203.0.113.9:7401");
}

TEST_CASE("reload: identity, table and hook socket wait for a restart and keep their running values") {
  std::string text = kRunning;
  text.replace(text.find("domains = [\"acme\"]"), 18, "domains = [\"globex\"]");
  text.replace(text.find("ext{ext}"), 8, "phone-{ext}");
  text += "\n[hook]\nsocket = \"/run/other.sock\"\n";
  auto running = parsed(kRunning);
  auto plan = plan_agent_reload(running, parsed(text));
  CHECK(lists(plan, "agent.domains"));
  CHECK(lists(plan, "table.hostname_rule"));
  CHECK(lists(plan, "hook.socket"));
  CHECK(plan.restart_needed.size() == 3);
  CHECK(plan.next.domains == running.domains);
  CHECK(plan.next.table.hostname_rule == running.table.hostname_rule);
  CHECK(plan.next.hook.socket == running.hook.socket);
}

TEST_CASE("reload: a [node] section added or removed waits for a restart") {
  std::string without_node = kRunning;
  without_node.erase(without_node.find("[node]"), without_node.find("[agent]") - without_node.find("[node]"));
  auto running = parsed(kRunning);
  auto plan = plan_agent_reload(running, parsed(without_node));
  CHECK(lists(plan, "node"));
  CHECK(plan.next.node.has_value());
  CHECK_FALSE(plan.node_changed);
}
