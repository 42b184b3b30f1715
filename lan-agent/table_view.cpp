#include "lan-agent/table_view.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>

#include "allocation/field_normalisation.hpp"
#include "proto/profile_change.hpp"

namespace tsunagu::lanagent {
namespace {

std::string client_text(const alloc::ClientRef& client) {
  return (client.kind == alloc::ClientRef::Kind::mac ? "" : "client-id ") + client.value;
}

bool lease_of(const alloc::LeaseRecord& lease, const alloc::ClientRef& client) {
  if (client.kind == alloc::ClientRef::Kind::mac) return !lease.mac.empty() && lease.mac == client.value;
  return !lease.client_id.empty() && lease.client_id == client.value;
}

// Hostnames and server tags come from the DHCP hooks. The hook records are
// checked (lease_event_codec.cpp), but a table written before that check may
// hold anything: what reaches the admin's terminal or the log is made
// printable here.
std::string shown(std::string_view text) { return proto::printable_text(text); }

std::string source_text(const alloc::LeaseRecord& lease) {
  std::string s(alloc::to_string(lease.source));
  if (!lease.server.empty()) s += " " + shown(lease.server);
  return s;
}

std::string render(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) {
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string format_remaining(int64_t seconds) {
  if (seconds <= 0) return "expired";
  char buf[32];
  if (seconds < 60) std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(seconds));
  else if (seconds < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(seconds / 60),
                  static_cast<long long>(seconds % 60));
  else if (seconds < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(seconds / 3600),
                  static_cast<long long>(seconds % 3600 / 60));
  else if (seconds < 1000LL * 86400)
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(seconds / 86400),
                  static_cast<long long>(seconds % 86400 / 3600));
  else return "never";
  return buf;
}

std::string format_time(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string extension_of(const alloc::LeaseRecord& lease, const std::vector<alloc::ExtensionBinding>& bindings) {
  for (const auto& b : bindings)
    if (lease_of(lease, b.client)) return b.extension;
  return {};
}

static std::string expires_text(const alloc::LeaseRecord& lease, int64_t now) {
  if (!lease.live(now)) return std::string(alloc::to_string(lease.state));
  if (lease.expires == alloc::LeaseEvent::kInfinite) return "never";
  return format_remaining(lease.live_until - now) + (lease.expires == alloc::LeaseEvent::kUnknownExpiry ? "?" : "");
}

std::string format_table(const std::vector<alloc::ExtensionBinding>& bindings,
                         const std::vector<alloc::LeaseRecord>& leases, int64_t now) {
  struct Row {
    std::string extension;
    std::vector<std::string> cells;
  };
  std::vector<Row> rows;
  std::map<std::string, bool> has_live;
  for (const auto& lease : leases) {
    std::string ext = extension_of(lease, bindings);
    if (!ext.empty()) has_live[ext] = true;  // a row for it already
    rows.push_back({ext,
                    {ext.empty() ? "-" : ext, lease.mac.empty() ? "client-id " + lease.client_id : lease.mac,
                     alloc::ip_to_string(lease.address), expires_text(lease, now), source_text(lease)}});
  }
  for (const auto& b : bindings)
    if (!has_live.count(b.extension))
      rows.push_back({b.extension, {b.extension, client_text(b.client), "-", "-", "(no live lease)"}});
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.extension.empty() != b.extension.empty()) return b.extension.empty();
    return a.extension < b.extension;
  });
  std::vector<std::vector<std::string>> table{{"EXTENSION", "MAC", "ADDRESS", "EXPIRES IN", "SOURCE"}};
  for (auto& r : rows) table.push_back(std::move(r.cells));
  return render(table);
}

