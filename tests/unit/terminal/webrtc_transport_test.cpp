// WebRtcTransport (terminal/webrtc_transport.hpp): two of them, one offering
// and one answering, run the real SDP codec, a real DTLS handshake in memory
// (datagrams handed across) and SRTP, as a terminal and a browser would
// around their VoiceSessions; and each refusal is counted or named.
#include "terminal/webrtc_transport.hpp"

#include <doctest/doctest.h>

#include "media/rtp.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;

namespace {

IceDescription local_ice(const std::string& ufrag, uint16_t port) {
  return IceDescription{ufrag, "abcdefghijklmnopqrstuvwx",
                        {"candidate:1 1 udp 2122260223 127.0.0.1 " + std::to_string(port) + " typ host"}};
}

webrtc::SessionDescription parsed(const std::string& text) {
  auto description = webrtc::parse_session_description(text);
  REQUIRE_MESSAGE(description.has_value(), (description ? "" : description.error().detail));
  return *description;
}

// Hands DTLS datagrams across until neither side has anything to say.
void shuttle(WebRtcTransport& a, WebRtcTransport& b) {
  for (int round = 0; round < 20; ++round) {
    auto from_a = a.take_datagrams();
    auto from_b = b.take_datagrams();
    if (from_a.empty() && from_b.empty()) return;
    for (const Bytes& d : from_a) REQUIRE(b.datagram(d).has_value());
    for (const Bytes& d : from_b) REQUIRE(a.datagram(d).has_value());
  }
  FAIL("the handshake never settled");
}

Bytes rtp_packet(uint16_t sequence) {
  media::RtpHeader header;
  header.payload_type = 111;
  header.sequence = sequence;
  header.timestamp = 960u * sequence;
  header.ssrc = 0x1234;
  Bytes payload(40, std::byte{0x5a});
  return media::write_rtp(header, payload);
}

}  // namespace

TEST_CASE("an offer, its answer, DTLS with the answer's roles, then SRTP both ways; replays and forgeries counted") {
  WebRtcTransport terminal(0x1234, "terminal");
  WebRtcTransport browser(0x5678, "browser");
  REQUIRE(terminal.fingerprint().size() == 95);

  auto offer = terminal.offer(local_ice("tofr", 50000), 111, 110);
  REQUIRE(offer.has_value());
  auto answer = browser.answer(parsed(*offer), local_ice("bans", 40000));
  REQUIRE(answer.has_value());
  REQUIRE(terminal.take_answer(parsed(*answer)).has_value());
  CHECK(!terminal.dtls_client());  // the answer said setup:active: the answerer is the client
  CHECK(browser.dtls_client());
  IceDescription remote = terminal.remote_ice();
  CHECK(remote.ufrag == "bans");
  REQUIRE(remote.candidates.size() == 1);
  CHECK(remote.candidates[0] == "a=candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host");

  REQUIRE(terminal.prepare().has_value());
  REQUIRE(browser.prepare().has_value());
  // SRTP before the keys is dropped, counted.
  CHECK(!terminal.datagram(rtp_packet(1))->has_value());
  CHECK(terminal.counters().before_keys == 1);
  REQUIRE(terminal.connected().has_value());  // the server waits
  CHECK(terminal.take_datagrams().empty());
  REQUIRE(browser.connected().has_value());
  shuttle(browser, terminal);
  REQUIRE(terminal.media_ready());
  REQUIRE(browser.media_ready());
  CHECK(terminal.srtp_profile() == browser.srtp_profile());
  CHECK(!terminal.srtp_profile().empty());

  Bytes packet = rtp_packet(7);
  Bytes sent = packet;
  REQUIRE(terminal.protect(sent).has_value());
  CHECK(sent != packet);
  auto received = browser.datagram(sent);
  REQUIRE(received.has_value());
  REQUIRE(received->has_value());
  CHECK(**received == packet);
  CHECK(!browser.datagram(sent)->has_value());  // the same packet again
  CHECK(browser.counters().srtp_replays == 1);
  Bytes forged = rtp_packet(8);
  REQUIRE(terminal.protect(forged).has_value());
  forged[20] ^= std::byte{1};
  CHECK(!browser.datagram(forged)->has_value());
  CHECK(browser.counters().srtp_authentication == 1);
  Bytes back = rtp_packet(9);
  REQUIRE(browser.protect(back).has_value());
  CHECK(terminal.datagram(back)->has_value());
  CHECK(terminal.counters().srtp_packets == 1);
  // A STUN-range datagram is libnice's, never ours: counted as other.
  CHECK(!terminal.datagram(Bytes(20, std::byte{0}))->has_value());
  CHECK(terminal.counters().other_datagrams == 1);
}

