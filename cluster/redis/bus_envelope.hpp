// The envelope of a message between nodes on the Redis bus: a STUN-format
// message (proto/stun_message.hpp, reused rather than a codec of our own) of
// method bus_method, class indication, whose attributes carry the kind, the
// sending node and the opaque body. Pure: bytes in, bytes out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::cluster {

inline constexpr uint16_t bus_method = 0x0C1;
// An envelope is one signalling message and its routing; larger input is
// refused before decoding.
inline constexpr size_t bus_max_envelope_size = proto::default_max_message_size;
inline constexpr size_t bus_max_node_id_size = 64;

namespace bus_attr {
inline constexpr uint16_t kind = 0xC101;
inline constexpr uint16_t from_node = 0xC102;
inline constexpr uint16_t body = 0xC103;
}  // namespace bus_attr

enum class BusKind : uint32_t {
  ring = 1,              // a call offer for a link on the receiving node
  call_event = 2,        // accept, decline, hang-up, ICE candidates of a call in progress
  forwarded_lookup = 3,  // a lookup for the receiving node's agent link; the answer comes back as lookup_answer
  lookup_answer = 4,
  link_notice = 5,       // for a link on the receiving node: e.g. displaced by a login elsewhere
};

struct BusEnvelope {
  BusKind kind = BusKind::ring;
  std::string from_node;
  Bytes body;
  friend bool operator==(const BusEnvelope&, const BusEnvelope&) = default;
};

enum class BusDecodeErrc { not_an_envelope, too_large, missing_attribute, bad_attribute };
std::string_view to_string(BusDecodeErrc code);

// Fails (too_large) when the encoded envelope would exceed bus_max_envelope_size
// or the node ID bus_max_node_id_size.
Expected<Bytes, BusDecodeErrc> encode_bus_envelope(const BusEnvelope& envelope);
Expected<BusEnvelope, BusDecodeErrc> decode_bus_envelope(ByteView input);

}  // namespace tsunagu::cluster
