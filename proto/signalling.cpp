#include "proto/signalling.hpp"

#include "proto/stun_message.hpp"

namespace tsunagu::proto {

std::string_view method_name(uint16_t m) {
  switch (m) {
    case method_binding: return "binding";
    case method::register_user: return "register";
    case method::login: return "login";
    case method::keepalive: return "keepalive";
    case method::logout: return "logout";
    case method::lookup: return "lookup";
    case method::notice: return "notice";
    case method::login_begin: return "login_begin";
    case method::login_resume: return "login_resume";
    case method::agent_hello: return "agent-hello";
    case method::forwarded_lookup: return "forwarded-lookup";
    case method::call: return "call";
    case method::ring: return "ring";
    case method::call_event: return "call-event";
    case method::hangup: return "hangup";
    case method::turn_credentials: return "turn-credentials";
    case method::call_candidate: return "call-candidate";
    case method::voicemail_begin: return "voicemail-begin";
    case method::voicemail_chunk: return "voicemail-chunk";
    case method::voicemail_finish: return "voicemail-finish";
    case method::voicemail_list: return "voicemail-list";
    case method::voicemail_fetch: return "voicemail-fetch";
    case method::voicemail_delete: return "voicemail-delete";
    case method::voicemail_deliver: return "voicemail-deliver";
    case method::directory_search: return "directory-search";
    case method::directory_categories: return "directory-categories";
    case method::profile_get: return "profile-get";
    case method::profile_set: return "profile-set";
    case method::card_units: return "card-units";
    case method::card_status: return "card-status";
    case method::card_password: return "card-password";
    default: return "unknown";
  }
}

std::string_view error_reason(uint16_t code) {
  switch (code) {
    case error::bad_request: return "Bad Request";
    case error::unauthenticated: return "Unauthenticated";
    case error::forbidden: return "Forbidden";
    case error::unknown_user: return "Unknown User";
    case error::user_exists: return "User Exists";
    case error::unsupported_version: return "Unsupported Version";
    case error::invalid_user_id: return "Invalid User ID";
    case error::too_many_attempts: return "Too Many Attempts";
    case error::offline: return "Offline";
    case error::server_error: return "Server Error";
    case error::unavailable: return "Unavailable";
    case error::no_live_lease: return "No Live Lease";
    case error::agent_offline: return "Agent Offline";
    case error::agent_timeout: return "Agent Timeout";
    case error::no_answer: return "No Answer";
    case error::link_lost: return "Link Lost";
    case error::busy: return "Busy";
    case error::cancelled: return "Cancelled";
    case error::not_implemented: return "Not Implemented";
    case error::declined: return "Declined";
    case error::too_large: return "Too Large";
    case error::over_quota: return "Over Quota";
    case error::card_refused: return "Card Refused";
    default: return "Error";
  }
}

namespace {

bool lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool local_char(char c) { return lower_or_digit(c) || c == '.' || c == '_' || c == '-' || c == '+'; }
bool domain_char(char c) { return lower_or_digit(c) || c == '.' || c == '-'; }

inline constexpr size_t max_local_size = 64;
inline constexpr size_t max_domain_size = 63;

}  // namespace

bool valid_user_id(std::string_view id) {
  if (id.empty() || id.size() > max_user_id_size) return false;
  size_t at = id.find('@');
  std::string_view local = id.substr(0, at);
  if (local.empty() || local.size() > max_local_size) return false;
  if (!lower_or_digit(local.front()) && local.front() != '+') return false;
  for (char c : local) {
    if (!local_char(c)) return false;
  }
  if (at == std::string_view::npos) return true;
  std::string_view domain = id.substr(at + 1);
  if (domain.empty() || domain.size() > max_domain_size) return false;
  for (char c : domain) {
    if (!domain_char(c)) return false;  // a second '@' lands here too
  }
  return true;
}

}  // namespace tsunagu::proto
