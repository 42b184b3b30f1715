#include "base/audit_log.hpp"

#include <pwd.h>
#include <unistd.h>

#include <vector>

namespace tsunagu::audit {

void AuditLog::record(const AuditEvent& event) {
  if (!enabled()) return;
  // Limited per name and result, so a flood of failed logins does not hide the
  // successful ones; both are fixed words of the code, so the map stays small.
  std::string key = event.event;
  if (event.has("result")) key.append("/").append(event.field("result"));
  auto it = per_event_.find(key);
  if (it == per_event_.end()) it = per_event_.emplace(key, PerEvent{log::RateLimit(burst_, period_), 0}).first;
  PerEvent& per = it->second;
  if (!per.limit.allow()) return;
  if (hold_lines_) hold_lines_();
  if (uint64_t missed = per.limit.suppressed() - per.reported_suppressed; missed > 0) {
    per.reported_suppressed = per.limit.suppressed();
    write_audit_line(AuditEvent{"audit_suppressed", {{"of", key}, {"count", std::to_string(missed)}}});
  }
  write_audit_line(event);
}

std::string invoking_user() {
  uid_t uid = getuid();
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(4096);
  if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) return found->pw_name;
  return "uid:" + std::to_string(uid);
}

void write_audit_line(const AuditEvent& event) { log::write(log::Level::info, format_audit_line(event)); }

}  // namespace tsunagu::audit
