#include "webrtc/packet_demux.hpp"

#include <doctest/doctest.h>

namespace tsunagu::webrtc {
namespace {

PacketKind first_byte(int value) {
  std::byte datagram[1] = {std::byte(value)};
  return classify_packet(datagram);
}

TEST_CASE("demux: RFC 7983's ranges, at each boundary") {
  CHECK(first_byte(0) == PacketKind::stun);
  CHECK(first_byte(1) == PacketKind::stun);  // a Binding success response starts 0x01
  CHECK(first_byte(3) == PacketKind::stun);
  CHECK(first_byte(4) == PacketKind::unknown);
  CHECK(first_byte(15) == PacketKind::unknown);
  CHECK(first_byte(16) == PacketKind::zrtp);
  CHECK(first_byte(19) == PacketKind::zrtp);
  CHECK(first_byte(20) == PacketKind::dtls);  // change_cipher_spec
  CHECK(first_byte(22) == PacketKind::dtls);  // handshake
  CHECK(first_byte(63) == PacketKind::dtls);
  CHECK(first_byte(64) == PacketKind::turn_channel);
  CHECK(first_byte(79) == PacketKind::turn_channel);
  CHECK(first_byte(80) == PacketKind::unknown);
  CHECK(first_byte(127) == PacketKind::unknown);
  CHECK(first_byte(128) == PacketKind::rtp);  // version 2, no padding/extension/CSRC
  CHECK(first_byte(0x90) == PacketKind::rtp);  // with a header extension, as browsers send
  CHECK(first_byte(191) == PacketKind::rtp);
  CHECK(first_byte(192) == PacketKind::unknown);
  CHECK(first_byte(255) == PacketKind::unknown);
  CHECK(classify_packet({}) == PacketKind::unknown);
  CHECK(to_string(PacketKind::dtls) == "dtls");
}

TEST_CASE("demux: every first byte has exactly one kind") {
  int counts[6] = {};
  for (int value = 0; value < 256; ++value) ++counts[static_cast<int>(first_byte(value))];
  CHECK(counts[static_cast<int>(PacketKind::stun)] == 4);
  CHECK(counts[static_cast<int>(PacketKind::dtls)] == 44);
  CHECK(counts[static_cast<int>(PacketKind::rtp)] == 64);
  CHECK(counts[static_cast<int>(PacketKind::turn_channel)] == 16);
}

}  // namespace
}  // namespace tsunagu::webrtc
