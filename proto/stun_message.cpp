#include "proto/stun_message.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tsunagu::proto {

namespace {

inline constexpr uint32_t fingerprint_xor = 0x5354554e;
inline constexpr size_t max_attributes = 128;
inline constexpr size_t max_error_reason_size = 763;  // RFC 8489 section 14.8
inline constexpr size_t max_length_field = 0xFFFF;

// Slicing-by-8: table[k][b] is the CRC of byte b followed by k zero bytes, so
// eight bytes cost eight independent lookups instead of a chain of eight. The
// FINGERPRINT is computed twice per message (decode and encode).
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;
constexpr CrcTables make_crc_tables() {
  CrcTables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    tables[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i)
    for (size_t k = 1; k < 8; ++k) tables[k][i] = (tables[k - 1][i] >> 8) ^ tables[0][tables[k - 1][i] & 0xFF];
  return tables;
}
constexpr CrcTables crc_tables = make_crc_tables();

// The message type interleaves the 12 method bits with the 2 class bits
// (RFC 8489 section 5): M11..M7 C1 M6..M4 C0 M3..M0.
uint16_t encode_type(MessageClass message_class, uint16_t method) {
  auto c = static_cast<uint16_t>(message_class);
  return static_cast<uint16_t>((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
                               ((c & 1) << 4) | ((c & 2) << 7));
}
uint16_t decode_method(uint16_t type) {
  return static_cast<uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
MessageClass decode_class(uint16_t type) {
  return static_cast<MessageClass>(((type >> 4) & 1) | ((type >> 7) & 2));
}

size_t padded(size_t n) { return (n + 3) & ~size_t{3}; }

Unexpected<DecodeError> fail(DecodeErrc code, const char* detail) { return Unexpected(DecodeError{code, detail}); }

std::byte cookie_byte(size_t i) { return std::byte((magic_cookie >> (24 - 8 * i)) & 0xFF); }

// Length of the longest prefix of `text` (at most `limit` bytes) that does
// not end inside a UTF-8 sequence.
size_t utf8_prefix(std::string_view text, size_t limit) {
  if (text.size() <= limit) return text.size();
  size_t n = limit;
  // Step back over continuation bytes (10xxxxxx) to the start of a character,
  // which then does not fit.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

std::string TransactionId::to_hex() const { return tsunagu::to_hex(bytes); }

const Attribute* Message::find(uint16_t type) const {
  for (const auto& a : attributes) {
    if (a.type == type) return &a;
  }
  return nullptr;
}

std::vector<const Attribute*> Message::find_all(uint16_t type) const {
  std::vector<const Attribute*> out;
  for (const auto& a : attributes) {
    if (a.type == type) out.push_back(&a);
  }
  return out;
}

std::string_view to_string(DecodeErrc code) {
  switch (code) {
    case DecodeErrc::need_more: return "need_more";
    case DecodeErrc::not_stun: return "not_stun";
    case DecodeErrc::bad_length: return "bad_length";
    case DecodeErrc::too_large: return "too_large";
    case DecodeErrc::bad_attribute: return "bad_attribute";
    case DecodeErrc::bad_fingerprint: return "bad_fingerprint";
  }
  return "unknown";
}

uint32_t crc32(ByteView data) {
  uint32_t c = 0xFFFFFFFFu;
  const std::byte* p = data.data();
  size_t left = data.size();
  auto byte = [](const std::byte* at, size_t i) { return std::to_integer<uint32_t>(at[i]); };
  for (; left >= 8; left -= 8, p += 8) {
    uint32_t low = c ^ (byte(p, 0) | byte(p, 1) << 8 | byte(p, 2) << 16 | byte(p, 3) << 24);
    c = crc_tables[7][low & 0xFF] ^ crc_tables[6][(low >> 8) & 0xFF] ^ crc_tables[5][(low >> 16) & 0xFF] ^
        crc_tables[4][low >> 24] ^ crc_tables[3][byte(p, 4)] ^ crc_tables[2][byte(p, 5)] ^
        crc_tables[1][byte(p, 6)] ^ crc_tables[0][byte(p, 7)];
  }
  for (; left > 0; --left, ++p) c = crc_tables[0][(c ^ byte(p, 0)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

Expected<size_t, DecodeError> announced_size(ByteView prefix, size_t max_size) {
  if (!prefix.empty() && (std::to_integer<unsigned>(prefix[0]) & 0xC0) != 0) {
    return fail(DecodeErrc::not_stun, "first two bits are not zero");
  }
  if (prefix.size() < 4) return fail(DecodeErrc::need_more, "header incomplete");
  size_t length = load_be16(prefix.data() + 2);
  if (length % 4 != 0) return fail(DecodeErrc::bad_length, "length not a multiple of 4");
  size_t total = header_size + length;
  if (total > max_size) return fail(DecodeErrc::too_large, "message larger than the limit");
  return total;
}

Expected<Decoded, DecodeError> decode(ByteView input, size_t max_size, bool allow_classic) {
  if (input.empty()) return fail(DecodeErrc::need_more, "no bytes");
  auto size = announced_size(input, max_size);
  if (!size && size.error().code != DecodeErrc::need_more) return Unexpected(size.error());
  // Reject a wrong cookie as soon as its first byte is visible.
  bool has_cookie = true;
  for (size_t i = 4; i < 8 && i < input.size(); ++i) {
    if (input[i] != cookie_byte(i - 4)) has_cookie = false;
  }
  if (!has_cookie && !allow_classic) return fail(DecodeErrc::not_stun, "no magic cookie");
  if (!size || input.size() < header_size) return fail(DecodeErrc::need_more, "header incomplete");
  size_t total = *size;
  if (input.size() < total) return fail(DecodeErrc::need_more, "body incomplete");

  Decoded out;
  out.consumed = total;
  Message& m = out.message;
  uint16_t type = load_be16(input.data());
  m.message_class = decode_class(type);
  m.method = decode_method(type);
  m.classic = !has_cookie;
  if (m.classic) std::memcpy(m.classic_cookie.data(), input.data() + 4, 4);
  std::memcpy(m.transaction_id.bytes.data(), input.data() + 8, 12);

  // One allocation for the usual message (a request carries a handful of
  // attributes) instead of one per doubling.
  if (total > header_size) m.attributes.reserve(std::min<size_t>((total - header_size) / 4, 8));
  size_t offset = header_size;
  while (offset < total) {
    if (total - offset < 4) return fail(DecodeErrc::bad_length, "attribute header overruns the message");
    if (m.has_fingerprint) return fail(DecodeErrc::bad_fingerprint, "FINGERPRINT is not the last attribute");
    if (m.attributes.size() >= max_attributes) return fail(DecodeErrc::bad_attribute, "too many attributes");
    uint16_t attr_type = load_be16(input.data() + offset);
    size_t attr_length = load_be16(input.data() + offset + 2);
    if (padded(attr_length) > total - offset - 4) {
      return fail(DecodeErrc::bad_length, "attribute value overruns the message");
    }
    ByteView value = input.subspan(offset + 4, attr_length);
    if (attr_type == attr::fingerprint && !m.classic) {
      if (attr_length != 4) return fail(DecodeErrc::bad_fingerprint, "FINGERPRINT is not 4 bytes");
      uint32_t expected = crc32(input.first(offset)) ^ fingerprint_xor;
      if (load_be32(value.data()) != expected) return fail(DecodeErrc::bad_fingerprint, "FINGERPRINT mismatch");
      m.has_fingerprint = true;
    }
    m.attributes.push_back(Attribute{attr_type, value});
    offset += 4 + padded(attr_length);
  }
  return out;
}

MessageBuilder::MessageBuilder(MessageClass message_class, uint16_t method, const TransactionId& id) {
  assert(method <= 0x0FFF);
  // Most messages fit: one allocation, not one per doubling as attributes go in.
  buffer_.reserve(256);
  buffer_.resize(header_size);
  store_be16(buffer_.data(), encode_type(message_class, method));
  store_be32(buffer_.data() + 4, magic_cookie);
  std::memcpy(buffer_.data() + 8, id.bytes.data(), id.bytes.size());
}

MessageBuilder MessageBuilder::response_to(const Message& request, MessageClass message_class) {
  MessageBuilder builder(message_class, request.method, request.transaction_id);
  if (request.classic) {
    builder.classic_ = true;
    std::memcpy(builder.buffer_.data() + 4, request.classic_cookie.data(), 4);
  }
  return builder;
}

MessageBuilder& MessageBuilder::add(uint16_t type, ByteView value) {
  // A value that does not fit the 16-bit length fields is a caller bug.
  assert(value.size() <= max_length_field);
  assert(buffer_.size() - header_size + 4 + padded(value.size()) <= max_length_field);
  size_t at = buffer_.size();
  buffer_.resize(at + 4 + padded(value.size()));  // zero-filled, so padding is zeros
  store_be16(buffer_.data() + at, type);
  store_be16(buffer_.data() + at + 2, static_cast<uint16_t>(value.size()));
  if (!value.empty()) std::memcpy(buffer_.data() + at + 4, value.data(), value.size());
  return *this;
}

MessageBuilder& MessageBuilder::add_string(uint16_t type, std::string_view value) {
  return add(type, as_bytes(value));
}

MessageBuilder& MessageBuilder::add_u8(uint16_t type, uint8_t value) {
  std::array<std::byte, 4> v{std::byte(value), std::byte(0), std::byte(0), std::byte(0)};
  return add(type, v);
}

MessageBuilder& MessageBuilder::add_u32(uint16_t type, uint32_t value) {
  std::array<std::byte, 4> v{};
  store_be32(v.data(), value);
  return add(type, v);
}

MessageBuilder& MessageBuilder::add_u64(uint16_t type, uint64_t value) {
  std::array<std::byte, 8> v{};
  store_be64(v.data(), value);
  return add(type, v);
}

MessageBuilder& MessageBuilder::add_address(uint16_t type, const SocketAddress& address) {
  std::array<std::byte, 20> v{};
  v[1] = std::byte(static_cast<uint8_t>(address.family));
  store_be16(v.data() + 2, address.port);
  std::memcpy(v.data() + 4, address.ip.data(), address.ip_size());
  return add(type, ByteView(v).first(4 + address.ip_size()));
}

MessageBuilder& MessageBuilder::add_xor_address(uint16_t type, const SocketAddress& address) {
  // The key is the header's bytes 4..19: magic cookie then transaction ID (for a
  // classic message, the 16-byte classic transaction ID).
  const std::byte* key = buffer_.data() + 4;
  std::array<std::byte, 20> v{};
  v[1] = std::byte(static_cast<uint8_t>(address.family));
  store_be16(v.data() + 2, static_cast<uint16_t>(address.port ^ load_be16(key)));
  for (size_t i = 0; i < address.ip_size(); ++i) v[4 + i] = std::byte(address.ip[i]) ^ key[i];
  return add(type, ByteView(v).first(4 + address.ip_size()));
}

MessageBuilder& MessageBuilder::add_error(uint16_t code, std::string_view reason) {
  assert(code >= 300 && code <= 699);
  size_t reason_size = utf8_prefix(reason, max_error_reason_size);
  Bytes v(4 + reason_size);
  v[2] = std::byte(code / 100);
  v[3] = std::byte(code % 100);
  if (reason_size > 0) std::memcpy(v.data() + 4, reason.data(), reason_size);
  return add(attr::error_code, v);
}

Bytes MessageBuilder::finish(bool with_fingerprint) {
  if (with_fingerprint && !classic_) {
    // The length must already cover the FINGERPRINT when its CRC is taken.
    size_t at = buffer_.size();
    assert(at - header_size + 8 <= max_length_field);
    store_be16(buffer_.data() + 2, static_cast<uint16_t>(at - header_size + 8));
    uint32_t value = crc32(buffer_) ^ fingerprint_xor;
    buffer_.resize(at + 8);
    store_be16(buffer_.data() + at, attr::fingerprint);
    store_be16(buffer_.data() + at + 2, 4);
    store_be32(buffer_.data() + at + 4, value);
  } else {
    store_be16(buffer_.data() + 2, static_cast<uint16_t>(buffer_.size() - header_size));
  }
  return buffer_;
}

std::optional<SocketAddress> read_address(const Attribute& attribute) {
  const ByteView v = attribute.value;
  if (v.size() < 4) return std::nullopt;
  SocketAddress a;
  auto family = std::to_integer<uint8_t>(v[1]);
  if (family == static_cast<uint8_t>(SocketAddress::Family::ipv4) && v.size() == 8) {
    a.family = SocketAddress::Family::ipv4;
  } else if (family == static_cast<uint8_t>(SocketAddress::Family::ipv6) && v.size() == 20) {
    a.family = SocketAddress::Family::ipv6;
  } else {
    return std::nullopt;
  }
  a.port = load_be16(v.data() + 2);
  for (size_t i = 0; i < a.ip_size(); ++i) a.ip[i] = std::to_integer<uint8_t>(v[4 + i]);
  return a;
}

std::optional<SocketAddress> read_xor_address(const Attribute& attribute, const Message& message) {
  auto a = read_address(attribute);
  if (!a) return std::nullopt;
  std::array<std::byte, 16> key{};
  if (message.classic) {
    std::memcpy(key.data(), message.classic_cookie.data(), 4);
  } else {
    store_be32(key.data(), magic_cookie);
  }
  std::memcpy(key.data() + 4, message.transaction_id.bytes.data(), 12);
  a->port = static_cast<uint16_t>(a->port ^ load_be16(key.data()));
  for (size_t i = 0; i < a->ip_size(); ++i) a->ip[i] ^= std::to_integer<uint8_t>(key[i]);
  return a;
}

std::optional<uint8_t> read_u8(const Attribute& attribute) {
  // add_u8 writes 4 bytes (value, then 3 zero bytes); a bare 1-byte value
  // (padded by the STUN padding) is accepted too.
  if (attribute.value.size() != 4 && attribute.value.size() != 1) return std::nullopt;
  return std::to_integer<uint8_t>(attribute.value[0]);
}

std::optional<uint32_t> read_u32(const Attribute& attribute) {
  if (attribute.value.size() != 4) return std::nullopt;
  return load_be32(attribute.value.data());
}

std::optional<uint64_t> read_u64(const Attribute& attribute) {
  if (attribute.value.size() != 8) return std::nullopt;
  return load_be64(attribute.value.data());
}

std::string_view read_string(const Attribute& attribute) { return as_chars(attribute.value); }

std::optional<ErrorCode> read_error_code(const Attribute& attribute) {
  const ByteView v = attribute.value;
  if (v.size() < 4 || v.size() > 4 + max_error_reason_size) return std::nullopt;
  auto error_class = std::to_integer<unsigned>(v[2]) & 0x07;
  auto number = std::to_integer<unsigned>(v[3]);
  if (error_class < 3 || error_class > 6 || number >= 100) return std::nullopt;
  ErrorCode e;
  e.code = static_cast<uint16_t>(error_class * 100 + number);
  e.reason = as_chars(v.subspan(4));
  return e;
}

}  // namespace tsunagu::proto
