#include "allocation/isc_lease_file_parser.hpp"

#include <algorithm>
#include <map>
#include <string>

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

constexpr size_t kMaxToken = 4096;
constexpr int kMaxDepth = 32;

enum class TokenKind { word, string, semicolon, open, close, end, error };

struct Token {
  TokenKind kind = TokenKind::end;
  std::string text;  // word, or the unescaped bytes of a string
};

class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text) {}
  size_t line() const { return line_; }

  Token next() {
    skip_space();
    Token t;
    if (pos_ >= text_.size()) return t;
    char c = text_[pos_];
    if (c == ';') return single(TokenKind::semicolon);
    if (c == '{') return single(TokenKind::open);
    if (c == '}') return single(TokenKind::close);
    if (c == '"') return quoted();
    t.kind = TokenKind::word;
    while (pos_ < text_.size()) {
      c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ';' || c == '{' || c == '}' || c == '"' ||
          c == '#')
        break;
      t.text.push_back(c);
      ++pos_;
      if (t.text.size() > kMaxToken) return error();
    }
    return t;
  }

 private:
  Token single(TokenKind kind) {
    ++pos_;
    Token t;
    t.kind = kind;
    return t;
  }
  Token error() {
    Token t;
    t.kind = TokenKind::error;
    return t;
  }
  void skip_space() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }
  Token quoted() {
    Token t;
    t.kind = TokenKind::string;
    ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return t;
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < text_.size()) {
        char n = text_[pos_];
        if (n >= '0' && n <= '7') {
          int v = 0, digits = 0;
          while (digits < 3 && pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '7') {
            v = v * 8 + (text_[pos_++] - '0');
            ++digits;
          }
          c = static_cast<char>(v & 0xff);
        } else {
          ++pos_;
          c = n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
        }
      }
      t.text.push_back(c);
      if (t.text.size() > kMaxToken) return error();
    }
    return error();  // unterminated string
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
};

