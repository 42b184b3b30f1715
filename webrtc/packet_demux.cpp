#include "webrtc/packet_demux.hpp"

#include <cstdint>

namespace tsunagu::webrtc {

std::string_view to_string(PacketKind kind) {
  switch (kind) {
    case PacketKind::stun: return "stun";
    case PacketKind::zrtp: return "zrtp";
    case PacketKind::dtls: return "dtls";
    case PacketKind::turn_channel: return "turn-channel";
    case PacketKind::rtp: return "rtp";
    case PacketKind::unknown: return "unknown";
  }
  return "unknown";
}

PacketKind classify_packet(ByteView datagram) {
  if (datagram.empty()) return PacketKind::unknown;
  auto first = static_cast<uint8_t>(datagram[0]);
  if (first <= 3) return PacketKind::stun;
  if (first >= 16 && first <= 19) return PacketKind::zrtp;
  if (first >= 20 && first <= 63) return PacketKind::dtls;
  if (first >= 64 && first <= 79) return PacketKind::turn_channel;
  if (first >= 128 && first <= 191) return PacketKind::rtp;
  return PacketKind::unknown;
}

}  // namespace tsunagu::webrtc
