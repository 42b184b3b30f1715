// The agent's record of the LAN terminal certificates it issued and revoked,
// two text files in DATA_DIRECTORY/lan/ written only by `tsunagu-lan-agent
// terminal issue|renew|revoke` (root): `issued` and `revoked`, one certificate a
// line, "SERIAL EXTENSION NOT_AFTER WHEN" (hex serial, Unix seconds; WHEN is
// when it was issued or revoked). The running agent reads `revoked` again
// whenever the file changes, so a revocation takes effect at the next ring or
// voicemail delivery, without a restart.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"

namespace tsunagu::lanagent {

inline constexpr size_t kMaxCertificateLedgerBytes = 4 << 20;  // ~50,000 lines
inline constexpr int kTerminalCertificateDays = 90;            // `terminal issue/renew` default

struct CertificateLedgerEntry {
  std::string serial;     // uppercase hex
  std::string extension;
  int64_t not_after = 0;  // Unix seconds
  int64_t when = 0;       // issued or revoked at
  friend bool operator==(const CertificateLedgerEntry&, const CertificateLedgerEntry&) = default;
};

struct CertificateLedger {
  std::vector<CertificateLedgerEntry> entries;
  size_t bad_lines = 0;  // skipped: not four fields, a bad serial, extension or time
};

// Pure; reads at most kMaxCertificateLedgerBytes (more is an error).
Expected<CertificateLedger, std::string> parse_certificate_ledger(std::string_view text);
std::string format_certificate_ledger_line(const CertificateLedgerEntry& entry);

struct TerminalCertificateFiles {
  std::string issued, revoked;
};
TerminalCertificateFiles terminal_certificate_files(const std::string& data_directory);

// Adds entries to a ledger file (rewritten atomically, 0600).
Expected<void, std::string> append_to_ledger(const std::string& path, const std::vector<CertificateLedgerEntry>& add);
Expected<CertificateLedger, std::string> read_ledger(const std::string& path);  // a missing file is empty

// The revoked serials, re-read when the file changes (checked by stat on every
// call: cheap beside the TLS handshake it guards).
class TerminalRevocations {
 public:
  explicit TerminalRevocations(std::string path) : path_(std::move(path)) {}
  // true when `serial` is revoked; a file that cannot be read keeps the last
  // list it had (and says so once in the log).
  bool revoked(std::string_view serial);

 private:
  void refresh();
  std::string path_;
  std::set<std::string, std::less<>> serials_;
  struct Stamp {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    friend bool operator==(const Stamp&, const Stamp&) = default;
  };
  std::optional<Stamp> stamp_;
  bool warned_ = false;
};

}  // namespace tsunagu::lanagent
