#include <doctest/doctest.h>

#include "cluster/redis/bus_envelope.hpp"

using namespace tsunagu;
using namespace tsunagu::cluster;

namespace {
Bytes bytes_of(std::string_view text) {
  ByteView view = as_bytes(text);
  return Bytes(view.begin(), view.end());
}
}  // namespace

TEST_CASE("an envelope round-trips, an empty body too") {
  for (const BusEnvelope& envelope :
       {BusEnvelope{BusKind::ring, "node-a", bytes_of("offer from alice@acme")},
        BusEnvelope{BusKind::link_notice, "n", {}},
        BusEnvelope{BusKind::forwarded_lookup, std::string(bus_max_node_id_size, 'x'), bytes_of("4106@acme")},
        BusEnvelope{BusKind::link_message, "node-a", bytes_of("lookup"), 0x4000000000000007, "alice",
                    proto::SocketAddress::parse("192.0.2.7:40000")},
        BusEnvelope{BusKind::link_reply, "node-c", bytes_of("answer"), 42, {},
                    proto::SocketAddress::parse("[2001:db8::1]:5")},
        BusEnvelope{BusKind::heartbeat, "node-b", {}}}) {
    auto encoded = encode_bus_envelope(envelope);
    REQUIRE(encoded.has_value());
    auto decoded = decode_bus_envelope(*encoded);
    REQUIRE(decoded.has_value());
    CHECK(*decoded == envelope);
  }
}

TEST_CASE("every truncated prefix and every flipped byte is refused") {
  auto encoded = encode_bus_envelope({BusKind::call_event, "node-b", bytes_of("accept")});
  REQUIRE(encoded.has_value());
  const Bytes& whole = *encoded;
  for (size_t length = 0; length < whole.size(); ++length) {
    CHECK_FALSE(decode_bus_envelope(ByteView(whole).first(length)).has_value());
  }
  // FINGERPRINT covers every byte before it; a flip in the fingerprint itself fails its check.
  for (size_t i = 0; i < whole.size(); ++i) {
    Bytes flipped = whole;
    flipped[i] ^= std::byte{0x01};
    CHECK_FALSE(decode_bus_envelope(flipped).has_value());
  }
  Bytes trailing = whole;
  trailing.push_back(std::byte{0});
  CHECK_FALSE(decode_bus_envelope(trailing).has_value());
}

TEST_CASE("a relayed message as large as the protocol allows fits in an envelope with its routing") {
  BusEnvelope envelope{BusKind::link_message, std::string(bus_max_node_id_size, 'n'),
                       Bytes(proto::default_max_message_size, std::byte{'m'}), ~uint64_t{0},
                       std::string(bus_max_user_size, 'u'), proto::SocketAddress::parse("[2001:db8::1]:65535")};
  auto encoded = encode_bus_envelope(envelope);
  REQUIRE(encoded.has_value());
  auto decoded = decode_bus_envelope(*encoded);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == envelope);
  envelope.user.push_back('u');
  CHECK(encode_bus_envelope(envelope).error() == BusDecodeErrc::too_large);
}

TEST_CASE("size limits hold on both sides") {
  Bytes big(bus_max_envelope_size, std::byte{'a'});
  auto too_big = encode_bus_envelope({BusKind::ring, "node-a", big});
  REQUIRE_FALSE(too_big.has_value());
  CHECK(too_big.error() == BusDecodeErrc::too_large);
  auto long_id = encode_bus_envelope({BusKind::ring, std::string(bus_max_node_id_size + 1, 'x'), {}});
  REQUIRE_FALSE(long_id.has_value());
  CHECK(long_id.error() == BusDecodeErrc::too_large);
  // The largest body that fits encodes to at most the limit, and decodes.
  Bytes largest(bus_max_envelope_size - 20 - 12 - 4 - 8 - 8, std::byte{'b'});
  auto fits = encode_bus_envelope({BusKind::ring, "node-a", largest});
  REQUIRE(fits.has_value());
  CHECK(fits->size() <= bus_max_envelope_size);
  CHECK(decode_bus_envelope(*fits).has_value());
  CHECK(decode_bus_envelope(Bytes(bus_max_envelope_size + 4, std::byte{0})).error() == BusDecodeErrc::too_large);
}

TEST_CASE("a STUN message of another method, or with a kind out of range, is not an envelope") {
  proto::MessageBuilder binding(proto::MessageClass::indication, proto::method_binding, proto::TransactionId{});
  binding.add_u32(bus_attr::kind, 1).add_string(bus_attr::from_node, "a").add(bus_attr::body, {});
  CHECK(decode_bus_envelope(binding.finish()).error() == BusDecodeErrc::not_an_envelope);

  proto::MessageBuilder no_body(proto::MessageClass::indication, bus_method, proto::TransactionId{});
  no_body.add_u32(bus_attr::kind, 1).add_string(bus_attr::from_node, "a");
  CHECK(decode_bus_envelope(no_body.finish()).error() == BusDecodeErrc::missing_attribute);

  proto::MessageBuilder bad_kind(proto::MessageClass::indication, bus_method, proto::TransactionId{});
  bad_kind.add_u32(bus_attr::kind, 99).add_string(bus_attr::from_node, "a").add(bus_attr::body, {});
  CHECK(decode_bus_envelope(bad_kind.finish()).error() == BusDecodeErrc::bad_attribute);
}
