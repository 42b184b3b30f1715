// The LAN agent's status page, its JSON twin and /metrics, as a pure request
// handler: an HttpRequest and what the daemon gathered in, an HttpResponse
// out (the HTTPS server in web/ carries them). Served on the LAN side only
// ([web] listen in agent.toml). Every path but /style.css and /agent.js needs
// the admin token ([web] token_file): "Authorization: Bearer <token>", or the
// cookie a login sets (GET /?token=... or POST /login with token=...;
// HttpOnly, Secure, SameSite=Strict). Tokens are compared in constant time.
//   GET /             HTML: node link, spool, allocation table, conflicts, recent hook events
//   GET /api/status   the same as JSON
//   GET /metrics      Prometheus text (agent_metrics.hpp)
//   POST /logout      clears the cookie
// Every answer carries Content-Security-Policy: default-src 'self' (no inline
// script or style: the page's CSS and script are /style.css and /agent.js).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "allocation/binding_conflict.hpp"
#include "allocation/extension_binding.hpp"
#include "allocation/lease_record.hpp"
#include "lan-agent/agent_metrics.hpp"
#include "lan-agent/hook_event_log.hpp"
#include "web/cookies.hpp"
#include "web/http_message.hpp"

namespace tsunagu::lanagent {

struct AgentStatusInput {
  int64_t now = 0;  // Unix seconds
  std::string agent_name;
  std::vector<alloc::ExtensionBinding> bindings;
  std::vector<alloc::LeaseRecord> leases;  // live leases
  std::vector<alloc::BindingConflict> conflicts;
  std::vector<RecentHookEvent> recent_events;  // newest first
  std::string table_error;                     // non-empty: the table could not be read
  AgentMetricsInput metrics;
};

inline constexpr std::string_view kAgentTokenCookie = "tsunagu_agent_token";
inline constexpr std::string_view kAgentContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'";
inline constexpr size_t kMaxLoginBodyBytes = 8192;

web::HttpResponse agent_web_handle(const web::HttpRequest& request, const AgentStatusInput& input,
                                   std::string_view admin_token);
// As above, gathering the input only for a request that passed the token check
// and needs it (the daemon reads the table for each page).
web::HttpResponse agent_web_handle(const web::HttpRequest& request,
                                   const std::function<AgentStatusInput()>& gather, std::string_view admin_token);

using web::tokens_equal;  // web/cookies.hpp
std::string html_escape(std::string_view text);

}  // namespace tsunagu::lanagent
