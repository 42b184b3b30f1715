#include "proto/stun_message.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "proto/signalling.hpp"
#include "test_bytes.hpp"

using namespace tsunagu;
using namespace tsunagu::proto;
using tsunagu::proto::test::hex;

namespace {

// RFC 5769 section 2.1: sample request. Software name "STUN test client",
// username "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt" (MESSAGE-INTEGRITY is
// not verified by this codec; it is carried as an opaque attribute).
const Bytes rfc5769_request = hex(
    "00 01 00 58"   // Request type (Binding request) and message length (88)
    "21 12 a4 42"   // Magic cookie
    "b7 e7 a7 01"   // }
    "bc 34 d6 86"   // }  Transaction ID
    "fa 87 df ae"   // }
    "80 22 00 10"   // SOFTWARE attribute header (16 bytes)
    "53 54 55 4e"   // }
    "20 74 65 73"   // }  User-agent...
    "74 20 63 6c"   // }  ...name "STUN test client"
    "69 65 6e 74"   // }
    "00 24 00 04"   // PRIORITY attribute header
    "6e 00 01 ff"   // ICE priority value
    "80 29 00 08"   // ICE-CONTROLLED attribute header
    "93 2f f9 b1"   // }  Pseudo-random tie breaker...
    "51 26 3b 36"   // }   ...for ICE control
    "00 06 00 09"   // USERNAME attribute header (9 bytes)
    "65 76 74 6a"   // }
    "3a 68 36 76"   // }  Username "evtj:h6vY" (9 bytes) and padding (3 bytes)
    "59 20 20 20"   // }  (the RFC pads with spaces; padding is ignored)
    "00 08 00 14"   // MESSAGE-INTEGRITY attribute header
    "9a ea a7 0c"   // }
    "bf d8 cb 56"   // }
    "78 1e f2 b5"   // }  HMAC-SHA1 fingerprint
    "b2 d3 f2 49"   // }
    "c1 b5 71 a2"   // }
    "80 28 00 04"   // FINGERPRINT attribute header
    "e5 7a 3b cf"); // CRC32 fingerprint

// RFC 5769 section 2.2: sample IPv4 response; mapped address 192.0.2.1:32853.
const Bytes rfc5769_ipv4_response = hex(
    "01 01 00 3c"   // Response type (Binding success) and message length (60)
    "21 12 a4 42"   // Magic cookie
    "b7 e7 a7 01"   // }
    "bc 34 d6 86"   // }  Transaction ID
    "fa 87 df ae"   // }
    "80 22 00 0b"   // SOFTWARE attribute header (11 bytes)
    "74 65 73 74"   // }
    "20 76 65 63"   // }  UTF-8 server name "test vector"
    "74 6f 72 20"   // }  (and one byte of padding)
    "00 20 00 08"   // XOR-MAPPED-ADDRESS attribute header
    "00 01 a1 47"   // Address family (IPv4) and xor'd mapped port number
    "e1 12 a6 43"   // Xor'd mapped IPv4 address
    "00 08 00 14"   // MESSAGE-INTEGRITY attribute header
    "2b 91 f5 99"   // }
    "fd 9e 90 c3"   // }
    "8c 74 89 f9"   // }  HMAC-SHA1 fingerprint
    "2a f9 ba 53"   // }
    "f0 6b e7 d7"   // }
    "80 28 00 04"   // FINGERPRINT attribute header
    "c0 7d 4c 96"); // CRC32 fingerprint

// RFC 5769 section 2.3: sample IPv6 response; mapped address
// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const Bytes rfc5769_ipv6_response = hex(
    "01 01 00 48"   // Response type (Binding success) and message length (72)
    "21 12 a4 42"   // Magic cookie
    "b7 e7 a7 01"   // }
    "bc 34 d6 86"   // }  Transaction ID
    "fa 87 df ae"   // }
    "80 22 00 0b"   // SOFTWARE attribute header
    "74 65 73 74"   // }
    "20 76 65 63"   // }  UTF-8 server name "test vector"
    "74 6f 72 20"   // }
    "00 20 00 14"   // XOR-MAPPED-ADDRESS attribute header
    "00 02 a1 47"   // Address family (IPv6) and xor'd mapped port number
    "01 13 a9 fa"   // }
    "a5 d3 f1 79"   // }  Xor'd mapped IPv6 address
    "bc 25 f4 b5"   // }
    "be d2 b9 d9"   // }
    "00 08 00 14"   // MESSAGE-INTEGRITY attribute header
    "a3 82 95 4e"   // }
    "4b e6 7b f1"   // }
    "17 84 c9 7c"   // }  HMAC-SHA1 fingerprint
    "82 92 c2 75"   // }
    "bf e3 ed 41"   // }
    "80 28 00 04"   // FINGERPRINT attribute header
    "c8 fb 0b 4c"); // CRC32 fingerprint

