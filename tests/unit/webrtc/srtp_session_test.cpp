// SRTP keyed by a real DTLS handshake (two DtlsSession in memory), protecting
// real RTP and RTCP built by media/rtp.hpp.
#include "webrtc/srtp_session.hpp"

#include <doctest/doctest.h>

#include "media/rtp.hpp"

namespace tsunagu::webrtc {
namespace {

using security::DtlsIdentity;
using security::DtlsSession;
using security::SrtpKeyingMaterial;
using security::SrtpProfile;

// Runs a DTLS handshake in memory; returns what each side exported.
std::pair<SrtpKeyingMaterial, SrtpKeyingMaterial> handshake(std::vector<SrtpProfile> profiles) {
  auto client_identity = DtlsIdentity::generate();
  auto server_identity = DtlsIdentity::generate();
  DtlsSession::Options client_options{.role = DtlsSession::Role::client,
                                      .peer_fingerprint = server_identity->fingerprint(),
                                      .srtp_profiles = profiles};
  DtlsSession::Options server_options{.role = DtlsSession::Role::server,
                                      .peer_fingerprint = client_identity->fingerprint(),
                                      .srtp_profiles = profiles};
  auto client = DtlsSession::create(client_identity, client_options);
  auto server = DtlsSession::create(server_identity, server_options);
  REQUIRE(client.has_value());
  REQUIRE(server.has_value());
  REQUIRE((*client)->start().has_value());
  for (int round = 0; round < 10; ++round) {
    for (Bytes& datagram : (*client)->take_datagrams()) REQUIRE((*server)->receive(datagram).has_value());
    for (Bytes& datagram : (*server)->take_datagrams()) REQUIRE((*client)->receive(datagram).has_value());
  }
  REQUIRE((*client)->handshake_complete());
  REQUIRE((*server)->handshake_complete());
  return {*(*client)->srtp_keying_material(), *(*server)->srtp_keying_material()};
}

struct Link {
  std::unique_ptr<SrtpSession> client;
  std::unique_ptr<SrtpSession> server;
  explicit Link(SrtpProfile profile) {
    auto [client_keys, server_keys] = handshake({profile});
    REQUIRE(client_keys.profile == profile);
    auto c = SrtpSession::create(client_keys, DtlsSession::Role::client);
    auto s = SrtpSession::create(server_keys, DtlsSession::Role::server);
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().detail));
    REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().detail));
    client = std::move(*c);
    server = std::move(*s);
  }
};

Bytes rtp_packet(uint16_t sequence) {
  media::RtpHeader header;
  header.payload_type = 111;
  header.sequence = sequence;
  header.timestamp = 960u * sequence;
  header.ssrc = 0x11223344;
  Bytes payload(80);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(static_cast<uint8_t>(i * 7 + sequence));
  return media::write_rtp(header, payload);
}

TEST_CASE("srtp: RTP round trip both ways, for both DTLS-SRTP profiles") {
  for (SrtpProfile profile : {SrtpProfile::aes128_cm_sha1_80, SrtpProfile::aead_aes_128_gcm}) {
    CAPTURE(to_string(profile));
    Link link(profile);
    for (uint16_t sequence = 1; sequence <= 5; ++sequence) {
      Bytes plain = rtp_packet(sequence);
      Bytes packet = plain;
      REQUIRE(link.client->protect_rtp(packet).has_value());
      // Header stays readable, payload does not, the tag is appended (10 bytes for HMAC-SHA1-80, 16 for GCM).
      CHECK(packet.size() == plain.size() + (profile == SrtpProfile::aead_aes_128_gcm ? 16 : 10));
      CHECK(std::equal(plain.begin(), plain.begin() + 12, packet.begin()));
      CHECK_FALSE(std::equal(plain.begin() + 12, plain.end(), packet.begin() + 12));
      REQUIRE(link.server->unprotect_rtp(packet).has_value());
      CHECK(packet == plain);
      auto parsed = media::parse_rtp(packet);
      REQUIRE(parsed.has_value());
      CHECK(parsed->header.sequence == sequence);

      Bytes back = rtp_packet(static_cast<uint16_t>(sequence + 100));
      Bytes answer = back;
      REQUIRE(link.server->protect_rtp(answer).has_value());
      REQUIRE(link.client->unprotect_rtp(answer).has_value());
      CHECK(answer == back);
    }
  }
}

