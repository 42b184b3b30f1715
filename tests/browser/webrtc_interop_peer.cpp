// The far end of tests/browser/webrtc_interop.mjs: a real RTCPeerConnection in
// Chromium offers audio; this program answers it with our parts and proves
// they interoperate: the SDP answer (webrtc/session_description), ICE
// (terminal/IceSession, libnice), RFC 7983 demultiplexing, the DTLS handshake
// and key export (security/DtlsSession, setup:active, so we are the DTLS
// client) and SRTP (webrtc/SrtpSession) around an unchanged media::VoiceSession.
//
//   webrtc_interop_peer [--expect-wrong-fingerprint] < offer.sdp
//   (stdout: the answer, then "END-ANSWER")
//   webrtc_interop_peer --offer     (stdout: our offer, then "END-OFFER";
//                                    stdin: Chromium's answer, then EOF)
//
// Answering, our answer says setup:active (we are the DTLS client, Chromium
// controls ICE); offering, Chromium answers setup:active (we are the DTLS
// server and control ICE).
//
// Exit 0 once it decrypted and decoded `wanted` Opus packets from Chromium and
// sent as many of its own; 1 on any failure (the reason on stderr), or after
// 20 s. With --expect-wrong-fingerprint it checks Chromium's certificate
// against another certificate's fingerprint, as if the signalling had been
// tampered with: exit 0 when the handshake is refused for that reason. Loopback only: ICE gathers on 127.0.0.1 (and
// pairs with Chromium's UDP candidates of that family). The SDP, DTLS and SRTP
// glue is terminal::WebRtcTransport, the class `tsunagu call`/`listen` use.
#include <sys/prctl.h>
#include <uv.h>

#include <csignal>

#include <array>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "media/rtp.hpp"
#include "media/voice_session.hpp"
#include "security/dtls_session.hpp"
#include "security/random.hpp"
#include "terminal/ice_session.hpp"
#include "terminal/webrtc_transport.hpp"
#include "webrtc/session_description.hpp"

using namespace tsunagu;

namespace {

constexpr uint64_t wanted = 50;  // one second of 20 ms packets each way
constexpr uint64_t give_up_ms = 20000;

uint64_t now_ns() { return uv_hrtime(); }

struct Peer {
  uv_loop_t* loop = nullptr;
  bool we_offer = false;
  std::unique_ptr<terminal::WebRtcTransport> transport;
  std::unique_ptr<terminal::IceSession> ice;
  std::unique_ptr<media::VoiceSession> voice;
  uv_timer_t dtls_timer{};
  uv_timer_t frame_timer{};
  uv_timer_t give_up_timer{};
  uint64_t sent = 0;
  int exit_code = 1;
  bool done = false;
  bool expect_wrong_fingerprint = false;

  void finish(int code, const std::string& why) {
    if (done) return;
    done = true;
    exit_code = code;
    std::fprintf(stderr, "webrtc_interop_peer: %s\n", why.c_str());
    const media::VoiceStats& stats = voice ? voice->stats() : media::VoiceStats{};
    const terminal::WebRtcCounters& c = transport->counters();
    std::fprintf(stderr,
                 "webrtc_interop_peer: dtls datagrams %llu, srtp in %llu, failures %llu (auth) %llu (replay), sent %llu; "
                 "voice received %llu dropped %llu reports %llu\n",
                 static_cast<unsigned long long>(c.dtls_datagrams), static_cast<unsigned long long>(c.srtp_packets),
                 static_cast<unsigned long long>(c.srtp_authentication), static_cast<unsigned long long>(c.srtp_replays),
                 static_cast<unsigned long long>(sent), static_cast<unsigned long long>(stats.packets_received),
                 static_cast<unsigned long long>(stats.dropped), static_cast<unsigned long long>(stats.reports_received));
    uv_timer_stop(&dtls_timer);
    uv_timer_stop(&frame_timer);
    uv_timer_stop(&give_up_timer);
    if (ice) ice->close();
    uv_stop(loop);
  }

