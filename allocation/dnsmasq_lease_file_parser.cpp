#include "allocation/dnsmasq_lease_file_parser.hpp"

#include <algorithm>
#include <array>

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

Unexpected<ParseError> fail(ParseErrc code, std::string detail) {
  return Unexpected(ParseError{code, std::move(detail), 0});
}

// Splits on single spaces or tabs into at most N fields; returns the count, or
// N + 1 when there are more.
template <size_t N>
size_t split_fields(std::string_view line, std::array<std::string_view, N>& out) {
  size_t n = 0, pos = 0;
  while (pos < line.size()) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (pos >= line.size()) break;
    size_t end = line.find_first_of(" \t", pos);
    if (end == std::string_view::npos) end = line.size();
    if (n == N) return N + 1;
    out[n++] = line.substr(pos, end - pos);
    pos = end;
  }
  return n;
}

}  // namespace

Expected<std::optional<LeaseEvent>, ParseError> parse_dnsmasq_lease_line(std::string_view line, int64_t taken_at,
                                                                         std::string* server_duid) {
  if (line.size() > kMaxLeaseFileLine) return fail(ParseErrc::too_large, "lease line over 4 KiB");
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::array<std::string_view, 5> f;
  const size_t n = split_fields(line, f);
  if (n == 2 && f[0] == "duid") {
    auto duid = normalise_client_id(f[1]);
    if (!duid) return Unexpected(duid.error());
    if (server_duid != nullptr) *server_duid = std::move(*duid);
    return std::optional<LeaseEvent>{};
  }
  if (n != 5) return fail(ParseErrc::bad_syntax, "lease line needs 5 fields");
  LeaseEvent e;
  e.action = LeaseAction::grant;
  e.source = ServerKind::dnsmasq;
  e.reported_at = taken_at;
  auto expiry = parse_decimal(f[0]);
  if (!expiry || *expiry < 0) return fail(ParseErrc::bad_number, "bad expiry");
  e.expires = *expiry == 0 ? LeaseEvent::kInfinite : *expiry;
  auto address = parse_ip_address(f[2]);
  if (!address) return Unexpected(address.error());
  e.address = *address;
  if (e.is_v6()) {
    auto iaid = parse_decimal(f[1]);  // the IAID; not kept, one v6 lease per DUID
    if (!iaid || *iaid < 0) return fail(ParseErrc::bad_number, "bad IAID");
    if (f[4] == "*") return fail(ParseErrc::missing_field, "DHCPv6 lease without DUID");
    auto duid = normalise_client_id(f[4]);
    if (!duid) return Unexpected(duid.error());
    e.client_id = std::move(*duid);
    if (server_duid != nullptr && valid_server_tag(*server_duid)) e.server = *server_duid;
  } else {
    auto mac = normalise_mac(f[1]);
    if (!mac) return Unexpected(mac.error());
    e.mac = std::move(*mac);
    if (f[4] != "*") e.client_id = client_id_beside_mac(f[4]);
  }
  auto host = normalise_hostname(f[3]);
  if (!host) return Unexpected(host.error());
  e.hostname = std::move(*host);
  return std::optional<LeaseEvent>{std::move(e)};
}

Expected<LeaseFileSnapshot, ParseError> parse_dnsmasq_lease_file(std::string_view text, int64_t taken_at) {
  if (text.size() > kMaxLeaseFileBytes) return fail(ParseErrc::too_large, "lease file over 64 MiB");
  LeaseFileSnapshot snapshot;
  snapshot.source = ServerKind::dnsmasq;
  snapshot.taken_at = taken_at;
  // One lease a line: reserved up front, not grown (and moved) 17 times for 100,000.
  snapshot.leases.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  std::string server_duid;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.empty() || line == "\r") continue;
    ++snapshot.records;
    auto parsed = parse_dnsmasq_lease_line(line, taken_at, &server_duid);
    if (!parsed) {
      ++snapshot.bad_records;
      if (!snapshot.first_error) {
        snapshot.first_error = parsed.error();
        snapshot.first_error->line = line_no;
      }
      continue;
    }
    if (*parsed) snapshot.leases.push_back(std::move(**parsed));
  }
  return snapshot;
}

}  // namespace tsunagu::alloc
