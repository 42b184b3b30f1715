#include "allocation/lease_event_codec.hpp"

#include <array>
#include <cstring>

#include "allocation/field_normalisation.hpp"

namespace tsunagu::alloc {
namespace {

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

Unexpected<ParseError> fail(ParseErrc code, std::string detail) {
  return Unexpected(ParseError{code, std::move(detail), 0});
}

void put_u8(Bytes& out, uint8_t v) { out.push_back(std::byte{v}); }
void put_i64(Bytes& out, int64_t v) {
  size_t at = out.size();
  out.resize(at + 8);
  store_be64(out.data() + at, static_cast<uint64_t>(v));
}
void put_string(Bytes& out, std::string_view s) {
  put_u8(out, static_cast<uint8_t>(s.size()));
  auto b = as_bytes(s);
  out.insert(out.end(), b.begin(), b.end());
}

class BodyReader {
 public:
  explicit BodyReader(ByteView body) : body_(body) {}
  bool u8(uint8_t& v) {
    if (pos_ + 1 > body_.size()) return false;
    v = std::to_integer<uint8_t>(body_[pos_++]);
    return true;
  }
  bool i64(int64_t& v) {
    if (pos_ + 8 > body_.size()) return false;
    v = static_cast<int64_t>(load_be64(body_.data() + pos_));
    pos_ += 8;
    return true;
  }
  bool raw(uint8_t* dst, size_t n) {
    if (pos_ + n > body_.size()) return false;
    if (n != 0) std::memcpy(dst, body_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool string(std::string_view& s) {
    uint8_t n = 0;
    if (!u8(n) || pos_ + n > body_.size()) return false;
    s = as_chars(body_.subspan(pos_, n));
    pos_ += n;
    return true;
  }
  bool string(std::string& s) {
    std::string_view view;
    if (!string(view)) return false;
    s.assign(view);
    return true;
  }
  bool done() const { return pos_ == body_.size(); }

 private:
  ByteView body_;
  size_t pos_ = 0;
};

bool valid_action(uint8_t v) { return v >= 1 && v <= 6; }
bool valid_source(uint8_t v) { return v <= 3; }

}  // namespace

uint32_t crc32(ByteView data) {
  uint32_t c = 0xFFFFFFFFu;
  for (std::byte b : data) c = kCrcTable[(c ^ std::to_integer<uint32_t>(b)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Expected<void, ParseError> encode_lease_event(const LeaseEvent& event, Bytes& out) {
  if (event.mac.size() > 17) return fail(ParseErrc::too_large, "mac too long");
  if (event.hostname.size() > kMaxHostnameLength) return fail(ParseErrc::too_large, "hostname too long");
  if (event.server.size() > kMaxServerTagLength) return fail(ParseErrc::too_large, "server tag too long");
  std::vector<uint8_t> client_id;
  if (!event.client_id.empty()) {
    auto parsed = parse_hex_bytes(event.client_id, kMaxClientIdBytes);
    if (!parsed) return Unexpected(parsed.error());
    client_id = std::move(*parsed);
  }
  const size_t start = out.size();
  out.insert(out.end(), std::begin(kLeaseEventMagic), std::end(kLeaseEventMagic));
  put_u8(out, kLeaseEventVersion);
  put_u8(out, 0);
  put_u8(out, 0);  // length, filled in below
  const size_t body_start = out.size();
  put_u8(out, static_cast<uint8_t>(event.action));
  put_u8(out, static_cast<uint8_t>(event.source));
  put_u8(out, event.is_v6() ? 6 : 4);
  put_u8(out, 0);
  put_i64(out, event.expires);
  put_i64(out, event.reported_at);
  const size_t ip_size = event.is_v6() ? 16 : 4;
  for (size_t i = 0; i < ip_size; ++i) put_u8(out, event.address.ip[i]);
  put_string(out, event.mac);
  put_u8(out, static_cast<uint8_t>(client_id.size()));
  for (uint8_t b : client_id) put_u8(out, b);
  put_string(out, event.hostname);
  put_string(out, event.server);
  const size_t body_size = out.size() - body_start;
  store_be16(out.data() + start + 5, static_cast<uint16_t>(body_size));
  const uint32_t crc = crc32(ByteView(out).subspan(start + 4, 3 + body_size));
  const size_t at = out.size();
  out.resize(at + 4);
  store_be32(out.data() + at, crc);
  return {};
}

Expected<DecodedLeaseEvent, ParseError> decode_lease_event(ByteView input) {
  const size_t magic_check = input.size() < 4 ? input.size() : 4;
  if (magic_check != 0 && std::memcmp(input.data(), kLeaseEventMagic, magic_check) != 0)
    return fail(ParseErrc::bad_syntax, "bad record magic");
  if (input.size() < kLeaseEventHeader) return fail(ParseErrc::need_more, "record header incomplete");
  const uint8_t version = std::to_integer<uint8_t>(input[4]);
  const size_t length = load_be16(input.data() + 5);
  if (length > kMaxLeaseEventBody) return fail(ParseErrc::bad_syntax, "record length over limit");
  const size_t total = kLeaseEventHeader + length + kLeaseEventTrailer;
  if (input.size() < total) return fail(ParseErrc::need_more, "record incomplete");
  const uint32_t crc = load_be32(input.data() + kLeaseEventHeader + length);
  if (crc32(input.subspan(4, 3 + length)) != crc) return fail(ParseErrc::bad_checksum, "record CRC mismatch");
  if (version != kLeaseEventVersion) return fail(ParseErrc::bad_version, "unknown record version");

  BodyReader r(input.subspan(kLeaseEventHeader, length));
  DecodedLeaseEvent out;
  LeaseEvent& e = out.event;
  uint8_t action = 0, source = 0, family = 0, reserved = 0;
  if (!r.u8(action) || !r.u8(source) || !r.u8(family) || !r.u8(reserved) || !r.i64(e.expires) ||
      !r.i64(e.reported_at))
    return fail(ParseErrc::bad_syntax, "record body too short");
  if (!valid_action(action) || !valid_source(source)) return fail(ParseErrc::bad_syntax, "unknown action or source");
  if (family != 4 && family != 6) return fail(ParseErrc::bad_address, "unknown address family");
  e.action = static_cast<LeaseAction>(action);
  e.source = static_cast<ServerKind>(source);
  e.address.family = family == 6 ? proto::SocketAddress::Family::ipv6 : proto::SocketAddress::Family::ipv4;
  e.address.port = 0;
  if (!r.raw(e.address.ip.data(), family == 6 ? 16 : 4)) return fail(ParseErrc::bad_syntax, "record body too short");
  uint8_t cid_len = 0;
  std::vector<uint8_t> cid;
  std::string_view mac;
  if (!r.string(mac) || !r.u8(cid_len)) return fail(ParseErrc::bad_syntax, "record body too short");
  cid.resize(cid_len);
  if (!r.raw(cid.data(), cid_len) || !r.string(e.hostname) || !r.string(e.server) || !r.done())
    return fail(ParseErrc::bad_syntax, "record body of wrong size");
  if (cid_len > kMaxClientIdBytes) return fail(ParseErrc::too_large, "client-id too long");
  if (!cid.empty()) e.client_id = hex_colon(cid);
  if (!mac.empty()) {
    auto normalised = normalise_mac(mac);
    if (!normalised || *normalised != mac) return fail(ParseErrc::bad_mac, "record MAC not normalised");
    e.mac = *normalised;
  }
  if (e.server.size() > kMaxServerTagLength) return fail(ParseErrc::too_large, "server tag too long");
  // A record comes from whoever may write the hook socket or a spool file, not
  // only from this program's parsers: its hostname and server tag reach the
  // admin's terminal (`list`, `show`), the log and the status page, so they must
  // be what the parsers make (no control characters or escape sequences).
  if (auto host = normalise_hostname(e.hostname); !host || *host != e.hostname)
    return fail(ParseErrc::bad_hostname, "record hostname not normalised");
  if (!e.server.empty() && !valid_server_tag(e.server))
    return fail(ParseErrc::bad_syntax, "record server tag not printable");
  out.consumed = total;
  return out;
}

}  // namespace tsunagu::alloc