// An RFC 3489 ("classic") Binding request: no magic cookie, a 16-byte
// transaction ID, no attributes.
const Bytes classic_request = hex(
    "00 01 00 00"   // Binding request, no attributes
    "a1 b2 c3 d4"   // first 4 bytes of the 128-bit transaction ID
    "00 11 22 33"   // }
    "44 55 66 77"   // }  the other 12
    "88 99 aa bb"); // }

TransactionId rfc5769_transaction_id() {
  TransactionId id;
  Bytes b = hex("b7 e7 a7 01 bc 34 d6 86 fa 87 df ae");
  std::copy(b.begin(), b.end(), id.bytes.begin());
  return id;
}

TransactionId sample_id(uint8_t seed) {
  TransactionId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  return id;
}

// A Tsunagu login request with a bit of everything.
Bytes sample_login(bool with_fingerprint = true) {
  return MessageBuilder(MessageClass::request, method::login, sample_id(3))
      .add_u32(attr::protocol_version, protocol_version)
      .add_string(attr::user_id, "4106@acme")
      .add_string(attr::password, "correct horse")
      .add_xor_address(attr::reported_address, SocketAddress::v4({192, 168, 1, 20}, 5060))
      .add_xor_address(attr::reported_address,
                       SocketAddress::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, 5061))
      .add_u32(attr::link_role, link_role::presence)
      .finish(with_fingerprint);
}

DecodeErrc error_of(ByteView input, size_t max_size = default_max_message_size, bool allow_classic = false) {
  auto d = decode(input, max_size, allow_classic);
  REQUIRE_FALSE(d.has_value());
  return d.error().code;
}

}  // namespace

TEST_CASE("crc32: matches the standard check value") {
  CHECK(crc32(as_bytes("123456789")) == 0xCBF43926u);
  CHECK(crc32(ByteView{}) == 0u);
}