std::string format_conflicts(const std::vector<alloc::BindingConflict>& conflicts, int64_t now) {
  if (conflicts.empty()) return {};
  std::vector<std::vector<std::string>> table{{"EXTENSION", "CLAIMED BY", "ADDRESS", "HOSTNAME", "CLAIMS", "LAST"}};
  for (const auto& c : conflicts)
    table.push_back({c.extension, client_text(c.claimant), alloc::ip_to_string(c.address), shown(c.hostname),
                     std::to_string(c.attempts), format_remaining(now - c.last_seen + 1) + " ago"});
  return "\nConflicts: these clients sent the hostname of an extension bound to another client and were not\n"
         "bound (a hostname never moves a binding). If one really replaced the terminal:\n"
         "  tsunagu-lan-agent bind EXTENSION CLIENT\n\n" +
         render(table);
}

std::string format_certificate_list(const std::vector<CertificateLedgerEntry>& issued,
                                    const std::vector<CertificateLedgerEntry>& revoked, int64_t now) {
  std::vector<std::vector<std::string>> table{{"EXTENSION", "SERIAL", "VALID UNTIL", "STATUS"}};
  for (const auto& entry : issued) {
    bool is_revoked = false;
    for (const auto& r : revoked) is_revoked = is_revoked || r.serial == entry.serial;
    table.push_back({entry.extension, entry.serial, format_time(entry.not_after),
                     is_revoked ? "revoked" : entry.not_after <= now ? "expired" : "valid"});
  }
  return render(table);
}

std::string format_extension(const std::string& extension, const alloc::ExtensionBinding* binding,
                             const std::vector<alloc::LeaseRecord>& leases,
                             const std::vector<alloc::HistoryEntry>& history, int64_t now) {
  std::string out = "extension: " + extension + "\n";
  if (binding == nullptr) {
    out += "binding:   none\n";
  } else {
    out += "binding:   " + client_text(binding->client) + " (" +
           (binding->origin == alloc::BindingOrigin::admin ? "admin" : "learned from hostname") + ", since " +
           format_time(binding->since) + ")\n";
  }
  if (leases.empty()) out += "leases:    none\n";
  for (const auto& lease : leases) {
    out += "lease:     " + alloc::ip_to_string(lease.address) + "  " +
           (lease.live(now) ? "live, expires in " + expires_text(lease, now) : std::string(alloc::to_string(lease.state))) +
           "  " + source_text(lease);
    if (!lease.hostname.empty()) out += "  hostname " + shown(lease.hostname);
    out += "\n";
  }
  if (!history.empty()) out += "history:\n";
  for (const auto& h : history) {
    out += "  " + format_time(h.at) + "  " + std::string(alloc::to_string(h.kind));
    if (h.address) out += " " + alloc::ip_to_string(*h.address);
    if (!h.client.empty()) out += " (" + h.client + ")";
    out += "\n";
  }
  return out;
}

std::string describe_change(const alloc::TableChange& change) {
  if (change.kind == alloc::ChangeKind::binding_conflict && change.lease && change.binding) {
    const auto& l = *change.lease;
    return "binding conflict: " + (l.mac.empty() ? "client-id " + l.client_id : l.mac) + " at " +
           alloc::ip_to_string(l.address) + " sent hostname " + shown(l.hostname) + ", but " + change.extension +
           " is bound to " + client_text(change.binding->client) + "; not bound (tsunagu-lan-agent bind " +
           change.extension + " CLIENT if the terminal was replaced)";
  }
  std::string out(alloc::to_string(change.kind));
  out += " ";
  out += change.extension.empty() ? "(unbound)" : change.extension;
  if (change.lease) {
    out += " " + alloc::ip_to_string(change.lease->address);
    if (!change.lease->mac.empty()) out += " " + change.lease->mac;
    if (!change.lease->hostname.empty()) out += " " + shown(change.lease->hostname);
  }
  if (change.previous_address) out += " (was " + alloc::ip_to_string(*change.previous_address) + ")";
  if (change.binding) out += " -> " + client_text(change.binding->client);
  return out;
}

}  // namespace tsunagu::lanagent
