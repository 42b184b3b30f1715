// The daemons' audit sink: events as log lines (base/audit.hpp says why).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "base/audit.hpp"
#include "base/log.hpp"

namespace tsunagu::log {
// Whether stderr is the journal (JOURNAL_STREAM names it): log::write then
// starts each line with its syslog level as `<N>` (debug 7, info 6, warn 4,
// error 3) so `journalctl -p` filters it. Declared here rather than in
// log.hpp, which nearly every file includes.
bool journal_mode();
}  // namespace tsunagu::log

namespace tsunagu::audit {

// The daemons' sink: each event as an info line through base/log, at most
// `burst` lines of one event name and result per `period`; when lines were
// suppressed, the next one of that kind let through is preceded by
// `event=audit_suppressed of=NAME/RESULT count=N`.
class AuditLog final : public AuditSink {
 public:
  explicit AuditLog(unsigned burst = 200, std::chrono::seconds period = std::chrono::seconds(10))
      : burst_(burst), period_(period) {}
  void record(const AuditEvent& event) override;
  bool enabled() const override { return log::level() <= log::Level::info; }
  // Called before each line is written: a daemon holds its log for the loop
  // turn there (transport::TurnLogHold), so a turn's lines share one write(2).
  void hold_lines_with(std::function<void()> hold) { hold_lines_ = std::move(hold); }

 private:
  struct PerEvent {
    log::RateLimit limit;
    uint64_t reported_suppressed = 0;
  };
  unsigned burst_;
  std::chrono::seconds period_;
  std::map<std::string, PerEvent, std::less<>> per_event_;
  std::function<void()> hold_lines_;
};

// The login name of the process's real user (or "uid:N"), for the admin
// commands' `by=`.
std::string invoking_user();

// Writes one event at once, unlimited (the admin CLI: one command, one line).
void write_audit_line(const AuditEvent& event);

}  // namespace tsunagu::audit
