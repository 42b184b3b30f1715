#include "lan-agent/agent_reload.hpp"

namespace tsunagu::lanagent {

namespace {

bool same_node(const NodeSettings& a, const NodeSettings& b) {
  return a.address == b.address && a.other_nodes == b.other_nodes && a.server_name == b.server_name && a.ca_certificate == b.ca_certificate &&
         a.certificate == b.certificate && a.private_key == b.private_key &&
         a.heartbeat_interval_s == b.heartbeat_interval_s && a.request_timeout_s == b.request_timeout_s &&
         a.reconnect_min_ms == b.reconnect_min_ms && a.reconnect_max_ms == b.reconnect_max_ms &&
         a.refused_retry_s == b.refused_retry_s;
}

}  // namespace

AgentReloadPlan plan_agent_reload(const AgentConfig& running, AgentConfig fresh) {
  AgentReloadPlan plan;
  auto keep = [&](auto& fresh_value, const auto& running_value, const char* key) {
    if (!(fresh_value == running_value)) plan.restart_needed.emplace_back(key);
    fresh_value = running_value;
  };
  keep(fresh.name, running.name, "agent.name");
  keep(fresh.domains, running.domains, "agent.domains");
  keep(fresh.number_prefixes, running.number_prefixes, "agent.number_prefixes");
  keep(fresh.data_directory, running.data_directory, "agent.data_directory");
  keep(fresh.table.hostname_rule, running.table.hostname_rule, "table.hostname_rule");
  keep(fresh.table.history_depth, running.table.history_depth, "table.history_depth");
  keep(fresh.table.assumed_lease_seconds, running.table.assumed_lease_seconds, "table.assumed_lease_seconds");
  keep(fresh.table.tombstone_retention_s, running.table.tombstone_retention_s, "table.tombstone_retention");
  keep(fresh.table.map_size_mib, running.table.map_size_mib, "table.map_size_mib");
  keep(fresh.table.flush_interval_ms, running.table.flush_interval_ms, "table.flush_interval_ms");
  keep(fresh.table.pins, running.table.pins, "table.pins");
  keep(fresh.hook.socket, running.hook.socket, "hook.socket");
  keep(fresh.hook.spool_directory, running.hook.spool_directory, "hook.spool_directory");
  keep(fresh.calls.enabled, running.calls.enabled, "calls.enabled");
  keep(fresh.calls.terminal_port, running.calls.terminal_port, "calls.terminal_port");
  keep(fresh.calls.connect_timeout_ms, running.calls.connect_timeout_ms, "calls.connect_timeout_ms");
  keep(fresh.calls.call_waiting, running.calls.call_waiting, "calls.call_waiting");
  keep(fresh.web.listen, running.web.listen, "web.listen");
  keep(fresh.web.token_file, running.web.token_file, "web.token_file");
  // A link is made (or dropped) only at start.
  if (fresh.node.has_value() != running.node.has_value()) {
    plan.restart_needed.emplace_back("node");
    fresh.node = running.node;
  }
  plan.node_changed = fresh.node && running.node && !same_node(*fresh.node, *running.node);
  plan.next = std::move(fresh);
  return plan;
}

}  // namespace tsunagu::lanagent
