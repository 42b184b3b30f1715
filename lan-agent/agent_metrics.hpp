// The agent's /metrics text (Prometheus exposition format 0.0.4): the table's
// size, hook events by server kind, the spool's depth, the node link's
// state, forwarded lookups answered and storage errors. Plain values in (the
// daemon gathers them), text out; labels from fixed sets only, never a
// client, an extension or an address. docs/lan-agent.md lists every family.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "lan-agent/agent_core.hpp"
#include "lan-agent/hook_event_log.hpp"
#include "lan-agent/hook_spool.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::lanagent {

struct AgentMetricsInput {
  uint64_t live_leases = 0;
  uint64_t bindings = 0;
  uint64_t conflicts = 0;
  // Hook events by path (HookPath) and server kind (alloc::ServerKind).
  std::array<std::array<uint64_t, kServerKindCount>, kHookPathCount> hook_events{};
  uint64_t hook_connections = 0, hook_refused_peers = 0, hook_bad_requests = 0, hook_failed_commits = 0;
  SpoolDepth spool;
  bool node_configured = false;
  bool node_linked = false;
  uint64_t node_connects = 0;
  std::array<uint64_t, kAnswerResultCount> answers{};
  std::array<uint64_t, storage::store_errc_count> storage_errors{};
};

// Fills hook_events from the log.
void count_hook_events(const HookEventLog& log, AgentMetricsInput& input);

std::string agent_metrics_text(const AgentMetricsInput& input);

}  // namespace tsunagu::lanagent
