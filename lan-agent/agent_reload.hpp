// What `systemctl reload tsunagu-lan-agent` (SIGHUP) may change in a running
// agent (docs/lan-agent.md, "Reload"): the log level, the edge policy, who may
// run the hook, the lease files to sync, and the node link's settings
// (address, name, certificates, timers) for its next connection. What the
// agent built at start (its identity, the table, the hook socket and spool,
// LAN calls, the status page) waits for a restart.
#pragma once

#include <string>
#include <vector>

#include "lan-agent/agent_config.hpp"

namespace tsunagu::lanagent {

struct AgentReloadPlan {
  AgentConfig next;  // what to run with: the new values that apply now, the running ones elsewhere
  std::vector<std::string> restart_needed;  // keys that changed but wait for a restart
  bool node_changed = false;                // [node] differs: the link takes it for its next connection
};

AgentReloadPlan plan_agent_reload(const AgentConfig& running, AgentConfig fresh);

}  // namespace tsunagu::lanagent
