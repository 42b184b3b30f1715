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
  if (size > bus_max_envelope_size || envelope.from_node.size() > bus_max_node_id_size) {
    return Unexpected(BusDecodeErrc::too_large);
  }
  proto::MessageBuilder builder(proto::MessageClass::indication, bus_method, proto::TransactionId{});
  builder.add_u32(bus_attr::kind, static_cast<uint32_t>(envelope.kind));
  builder.add_string(bus_attr::from_node, envelope.from_node);
  builder.add(bus_attr::body, envelope.body);
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
      *kind_value > static_cast<uint32_t>(BusKind::link_notice) || from->value.size() > bus_max_node_id_size) {
    return Unexpected(BusDecodeErrc::bad_attribute);
  }
  BusEnvelope envelope;
  envelope.kind = static_cast<BusKind>(*kind_value);
  envelope.from_node = std::string(proto::read_string(*from));
  envelope.body.assign(body->value.begin(), body->value.end());
  return envelope;
}

}  // namespace tsunagu::cluster
