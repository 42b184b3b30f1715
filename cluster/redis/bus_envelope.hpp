// The envelope of a message between nodes on the Redis bus: a STUN-format
// message (proto/stun_message.hpp, reused rather than a codec of our own) of
// method bus_method, class indication, whose attributes carry the kind, the
// sending node and the opaque body. Pure: bytes in, bytes out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/socket_address.hpp"
#include "proto/stun_message.hpp"

namespace tsunagu::cluster {

inline constexpr uint16_t bus_method = 0x0C1;
// An envelope is one signalling message (up to the protocol's own limit) and
// its routing; larger input is refused before decoding.
inline constexpr size_t bus_max_envelope_size = proto::default_max_message_size + 512;
inline constexpr size_t bus_max_node_id_size = 64;
inline constexpr size_t bus_max_user_size = 255;

namespace bus_attr {
inline constexpr uint16_t kind = 0xC101;
inline constexpr uint16_t from_node = 0xC102;
inline constexpr uint16_t body = 0xC103;
// Optional: which link on the sending node the message is from or for, its
// logged-in user and the address the sending node observed it at.
inline constexpr uint16_t link = 0xC0E8;
inline constexpr uint16_t user = 0xC0E9;
inline constexpr uint16_t observed = 0xC0EA;
}  // namespace bus_attr

enum class BusKind : uint32_t {
  ring = 1,              // a call offer for a link on the receiving node
  call_event = 2,        // accept, decline, hang-up, ICE candidates of a call in progress
  forwarded_lookup = 3,  // a lookup for the receiving node's agent link; the answer comes back as lookup_answer
  lookup_answer = 4,
  link_notice = 5,       // for a link on the receiving node: e.g. displaced by a login elsewhere
  // What the running node sends (node/cluster_relay.hpp): the first
  // four kinds above are not sent by it; a whole signalling message is relayed.
  link_message = 6,  // body: a message from `link` on the sending node (logged in as `user`)
  link_reply = 7,    // body: a message for `link` on the receiving node
  link_gone = 8,     // `link` on the sending node closed
  heartbeat = 9,     // no body: does the receiving node still listen (SPUBLISH's count says)
};

struct BusEnvelope {
  BusKind kind = BusKind::ring;
  std::string from_node;
  Bytes body;
  uint64_t link = 0;  // 0: none
  std::string user;   // empty: none
  std::optional<proto::SocketAddress> observed;
  friend bool operator==(const BusEnvelope&, const BusEnvelope&) = default;
};

enum class BusDecodeErrc { not_an_envelope, too_large, missing_attribute, bad_attribute };
std::string_view to_string(BusDecodeErrc code);

// Fails (too_large) when the encoded envelope would exceed bus_max_envelope_size
// or the node ID bus_max_node_id_size.
Expected<Bytes, BusDecodeErrc> encode_bus_envelope(const BusEnvelope& envelope);
Expected<BusEnvelope, BusDecodeErrc> decode_bus_envelope(ByteView input);

}  // namespace tsunagu::cluster
