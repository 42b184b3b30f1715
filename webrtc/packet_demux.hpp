// RFC 7983 (updating RFC 5764 5.1.2): on the one port a WebRTC call uses, the
// first byte of a datagram says which protocol it belongs to.
#pragma once

#include <string_view>

#include "base/bytes.hpp"

namespace tsunagu::webrtc {

enum class PacketKind {
  stun,         // 0-3: ICE connectivity checks (libnice takes these)
  zrtp,         // 16-19: never used by browsers; dropped
  dtls,         // 20-63: DTLS records (the handshake, alerts)
  turn_channel, // 64-79: TURN ChannelData (only between a client and its TURN server)
  rtp,          // 128-191: SRTP or SRTCP; media::is_rtcp tells the two apart
  unknown,      // anything else, and empty datagrams: dropped and counted
};
std::string_view to_string(PacketKind kind);

PacketKind classify_packet(ByteView datagram);

}  // namespace tsunagu::webrtc
