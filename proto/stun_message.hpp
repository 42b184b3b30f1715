// The STUN message format (RFC 8489) on byte buffers only. Every Tsunagu message,
// on UDP and on the TLS links, is one of these.
//
// decode() returns a view: attribute values point into the input buffer, which
// must outlive the Message. MessageBuilder produces the bytes to send.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::proto {

inline constexpr uint32_t magic_cookie = 0x2112A442;
inline constexpr size_t header_size = 20;
// The default ceiling for one message on a Tsunagu link; the length field alone
// would allow 65,535 bytes of attributes.
inline constexpr size_t default_max_message_size = 16 * 1024;

enum class MessageClass : uint8_t { request = 0, indication = 1, success = 2, error = 3 };

// Standard attribute types used by Tsunagu (RFC 8489 section 18.3).
namespace attr {
inline constexpr uint16_t mapped_address = 0x0001;
inline constexpr uint16_t username = 0x0006;
inline constexpr uint16_t message_integrity = 0x0008;
inline constexpr uint16_t error_code = 0x0009;
inline constexpr uint16_t unknown_attributes = 0x000A;
inline constexpr uint16_t realm = 0x0014;
inline constexpr uint16_t nonce = 0x0015;
inline constexpr uint16_t xor_mapped_address = 0x0020;
inline constexpr uint16_t software = 0x8022;
inline constexpr uint16_t alternate_server = 0x8023;
inline constexpr uint16_t fingerprint = 0x8028;
}  // namespace attr

inline constexpr uint16_t method_binding = 0x001;

struct TransactionId {
  std::array<std::byte, 12> bytes{};
  friend bool operator==(const TransactionId&, const TransactionId&) = default;
  std::string to_hex() const;
};

struct Attribute {
  uint16_t type = 0;
  ByteView value;  // without padding; points into the decoded buffer
};

struct Message {
  MessageClass message_class = MessageClass::request;
  uint16_t method = 0;  // 12 bits
  TransactionId transaction_id;
  // RFC 3489 ("classic") messages have no magic cookie; the cookie's 4 bytes are
  // then the first 4 bytes of the 16-byte transaction ID, kept in classic_cookie.
  bool classic = false;
  std::array<std::byte, 4> classic_cookie{};
  std::vector<Attribute> attributes;  // in wire order, FINGERPRINT included
  bool has_fingerprint = false;       // decode() verified it when present

  const Attribute* find(uint16_t type) const;  // first occurrence
  std::vector<const Attribute*> find_all(uint16_t type) const;
};

enum class DecodeErrc {
  need_more,        // a prefix of a valid message: feed more bytes
  not_stun,         // the first two bits are not 00 (e.g. TLS, HTTP, media)
  bad_length,       // length not a multiple of 4, or attributes overrun it
  too_large,        // announced length exceeds the limit
  bad_attribute,    // an attribute is malformed
  bad_fingerprint,  // FINGERPRINT present but wrong, or not last
};

struct DecodeError {
  DecodeErrc code;
  const char* detail;  // static string, for logs
};

std::string_view to_string(DecodeErrc code);

struct Decoded {
  Message message;
  size_t consumed = 0;  // bytes of the input that made up the message
};

// Decodes the one message at the start of `input`. Trailing bytes are left alone
// (consumed tells where the message ended). Classic RFC 3489 messages decode
// with classic = true (only when allow_classic is set: on UDP).
Expected<Decoded, DecodeError> decode(ByteView input, size_t max_size = default_max_message_size,
                                      bool allow_classic = false);

// Reads the 4-byte STUN header prefix and returns the full message size it
// announces, or an error; need_more when fewer than 4 bytes were given.
Expected<size_t, DecodeError> announced_size(ByteView prefix, size_t max_size);

class MessageBuilder {
 public:
  MessageBuilder(MessageClass message_class, uint16_t method, const TransactionId& id);
  // A response to `request`: same method and transaction ID, classic form kept.
  static MessageBuilder response_to(const Message& request, MessageClass message_class);

  MessageBuilder& add(uint16_t type, ByteView value);
  MessageBuilder& add_string(uint16_t type, std::string_view value);
  MessageBuilder& add_u8(uint16_t type, uint8_t value);  // padded to 4 bytes: value then 3 zeros
  MessageBuilder& add_u32(uint16_t type, uint32_t value);
  MessageBuilder& add_u64(uint16_t type, uint64_t value);
  MessageBuilder& add_address(uint16_t type, const SocketAddress& address);      // MAPPED-ADDRESS form
  MessageBuilder& add_xor_address(uint16_t type, const SocketAddress& address);  // XOR-MAPPED-ADDRESS form
  MessageBuilder& add_error(uint16_t code, std::string_view reason);             // ERROR-CODE
  // Appends FINGERPRINT when asked and returns the encoded message.
  Bytes finish(bool with_fingerprint = true);

 private:
  Bytes buffer_;
  bool classic_ = false;
};

// Attribute value readers; nullopt when the value is malformed.
std::optional<SocketAddress> read_address(const Attribute& attribute);
std::optional<SocketAddress> read_xor_address(const Attribute& attribute, const Message& message);
std::optional<uint8_t> read_u8(const Attribute& attribute);
std::optional<uint32_t> read_u32(const Attribute& attribute);
std::optional<uint64_t> read_u64(const Attribute& attribute);
std::string_view read_string(const Attribute& attribute);
struct ErrorCode {
  uint16_t code = 0;  // 300..699
  std::string_view reason;
};
std::optional<ErrorCode> read_error_code(const Attribute& attribute);

// CRC-32 of RFC 8489 section 14.7 (before the XOR with 0x5354554e).
uint32_t crc32(ByteView data);

}  // namespace tsunagu::proto
