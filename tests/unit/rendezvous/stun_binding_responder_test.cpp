#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "../proto/test_bytes.hpp"
#include "proto/stun_message.hpp"
#include "rendezvous/stun_binding_responder.hpp"

using namespace tsunagu;
using namespace tsunagu::rendezvous;
using tsunagu::proto::test::hex;
namespace proto = tsunagu::proto;

namespace {

const proto::SocketAddress client_v4 = proto::SocketAddress::v4({192, 0, 2, 1}, 32853);
const proto::SocketAddress client_v6 = proto::SocketAddress::v6(
    {0x20, 0x01, 0x0d, 0xb8, 0x12, 0x34, 0x56, 0x78, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}, 32853);

proto::TransactionId id_of(uint8_t seed) {
  proto::TransactionId id;
  for (size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = std::byte(static_cast<uint8_t>(seed + i));
  return id;
}

Bytes binding(proto::MessageClass message_class = proto::MessageClass::request, bool fingerprint = true,
              uint16_t method = proto::method_binding) {
  return proto::MessageBuilder(message_class, method, id_of(0xa0)).finish(fingerprint);
}

// RFC 5769 section 2.1, the sample request: SOFTWARE, PRIORITY,
// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT.
const Bytes rfc5769_request = hex(
    "00 01 00 58"  // Binding request, length 88
    "21 12 a4 42"  // magic cookie
    "b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"  // transaction ID
    "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"  // SOFTWARE "STUN test client"
    "00 24 00 04 6e 00 01 ff"  // PRIORITY
    "80 29 00 08 93 2f f9 b1 51 26 3b 36"  // ICE-CONTROLLED
    "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"  // USERNAME "evtj:h6vY"
    "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2"  // MESSAGE-INTEGRITY
    "80 28 00 04 e5 7a 3b cf");  // FINGERPRINT

bool same(ByteView a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

}  // namespace

TEST_CASE("an RFC 8489 binding request gets the source as XOR-MAPPED-ADDRESS over IPv4") {
  StunBindingResponder responder("tsunagu-test");
  Bytes request = binding();
  Bytes out;
  REQUIRE(responder.answer(request, client_v4, out));
  auto response = proto::decode(out);
  REQUIRE(response.has_value());
  const proto::Message& m = response->message;
  CHECK(response->consumed == out.size());
  CHECK(m.message_class == proto::MessageClass::success);
  CHECK(m.method == proto::method_binding);
  CHECK(m.transaction_id == id_of(0xa0));
  CHECK_FALSE(m.classic);
  CHECK(m.has_fingerprint);
  const proto::Attribute* mapped = m.find(proto::attr::xor_mapped_address);
  REQUIRE(mapped != nullptr);
  CHECK(proto::read_xor_address(*mapped, m) == client_v4);
  CHECK(m.find(proto::attr::mapped_address) == nullptr);
  REQUIRE(m.find(proto::attr::software) != nullptr);
  CHECK(proto::read_string(*m.find(proto::attr::software)) == "tsunagu-test");
  CHECK(responder.counters().answered == 1);
  CHECK(responder.counters().classic == 0);
}

TEST_CASE("an RFC 8489 binding request gets the source as XOR-MAPPED-ADDRESS over IPv6") {
  StunBindingResponder responder("tsunagu-test");
  Bytes out;
  REQUIRE(responder.answer(binding(), client_v6, out));
  auto response = proto::decode(out);
  REQUIRE(response.has_value());
  const proto::Message& m = response->message;
  REQUIRE(m.find(proto::attr::xor_mapped_address) != nullptr);
  CHECK(proto::read_xor_address(*m.find(proto::attr::xor_mapped_address), m) == client_v6);
}

TEST_CASE("the RFC 5769 sample request is answered with the RFC 5769 mapped address bytes") {
  StunBindingResponder responder("tsunagu-test");
  Bytes out;
  REQUIRE(responder.answer(rfc5769_request, client_v4, out));
  auto response = proto::decode(out);
  REQUIRE(response.has_value());
  const proto::Message& m = response->message;
  CHECK(m.transaction_id.to_hex() == "b7e7a701bc34d686fa87dfae");
  const proto::Attribute* mapped = m.find(proto::attr::xor_mapped_address);
  REQUIRE(mapped != nullptr);
  // RFC 5769 section 2.2: 192.0.2.1:32853 in XOR form.
  CHECK(same(mapped->value, hex("00 01 a1 47 e1 12 a6 43")));
}

TEST_CASE("a classic RFC 3489 binding request gets MAPPED-ADDRESS and no fingerprint") {
  StunBindingResponder responder("tsunagu-test");
  // No magic cookie: the 16 bytes after the length are the classic transaction ID.
  Bytes request = hex("0001 0000 01020304 05060708 090a0b0c 0d0e0f10");
  Bytes out;
  REQUIRE(responder.answer(request, client_v4, out));
  auto response = proto::decode(out, proto::default_max_message_size, /*allow_classic=*/true);
  REQUIRE(response.has_value());
  const proto::Message& m = response->message;
  CHECK(m.classic);
  CHECK(m.message_class == proto::MessageClass::success);
  CHECK(m.method == proto::method_binding);
  CHECK_FALSE(m.has_fingerprint);
  CHECK(m.find(proto::attr::fingerprint) == nullptr);
  CHECK(m.find(proto::attr::xor_mapped_address) == nullptr);
  REQUIRE(m.find(proto::attr::mapped_address) != nullptr);
  CHECK(proto::read_address(*m.find(proto::attr::mapped_address)) == client_v4);
  // The whole 16-byte classic transaction ID comes back unchanged.
  CHECK(same(ByteView(out).subspan(4, 16), ByteView(request).subspan(4, 16)));
  CHECK(responder.counters().classic == 1);
  CHECK(responder.counters().answered == 1);
}

TEST_CASE("a classic binding request from IPv6 gets an IPv6 MAPPED-ADDRESS") {
  StunBindingResponder responder("tsunagu-test");
  Bytes request = hex("0001 0000 a1a2a3a4 a5a6a7a8 a9aaabac adaeafb0");
  Bytes out;
  REQUIRE(responder.answer(request, client_v6, out));
  auto response = proto::decode(out, proto::default_max_message_size, true);
  REQUIRE(response.has_value());
  CHECK(proto::read_address(*response->message.find(proto::attr::mapped_address)) == client_v6);
}

TEST_CASE("a binding request with a wrong fingerprint is dropped") {
  StunBindingResponder responder("tsunagu-test");
  Bytes request = binding();
  request.back() ^= std::byte{0x01};
  Bytes out = to_bytes("stale");
  CHECK_FALSE(responder.answer(request, client_v4, out));
  CHECK(out.empty());
  CHECK(responder.counters().dropped == 1);
  CHECK(responder.counters().answered == 0);
}

TEST_CASE("indications, responses and other methods get no answer") {
  StunBindingResponder responder("tsunagu-test");
  Bytes out;
  CHECK_FALSE(responder.answer(binding(proto::MessageClass::indication), client_v4, out));
  CHECK_FALSE(responder.answer(binding(proto::MessageClass::success), client_v4, out));
  CHECK_FALSE(responder.answer(binding(proto::MessageClass::error), client_v4, out));
  CHECK_FALSE(responder.answer(binding(proto::MessageClass::request, true, 0x802), client_v4, out));  // login
  CHECK_FALSE(responder.answer(binding(proto::MessageClass::request, true, 0x003), client_v4, out));  // TURN Allocate
  CHECK(out.empty());
  CHECK(responder.counters().dropped == 5);
}

TEST_CASE("datagrams that are not one whole STUN message get no answer") {
  StunBindingResponder responder("tsunagu-test");
  Bytes out;
  CHECK_FALSE(responder.answer({}, client_v4, out));
  CHECK_FALSE(responder.answer(as_bytes("GET / HTTP/1.1\r\n\r\n"), client_v4, out));
  Bytes request = binding();
  CHECK_FALSE(responder.answer(ByteView(request).first(request.size() - 1), client_v4, out));
  Bytes trailing = request;
  trailing.push_back(std::byte{0});
  CHECK_FALSE(responder.answer(trailing, client_v4, out));
  // Larger than one datagram may be: a 2,000-byte attribute.
  proto::MessageBuilder big(proto::MessageClass::request, proto::method_binding, id_of(1));
  big.add(0x8030, Bytes(2000));
  CHECK_FALSE(responder.answer(big.finish(), client_v4, out));
  CHECK(responder.counters().dropped == 5);
  CHECK(responder.counters().answered == 0);
}

TEST_CASE("an unknown comprehension-required attribute gets 420 listing it") {
  StunBindingResponder responder("tsunagu-test");
  proto::MessageBuilder builder(proto::MessageClass::request, proto::method_binding, id_of(7));
  builder.add(0x0011, hex("00000000"));
  builder.add_u32(0xC0FE, 5);  // unknown but comprehension-optional: not listed
  builder.add(0x7f01, {});
  Bytes out;
  REQUIRE(responder.answer(builder.finish(), client_v4, out));
  auto response = proto::decode(out);
  REQUIRE(response.has_value());
  const proto::Message& m = response->message;
  CHECK(m.message_class == proto::MessageClass::error);
  CHECK(m.transaction_id == id_of(7));
  REQUIRE(m.find(proto::attr::error_code) != nullptr);
  CHECK(proto::read_error_code(*m.find(proto::attr::error_code))->code == 420);
  REQUIRE(m.find(proto::attr::unknown_attributes) != nullptr);
  CHECK(same(m.find(proto::attr::unknown_attributes)->value, hex("0011 7f01")));
  CHECK(m.find(proto::attr::xor_mapped_address) == nullptr);
  CHECK(responder.counters().unknown_attributes == 1);
  CHECK(responder.counters().answered == 0);
}

TEST_CASE("comprehension-required attributes of ICE and RFC 5780 are accepted") {
  StunBindingResponder responder("tsunagu-test");
  proto::MessageBuilder builder(proto::MessageClass::request, proto::method_binding, id_of(9));
  builder.add_u32(0x0003, 0);      // CHANGE-REQUEST
  builder.add_u32(0x0024, 1234);   // PRIORITY
  builder.add(0x0025, {});         // USE-CANDIDATE
  builder.add_string(proto::attr::username, "a:b");
  Bytes out;
  REQUIRE(responder.answer(builder.finish(), client_v4, out));
  auto response = proto::decode(out);
  REQUIRE(response.has_value());
  CHECK(response->message.message_class == proto::MessageClass::success);
}
