#include "allocation/field_normalisation.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace tsunagu::alloc {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Unexpected<ParseError> fail(ParseErrc code, std::string detail) {
  return Unexpected(ParseError{code, std::move(detail), 0});
}

}  // namespace

std::string_view to_string(ParseErrc code) {
  switch (code) {
    case ParseErrc::too_large: return "input over its size limit";
    case ParseErrc::need_more: return "input ends inside a record";
    case ParseErrc::bad_syntax: return "syntax error";
    case ParseErrc::missing_field: return "required field missing";
    case ParseErrc::bad_mac: return "bad MAC address";
    case ParseErrc::bad_client_id: return "bad client-id";
    case ParseErrc::bad_address: return "bad IP address";
    case ParseErrc::bad_number: return "bad number";
    case ParseErrc::bad_time: return "bad time";
    case ParseErrc::bad_hostname: return "bad hostname";
    case ParseErrc::bad_version: return "unknown record version";
    case ParseErrc::bad_checksum: return "checksum mismatch";
    case ParseErrc::bad_pattern: return "bad hostname rule pattern";
  }
  return "parse error";
}

std::string hex_colon(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.empty() ? 0 : bytes.size() * 3 - 1, ':');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[i * 3] = kDigits[bytes[i] >> 4];
    out[i * 3 + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

Expected<size_t, ParseError> parse_hex_bytes_into(std::string_view text, std::span<uint8_t> out) {
  if (text.empty()) return fail(ParseErrc::bad_client_id, "empty hex string");
  if (text.size() > out.size() * 3) return fail(ParseErrc::too_large, "hex string too long");
  size_t count = 0;
  bool separated = text.find_first_of(":-") != std::string_view::npos;
  if (!separated) {
    if (text.size() % 2 != 0) return fail(ParseErrc::bad_client_id, "odd number of hex digits");
    for (size_t i = 0; i < text.size(); i += 2) {
      int hi = hex_value(text[i]), lo = hex_value(text[i + 1]);
      if (hi < 0 || lo < 0) return fail(ParseErrc::bad_client_id, "not a hex digit");
      if (count == out.size()) return fail(ParseErrc::too_large, "too many bytes");
      out[count++] = static_cast<uint8_t>(hi * 16 + lo);
    }
  } else {
    size_t pos = 0;
    while (true) {
      size_t end = text.find_first_of(":-", pos);
      std::string_view group = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
      if (group.empty() || group.size() > 2) return fail(ParseErrc::bad_client_id, "hex group of wrong length");
      int value = 0;
      for (char c : group) {
        int v = hex_value(c);
        if (v < 0) return fail(ParseErrc::bad_client_id, "not a hex digit");
        value = value * 16 + v;
      }
      if (count == out.size()) return fail(ParseErrc::too_large, "too many bytes");
      out[count++] = static_cast<uint8_t>(value);
      if (end == std::string_view::npos) break;
      pos = end + 1;
    }
  }
  return count;
}

Expected<std::vector<uint8_t>, ParseError> parse_hex_bytes(std::string_view text, size_t max_bytes) {
  // A text of n characters holds at most n / 2 + 1 bytes: the buffer never
  // caps below max_bytes.
  std::vector<uint8_t> out(std::min(max_bytes, text.size() / 2 + 1));
  auto count = parse_hex_bytes_into(text, out);
  if (!count) return Unexpected(count.error());
  out.resize(*count);
  return out;
}

Expected<MacAddress, ParseError> normalise_mac(std::string_view text) {
  // Room for one octet more than a MAC, so that a longer address is told from
  // a MAC by its count rather than cut to six.
  std::array<uint8_t, MacAddress::kOctets + 1> octets{};
  auto count = parse_hex_bytes_into(text, octets);
  if (!count || *count != MacAddress::kOctets) return fail(ParseErrc::bad_mac, "not a 6-byte MAC address");
  return MacAddress(std::span<const uint8_t, MacAddress::kOctets>(octets.data(), MacAddress::kOctets));
}

MacAddress& MacAddress::operator=(std::string_view text) {
  auto parsed = normalise_mac(text);
  *this = parsed ? *parsed : MacAddress();
  return *this;
}

Expected<std::string, ParseError> normalise_client_id(std::string_view text) {
  std::array<uint8_t, kMaxClientIdBytes> bytes{};
  auto count = parse_hex_bytes_into(text, bytes);
  if (!count) return Unexpected(count.error());
  return hex_colon(std::span<const uint8_t>(bytes.data(), *count));
}

std::string client_id_beside_mac(std::string_view text) {
  auto client_id = normalise_client_id(text);
  return client_id ? std::move(*client_id) : std::string();
}

Expected<std::string, ParseError> normalise_hostname(std::string_view text) {
  if (text == "*") return std::string();
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.size() > kMaxHostnameLength) return std::string();
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return std::string();
    out.push_back(c);
  }
  return out;
}

bool valid_server_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxServerTagLength) return false;
  for (char c : tag)
    if (c <= ' ' || c > '~') return false;  // (char may be signed: bytes over 0x7f are negative)
  return true;
}

Expected<proto::SocketAddress, ParseError> parse_ip_address(std::string_view text) {
  if (text.empty() || text.size() > 45) return fail(ParseErrc::bad_address, "not an IP address");
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  proto::SocketAddress address;
  address.port = 0;
  if (text.find(':') == std::string_view::npos) {
    address.family = proto::SocketAddress::Family::ipv4;
    if (inet_pton(AF_INET, buf, address.ip.data()) != 1) return fail(ParseErrc::bad_address, "not an IPv4 address");
  } else {
    address.family = proto::SocketAddress::Family::ipv6;
    if (inet_pton(AF_INET6, buf, address.ip.data()) != 1) return fail(ParseErrc::bad_address, "not an IPv6 address");
  }
  return address;
}

std::string ip_to_string(const proto::SocketAddress& address) {
  char buf[INET6_ADDRSTRLEN] = {};
  bool v4 = address.family == proto::SocketAddress::Family::ipv4;
  if (inet_ntop(v4 ? AF_INET : AF_INET6, address.ip.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

Expected<int64_t, ParseError> parse_decimal(std::string_view text) {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  if (text.empty() || text.size() > 18) return fail(ParseErrc::bad_number, "not a number");
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail(ParseErrc::bad_number, "not a number");
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

}  // namespace tsunagu::alloc
