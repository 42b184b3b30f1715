// Audit events: what an operator must be able to find later (who logged in,
// which call ended how, which agent linked, what an admin changed), as one
// `key=value` line each (docs/operator.md, "Audit log").
//
// The pure cores emit AuditEvent values through an AuditSink; they never log.
// The daemons install AuditLog (base/audit_log.hpp), which writes each event
// with format_audit_line() at info level, rate-limited per event.
// Tests install a sink that keeps the events.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tsunagu::audit {

struct AuditEvent {
  std::string event;  // login, register, call, agent_link, enrolment, admin, voicemail
  // In the order they are written. Keys are fixed words of the code ([a-z_]);
  // values may carry what a peer chose and are escaped when written.
  std::vector<std::pair<std::string, std::string>> fields;

  AuditEvent& add(std::string key, std::string value) {
    fields.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  // The value of `key`, or "" when absent (for tests and filters).
  std::string_view field(std::string_view key) const;
  bool has(std::string_view key) const;
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual void record(const AuditEvent& event) = 0;
  // false when record() would drop every event now (a daemon logging at warn
  // or above): a hot path (a login) then skips building its event's strings.
  virtual bool enabled() const { return true; }
};

// Keeps nothing: the default of a core nobody listens to.
class NullAuditSink final : public AuditSink {
 public:
  void record(const AuditEvent&) override {}
  bool enabled() const override { return false; }
};

// Keeps every event (tests).
class RecordingAuditSink final : public AuditSink {
 public:
  void record(const AuditEvent& event) override { events.push_back(event); }
  std::vector<AuditEvent> events;
};

// `event=NAME k=v k="v w"`: a value is written bare when it is non-empty and
// made only of printable ASCII other than space, '"', '\\' and '='; otherwise
// it is quoted, with '"' and '\\' backslash-escaped, \n \r \t as such, other
// control bytes (C0, DEL, and C1 / U+2028 / U+2029 in UTF-8) as \xHH, so no
// value can end the line or forge another key. Other UTF-8 is kept.
std::string format_audit_line(const AuditEvent& event);
std::string quote_audit_value(std::string_view value);

}  // namespace tsunagu::audit