TEST_CASE("crc32: eight bytes at a time gives the bit-by-bit CRC for every length and alignment") {
  Bytes data(300);
  for (size_t i = 0; i < data.size(); ++i) data[i] = std::byte(static_cast<uint8_t>(i * 131 + 7));
  auto bitwise = [](ByteView bytes) {
    uint32_t c = 0xFFFFFFFFu;
    for (std::byte b : bytes) {
      c ^= std::to_integer<uint32_t>(b);
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
  };
  for (size_t start = 0; start < 8; ++start)
    for (size_t length = 0; start + length <= data.size(); length += 7) {
      ByteView slice(data.data() + start, length);
      REQUIRE(crc32(slice) == bitwise(slice));
    }
}

TEST_CASE("decode: RFC 5769 sample request decodes and its fingerprint verifies") {
  auto d = decode(rfc5769_request);
  REQUIRE(d.has_value());
  const Message& m = d->message;
  CHECK(d->consumed == rfc5769_request.size());
  CHECK(m.message_class == MessageClass::request);
  CHECK(m.method == method_binding);
  CHECK_FALSE(m.classic);
  CHECK(m.has_fingerprint);
  CHECK(m.transaction_id == rfc5769_transaction_id());
  CHECK(m.transaction_id.to_hex() == "b7e7a701bc34d686fa87dfae");
  REQUIRE(m.attributes.size() == 6);
  CHECK(m.attributes[0].type == attr::software);
  CHECK(m.attributes[1].type == 0x0024);  // PRIORITY
  CHECK(m.attributes[2].type == 0x8029);  // ICE-CONTROLLED
  CHECK(m.attributes[3].type == attr::username);
  CHECK(m.attributes[4].type == attr::message_integrity);
  CHECK(m.attributes[5].type == attr::fingerprint);
  CHECK(read_string(*m.find(attr::software)) == "STUN test client");
  CHECK(read_string(*m.find(attr::username)) == "evtj:h6vY");
  CHECK(read_u32(*m.find(0x0024)) == 0x6e0001ffu);
  CHECK(read_u64(*m.find(0x8029)) == 0x932ff9b151263b36ull);
  CHECK(m.find(attr::message_integrity)->value.size() == 20);
}

TEST_CASE("decode: RFC 5769 IPv4 response maps to 192.0.2.1:32853") {
  auto d = decode(rfc5769_ipv4_response);
  REQUIRE(d.has_value());
  const Message& m = d->message;
  CHECK(m.message_class == MessageClass::success);
  CHECK(m.method == method_binding);
  CHECK(m.has_fingerprint);
  CHECK(read_string(*m.find(attr::software)) == "test vector");
  auto mapped = read_xor_address(*m.find(attr::xor_mapped_address), m);
  REQUIRE(mapped.has_value());
  CHECK(*mapped == SocketAddress::v4({192, 0, 2, 1}, 32853));
  CHECK(mapped->to_string() == "192.0.2.1:32853");
}

TEST_CASE("decode: RFC 5769 IPv6 response maps to [2001:db8:1234:5678:11:2233:4455:6677]:32853") {
  auto d = decode(rfc5769_ipv6_response);
  REQUIRE(d.has_value());
  const Message& m = d->message;
  CHECK(m.has_fingerprint);
  auto mapped = read_xor_address(*m.find(attr::xor_mapped_address), m);
  REQUIRE(mapped.has_value());
  CHECK(mapped->family == SocketAddress::Family::ipv6);
  CHECK(mapped->port == 32853);
  CHECK(mapped->to_string() == "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
}

TEST_CASE("builder: XOR-MAPPED-ADDRESS values equal the RFC 5769 bytes") {
  auto v4 = MessageBuilder(MessageClass::success, method_binding, rfc5769_transaction_id())
                .add_xor_address(attr::xor_mapped_address, SocketAddress::v4({192, 0, 2, 1}, 32853))
                .finish(false);
  CHECK(Bytes(v4.begin() + 20, v4.end()) == hex("00 20 00 08  00 01 a1 47  e1 12 a6 43"));
  auto v6addr = SocketAddress::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  REQUIRE(v6addr.has_value());
  auto v6 = MessageBuilder(MessageClass::success, method_binding, rfc5769_transaction_id())
                .add_xor_address(attr::xor_mapped_address, *v6addr)
                .finish(false);
  CHECK(Bytes(v6.begin() + 20, v6.end()) ==
        hex("00 20 00 14  00 02 a1 47  01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9"));
}

TEST_CASE("builder: the message type interleaves every class and method") {
  for (auto cls : {MessageClass::request, MessageClass::indication, MessageClass::success, MessageClass::error}) {
    for (uint16_t m = 0; m <= 0x0FFF; ++m) {
      auto bytes = MessageBuilder(cls, m, sample_id(1)).finish(false);
      auto d = decode(bytes);
      REQUIRE(d.has_value());
      CHECK(d->message.method == m);
      CHECK(d->message.message_class == cls);
    }
  }
  // Spot checks against RFC 8489: Binding request 0x0001, success 0x0101, error 0x0111.
  CHECK(MessageBuilder(MessageClass::success, method_binding, sample_id(1)).finish(false)[1] == std::byte{0x01});
  auto error = MessageBuilder(MessageClass::error, method_binding, sample_id(1)).finish(false);
  CHECK(load_be16(error.data()) == 0x0111);
  auto login = MessageBuilder(MessageClass::indication, method::notice, sample_id(1)).finish(false);
  CHECK(load_be16(login.data()) == 0x2016);
}

TEST_CASE("builder: every attribute writer round-trips through decode") {
  const std::array<std::byte, 5> raw{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
  const auto v4 = SocketAddress::v4({203, 0, 113, 9}, 40000);
  const auto v6 = *SocketAddress::parse("[fe80::1:2]:1");
  const TransactionId id = sample_id(9);
  for (bool fingerprint : {false, true}) {
    CAPTURE(fingerprint);
    Bytes bytes = MessageBuilder(MessageClass::success, method::lookup, id)
                      .add(0xC0F0, raw)
                      .add(0xC0F1, ByteView{})
                      .add_string(attr::display_name, "Ōsaka Office")
                      .add_u8(0xC0F2, 0xAB)
                      .add_u32(attr::presence, presence_flag::online | presence_flag::in_call)
                      .add_u64(attr::last_seen, 0x0123456789ABCDEFull)
                      .add_address(attr::mapped_address, v4)
                      .add_address(attr::mapped_address, v6)
                      .add_xor_address(attr::observed_address, v4)
                      .add_xor_address(attr::reported_address, v6)
                      .add_error(error::offline, "Offline")
                      .finish(fingerprint);
    CHECK(bytes.size() % 4 == 0);
    CHECK(load_be16(bytes.data() + 2) == bytes.size() - header_size);
    CHECK(load_be32(bytes.data() + 4) == magic_cookie);
    auto d = decode(bytes);
    REQUIRE(d.has_value());
    const Message& m = d->message;
    CHECK(d->consumed == bytes.size());
    CHECK(m.message_class == MessageClass::success);
    CHECK(m.method == method::lookup);
    CHECK(m.transaction_id == id);
    CHECK(m.has_fingerprint == fingerprint);
    REQUIRE(m.attributes.size() == (fingerprint ? 12u : 11u));
    CHECK(Bytes(m.attributes[0].value.begin(), m.attributes[0].value.end()) == Bytes(raw.begin(), raw.end()));
    CHECK(m.attributes[1].value.empty());
    CHECK(read_string(*m.find(attr::display_name)) == "Ōsaka Office");
    CHECK(read_u8(*m.find(0xC0F2)) == 0xAB);
    CHECK(m.find(0xC0F2)->value.size() == 4);
    CHECK(read_u32(*m.find(attr::presence)) == (presence_flag::online | presence_flag::in_call));
    CHECK(read_u64(*m.find(attr::last_seen)) == 0x0123456789ABCDEFull);
    auto mapped = m.find_all(attr::mapped_address);
    REQUIRE(mapped.size() == 2);
    CHECK(read_address(*mapped[0]) == v4);
    CHECK(read_address(*mapped[1]) == v6);
    CHECK(read_xor_address(*m.find(attr::observed_address), m) == v4);
    CHECK(read_xor_address(*m.find(attr::reported_address), m) == v6);
    // The XOR form really is different on the wire.
    CHECK(read_address(*m.find(attr::observed_address)) != v4);
    auto error = read_error_code(*m.find(attr::error_code));
    REQUIRE(error.has_value());
    CHECK(error->code == 480);
    CHECK(error->reason == "Offline");
    if (fingerprint) CHECK(m.attributes.back().type == attr::fingerprint);
  }
}

TEST_CASE("builder: padding bytes are zeros") {
  auto bytes = MessageBuilder(MessageClass::request, method::login, sample_id(2))
                   .add_string(attr::user_id, "alice")  // 5 bytes, 3 of padding
                   .finish(false);
  REQUIRE(bytes.size() == 20 + 4 + 8);
  CHECK(Bytes(bytes.begin() + 24, bytes.end()) == hex("61 6c 69 63 65 00 00 00"));
}

TEST_CASE("builder: ERROR-CODE encodes class and number and bounds the reason") {
  auto bytes = MessageBuilder(MessageClass::error, method::login, sample_id(4))
                   .add_error(error::unsupported_version, "Unsupported Version")
                   .finish(false);
  CHECK(Bytes(bytes.begin() + 20, bytes.begin() + 28) == hex("00 09 00 17  00 00 04 1a"));

  // 300 three-byte characters: 900 bytes, cut to 762 (254 characters), never
  // inside a character.
  std::string long_reason;
  for (int i = 0; i < 300; ++i) long_reason += "語";
  auto cut = MessageBuilder(MessageClass::error, method::login, sample_id(4))
                 .add_error(error::server_error, long_reason)
                 .finish();
  auto d = decode(cut);
  REQUIRE(d.has_value());
  auto e = read_error_code(*d->message.find(attr::error_code));
  REQUIRE(e.has_value());
  CHECK(e->code == 500);
  CHECK(e->reason.size() == 762);
  CHECK(e->reason == long_reason.substr(0, 762));

  std::string ascii(800, 'x');
  auto cut2 = MessageBuilder(MessageClass::error, method::login, sample_id(4)).add_error(699, ascii).finish();
  auto d2 = decode(cut2);
  REQUIRE(d2.has_value());
  auto e2 = read_error_code(*d2->message.find(attr::error_code));
  REQUIRE(e2.has_value());
  CHECK(e2->code == 699);
  CHECK(e2->reason.size() == 763);
}

TEST_CASE("readers: malformed values give nullopt") {
  auto attribute = [](uint16_t type, const Bytes& value) { return Attribute{type, value}; };
  Bytes three = hex("01 02 03");
  Bytes four = hex("01 02 03 04");
  CHECK_FALSE(read_u32(attribute(1, three)).has_value());
  CHECK_FALSE(read_u64(attribute(1, four)).has_value());
  CHECK_FALSE(read_u8(attribute(1, three)).has_value());
  CHECK(read_u8(attribute(1, hex("07"))) == 7);
  // Family 3 does not exist; IPv4 must be 8 bytes and IPv6 20.
  CHECK_FALSE(read_address(attribute(1, hex("00 03 00 50 01 02 03 04"))).has_value());
  CHECK_FALSE(read_address(attribute(1, hex("00 01 00 50 01 02 03"))).has_value());
  CHECK_FALSE(read_address(attribute(1, hex("00 01 00 50 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10")))
                  .has_value());
  CHECK_FALSE(read_address(attribute(1, hex("00 02 00 50 01 02 03 04"))).has_value());
  CHECK_FALSE(read_address(attribute(1, hex("00 01 00"))).has_value());
  CHECK(read_address(attribute(1, hex("00 01 00 50 0a 00 00 01"))) == SocketAddress::v4({10, 0, 0, 1}, 80));
  // ERROR-CODE: class 3..6, number 0..99, at least 4 bytes.
  CHECK_FALSE(read_error_code(attribute(attr::error_code, hex("00 00 02 00"))).has_value());
  CHECK_FALSE(read_error_code(attribute(attr::error_code, hex("00 00 07 00"))).has_value());
  CHECK_FALSE(read_error_code(attribute(attr::error_code, hex("00 00 04 64"))).has_value());
  CHECK_FALSE(read_error_code(attribute(attr::error_code, hex("00 00 04"))).has_value());
  auto ok = read_error_code(attribute(attr::error_code, hex("00 00 03 00")));
  REQUIRE(ok.has_value());
  CHECK(ok->code == 300);
  CHECK(ok->reason.empty());
}

TEST_CASE("decode: every truncated prefix needs more") {
  for (const Bytes& message : {rfc5769_request, rfc5769_ipv4_response, rfc5769_ipv6_response, sample_login(),
                               sample_login(false)}) {
    for (size_t n = 0; n < message.size(); ++n) {
      CAPTURE(n);
      ByteView prefix(message.data(), n);
      CHECK(error_of(prefix) == DecodeErrc::need_more);
      CHECK(error_of(prefix, default_max_message_size, true) == DecodeErrc::need_more);
    }
  }
  for (size_t n = 0; n < classic_request.size(); ++n) {
    CHECK(error_of(ByteView(classic_request.data(), n), default_max_message_size, true) == DecodeErrc::need_more);
  }
}

TEST_CASE("decode: trailing bytes are left for the next message") {
  Bytes two = sample_login();
  Bytes second = rfc5769_request;
  two.insert(two.end(), second.begin(), second.end());
  auto d = decode(two);
  REQUIRE(d.has_value());
  CHECK(d->consumed == sample_login().size());
  auto d2 = decode(ByteView(two).subspan(d->consumed));
  REQUIRE(d2.has_value());
  CHECK(d2->consumed == rfc5769_request.size());
}

TEST_CASE("decode: flipping any byte of a fingerprinted message is caught") {
  for (const Bytes& original : {rfc5769_request, rfc5769_ipv6_response, sample_login()}) {
    auto reference = decode(original);
    REQUIRE(reference.has_value());
    // Byte ranges of attribute values (body bytes that are neither a header
    // nor an attribute header): any change there must fail the fingerprint.
    std::vector<bool> in_value(original.size(), false);
    for (const auto& a : reference->message.attributes) {
      size_t at = static_cast<size_t>(a.value.data() - original.data());
      for (size_t i = at; i < at + ((a.value.size() + 3) & ~size_t{3}); ++i) in_value[i] = true;
    }
    const size_t fingerprint_type_at = original.size() - 8;
    for (size_t i = 0; i < original.size(); ++i) {
      for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xFF}}) {
        CAPTURE(i);
        CAPTURE(mask);
        Bytes flipped = original;
        flipped[i] ^= std::byte(mask);
        for (bool classic : {false, true}) {
          auto d = decode(flipped, default_max_message_size, classic);
          if (in_value[i]) {
            REQUIRE_FALSE(d.has_value());
            CHECK(d.error().code == DecodeErrc::bad_fingerprint);
          } else if (d.has_value()) {
            // Only a change that takes the FINGERPRINT out of the message (its
            // type, the length, or the cookie when classic messages are
            // allowed) can still decode, and then visibly differently.
            CHECK_FALSE(d->message.has_fingerprint);
            CHECK(((i >= fingerprint_type_at && i < fingerprint_type_at + 2) || (i >= 2 && i < 4) ||
                   (classic && i >= 4 && i < 8)));
          }
        }
      }
    }
  }
}