  void flush_dtls() {
    for (Bytes& datagram : transport->take_datagrams()) ice->send(datagram);
    if (auto due = transport->retransmit_in()) {
      uv_timer_start(&dtls_timer, [](uv_timer_t* t) {
        auto* self = static_cast<Peer*>(t->data);
        if (auto handled = self->transport->handle_timeout(); !handled) return self->finish(1, handled.error());
        self->flush_dtls();
      }, static_cast<uint64_t>(due->count()), 0);
    }
  }

  // As soon as the remote description is known: a DTLS server must be ready
  // for a ClientHello that beats our own ICE "connected".
  bool prepare_dtls() {
    std::optional<std::string> expected;
    if (expect_wrong_fingerprint) expected = security::DtlsIdentity::generate()->fingerprint();
    if (auto prepared = transport->prepare(expected); !prepared) {
      finish(1, prepared.error());
      return false;
    }
    std::fprintf(stderr, "webrtc_interop_peer: DTLS %s\n", transport->dtls_client() ? "client" : "server");
    return true;
  }

  void on_connected() {
    if (auto started = transport->connected(); !started) return finish(1, started.error());
    flush_dtls();
  }

  void set_remote_candidates() {
    terminal::IceDescription remote = transport->remote_ice();
    if (remote.candidates.empty()) return finish(1, "Chromium's description has no UDP candidate");
    ice->set_remote(remote);
  }

  void send_frame() {
    // A quiet 440 Hz tone: Chromium decodes it like any speech.
    static uint64_t sample = 0;
    std::array<int16_t, media::frame_samples> pcm{};
    for (int16_t& s : pcm) s = static_cast<int16_t>(3000.0 * std::sin(2 * M_PI * 440.0 * static_cast<double>(sample++) / 48000.0));
    voice->capture(pcm, now_ns());
    std::array<int16_t, media::frame_samples> out{};
    voice->playout(out, now_ns());
    for (Bytes& packet : voice->take_packets()) {
      bool rtcp = media::is_rtcp(packet);
      if (auto protected_ = transport->protect(packet); !protected_) return finish(1, protected_.error());
      ice->send(packet);
      if (!rtcp) ++sent;
    }
    check_done();
  }

  void check_done() {
    if (voice->stats().packets_received >= wanted && sent >= wanted) {
      finish(0, "interoperates: Chromium's SRTP decrypted and its Opus decoded, ours sent");
    }
  }

  void on_data(ByteView datagram) {
    bool was_ready = transport->media_ready();
    auto received = transport->datagram(datagram);
    flush_dtls();  // an answer, or the alert so Chromium learns of a refusal too
    if (!received) {
      bool refused = received.error().find("fingerprint") != std::string::npos;
      if (expect_wrong_fingerprint && refused) return finish(0, "refused as expected: " + received.error());
      return finish(1, received.error());
    }
    if (!was_ready && transport->media_ready()) {
      if (expect_wrong_fingerprint) return finish(1, "the handshake completed with a fingerprint that does not match");
      std::fprintf(stderr, "webrtc_interop_peer: DTLS done, %s\n", transport->srtp_profile().c_str());
      uv_timer_start(&frame_timer, [](uv_timer_t* t) { static_cast<Peer*>(t->data)->send_frame(); }, 20, 20);
    }
    if (*received) voice->received(**received, now_ns());
  }
};

}  // namespace