TEST_CASE("srtp: a tampered packet is refused and the genuine one still passes") {
  Link link(SrtpProfile::aes128_cm_sha1_80);
  Bytes packet = rtp_packet(7);
  REQUIRE(link.client->protect_rtp(packet).has_value());
  Bytes tampered = packet;
  tampered[20] ^= std::byte{0x01};
  auto refused = link.server->unprotect_rtp(tampered);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == SrtpErrc::authentication);
  CHECK(tampered.size() == packet.size());  // unchanged on error
  REQUIRE(link.server->unprotect_rtp(packet).has_value());
}

TEST_CASE("srtp: a replayed packet is refused") {
  Link link(SrtpProfile::aead_aes_128_gcm);
  Bytes packet = rtp_packet(9);
  REQUIRE(link.client->protect_rtp(packet).has_value());
  Bytes copy = packet;
  REQUIRE(link.server->unprotect_rtp(packet).has_value());
  auto replayed = link.server->unprotect_rtp(copy);
  REQUIRE_FALSE(replayed.has_value());
  CHECK(replayed.error().code == SrtpErrc::replay);
}

TEST_CASE("srtp: keys of another handshake do not verify") {
  Link first(SrtpProfile::aes128_cm_sha1_80);
  Link second(SrtpProfile::aes128_cm_sha1_80);
  Bytes packet = rtp_packet(1);
  REQUIRE(first.client->protect_rtp(packet).has_value());
  auto refused = second.server->unprotect_rtp(packet);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == SrtpErrc::authentication);
  // A side cannot read its own packets: each direction has its own key.
  Bytes own = rtp_packet(2);
  REQUIRE(first.client->protect_rtp(own).has_value());
  CHECK_FALSE(first.client->unprotect_rtp(own).has_value());
}

TEST_CASE("srtcp: a receiver report round trip, and tampering refused") {
  Link link(SrtpProfile::aes128_cm_sha1_80);
  media::RtcpReport report;
  report.ssrc = 0x55667788;
  report.blocks.push_back({.ssrc = 0x11223344, .fraction_lost = 3, .cumulative_lost = 5, .highest_sequence = 70000,
                           .jitter = 12, .last_sr = 0, .delay_since_last_sr = 0});
  Bytes plain = media::write_rtcp_report(report);
  Bytes packet = plain;
  REQUIRE(link.server->protect_rtcp(packet).has_value());
  CHECK(packet.size() == plain.size() + 4 + 10);  // E flag + SRTCP index, and the tag
  Bytes tampered = packet;
  tampered.back() ^= std::byte{0x80};
  CHECK(link.client->unprotect_rtcp(tampered).error().code == SrtpErrc::authentication);
  REQUIRE(link.client->unprotect_rtcp(packet).has_value());
  CHECK(packet == plain);
  auto parsed = media::parse_rtcp(packet);
  REQUIRE(parsed.has_value());
  CHECK(parsed->front().blocks.front().highest_sequence == 70000);
}

TEST_CASE("srtp: sizes outside RTP's are refused before libsrtp") {
  Link link(SrtpProfile::aes128_cm_sha1_80);
  Bytes tiny(5, std::byte{0x80});
  CHECK(link.server->unprotect_rtp(tiny).error().code == SrtpErrc::malformed);
  Bytes huge(max_srtp_packet + 1, std::byte{0x80});
  CHECK(link.server->unprotect_rtp(huge).error().code == SrtpErrc::malformed);
  SrtpKeyingMaterial wrong;
  wrong.client_key.resize(3);
  CHECK_FALSE(SrtpSession::create(wrong, DtlsSession::Role::client).has_value());
}

}  // namespace
}  // namespace tsunagu::webrtc