TEST_CASE("decode: an oversized length is rejected from the first 4 bytes") {
  Bytes header = hex("00 01 ff fc");
  CHECK(error_of(header) == DecodeErrc::too_large);
  auto size = announced_size(header, default_max_message_size);
  REQUIRE_FALSE(size.has_value());
  CHECK(size.error().code == DecodeErrc::too_large);
  // At exactly the limit the size is announced; one word more is too large.
  Bytes at_limit = hex("00 01 3f ec");  // 16,364 + 20 = 16,384
  CHECK(*announced_size(at_limit, default_max_message_size) == 16384);
  Bytes over_limit = hex("00 01 3f f0");
  CHECK(announced_size(over_limit, default_max_message_size).error().code == DecodeErrc::too_large);
  // A message that decodes with a generous limit is too large for a small one.
  Bytes login = sample_login();
  CHECK(decode(login, login.size()).has_value());
  CHECK(error_of(login, login.size() - 4) == DecodeErrc::too_large);
  CHECK(announced_size(ByteView(header).first(3), 100).error().code == DecodeErrc::need_more);
}

TEST_CASE("decode: malformed framing gives the matching error") {
  // First two bits set: not STUN (RTP, HTTP, ...).
  CHECK(error_of(hex("80")) == DecodeErrc::not_stun);
  CHECK(error_of(as_bytes("GET / HTTP/1.1\r\n")) == DecodeErrc::not_stun);
  // No magic cookie on a link that does not allow classic STUN: known from the
  // first cookie byte.
  CHECK(error_of(hex("00 01 00 00 21 12 a4 43")) == DecodeErrc::not_stun);
  CHECK(error_of(hex("00 01 00 00 22")) == DecodeErrc::not_stun);
  CHECK(error_of(classic_request) == DecodeErrc::not_stun);
  // Length not a multiple of 4.
  CHECK(error_of(hex("00 01 00 05")) == DecodeErrc::bad_length);
  // An attribute value longer than the message.
  CHECK(error_of(hex("00 01 00 04 21 12 a4 42 000000000000000000000000 c0 01 00 08")) == DecodeErrc::bad_length);
  // An attribute value that overruns the message, with padding counted.
  CHECK(error_of(hex("00 01 00 08 21 12 a4 42 000000000000000000000000 c0 01 00 05 61 62 63 64")) ==
        DecodeErrc::bad_length);
  // FINGERPRINT that is not 4 bytes, wrong, or followed by another attribute.
  CHECK(error_of(hex("00 01 00 0c 21 12 a4 42 000000000000000000000000 80 28 00 08 00000000 00000000")) ==
        DecodeErrc::bad_fingerprint);
  Bytes login = sample_login();
  login.back() ^= std::byte{1};
  CHECK(error_of(login) == DecodeErrc::bad_fingerprint);
  Bytes followed = sample_login();
  followed.insert(followed.end(), {std::byte{0xC0}, std::byte{0x01}, std::byte{0}, std::byte{0}});
  store_be16(followed.data() + 2, static_cast<uint16_t>(load_be16(followed.data() + 2) + 4));
  CHECK(error_of(followed) == DecodeErrc::bad_fingerprint);
}

