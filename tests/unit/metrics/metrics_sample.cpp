// Prints the node's and the agent's /metrics text with every counter
// non-zero, for `promtool check metrics` (promtool_check.sh). `node` or
// `agent` as the argument.
#include <cstdio>
#include <string_view>

#include "lan-agent/agent_metrics.hpp"
#include "rendezvous/node_metrics.hpp"

using namespace tsunagu;

namespace {

template <size_t N>
void fill(std::array<uint64_t, N>& values, uint64_t first) {
  for (size_t i = 0; i < N; ++i) values[i] = first + i;
}

std::string node_text() {
  rendezvous::NodeMetricsInput in;
  rendezvous::NodeCounters& c = in.counters;
  c.requests = 1000;
  c.bad_messages = 3;
  c.logins = 40;
  c.failed_logins = 5;
  c.logins_limited = 2;
  c.logins_refused_per_account = 1;
  c.token_logins = 30;
  fill(c.token_refusals, 1);
  c.registrations = 9;
  c.registrations_rate_limited = 1;
  c.password_jobs_refused = 1;
  c.links_refused_node_full = 1;
  c.links_refused_per_source = 2;
  c.idle_links_closed = 4;
  fill(c.direct_lookups, 1);
  fill(c.forwarded_lookup_results, 2);
  c.forwarded_lookups = 30;
  c.forward_timeouts = 1;
  c.directory_searches = 12;
  c.calls_offered = 20;
  c.calls_accepted = 15;
  fill(c.calls_ended, 1);
  c.early_candidates_dropped = 1;
  c.commits = 77;
  fill(c.commit_failures_by_kind, 1);
  fill(c.storage_errors, 1);
  c.voicemail_bytes_stored = 123456;
  c.voicemails_stored = 3;
  c.voicemails_deleted = 1;
  c.voicemails_refused_sender = 1;
  c.voicemails_refused_domain = 1;
  c.voicemails_refused_store = 1;
  c.uploads_refused_per_sender = 1;
  c.uploads_dropped = 1;
  in.terminal_links = 12;
  in.agent_links = 2;
  in.web_sessions = 3;
  in.presence = 8;
  in.stun.answered = 50;
  in.stun.classic = 5;
  in.stun.dropped = 2;
  in.stun.unknown_attributes = 1;
  for (uint64_t ns : {80'000u, 400'000u, 2'000'000u, 30'000'000u}) in.commit_latency.record_ns(ns);
  in.voicemail = rendezvous::VoicemailStore::Usage{2, 65536};
  return rendezvous::node_metrics_text(in);
}

std::string agent_text() {
  lanagent::AgentMetricsInput in;
  in.live_leases = 14;
  in.bindings = 10;
  in.conflicts = 1;
  for (auto& by_kind : in.hook_events) fill(by_kind, 1);
  in.hook_connections = 30;
  in.hook_refused_peers = 1;
  in.hook_bad_requests = 1;
  in.hook_failed_commits = 1;
  in.spool = {1, 512};
  in.node_configured = true;
  in.node_linked = true;
  in.node_connects = 2;
  fill(in.answers, 1);
  fill(in.storage_errors, 1);
  return lanagent::agent_metrics_text(in);
}

}  // namespace

int main(int argc, char** argv) {
  std::string_view which = argc > 1 ? argv[1] : "";
  std::string text = which == "node" ? node_text() : which == "agent" ? agent_text() : std::string();
  if (text.empty()) {
    std::fprintf(stderr, "usage: metrics_sample node|agent\n");
    return 2;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return 0;
}
