#include "cluster/redis/bus_envelope.hpp"

namespace tsunagu::cluster {

std::string_view to_string(BusDecodeErrc code) {
  switch (code) {
    case BusDecodeErrc::not_an_envelope: return "not a bus envelope";
    case BusDecodeErrc::too_large: return "envelope too large";
    case BusDecodeErrc::missing_attribute: return "envelope attribute missing";
    case BusDecodeErrc::bad_attribute: return "envelope attribute malformed";
  }
  return "unknown";
}

Expected<Bytes, BusDecodeErrc> encode_bus_envelope(const BusEnvelope& envelope) {
  // Header, three attribute headers, the kind, both values padded to 4, FINGERPRINT.
  auto padded = [](size_t n) { return (n + 3) & ~size_t{3}; };
  size_t size = proto::header_size + 3 * 4 + 4 + padded(envelope.from_node.size()) + padded(envelope.body.size()) + 8;
  if (envelope.link != 0) size += 4 + 8;
  if (!envelope.user.empty()) size += 4 + padded(envelope.user.size());
  if (envelope.observed) size += 4 + 20;  // an IPv6 address at most
  if (size > bus_max_envelope_size || envelope.from_node.size() > bus_max_node_id_size ||
      envelope.user.size() > bus_max_user_size) {
    return Unexpected(BusDecodeErrc::too_large);
  }
  proto::MessageBuilder builder(proto::MessageClass::indication, bus_method, proto::TransactionId{});
  builder.add_u32(bus_attr::kind, static_cast<uint32_t>(envelope.kind));
  builder.add_string(bus_attr::from_node, envelope.from_node);
  builder.add(bus_attr::body, envelope.body);
  if (envelope.link != 0) builder.add_u64(bus_attr::link, envelope.link);
  if (!envelope.user.empty()) builder.add_string(bus_attr::user, envelope.user);
  if (envelope.observed) builder.add_xor_address(bus_attr::observed, *envelope.observed);
  return builder.finish();
}

Expected<BusEnvelope, BusDecodeErrc> decode_bus_envelope(ByteView input) {
  if (input.size() > bus_max_envelope_size) return Unexpected(BusDecodeErrc::too_large);
  auto decoded = proto::decode(input, bus_max_envelope_size);
  // Anything but exactly one whole message is not an envelope: a bus message is never partial.
  if (!decoded || decoded->consumed != input.size()) return Unexpected(BusDecodeErrc::not_an_envelope);
  const proto::Message& message = decoded->message;
  if (message.method != bus_method || message.message_class != proto::MessageClass::indication ||
      !message.has_fingerprint) {
    return Unexpected(BusDecodeErrc::not_an_envelope);
  }
  const proto::Attribute* kind = message.find(bus_attr::kind);
  const proto::Attribute* from = message.find(bus_attr::from_node);
  const proto::Attribute* body = message.find(bus_attr::body);
  if (!kind || !from || !body) return Unexpected(BusDecodeErrc::missing_attribute);
  auto kind_value = proto::read_u32(*kind);
  if (!kind_value || *kind_value < static_cast<uint32_t>(BusKind::ring) ||
      *kind_value > static_cast<uint32_t>(BusKind::heartbeat) || from->value.size() > bus_max_node_id_size) {
    return Unexpected(BusDecodeErrc::bad_attribute);
  }
  BusEnvelope envelope;
  envelope.kind = static_cast<BusKind>(*kind_value);
  envelope.from_node = std::string(proto::read_string(*from));
  envelope.body.assign(body->value.begin(), body->value.end());
  if (const proto::Attribute* link = message.find(bus_attr::link)) {
    auto value = proto::read_u64(*link);
    if (!value) return Unexpected(BusDecodeErrc::bad_attribute);
    envelope.link = *value;
  }
  if (const proto::Attribute* user = message.find(bus_attr::user)) {
    if (user->value.size() > bus_max_user_size) return Unexpected(BusDecodeErrc::bad_attribute);
    envelope.user = std::string(proto::read_string(*user));
  }
  if (const proto::Attribute* observed = message.find(bus_attr::observed)) {
    envelope.observed = proto::read_xor_address(*observed, message);
    if (!envelope.observed) return Unexpected(BusDecodeErrc::bad_attribute);
  }
  return envelope;
}

}  // namespace tsunagu::cluster