TEST_CASE("a fingerprint other than the signalled one fails the handshake, naming both") {
  WebRtcTransport terminal(1, "terminal");
  WebRtcTransport browser(2, "browser");
  auto offer = terminal.offer(local_ice("tofr", 50000), 111, 110);
  REQUIRE(offer.has_value());
  auto answer = browser.answer(parsed(*offer), local_ice("bans", 40000));
  REQUIRE(answer.has_value());
  REQUIRE(terminal.take_answer(parsed(*answer)).has_value());
  WebRtcTransport someone_else(3, "other");
  REQUIRE(terminal.prepare(someone_else.fingerprint()).has_value());  // the signalling was tampered with
  REQUIRE(browser.prepare().has_value());
  REQUIRE(browser.connected().has_value());
  std::string refusal;
  for (int round = 0; round < 10 && refusal.empty(); ++round) {
    for (const Bytes& d : browser.take_datagrams()) {
      auto result = terminal.datagram(d);
      if (!result) refusal = result.error();
    }
    for (const Bytes& d : terminal.take_datagrams()) (void)browser.datagram(d);
  }
  CHECK(refusal.find(someone_else.fingerprint()) != std::string::npos);
  CHECK(refusal.find(browser.fingerprint()) != std::string::npos);
  CHECK(!terminal.media_ready());
}

TEST_CASE("answers to our offer that cannot be used are refused") {
  WebRtcTransport terminal(1, "terminal");
  auto offer = terminal.offer(local_ice("tofr", 50000), 111, 110);
  REQUIRE(offer.has_value());
  // Our own offer handed back as if it were the answer: actpass is no answer.
  CHECK(terminal.take_answer(parsed(*offer)).error() == "the answer says setup:actpass");
  CHECK(!terminal.prepare().has_value());
}

// Chromium hides its host addresses behind mDNS names unless the page holds a
// microphone or camera permission; libnice cannot resolve them. The terminal
// keeps the page's other candidates and drops the names; with nothing else it
// sets no candidate at all and learns the page's address from its checks
// (IceSession: "a peer that sent no candidate is learnt as peer-reflexive").
TEST_CASE("a browser's .local host candidates are dropped from remote_ice() and counted; srflx and relay kept") {
  const std::string mdns_udp = "candidate:2823221420 1 udp 2113937151 a06ca3d5-9e06-4cb3-95ee-1703dd1e1b27.local 33365 typ host "
                               "generation 0 network-cost 999";
  const std::string mdns_tcp = "candidate:3 1 tcp 1509957375 a06ca3d5-9e06-4cb3-95ee-1703dd1e1b27.LOCAL 9 typ host tcptype active";
  const std::string srflx = "candidate:842163049 1 udp 1677729535 203.0.113.30 33365 typ srflx raddr 0.0.0.0 rport 0";
  const std::string relay = "candidate:9 1 udp 33562623 203.0.113.11 49160 typ relay raddr 203.0.113.30 rport 33365";

  SUBCASE("beside srflx and relay candidates") {
    WebRtcTransport browser(2, "browser");
    auto offer = browser.offer(IceDescription{"bofr", "abcdefghijklmnopqrstuvwx", {mdns_udp, mdns_tcp, srflx, relay}}, 111,
                               110);
    REQUIRE_MESSAGE(offer.has_value(), (offer ? "" : offer.error().detail));
    CHECK(offer->find(".local 33365 typ host") != std::string::npos);
    WebRtcTransport terminal(1, "terminal");
    REQUIRE(terminal.answer(parsed(*offer), local_ice("tans", 50000)).has_value());
    IceDescription remote = terminal.remote_ice();
    CHECK(remote.ufrag == "bofr");
    REQUIRE(remote.candidates.size() == 2);
    CHECK(remote.candidates[0] == "a=" + srflx);
    CHECK(remote.candidates[1] == "a=" + relay);
    CHECK(terminal.mdns_candidates() == 2);
    CHECK(webrtc_report_json(terminal).find("\"mdns_candidates\": 2") != std::string::npos);
  }
  SUBCASE("alone: credentials without candidates, not a failure") {
    WebRtcTransport browser(2, "browser");
    auto offer = browser.offer(IceDescription{"bofr", "abcdefghijklmnopqrstuvwx", {mdns_udp}}, 111, 110);
    REQUIRE(offer.has_value());
    WebRtcTransport terminal(1, "terminal");
    REQUIRE(terminal.answer(parsed(*offer), local_ice("tans", 50000)).has_value());
    IceDescription remote = terminal.remote_ice();
    CHECK(remote.ufrag == "bofr");
    CHECK(remote.password == "abcdefghijklmnopqrstuvwx");
    CHECK(remote.candidates.empty());
    CHECK(terminal.mdns_candidates() == 1);
  }
  SUBCASE("in the page's answer to the terminal's offer") {
    WebRtcTransport terminal(1, "terminal");
    auto offer = terminal.offer(local_ice("tofr", 50000), 111, 110);
    REQUIRE(offer.has_value());
    WebRtcTransport browser(2, "browser");
    auto answer = browser.answer(parsed(*offer), IceDescription{"bans", "abcdefghijklmnopqrstuvwx", {mdns_udp, srflx}});
    REQUIRE(answer.has_value());
    REQUIRE(terminal.take_answer(parsed(*answer)).has_value());
    IceDescription remote = terminal.remote_ice();
    REQUIRE(remote.candidates.size() == 1);
    CHECK(remote.candidates[0] == "a=" + srflx);
    CHECK(terminal.mdns_candidates() == 1);
  }
}
