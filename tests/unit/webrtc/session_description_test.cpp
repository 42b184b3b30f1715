// The SDP codec against offers and answers captured from Debian's Chromium
// (fixtures/README.md says how), and against hand-made breakage.
#include "webrtc/session_description.hpp"

#include <doctest/doctest.h>

#include "tests/unit/webrtc/fixtures/read_fixture.hpp"

namespace tsunagu::webrtc {
namespace {

using testing::fixture;

SessionDescription parsed(const std::string& text) {
  auto description = parse_session_description(text);
  REQUIRE_MESSAGE(description.has_value(), (description ? "" : description.error().detail));
  return *description;
}

SdpError refused(const std::string& text) {
  auto description = parse_session_description(text);
  REQUIRE_FALSE(description.has_value());
  return description.error();
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "fixture lacks " << from);
  return text.replace(at, from.size(), to);
}

const std::string our_fingerprint =
    "0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

AnswerParameters our_parameters() {
  AnswerParameters ours;
  ours.session_id = 4242;
  ours.ice_ufrag = "tsun";
  ours.ice_pwd = "abcdefghijklmnopqrstuvwx";
  ours.fingerprint_sha256 = our_fingerprint;
  ours.setup = SetupRole::active;
  ours.ssrc = 0x0b0b0b0b;
  ours.cname = "tsunagu";
  return ours;
}

TEST_CASE("parse: Chromium's trickle offer (mDNS defaults)") {
  SessionDescription offer = parsed(fixture("chromium_mdns_offer_trickle.sdp"));
  REQUIRE(offer.media.size() == 1);
  const MediaSection& audio = offer.audio();
  CHECK(offer.bundle_mids == std::vector<std::string>{"0"});
  CHECK(audio.kind == "audio");
  CHECK(audio.port == 9);
  CHECK(audio.protocol == "UDP/TLS/RTP/SAVPF");
  CHECK(audio.mid == "0");
  CHECK(audio.ice_ufrag == "DEX0");
  CHECK(audio.ice_pwd == "Etuy6qWOg3ETnGQWt1qjdxBy");
  CHECK(audio.ice_trickle);
  CHECK(audio.fingerprint_sha256 ==
        "88:F7:0E:8A:CE:3B:B0:41:A6:CC:5C:07:0E:B7:CE:F0:13:EB:06:61:F1:6F:36:57:84:6A:FB:1E:D7:FC:6B:CC");
  CHECK(audio.setup == SetupRole::actpass);
  CHECK(audio.direction == Direction::sendrecv);
  CHECK(audio.rtcp_mux);
  CHECK(audio.opus_payload_type == 111);
  CHECK(audio.opus_fmtp == "minptime=10;useinbandfec=1");
  // telephone-event/48000 (110), not the 8000 Hz one (126): Opus runs at 48 kHz.
  CHECK(audio.telephone_event_payload_type == 110);
  CHECK(audio.candidates.empty());
  CHECK_FALSE(audio.end_of_candidates);
}

TEST_CASE("parse: Chromium's gathered offer hides host addresses behind .local names") {
  SessionDescription offer = parsed(fixture("chromium_mdns_offer_gathered.sdp"));
  const MediaSection& audio = offer.audio();
  REQUIRE(audio.candidates.size() == 2);
  const IceCandidate& first = audio.candidates[0];
  CHECK(first.foundation == "2823221420");
  CHECK(first.component == 1);
  CHECK(first.transport == "udp");
  CHECK(first.priority == 2113937151u);
  CHECK(first.address == "a06ca3d5-9e06-4cb3-95ee-1703dd1e1b27.local");
  CHECK(first.port == 33365);
  CHECK(first.type == "host");
  CHECK(first.is_mdns());
  CHECK(first.attribute ==
        "candidate:2823221420 1 udp 2113937151 a06ca3d5-9e06-4cb3-95ee-1703dd1e1b27.local 33365 typ host generation 0 "
        "network-cost 999");
}

TEST_CASE("parse: Chromium's loopback offer with a microphone track and real host addresses") {
  SessionDescription offer = parsed(fixture("chromium_loopback_offer_gathered.sdp"));
  const MediaSection& audio = offer.audio();
  CHECK(audio.port == 37761);
  CHECK(audio.ice_ufrag == "Rgqy");
  REQUIRE(audio.candidates.size() == 8);
  CHECK(audio.candidates[0].address == "127.0.0.1");
  CHECK(audio.candidates[0].port == 37761);
  CHECK_FALSE(audio.candidates[0].is_mdns());
  CHECK(audio.candidates[2].address == "::1");
  CHECK(audio.candidates[4].transport == "tcp");
  CHECK(audio.candidates[4].port == 9);
  CHECK(audio.candidates[4].priority == 1518214911u);
}

TEST_CASE("parse: Chromium's answer is setup:active") {
  SessionDescription answer = parsed(fixture("chromium_loopback_answer.sdp"));
  CHECK(answer.audio().setup == SetupRole::active);
  CHECK(answer.audio().direction == Direction::recvonly);
  CHECK(answer.audio().ice_ufrag == "QI5R");
  CHECK(answer.audio().opus_payload_type == 111);
}

TEST_CASE("parse: video, audio and a data channel in one BUNDLE: the audio m-line is the one used") {
  SessionDescription offer = parsed(fixture("chromium_video_audio_data_offer_gathered.sdp"));
  REQUIRE(offer.media.size() == 3);
  CHECK(offer.bundle_mids == std::vector<std::string>{"0", "1", "2"});
  CHECK(offer.audio_index == 1);
  CHECK(offer.media[0].kind == "video");
  CHECK(offer.media[2].kind == "application");
  CHECK(offer.media[2].protocol == "UDP/DTLS/SCTP");
  CHECK(offer.audio().mid == "1");
  CHECK(offer.audio().candidates.size() == 2);
  CHECK(offer.audio().candidates[0].port == 38139);
  CHECK_FALSE(offer.media[0].opus_payload_type.has_value());
}

TEST_CASE("parse: every fixture parses, with LF line ends too") {
  for (const char* name : {"chromium_mdns_offer_trickle.sdp", "chromium_mdns_offer_gathered.sdp", "chromium_mdns_answer.sdp",
                           "chromium_loopback_offer_trickle.sdp", "chromium_loopback_offer_gathered.sdp",
                           "chromium_loopback_answer.sdp", "chromium_video_audio_data_offer_trickle.sdp",
                           "chromium_video_audio_data_offer_gathered.sdp", "chromium_video_audio_data_answer.sdp"}) {
    CAPTURE(name);
    std::string text = fixture(name);
    CHECK(parse_session_description(text).has_value());
    std::string lf;
    for (char c : text) {
      if (c != '\r') lf += c;
    }
    CHECK(parse_session_description(lf).has_value());
  }
}

TEST_CASE("parse: session-level ICE, fingerprint and setup apply to the m-line (Firefox's layout)") {
  std::string offer =
      "v=0\r\no=mozilla 1 0 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
      "a=fingerprint:sha-256 " + our_fingerprint + "\r\n"
      "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=setup:actpass\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 109 101\r\nc=IN IP4 0.0.0.0\r\na=mid:audio\r\na=rtcp-mux\r\n"
      "a=rtpmap:109 OPUS/48000/2\r\na=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-15\r\n"
      "a=candidate:0 1 UDP 2122252543 10.0.0.5 50000 typ srflx raddr 192.168.1.2 rport 40000\r\n"
      "a=end-of-candidates\r\n";
  SessionDescription description = parsed(offer);
  const MediaSection& audio = description.audio();
  CHECK(audio.ice_ufrag == "abcd");
  CHECK(audio.fingerprint_sha256 == our_fingerprint);
  CHECK(audio.setup == SetupRole::actpass);
  CHECK(audio.opus_payload_type == 109);
  CHECK(audio.telephone_event_payload_type == 101);
  REQUIRE(audio.candidates.size() == 1);
  CHECK(audio.candidates[0].transport == "udp");
  CHECK(audio.candidates[0].type == "srflx");
  CHECK(audio.end_of_candidates);
  CHECK(description.bundle_mids.empty());
}

TEST_CASE("parse: refusals name the reason") {
  std::string offer = fixture("chromium_mdns_offer_gathered.sdp");
  CHECK(refused(replaced(offer, "a=rtcp-mux\r\n", "")).code == SdpErrc::no_rtcp_mux);
  CHECK(refused(replaced(offer, "a=setup:actpass", "a=setup:holdconn")).code == SdpErrc::missing_setup);
  CHECK(refused(replaced(offer, "a=fingerprint:sha-256", "a=fingerprint:sha-1")).code == SdpErrc::missing_fingerprint);
  CHECK(refused(replaced(offer, "a=fingerprint:sha-256 88:F7", "a=fingerprint:sha-256 88;F7")).code == SdpErrc::malformed);
  CHECK(refused(replaced(offer, "a=ice-pwd:Etuy6qWOg3ETnGQWt1qjdxBy", "a=ice-pwd:short")).code == SdpErrc::missing_ice);
  CHECK(refused(replaced(offer, "a=ice-ufrag:DEX0", "a=ice-ufrag:D X0")).code == SdpErrc::missing_ice);
  CHECK(refused(replaced(offer, "opus/48000/2", "opus/48000/1")).code == SdpErrc::no_usable_audio);
  CHECK(refused(replaced(offer, "m=audio 9 ", "m=audio 0 ")).code == SdpErrc::no_usable_audio);
  CHECK(refused(replaced(offer, "UDP/TLS/RTP/SAVPF", "RTP/AVP")).code == SdpErrc::no_usable_audio);
  CHECK(refused(replaced(offer, "v=0", "v=1")).code == SdpErrc::malformed);
  SdpError bad_line = refused(replaced(offer, "s=-", "s-"));
  CHECK(bad_line.code == SdpErrc::malformed);
  CHECK(bad_line.detail.find("line 3") != std::string::npos);
  CHECK(refused(replaced(offer, "typ host", "typ nowhere")).code == SdpErrc::malformed);
  CHECK(refused(replaced(offer, "m=audio 9 UDP", "m=audio 99999 UDP")).code == SdpErrc::malformed);
  CHECK(refused(replaced(offer, "a=rtpmap:111 opus", "a=rtpmap:300 opus")).code == SdpErrc::malformed);
  CHECK(refused("").code == SdpErrc::malformed);
  CHECK(refused("v=0\r\n").code == SdpErrc::no_usable_audio);
}

TEST_CASE("parse: a payload type mapped to both Opus and telephone-event keeps its first meaning") {
  // Found by the fuzzer: the answer then listed one payload type twice.
  std::string offer = replaced(fixture("chromium_mdns_offer_trickle.sdp"), "a=rtpmap:110 telephone-event/48000",
                               "a=rtpmap:111 telephone-event/48000");
  SessionDescription description = parsed(offer);
  CHECK(description.audio().opus_payload_type == 111);
  CHECK_FALSE(description.audio().telephone_event_payload_type.has_value());
  CHECK(build_answer(description, our_parameters()).has_value());
}

TEST_CASE("parse: size limits") {
  std::string offer = fixture("chromium_mdns_offer_trickle.sdp");
  std::string padded = offer + std::string(max_sdp_size, 'x');
  CHECK(refused(padded).code == SdpErrc::too_large);
  std::string many_lines = offer;
  while (many_lines.size() < max_sdp_size - 16) many_lines += "a=x\r\n";
  CHECK(refused(many_lines).code == SdpErrc::too_large);
  std::string many_media = "v=0\r\n";
  for (size_t i = 0; i <= max_media_sections; ++i) many_media += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n";
  CHECK(refused(many_media).code == SdpErrc::too_large);
  std::string many_candidates = offer;
  for (size_t i = 0; i <= max_candidates; ++i) {
    many_candidates += "a=candidate:1 1 udp 1 10.0.0.1 " + std::to_string(1000 + i) + " typ host\r\n";
  }
  CHECK(refused(many_candidates).code == SdpErrc::too_large);
}

TEST_CASE("candidate: the forms RTCIceCandidate.candidate takes") {
  auto relay = parse_candidate("candidate:842163049 1 udp 1677729535 203.0.113.7 3478 typ relay raddr 0.0.0.0 rport 0 "
                               "generation 0 ufrag l+Bp network-cost 999");
  REQUIRE(relay.has_value());
  CHECK(relay->type == "relay");
  CHECK(relay->address == "203.0.113.7");
  CHECK(relay->port == 3478);
  CHECK(parse_candidate("a=candidate:1 1 tcp 5 ::1 9 typ host tcptype active").has_value());
  CHECK_FALSE(parse_candidate("").has_value());
  CHECK_FALSE(parse_candidate("candidate:1 1 udp 5 ::1 9 host").has_value());
  CHECK_FALSE(parse_candidate("candidate:1 0 udp 5 ::1 9 typ host").has_value());
  CHECK_FALSE(parse_candidate("candidate:1 1 sctp 5 ::1 9 typ host").has_value());
  CHECK_FALSE(parse_candidate("candidate:1 1 udp 99999999999 ::1 9 typ host").has_value());
  CHECK_FALSE(parse_candidate("candidate:1 1 udp 5 ::1 9 typ host\r\na=evil").has_value());
}

TEST_CASE("answer: accepts Chromium's audio offer and parses back") {
  SessionDescription offer = parsed(fixture("chromium_mdns_offer_gathered.sdp"));
  AnswerParameters ours = our_parameters();
  ours.candidates = {"candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"};
  ours.end_of_candidates = true;
  auto answer = build_answer(offer, ours);
  REQUIRE_MESSAGE(answer.has_value(), (answer ? "" : answer.error().detail));
  CHECK(answer->find("m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\n") != std::string::npos);
  CHECK(answer->find("a=group:BUNDLE 0\r\n") != std::string::npos);
  CHECK(answer->find("a=fmtp:110 0-15\r\n") != std::string::npos);
  CHECK(answer->find("a=ssrc:185273099 cname:tsunagu\r\n") != std::string::npos);
  CHECK(answer->find("a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n") != std::string::npos);
  CHECK(answer->substr(answer->size() - 21) == "a=end-of-candidates\r\n");
  SessionDescription back = parsed(*answer);
  const MediaSection& audio = back.audio();
  CHECK(audio.mid == "0");
  CHECK(audio.ice_ufrag == "tsun");
  CHECK(audio.ice_pwd == "abcdefghijklmnopqrstuvwx");
  CHECK(audio.fingerprint_sha256 == our_fingerprint);
  CHECK(audio.setup == SetupRole::active);
  CHECK(audio.rtcp_mux);
  CHECK(audio.opus_payload_type == 111);
  CHECK(audio.telephone_event_payload_type == 110);
  CHECK(audio.direction == Direction::sendrecv);
  REQUIRE(audio.candidates.size() == 1);
  CHECK(audio.end_of_candidates);
}

TEST_CASE("answer: the other m-lines of a BUNDLE are rejected with port 0") {
  SessionDescription offer = parsed(fixture("chromium_video_audio_data_offer_trickle.sdp"));
  auto answer = build_answer(offer, our_parameters());
  REQUIRE(answer.has_value());
  SessionDescription back = parsed(*answer);
  REQUIRE(back.media.size() == 3);
  CHECK(back.bundle_mids == std::vector<std::string>{"1"});
  CHECK(back.media[0].kind == "video");
  CHECK(back.media[0].port == 0);
  CHECK(back.media[0].mid == "0");
  CHECK(back.media[2].kind == "application");
  CHECK(back.media[2].port == 0);
  CHECK(back.audio_index == 1);
  CHECK(back.audio().mid == "1");
}

TEST_CASE("answer: direction mirrors the offer's, setup must differ from the offer's") {
  std::string text = fixture("chromium_mdns_offer_trickle.sdp");
  SessionDescription send_only = parsed(replaced(text, "a=sendrecv", "a=sendonly"));
  auto answer = build_answer(send_only, our_parameters());
  REQUIRE(answer.has_value());
  CHECK(parsed(*answer).audio().direction == Direction::recvonly);

  SessionDescription active = parsed(replaced(text, "a=setup:actpass", "a=setup:active"));
  AnswerParameters ours = our_parameters();
  auto clash = build_answer(active, ours);
  REQUIRE_FALSE(clash.has_value());
  CHECK(clash.error().code == SdpErrc::missing_setup);
  ours.setup = SetupRole::passive;
  CHECK(build_answer(active, ours).has_value());
  ours.setup = SetupRole::actpass;
  CHECK_FALSE(build_answer(active, ours).has_value());
}

TEST_CASE("answer: our own values are checked before they reach the text") {
  SessionDescription offer = parsed(fixture("chromium_mdns_offer_trickle.sdp"));
  AnswerParameters ours = our_parameters();
  ours.ice_ufrag = "ab\r\na=evil";
  CHECK(build_answer(offer, ours).error().code == SdpErrc::missing_ice);
  ours = our_parameters();
  ours.fingerprint_sha256 = "AB:CD";
  CHECK(build_answer(offer, ours).error().code == SdpErrc::missing_fingerprint);
  ours = our_parameters();
  ours.cname = "two words";
  CHECK(build_answer(offer, ours).error().code == SdpErrc::malformed);
  ours = our_parameters();
  ours.candidates = {"candidate:1 1 udp 1 ::1 9 typ host\r\na=evil"};
  CHECK_FALSE(build_answer(offer, ours).has_value());
}

TEST_CASE("answer: without telephone-event in the offer, only Opus") {
  std::string text = fixture("chromium_mdns_offer_trickle.sdp");
  SessionDescription offer = parsed(replaced(text, "a=rtpmap:110 telephone-event/48000\r\n", ""));
  CHECK_FALSE(offer.audio().telephone_event_payload_type.has_value());
  auto answer = build_answer(offer, our_parameters());
  REQUIRE(answer.has_value());
  CHECK(answer->find("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n") != std::string::npos);
  CHECK(answer->find("telephone-event") == std::string::npos);
}

TEST_CASE("offer: ours parses back as one bundled actpass audio m-line") {
  OfferParameters ours;
  ours.session_id = 99;
  ours.ice_ufrag = "tsun";
  ours.ice_pwd = "abcdefghijklmnopqrstuvwx";
  ours.fingerprint_sha256 = our_fingerprint;
  ours.ssrc = 1234;
  ours.cname = "tsunagu";
  ours.candidates = {"a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host"};
  auto offer = build_offer(ours);
  REQUIRE_MESSAGE(offer.has_value(), (offer ? "" : offer.error().detail));
  SessionDescription back = parsed(*offer);
  REQUIRE(back.media.size() == 1);
  CHECK(back.bundle_mids == std::vector<std::string>{"0"});
  const MediaSection& audio = back.audio();
  CHECK(audio.mid == "0");
  CHECK(audio.setup == SetupRole::actpass);
  CHECK(audio.opus_payload_type == 111);
  CHECK(audio.telephone_event_payload_type == 110);
  CHECK(audio.fingerprint_sha256 == our_fingerprint);
  CHECK(audio.candidates.size() == 1);
  CHECK_FALSE(audio.end_of_candidates);
  // An answer to it (here built by us; tests/browser/webrtc_interop has Chromium answer it).
  auto answer = build_answer(back, our_parameters());
  REQUIRE(answer.has_value());
  CHECK(parsed(*answer).audio().setup == SetupRole::active);

  ours.telephone_event_payload_type = 111;  // the same as Opus
  CHECK(build_offer(ours).error().code == SdpErrc::malformed);
  ours.telephone_event_payload_type = 110;
  ours.ice_pwd = "short";
  CHECK(build_offer(ours).error().code == SdpErrc::missing_ice);
}

}  // namespace
}  // namespace tsunagu::webrtc
