#include "allocation/kea_lease_file_parser.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

constexpr size_t kMaxColumns = 32;

std::string unescape(std::string_view field) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t at = field.find("&#x2c", pos);
    out.append(field.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos));
    if (at == std::string_view::npos) return out;
    out.push_back(',');
    pos = at + 5;
  }
}

bool split_csv(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t pos = 0;
  while (true) {
    if (out.size() == kMaxColumns) return false;
    size_t comma = line.find(',', pos);
    out.push_back(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (comma == std::string_view::npos) return true;
    pos = comma + 1;
  }
}

struct Columns {
  int address = -1, hwaddr = -1, client_id = -1, duid = -1, valid = -1, expire = -1, hostname = -1, state = -1,
      lease_type = -1;
};

Expected<LeaseEvent, ParseError> read_row(const std::vector<std::string_view>& f, const Columns& c, bool v6,
                                          bool& skip) {
  auto fail = [](ParseErrc code, std::string detail) { return Unexpected(ParseError{code, std::move(detail), 0}); };
  auto col = [&](int i) { return i >= 0 && static_cast<size_t>(i) < f.size() ? f[static_cast<size_t>(i)] : std::string_view(); };
  skip = false;
  if (v6 && col(c.lease_type) == "2") {  // IA_PD: a delegated prefix, not a terminal's address
    skip = true;
    return LeaseEvent{};
  }
  LeaseEvent e;
  e.source = ServerKind::kea;
  auto address = parse_ip_address(col(c.address));
  if (!address) return Unexpected(address.error());
  e.address = *address;
  if (auto hw = col(c.hwaddr); !hw.empty()) {
    auto mac = normalise_mac(hw);
    if (mac) e.mac = std::move(*mac);
  }
  if (auto cid = col(v6 ? c.duid : c.client_id); !cid.empty() && !v6 && !e.mac.empty()) {
    e.client_id = client_id_beside_mac(cid);
  } else if (!cid.empty()) {
    auto id = normalise_client_id(cid);
    if (!id) return Unexpected(id.error());
    e.client_id = std::move(*id);
  }
  if (e.mac.empty() && e.client_id.empty()) return fail(ParseErrc::missing_field, "row without hwaddr or client-id");
  auto valid = parse_decimal(col(c.valid));
  auto expire = parse_decimal(col(c.expire));
  if (!valid || !expire || *valid < 0 || *expire < 0 || *expire > (int64_t{1} << 40))
    return fail(ParseErrc::bad_number, "bad valid_lifetime or expire");
  // Kea escapes a comma in a hostname; only such a name costs a copy.
  std::string unescaped;
  std::string_view hostname = col(c.hostname);
  if (hostname.find("&#x2c") != std::string_view::npos) hostname = unescaped = unescape(hostname);
  auto host = normalise_hostname(hostname);
  if (!host) return Unexpected(host.error());
  e.hostname = std::move(*host);
  const std::string_view state = col(c.state);
  if (*valid == 0) {
    e.action = LeaseAction::release;
  } else if (state == "1") {
    e.action = LeaseAction::decline;
  } else if (state == "2") {
    e.action = LeaseAction::expire;
  } else {
    e.action = LeaseAction::grant;
  }
  e.expires = *valid >= 0xffffffffLL ? LeaseEvent::kInfinite : *expire;
  e.reported_at = *valid >= 0xffffffffLL ? *expire : *expire - *valid;
  return e;
}

}  // namespace

Expected<LeaseFileSnapshot, ParseError> parse_kea_lease_file(std::string_view text, int64_t taken_at) {
  if (text.size() > kMaxLeaseFileBytes) return Unexpected(ParseError{ParseErrc::too_large, "lease file over 64 MiB", 0});
  LeaseFileSnapshot snapshot;
  snapshot.source = ServerKind::kea;
  snapshot.taken_at = taken_at;
  Columns c;
  bool have_header = false, v6 = false;
  std::vector<std::string_view> fields;
  // Every row with its address text (a view into `text`); sorted by address
  // afterwards, the last row of each address kept. One vector, not a map
  // node and key string per row.
  struct Row {
    std::string_view address;
    LeaseEvent event;
  };
  std::vector<Row> rows;
  rows.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  size_t pos = 0, line_no = 0;
  auto note_error = [&](ParseError error, size_t line) {
    ++snapshot.bad_records;
    if (!snapshot.first_error) {
      snapshot.first_error = std::move(error);
      snapshot.first_error->line = line;
    }
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.size() > kMaxLeaseFileLine) {
      ++snapshot.records;
      note_error(ParseError{ParseErrc::too_large, "CSV line over 4 KiB", 0}, line_no);
      continue;
    }
    if (!split_csv(line, fields)) {
      ++snapshot.records;
      note_error(ParseError{ParseErrc::too_large, "too many CSV columns", 0}, line_no);
      continue;
    }
    if (fields[0] == "address") {  // a header (Kea repeats it when it rewrites the file)
      c = Columns{};
      for (size_t i = 0; i < fields.size(); ++i) {
        const int idx = static_cast<int>(i);
        const std::string_view name = fields[i];
        if (name == "address") c.address = idx;
        if (name == "hwaddr") c.hwaddr = idx;
        if (name == "client_id") c.client_id = idx;
        if (name == "duid") c.duid = idx;
        if (name == "valid_lifetime") c.valid = idx;
        if (name == "expire") c.expire = idx;
        if (name == "hostname") c.hostname = idx;
        if (name == "state") c.state = idx;
        if (name == "lease_type") c.lease_type = idx;
      }
      v6 = c.duid >= 0;
      have_header = c.valid >= 0 && c.expire >= 0 && (v6 || c.hwaddr >= 0);
      if (!have_header) return Unexpected(ParseError{ParseErrc::missing_field, "CSV header lacks required columns", line_no});
      continue;
    }
    if (!have_header) return Unexpected(ParseError{ParseErrc::missing_field, "CSV without a header", line_no});
    ++snapshot.records;
    bool skip = false;
    auto event = read_row(fields, c, v6, skip);
    if (!event) {
      note_error(event.error(), line_no);
      continue;
    }
    if (!skip) rows.push_back(Row{fields[static_cast<size_t>(c.address)], std::move(*event)});
  }
  // Stable: of one address's rows, the file's last stays last.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.address < b.address; });
  auto superseded = [&](size_t i) { return i + 1 < rows.size() && rows[i + 1].address == rows[i].address; };
  size_t kept = 0;
  for (size_t i = 0; i < rows.size(); ++i) kept += superseded(i) ? 0 : 1;
  snapshot.leases.reserve(kept);
  for (size_t i = 0; i < rows.size(); ++i) {
    if (superseded(i)) continue;
    snapshot.leases.push_back(std::move(rows[i].event));
  }
  return snapshot;
}

}  // namespace tsunagu::alloc