TEST_CASE("decode: the number of attributes is capped at 128") {
  auto with = [](size_t count) {
    MessageBuilder b(MessageClass::request, method::login, sample_id(5));
    for (size_t i = 0; i < count; ++i) b.add(0xC0FF, ByteView{});
    return b.finish(false);
  };
  Bytes ok = with(128);
  auto d = decode(ok);
  REQUIRE(d.has_value());
  CHECK(d->message.attributes.size() == 128);
  CHECK(d->message.find_all(0xC0FF).size() == 128);
  CHECK(error_of(with(129)) == DecodeErrc::bad_attribute);
}

TEST_CASE("decode: a classic RFC 3489 request decodes only where allowed") {
  auto d = decode(classic_request, default_max_message_size, true);
  REQUIRE(d.has_value());
  const Message& m = d->message;
  CHECK(m.classic);
  CHECK(m.method == method_binding);
  CHECK(m.message_class == MessageClass::request);
  CHECK(Bytes(m.classic_cookie.begin(), m.classic_cookie.end()) == hex("a1 b2 c3 d4"));
  CHECK(m.transaction_id.to_hex() == "00112233445566778899aabb");
  CHECK(m.attributes.empty());
  CHECK_FALSE(m.has_fingerprint);
  // A message with the cookie is not classic even when classic is allowed.
  auto modern = decode(rfc5769_request, default_max_message_size, true);
  REQUIRE(modern.has_value());
  CHECK_FALSE(modern->message.classic);
  CHECK(modern->message.has_fingerprint);
}

