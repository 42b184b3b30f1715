#include "rendezvous/node_metrics.hpp"

#include <algorithm>

#include "storage/store_error_label.hpp"

namespace tsunagu::rendezvous {

std::string node_metrics_text(const NodeMetricsInput& in) {
  const NodeCounters& c = in.counters;
  web::MetricsWriter w;

  w.gauge("tsunagu_node_links", "Open links to the node, by listener.");
  w.sample(uint64_t{in.terminal_links}, {{"kind", "terminal"}});
  w.sample(uint64_t{in.agent_links}, {{"kind", "agent"}});
  w.gauge("tsunagu_node_web_sessions", "Logged-in sessions of the web API.");
  w.sample(uint64_t{in.web_sessions});
  w.gauge("tsunagu_node_users_online", "Users holding presence.");
  w.sample(uint64_t{in.presence});
  w.counter("tsunagu_node_links_refused", "Links refused at accept, by reason.");
  w.sample(c.links_refused_node_full, {{"reason", "node_full"}});
  w.sample(c.links_refused_per_source, {{"reason", "per_source"}});
  w.counter("tsunagu_node_idle_links_closed", "Links closed after idle_timeout_s without a message.");
  w.sample(c.idle_links_closed);

  w.counter("tsunagu_node_requests", "Requests handled on terminal and agent links.");
  w.sample(c.requests);
  w.counter("tsunagu_node_bad_messages", "Messages that could not be decoded or were not allowed.");
  w.sample(c.bad_messages);

  w.counter("tsunagu_node_logins", "Login attempts, by result: ok, failed (wrong ID or password), limited (login "
                                   "limiter, 429), refused (the account holds max_links_per_account links).");
  w.sample(c.logins, {{"result", "ok"}});
  w.sample(c.failed_logins, {{"result", "failed"}});
  w.sample(c.logins_limited, {{"result", "limited"}});
  w.sample(c.logins_refused_per_account, {{"result", "refused"}});
  w.counter("tsunagu_node_token_logins", "Logins by a session-resumption token (login_resume), of the ok logins.");
  w.sample(c.token_logins);
  w.counter("tsunagu_node_token_logins_refused",
            "Session-resumption tokens refused, by reason: malformed, forged (not this node's key or user), expired, "
            "revoked (the account was removed or its password changed), disabled (passwords.resume_token_ttl = 0).");
  for (size_t i = 0; i < token_refusal_count; ++i)
    w.sample(c.token_refusals[i], {{"reason", to_string(static_cast<TokenRefusal>(i))}});
  w.counter("tsunagu_node_registrations", "Registrations, by result.");
  w.sample(c.registrations, {{"result", "ok"}});
  w.sample(c.registrations_rate_limited, {{"result", "limited"}});
  w.counter("tsunagu_node_password_jobs_refused",
            "Logins and registrations refused because max_password_jobs were being hashed (503).");
  w.sample(c.password_jobs_refused);

  w.counter("tsunagu_node_lookups",
            "Lookups, by route (direct: the node's accounts; forwarded: a LAN agent's extension) and result.");
  for (size_t i = 0; i < lookup_result_count; ++i) {
    auto result = to_string(static_cast<LookupResult>(i));
    w.sample(c.direct_lookups[i], {{"route", "direct"}, {"result", result}});
    w.sample(c.forwarded_lookup_results[i], {{"route", "forwarded"}, {"result", result}});
  }
  w.counter("tsunagu_node_agent_questions", "Forwarded lookups and edge-policy questions sent to LAN agents.");
  w.sample(c.forwarded_lookups);
  w.counter("tsunagu_node_agent_timeouts", "Questions to LAN agents that got no answer within forward_timeout_ms.");
  w.sample(c.forward_timeouts);
  w.counter("tsunagu_node_directory_searches", "Directory searches answered.");
  w.sample(c.directory_searches);

  w.counter("tsunagu_node_calls_offered", "Calls offered (a ring sent to the callee).");
  w.sample(c.calls_offered);
  w.counter("tsunagu_node_calls_accepted", "Calls the callee accepted.");
  w.sample(c.calls_accepted);
  w.counter("tsunagu_node_calls_ended", "Calls ended, by reason.");
  for (size_t i = 0; i < call_end_reason_count; ++i)
    w.sample(c.calls_ended[i], {{"reason", to_string(static_cast<CallEndReason>(i))}});
  const BrowserCallCounters& b = in.browser_calls;
  w.counter("tsunagu_node_browser_calls_placed", "Calls a dialing page placed (its offer rang the callee).");
  w.sample(b.calls_placed);
  w.counter("tsunagu_node_browser_calls_answered", "Rings a dialing page answered.");
  w.sample(b.calls_answered);
  w.counter("tsunagu_node_browser_call_paths", "Selected ICE pairs dialing pages reported for their calls (call_path).");
  w.sample(b.paths_reported);
  w.counter("tsunagu_node_browser_rings", "Rings for a dialing page: delivered, or refused for it (no socket, not WebRTC, an offer that does not parse).");
  w.sample(b.rings_delivered, {{"result", "delivered"}});
  w.sample(b.rings_refused, {{"result", "refused"}});
  w.counter("tsunagu_node_browser_messages_refused", "Messages from dialing pages refused (call_error), by the field at fault.");
  uint64_t other = b.messages_refused - std::min(b.messages_refused, b.message_sdp_refused + b.candidates_refused);
  w.sample(b.message_sdp_refused, {{"reason", "sdp"}});
  w.sample(b.candidates_refused, {{"reason", "candidate"}});
  w.sample(other, {{"reason", "other"}});
  w.counter("tsunagu_node_browser_descriptions_refused", "SDP offers and answers of pages' calls that did not parse, either way.");
  w.sample(b.sdp_refused);
  w.counter("tsunagu_node_early_candidates_dropped", "Call candidates dropped over the before-accept limits.");
  w.sample(c.early_candidates_dropped);

  w.counter("tsunagu_node_stun_responses", "STUN Binding responses sent, by kind: xor_mapped (RFC 8489), classic "
                                           "(RFC 3489 MAPPED-ADDRESS), unknown_attribute (420).");
  w.sample(in.stun.answered - in.stun.classic, {{"kind", "xor_mapped"}});
  w.sample(in.stun.classic, {{"kind", "classic"}});
  w.sample(in.stun.unknown_attributes, {{"kind", "unknown_attribute"}});
  w.counter("tsunagu_node_stun_dropped", "STUN datagrams dropped without an answer (not a Binding request, malformed).");
  w.sample(in.stun.dropped);

  w.histogram("tsunagu_node_commit_duration_seconds",
              "Time to commit one loop turn's write transaction (group commit), in seconds.");
  w.sample(in.commit_latency);
  w.counter("tsunagu_node_commits", "Group commits of a write transaction.");
  w.sample(c.commits);
  w.counter("tsunagu_node_commit_failures", "Group commits that failed, by storage error kind.");
  for (size_t i = 0; i < storage::store_errc_count; ++i)
    w.sample(c.commit_failures_by_kind[i], {{"kind", storage::metric_label(static_cast<storage::StoreErrc>(i))}});
  w.counter("tsunagu_node_storage_errors",
            "Requests answered 503 or 507 because a storage read or write failed, by storage error kind.");
  for (size_t i = 0; i < storage::store_errc_count; ++i)
    w.sample(c.storage_errors[i], {{"kind", storage::metric_label(static_cast<storage::StoreErrc>(i))}});

  if (in.voicemail) {
    w.gauge("tsunagu_node_voicemail_bytes", "Bytes of voicemail the store holds.");
    w.sample(in.voicemail->bytes);
    w.gauge("tsunagu_node_voicemail_messages", "Voicemail messages the store holds.");
    w.sample(in.voicemail->messages);
  }
  w.counter("tsunagu_node_voicemail_stored_bytes", "Bytes of voicemail messages stored since the node started.");
  w.sample(c.voicemail_bytes_stored);
  w.counter("tsunagu_node_voicemail_messages_stored", "Voicemail messages stored since the node started.");
  w.sample(c.voicemails_stored);
  w.counter("tsunagu_node_voicemail_messages_deleted", "Voicemail messages deleted (by their owner or retention).");
  w.sample(c.voicemails_deleted);
  w.counter("tsunagu_node_voicemail_refused", "Voicemail uploads refused over a limit, by which.");
  w.sample(c.voicemails_refused_sender, {{"limit", "sender_daily"}});
  w.sample(c.voicemails_refused_domain, {{"limit", "domain_quota"}});
  w.sample(c.voicemails_refused_store, {{"limit", "store_quota"}});
  w.sample(c.uploads_refused_per_sender, {{"limit", "uploads_per_sender"}});
  w.counter("tsunagu_node_voicemail_uploads_dropped", "Voicemail uploads dropped as idle or too slow.");
  w.sample(c.uploads_dropped);
  return w.take();
}

}  // namespace tsunagu::rendezvous