int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool parse_fixed(std::string_view s, size_t pos, size_t len, int& out) {
  if (pos + len > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + len; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

struct IscLease {
  std::string address;
  std::string mac, uid, hostname, state;
  bool uid_unreadable = false;  // left out when the block has a MAC (client_id_beside_mac)
  int64_t starts = 0, ends = 0, cltt = 0, tstp = 0;
  bool ends_never = false;
};

struct BlockParser {
  Tokenizer tok;
  explicit BlockParser(std::string_view text) : tok(text) {}

  // Skips the rest of a statement whose first token was already read: up to
  // ';' or through a balanced {...}. Returns false on end of input or error.
  bool skip_statement(Token first) {
    Token t = std::move(first);
    int depth = 0;
    while (true) {
      if (t.kind == TokenKind::end || t.kind == TokenKind::error) return false;
      if (t.kind == TokenKind::open) {
        if (++depth > kMaxDepth) return false;
      } else if (t.kind == TokenKind::close) {
        if (depth == 0) return false;
        if (--depth == 0) return true;
      } else if (t.kind == TokenKind::semicolon && depth == 0) {
        return true;
      }
      t = tok.next();
    }
  }

  // Reads "W YYYY/MM/DD HH:MM:SS;" or "never;" or "epoch N;".
  Expected<int64_t, ParseError> read_time(bool& never) {
    Token a = tok.next();
    never = false;
    if (a.kind != TokenKind::word) return Unexpected(ParseError{ParseErrc::bad_time, "bad time", tok.line()});
    if (a.text == "never") {
      never = true;
      if (tok.next().kind != TokenKind::semicolon) return Unexpected(ParseError{ParseErrc::bad_time, "bad time", tok.line()});
      return int64_t{0};
    }
    if (a.text == "epoch") {
      Token n = tok.next();
      auto v = parse_decimal(n.text);
      if (n.kind != TokenKind::word || !v || tok.next().kind != TokenKind::semicolon)
        return Unexpected(ParseError{ParseErrc::bad_time, "bad epoch time", tok.line()});
      return *v;
    }
    Token date = tok.next(), time = tok.next();
    if (date.kind != TokenKind::word || time.kind != TokenKind::word || tok.next().kind != TokenKind::semicolon)
      return Unexpected(ParseError{ParseErrc::bad_time, "bad time", tok.line()});
    auto v = parse_isc_time(date.text, time.text);
    if (!v) return Unexpected(ParseError{ParseErrc::bad_time, "bad time", tok.line()});
    return *v;
  }

  // Reads the statements of a lease block after its '{'.
  Expected<IscLease, ParseError> read_lease(std::string address) {
    IscLease lease;
    lease.address = std::move(address);
    while (true) {
      Token t = tok.next();
      if (t.kind == TokenKind::close) return lease;
      if (t.kind != TokenKind::word) return Unexpected(ParseError{ParseErrc::bad_syntax, "bad lease statement", tok.line()});
      const std::string& w = t.text;
      if (w == "starts" || w == "ends" || w == "cltt" || w == "tstp") {
        bool never = false;
        auto v = read_time(never);
        if (!v) return Unexpected(v.error());
        if (w == "starts") lease.starts = *v;
        if (w == "ends") {
          lease.ends = *v;
          lease.ends_never = never;
        }
        if (w == "cltt") lease.cltt = *v;
        if (w == "tstp") lease.tstp = *v;
      } else if (w == "binding") {
        Token s = tok.next(), v = tok.next();
        if (s.text != "state" || v.kind != TokenKind::word || tok.next().kind != TokenKind::semicolon)
          return Unexpected(ParseError{ParseErrc::bad_syntax, "bad binding state", tok.line()});
        lease.state = v.text;
      } else if (w == "hardware") {
        Token type = tok.next(), mac = tok.next();
        if (type.kind != TokenKind::word || mac.kind != TokenKind::word || tok.next().kind != TokenKind::semicolon)
          return Unexpected(ParseError{ParseErrc::bad_syntax, "bad hardware statement", tok.line()});
        if (type.text == "ethernet") lease.mac = mac.text;
      } else if (w == "uid") {
        Token v = tok.next();
        if ((v.kind != TokenKind::word && v.kind != TokenKind::string) || tok.next().kind != TokenKind::semicolon)
          return Unexpected(ParseError{ParseErrc::bad_syntax, "bad uid", tok.line()});
        if (v.kind == TokenKind::string) {
          std::vector<uint8_t> bytes(v.text.begin(), v.text.end());
          lease.uid_unreadable = bytes.empty() || bytes.size() > kMaxClientIdBytes;
          lease.uid = lease.uid_unreadable ? std::string() : hex_colon(bytes);
        } else {
          lease.uid = client_id_beside_mac(v.text);
          lease.uid_unreadable = lease.uid.empty();
        }
      } else if (w == "client-hostname") {
        Token v = tok.next();
        if (v.kind != TokenKind::string || tok.next().kind != TokenKind::semicolon)
          return Unexpected(ParseError{ParseErrc::bad_syntax, "bad client-hostname", tok.line()});
        lease.hostname = v.text;
      } else if (!skip_statement(std::move(t))) {
        return Unexpected(ParseError{ParseErrc::bad_syntax, "unterminated statement in lease block", tok.line()});
      }
    }
  }
};

LeaseAction action_for_state(std::string_view state) {
  if (state == "active") return LeaseAction::grant;
  if (state == "free" || state == "released") return LeaseAction::release;
  if (state == "expired") return LeaseAction::expire;
  if (state == "abandoned") return LeaseAction::decline;
  return LeaseAction::remove;
}

Expected<LeaseEvent, ParseError> to_event(const IscLease& lease, size_t line) {
  LeaseEvent e;
  e.source = ServerKind::isc_dhcpd;
  e.action = action_for_state(lease.state);
  auto address = parse_ip_address(lease.address);
  if (!address) return Unexpected(ParseError{address.error().code, address.error().detail, line});
  e.address = *address;
  if (!lease.mac.empty()) {
    auto mac = normalise_mac(lease.mac);
    if (!mac) return Unexpected(ParseError{mac.error().code, mac.error().detail, line});
    e.mac = std::move(*mac);
  }
  if (lease.uid_unreadable && e.mac.empty())
    return Unexpected(ParseError{ParseErrc::bad_client_id, "uid unreadable (empty, not hex, or over 130 bytes) and no MAC", line});
  e.client_id = lease.uid;
  auto host = normalise_hostname(lease.hostname);
  if (!host) return Unexpected(ParseError{host.error().code, host.error().detail, line});
  e.hostname = std::move(*host);
  e.expires = lease.ends_never ? LeaseEvent::kInfinite : lease.ends;
  // When the server decided: the last transaction, or the end of an ended lease.
  e.reported_at = std::max({lease.cltt, lease.tstp, lease.starts});
  if (e.action != LeaseAction::grant && !lease.ends_never) e.reported_at = std::max(e.reported_at, lease.ends);
  return e;
}

}  // namespace

Expected<int64_t, ParseError> parse_isc_time(std::string_view date, std::string_view time) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (date.size() != 10 || date[4] != '/' || date[7] != '/' || time.size() != 8 || time[2] != ':' ||
      time[5] != ':' || !parse_fixed(date, 0, 4, y) || !parse_fixed(date, 5, 2, mo) || !parse_fixed(date, 8, 2, d) ||
      !parse_fixed(time, 0, 2, h) || !parse_fixed(time, 3, 2, mi) || !parse_fixed(time, 6, 2, s) || mo < 1 ||
      mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
    return Unexpected(ParseError{ParseErrc::bad_time, "not YYYY/MM/DD HH:MM:SS", 0});
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 + mi * 60 + s;
}

Expected<LeaseFileSnapshot, ParseError> parse_isc_lease_file(std::string_view text, int64_t taken_at) {
  if (text.size() > kMaxLeaseFileBytes) return Unexpected(ParseError{ParseErrc::too_large, "lease file over 64 MiB", 0});
  LeaseFileSnapshot snapshot;
  snapshot.source = ServerKind::isc_dhcpd;
  snapshot.taken_at = taken_at;
  std::map<std::string, std::pair<IscLease, size_t>> last;  // address -> last block, its line
  BlockParser p(text);
  auto note_error = [&](ParseError error) {
    ++snapshot.bad_records;
    if (!snapshot.first_error) snapshot.first_error = std::move(error);
  };
  while (true) {
    Token t = p.tok.next();
    if (t.kind == TokenKind::end) break;
    if (t.kind == TokenKind::error) {
      note_error(ParseError{ParseErrc::bad_syntax, "bad token", p.tok.line()});
      break;
    }
    if (t.kind == TokenKind::word && t.text == "lease") {
      const size_t line = p.tok.line();
      ++snapshot.records;
      Token address = p.tok.next();
      if (address.kind != TokenKind::word || p.tok.next().kind != TokenKind::open) {
        note_error(ParseError{ParseErrc::bad_syntax, "bad lease header", line});
        break;  // cannot find the block's end reliably
      }
      auto lease = p.read_lease(address.text);
      if (!lease) {
        note_error(lease.error());
        break;
      }
      // The key is copied before the lease is moved into the value: in `m[k] = v`
      // the right side is evaluated first (C++17), which would leave k empty.
      std::string key = lease->address;
      last.insert_or_assign(std::move(key), std::pair<IscLease, size_t>{std::move(*lease), line});
      continue;
    }
    if (!p.skip_statement(std::move(t))) {
      note_error(ParseError{ParseErrc::bad_syntax, "unterminated statement", p.tok.line()});
      break;
    }
  }
  for (auto& [address, entry] : last) {
    const IscLease& lease = entry.first;
    if (lease.mac.empty() && lease.uid.empty() && !lease.uid_unreadable) continue;
    auto event = to_event(lease, entry.second);
    if (!event) {
      note_error(event.error());
      continue;
    }
    snapshot.leases.push_back(std::move(*event));
  }
  return snapshot;
}

}  // namespace tsunagu::alloc