TEST_CASE("builder: a classic response keeps the 16-byte transaction ID and has no fingerprint") {
  auto request = decode(classic_request, default_max_message_size, true);
  REQUIRE(request.has_value());
  const auto observed = SocketAddress::v4({198, 51, 100, 7}, 61000);
  Bytes bytes = MessageBuilder::response_to(request->message, MessageClass::success)
                    .add_address(attr::mapped_address, observed)
                    .finish(true);  // asked for, but classic STUN has no FINGERPRINT
  CHECK(bytes.size() == 20 + 12);
  CHECK(Bytes(bytes.begin(), bytes.begin() + 20) ==
        hex("01 01 00 0c  a1 b2 c3 d4  00 11 22 33 44 55 66 77 88 99 aa bb"));
  CHECK(Bytes(bytes.begin() + 20, bytes.end()) == hex("00 01 00 08  00 01 ee 48  c6 33 64 07"));
  CHECK(error_of(bytes) == DecodeErrc::not_stun);
  auto d = decode(bytes, default_max_message_size, true);
  REQUIRE(d.has_value());
  CHECK(d->message.classic);
  CHECK(d->message.message_class == MessageClass::success);
  CHECK(d->message.classic_cookie == request->message.classic_cookie);
  CHECK(d->message.transaction_id == request->message.transaction_id);
  CHECK_FALSE(d->message.has_fingerprint);
  CHECK(read_address(*d->message.find(attr::mapped_address)) == observed);

  // XOR addressing on a classic message uses the classic ID as its key and
  // still round-trips (the caller should prefer MAPPED-ADDRESS there).
  Bytes xored = MessageBuilder::response_to(request->message, MessageClass::success)
                    .add_xor_address(attr::xor_mapped_address, observed)
                    .finish();
  auto dx = decode(xored, default_max_message_size, true);
  REQUIRE(dx.has_value());
  CHECK(read_xor_address(*dx->message.find(attr::xor_mapped_address), dx->message) == observed);
}

