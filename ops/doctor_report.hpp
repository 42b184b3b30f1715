// What `tsunagu-rendezvous doctor` and `tsunagu-lan-agent doctor` find: a list
// of checks, each ok, warn or FAIL with what to fix (docs/operator.md,
// "doctor"). The checks both programs share live here; each program adds its
// own (node/doctor.cpp, lan-agent/doctor.cpp). They read files, the
// clock and the socket table, and change nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tsunagu::ops {

enum class Verdict { ok, warn, fail };

struct Finding {
  Verdict verdict = Verdict::ok;
  std::string check;   // what was looked at: "certificate /x/node.crt"
  std::string detail;  // what was found, and for warn/FAIL what to do
};

class DoctorReport {
 public:
  void ok(std::string check, std::string detail = {}) { add(Verdict::ok, std::move(check), std::move(detail)); }
  void warn(std::string check, std::string detail) { add(Verdict::warn, std::move(check), std::move(detail)); }
  void fail(std::string check, std::string detail) { add(Verdict::fail, std::move(check), std::move(detail)); }
  void add(Verdict verdict, std::string check, std::string detail) {
    findings_.push_back(Finding{verdict, std::move(check), std::move(detail)});
  }
  const std::vector<Finding>& findings() const { return findings_; }
  bool failed() const;
  size_t count(Verdict verdict) const;
  // One line per finding: "ok    check: detail", "warn  ...", "FAIL  ...", then a summary.
  std::string text() const;

 private:
  std::vector<Finding> findings_;
};

// The Unix time doctor judges by; tests pass their own.
struct DoctorClock {
  int64_t unix_now = 0;
};

inline constexpr int64_t certificate_warning_days = 30;

// A PEM certificate file: unreadable or unparsable = FAIL, expired = FAIL,
// expiring within `certificate_warning_days` = warn. `renewal` says how to get
// a new one (the command), in both; empty: a generic hint.
void check_certificate(DoctorReport& report, const std::string& path, std::string_view what, DoctorClock clock,
                       std::string_view renewal = {});
// A private key file: missing = FAIL; readable or writable by group or others = FAIL
// (with the chmod that fixes it); not owned by the running user = warn.
void check_private_key(DoctorReport& report, const std::string& path, std::string_view what);
// A directory that holds state: missing = FAIL; writable by others = FAIL,
// by group = warn; not owned by the running user = warn.
void check_data_directory(DoctorReport& report, const std::string& path, std::string_view what);
// A TCP or UDP listener "ADDRESS:PORT": port 0 = ok; free = ok; in use by a
// process named `own_program` = ok (this deployment's daemon, presumably
// running); in use by anything else = FAIL naming the holder when /proc tells.
void check_listen_port(DoctorReport& report, const std::string& address, bool udp, std::string_view what,
                       std::string_view own_program);
// An LMDB environment directory: the used share of its map; > 80% = warn, > 95% = FAIL.
void check_map_usage(DoctorReport& report, const std::string& directory, uint64_t map_size, std::string_view what);
// The wall clock: before 2024 = FAIL (certificates cannot be checked);
// the kernel says it is not synchronised (adjtimex) = warn.
void check_clock(DoctorReport& report, DoctorClock clock);

}  // namespace tsunagu::ops
