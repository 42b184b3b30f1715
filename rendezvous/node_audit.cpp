// NodeCore's audit events (docs/operator.md, "Audit log"): what happened, to
// whom, from where; never a password, a key or a message's content.
#include "proto/signalling.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

// Milliseconds as seconds with three decimals: "12.345".
std::string seconds(uint64_t ms) {
  std::string fraction = std::to_string(ms % 1000);
  return std::to_string(ms / 1000) + "." + std::string(3 - fraction.size(), '0') + fraction;
}

}  // namespace

void NodeCore::release_audit(bool committed) {
  auto events = std::move(audit_after_commit_);
  audit_after_commit_.clear();
  for (auto& event : events) {
    if (!committed) {
      bool replaced = false;
      for (auto& [key, value] : event.fields) {
        if (key != "result") continue;
        value = "storage_error";
        replaced = true;
      }
      if (!replaced) event.add("result", "storage_error");
    }
    audit_->record(event);
  }
}

void NodeCore::audit_login(std::string_view result, const std::string& user, const proto::SocketAddress& source,
                           std::string_view role, std::string_view method) {
  if (!audit_->enabled()) return;  // a login's line is six strings and a formatted address
  audit::AuditEvent event{"login", {}};
  event.add("result", std::string(result)).add("user", user).add("source", source.to_string());
  if (!role.empty()) event.add("role", std::string(role));
  if (!method.empty()) event.add("method", std::string(method));
  audit_->record(event);
}

void NodeCore::audit_call(std::string_view what, const Call& call, std::string_view extra_key,
                          std::string extra_value) {
  audit::AuditEvent event{"call", {}};
  event.add("state", std::string(what)).add("call", call.id).add("caller", call.caller).add("callee", call.callee);
  if (!extra_key.empty()) event.add(std::string(extra_key), std::move(extra_value));
  audit_->record(event);
}

void NodeCore::audit_call_ended(const Call& call, uint16_t code) {
  audit::AuditEvent event{"call", {}};
  event.add("state", "ended").add("call", call.id).add("caller", call.caller).add("callee", call.callee);
  event.add("reason", std::string(to_string(call_end_reason(code)))).add("code", std::to_string(code));
  if (call.placed_ms != 0 && now_.mono_ms >= call.placed_ms) event.add("duration_s", seconds(now_.mono_ms - call.placed_ms));
  if (call.state == sig::call_state::accepted && now_.mono_ms >= call.accepted_ms)
    event.add("talk_s", seconds(now_.mono_ms - call.accepted_ms));
  if (!call.path.empty()) event.add("path", call.path);
  audit_->record(event);
}

void NodeCore::audit_agent_link(std::string_view state, LinkId, const LinkState& link_state) {
  audit::AuditEvent event{"agent_link", {}};
  event.add("state", std::string(state)).add("agent", link_state.agent_name.value_or(""));
  event.add("source", link_state.observed.to_string());
  audit_->record(event);
}

}  // namespace tsunagu::rendezvous