TEST_CASE("builder: response_to keeps method and transaction ID of a modern request") {
  const Bytes login = sample_login();  // the decoded message points into it
  auto request = decode(login);
  REQUIRE(request.has_value());
  Bytes bytes = MessageBuilder::response_to(request->message, MessageClass::error)
                    .add_error(error::unauthenticated, error_reason(error::unauthenticated))
                    .finish();
  auto d = decode(bytes);
  REQUIRE(d.has_value());
  CHECK(d->message.method == method::login);
  CHECK(d->message.message_class == MessageClass::error);
  CHECK(d->message.transaction_id == request->message.transaction_id);
  CHECK_FALSE(d->message.classic);
  CHECK(d->message.has_fingerprint);
  CHECK(read_error_code(*d->message.find(attr::error_code))->code == 401);
}

TEST_CASE("message: find returns the first occurrence and nullptr when absent") {
  const Bytes login = sample_login();  // the decoded message points into it
  auto d = decode(login);
  REQUIRE(d.has_value());
  const Message& m = d->message;
  CHECK(m.find(0x7777) == nullptr);
  CHECK(m.find_all(0x7777).empty());
  auto reported = m.find_all(attr::reported_address);
  REQUIRE(reported.size() == 2);
  CHECK(m.find(attr::reported_address) == reported[0]);
  CHECK(read_xor_address(*reported[0], m)->to_string() == "192.168.1.20:5060");
  CHECK(read_xor_address(*reported[1], m)->to_string() == "[2001:db8::7]:5061");
}

TEST_CASE("decode errors have names") {
  CHECK(to_string(DecodeErrc::need_more) == "need_more");
  CHECK(to_string(DecodeErrc::not_stun) == "not_stun");
  CHECK(to_string(DecodeErrc::bad_length) == "bad_length");
  CHECK(to_string(DecodeErrc::too_large) == "too_large");
  CHECK(to_string(DecodeErrc::bad_attribute) == "bad_attribute");
  CHECK(to_string(DecodeErrc::bad_fingerprint) == "bad_fingerprint");
}
