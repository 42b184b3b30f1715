// The node's /metrics text (Prometheus exposition format 0.0.4): what the
// daemon gathers from NodeCore, the STUN responder and its own timing, as
// plain values. Labels come from small fixed sets (a result, a reason, a
// storage error's kind); never a user ID or an address. docs/operator.md lists
// every family.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "rendezvous/browser_signalling.hpp"
#include "rendezvous/node_core.hpp"
#include "rendezvous/stun_binding_responder.hpp"
#include "rendezvous/voicemail_store.hpp"
#include "web/prometheus.hpp"

namespace tsunagu::rendezvous {

struct NodeMetricsInput {
  NodeCounters counters;
  size_t terminal_links = 0;  // links on the terminal listener (logged in or not)
  size_t agent_links = 0;     // links on the agent listener
  size_t web_sessions = 0;    // logged-in web sessions (issue 14's HTTPS API)
  size_t presence = 0;        // users online
  BindingCounters stun;
  web::LatencyHistogram commit_latency;  // commit_turn() as the daemon timed it
  // What the voicemail store holds; nullopt when it could not be read.
  std::optional<VoicemailStore::Usage> voicemail;
  BrowserCallCounters browser_calls;  // the dialing pages' calls (zero without [web])
};

std::string node_metrics_text(const NodeMetricsInput& input);

}  // namespace tsunagu::rendezvous