int main(int argc, char** argv) {
  // Killed with webrtc_interop.mjs, whatever way that one ends.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  Peer peer;
  for (int i = 1; i < argc; ++i) {
    std::string_view argument = argv[i];
    if (argument == "--expect-wrong-fingerprint") peer.expect_wrong_fingerprint = true;
    if (argument == "--offer") peer.we_offer = true;
  }
  peer.loop = uv_default_loop();

  media::VoiceConfig voice_config;
  security::random_bytes(std::as_writable_bytes(std::span(&voice_config.ssrc, 1)));
  voice_config.opus_payload_type = 111;
  voice_config.event_payload_type = 110;
  peer.transport = std::make_unique<terminal::WebRtcTransport>(voice_config.ssrc, "tsunagu-interop");
  std::optional<webrtc::SessionDescription> offer;
  if (!peer.we_offer) {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto parsed = webrtc::parse_session_description(text);
    if (!parsed) {
      std::fprintf(stderr, "webrtc_interop_peer: the offer: %s\n", parsed.error().detail.c_str());
      return 1;
    }
    offer = std::move(*parsed);
    voice_config.opus_payload_type = *offer->audio().opus_payload_type;
    voice_config.event_payload_type = offer->audio().telephone_event_payload_type.value_or(101);
  }
  auto voice = media::VoiceSession::create(voice_config);
  if (!voice) {
    std::fprintf(stderr, "webrtc_interop_peer: %s\n", voice.error().c_str());
    return 1;
  }
  peer.voice = std::move(*voice);

  for (uv_timer_t* timer : {&peer.dtls_timer, &peer.frame_timer, &peer.give_up_timer}) {
    uv_timer_init(peer.loop, timer);
    timer->data = &peer;
  }
  uv_timer_start(&peer.give_up_timer, [](uv_timer_t* t) {
    static_cast<Peer*>(t->data)->finish(1, "gave up after 20 s");
  }, give_up_ms, 0);

  terminal::IceConfig config;
  config.controlling = peer.we_offer;  // the offerer controls
  config.local_addresses = {*proto::SocketAddress::parse("127.0.0.1", 0)};
  terminal::IceEvents events;
  events.on_gathered = [&peer, &voice_config, &offer](const terminal::IceDescription& local) {
    if (peer.we_offer) {
      auto ours = peer.transport->offer(local, voice_config.opus_payload_type, voice_config.event_payload_type);
      if (!ours) return peer.finish(1, "build_offer: " + ours.error().detail);
      std::cout << *ours << "END-OFFER" << std::endl;
      // The loop waits here for the answer; libnice keeps its own thread.
      std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
      auto answer = webrtc::parse_session_description(text);
      if (!answer) return peer.finish(1, "Chromium's answer: " + answer.error().detail);
      if (answer->audio().opus_payload_type != voice_config.opus_payload_type) {
        return peer.finish(1, "Chromium's answer changed the Opus payload type");
      }
      if (auto taken = peer.transport->take_answer(std::move(*answer)); !taken) return peer.finish(1, taken.error());
      if (!peer.prepare_dtls()) return;
      return peer.set_remote_candidates();
    }
    auto answer = peer.transport->answer(std::move(*offer), local);
    if (!answer) return peer.finish(1, "build_answer: " + answer.error().detail);
    if (!peer.prepare_dtls()) return;
    std::cout << *answer << "END-ANSWER" << std::endl;
    peer.set_remote_candidates();
  };
  events.on_connected = [&peer](const terminal::SelectedPair& pair) {
    std::fprintf(stderr, "webrtc_interop_peer: ICE connected %s -> %s\n", pair.local.to_string().c_str(),
                 pair.remote.to_string().c_str());
    peer.on_connected();
  };
  events.on_data = [&peer](ByteView datagram) { peer.on_data(datagram); };
  events.on_failed = [&peer](std::string_view reason) { peer.finish(1, "ICE failed: " + std::string(reason)); };
  auto ice = terminal::IceSession::create(peer.loop, config, std::move(events));
  if (!ice) {
    std::fprintf(stderr, "webrtc_interop_peer: %s\n", ice.error().c_str());
    return 1;
  }
  peer.ice = std::move(*ice);
  peer.ice->start();
  uv_run(peer.loop, UV_RUN_DEFAULT);
  peer.ice.reset();
  for (uv_timer_t* timer : {&peer.dtls_timer, &peer.frame_timer, &peer.give_up_timer}) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
  }
  uv_run(peer.loop, UV_RUN_DEFAULT);
  return peer.exit_code;
}
