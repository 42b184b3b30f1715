#include "lan-agent/terminal_certificates.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/files.hpp"
#include "base/log.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::lanagent {
namespace {

bool is_serial(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

std::optional<int64_t> read_seconds(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;  // 19 digits could overflow int64_t
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

Expected<CertificateLedger, std::string> parse_certificate_ledger(std::string_view text) {
  if (text.size() > kMaxCertificateLedgerBytes) return Unexpected(std::string("certificate ledger over 4 MiB"));
  CertificateLedger ledger;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty() || line[0] == '#') continue;
    std::string_view fields[4];
    size_t count = 0;
    while (!line.empty() && count < 5) {
      size_t space = line.find(' ');
      std::string_view field = line.substr(0, space);
      if (!field.empty()) {
        if (count < 4) fields[count] = field;
        ++count;
      }
      line = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    }
    auto not_after = read_seconds(fields[2]);
    auto when = read_seconds(fields[3]);
    if (count != 4 || !is_serial(fields[0]) || fields[1].find('@') != std::string_view::npos ||
        !proto::valid_user_id(fields[1]) || !not_after || !when) {
      ++ledger.bad_lines;
      continue;
    }
    ledger.entries.push_back({std::string(fields[0]), std::string(fields[1]), *not_after, *when});
  }
  return ledger;
}

std::string format_certificate_ledger_line(const CertificateLedgerEntry& e) {
  return e.serial + " " + e.extension + " " + std::to_string(e.not_after) + " " + std::to_string(e.when) + "\n";
}

TerminalCertificateFiles terminal_certificate_files(const std::string& data_directory) {
  std::filesystem::path dir = std::filesystem::path(data_directory) / "lan";
  return TerminalCertificateFiles{(dir / "issued").string(), (dir / "revoked").string()};
}

Expected<CertificateLedger, std::string> read_ledger(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return CertificateLedger{};
  auto text = read_text_file(path, kMaxCertificateLedgerBytes);
  if (!text) return Unexpected(text.error());
  auto ledger = parse_certificate_ledger(*text);
  if (!ledger) return Unexpected(path + ": " + ledger.error());
  return ledger;
}

Expected<void, std::string> append_to_ledger(const std::string& path, const std::vector<CertificateLedgerEntry>& add) {
  std::string text;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto old = read_text_file(path, kMaxCertificateLedgerBytes);
    if (!old) return Unexpected(old.error());
    text = std::move(*old);
  } else {
    text = "# SERIAL EXTENSION NOT_AFTER WHEN (tsunagu-lan-agent terminal; do not edit while it runs)\n";
  }
  for (const auto& entry : add) text += format_certificate_ledger_line(entry);
  if (text.size() > kMaxCertificateLedgerBytes) return Unexpected(path + ": the ledger would exceed 4 MiB");
  return write_file_atomically(path, text, 0600);
}

void TerminalRevocations::refresh() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      serials_.clear();
      stamp_ = Stamp{};
      return;
    }
    if (!warned_) log::warn() << "terminal revocations " << path_ << ": " << std::strerror(errno) << " (kept the last list)";
    warned_ = true;
    return;
  }
  Stamp now{st.st_dev, st.st_ino, st.st_size, int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (stamp_ && *stamp_ == now) return;
  auto ledger = read_ledger(path_);
  if (!ledger) {
    if (!warned_) log::warn() << "terminal revocations: " << ledger.error() << " (kept the last list)";
    warned_ = true;
    return;
  }
  warned_ = false;
  serials_.clear();
  for (const auto& entry : ledger->entries) serials_.insert(entry.serial);
  stamp_ = now;
  log::info() << "terminal revocations: " << serials_.size() << " serial(s) from " << path_;
}

bool TerminalRevocations::revoked(std::string_view serial) {
  refresh();
  return serials_.find(serial) != serials_.end();
}

}  // namespace tsunagu::lanagent
