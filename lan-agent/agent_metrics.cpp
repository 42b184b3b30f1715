#include "lan-agent/agent_metrics.hpp"

#include "storage/store_error_label.hpp"
#include "web/prometheus.hpp"

namespace tsunagu::lanagent {

void count_hook_events(const HookEventLog& log, AgentMetricsInput& input) {
  for (size_t path = 0; path < kHookPathCount; ++path)
    for (size_t kind = 0; kind < kServerKindCount; ++kind)
      input.hook_events[path][kind] = log.count(static_cast<HookPath>(path), static_cast<alloc::ServerKind>(kind));
}

std::string agent_metrics_text(const AgentMetricsInput& in) {
  web::MetricsWriter w;
  w.gauge("tsunagu_agent_leases", "Live leases in the allocation table.");
  w.sample(in.live_leases);
  w.gauge("tsunagu_agent_bindings", "Extensions bound to a client.");
  w.sample(in.bindings);
  w.gauge("tsunagu_agent_binding_conflicts", "Clients whose hostname claimed an extension bound to another client.");
  w.sample(in.conflicts);

  w.counter("tsunagu_agent_hook_events",
            "Lease events from DHCP hooks, by server kind and path (socket, or replayed from the spool).");
  for (size_t path = 0; path < kHookPathCount; ++path)
    for (size_t kind = 0; kind < kServerKindCount; ++kind)
      w.sample(in.hook_events[path][kind], {{"source", alloc::to_string(static_cast<alloc::ServerKind>(kind))},
                                            {"path", to_string(static_cast<HookPath>(path))}});
  w.counter("tsunagu_agent_hook_connections", "Connections to the hook socket.");
  w.sample(in.hook_connections);
  w.counter("tsunagu_agent_hook_refused", "Hook requests refused, by reason (peer: not an allowed user or group).");
  w.sample(in.hook_refused_peers, {{"reason", "peer"}});
  w.sample(in.hook_bad_requests, {{"reason", "bad_request"}});
  w.counter("tsunagu_agent_hook_commit_failures", "Hook event batches the table failed to commit.");
  w.sample(in.hook_failed_commits);

  w.gauge("tsunagu_agent_spool_files", "Spool files waiting to be replayed.");
  w.sample(in.spool.files);
  w.gauge("tsunagu_agent_spool_bytes", "Bytes waiting in spool files.");
  w.sample(in.spool.bytes);

  w.gauge("tsunagu_agent_node_link_configured", "1 when agent.toml has a [node] section.");
  w.sample(uint64_t{in.node_configured ? 1u : 0u});
  w.gauge("tsunagu_agent_node_link_up", "1 while the link to the node is up (the node accepted agent_hello).");
  w.sample(uint64_t{in.node_linked ? 1u : 0u});
  w.counter("tsunagu_agent_node_connects", "Connections made to the node.");
  w.sample(in.node_connects);
  w.counter("tsunagu_agent_forwarded_lookups", "Forwarded lookups from the node answered, by result.");
  for (size_t i = 0; i < kAnswerResultCount; ++i)
    w.sample(in.answers[i], {{"result", to_string(static_cast<AnswerResult>(i))}});
  w.counter("tsunagu_agent_storage_errors", "Allocation table failures, by storage error kind.");
  for (size_t i = 0; i < storage::store_errc_count; ++i)
    w.sample(in.storage_errors[i], {{"kind", storage::metric_label(static_cast<storage::StoreErrc>(i))}});
  return w.take();
}

}  // namespace tsunagu::lanagent
