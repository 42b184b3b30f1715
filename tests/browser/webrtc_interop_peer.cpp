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
// tampered with: exit 0 when the handshake is refused for that reason. Loopback only: ICE gathers on 127.0.0.1 and takes Chromium's
// 127.0.0.1 UDP candidates only.
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
#include "webrtc/packet_demux.hpp"
#include "webrtc/session_description.hpp"
#include "webrtc/srtp_session.hpp"

using namespace tsunagu;

namespace {

constexpr uint64_t wanted = 50;  // one second of 20 ms packets each way
constexpr uint64_t give_up_ms = 20000;

uint64_t now_ns() { return uv_hrtime(); }

struct Peer {
  uv_loop_t* loop = nullptr;
  webrtc::SessionDescription remote;  // Chromium's offer, or its answer to ours
  bool we_offer = false;
  std::shared_ptr<const security::DtlsIdentity> identity = security::DtlsIdentity::generate();
  std::unique_ptr<terminal::IceSession> ice;
  std::unique_ptr<security::DtlsSession> dtls;
  std::unique_ptr<webrtc::SrtpSession> srtp;
  std::unique_ptr<media::VoiceSession> voice;
  uv_timer_t dtls_timer{};
  uv_timer_t frame_timer{};
  uv_timer_t give_up_timer{};
  uint64_t decrypted_rtp = 0, decrypted_rtcp = 0, srtp_failures = 0, sent = 0, dtls_datagrams = 0;
  int exit_code = 1;
  bool done = false;
  bool expect_wrong_fingerprint = false;

  void finish(int code, const std::string& why) {
    if (done) return;
    done = true;
    exit_code = code;
    std::fprintf(stderr, "webrtc_interop_peer: %s\n", why.c_str());
    const media::VoiceStats& stats = voice ? voice->stats() : media::VoiceStats{};
    std::fprintf(stderr,
                 "webrtc_interop_peer: dtls datagrams %llu, srtp rtp %llu rtcp %llu failures %llu, sent %llu; "
                 "voice received %llu dropped %llu reports %llu\n",
                 static_cast<unsigned long long>(dtls_datagrams), static_cast<unsigned long long>(decrypted_rtp),
                 static_cast<unsigned long long>(decrypted_rtcp), static_cast<unsigned long long>(srtp_failures),
                 static_cast<unsigned long long>(sent), static_cast<unsigned long long>(stats.packets_received),
                 static_cast<unsigned long long>(stats.dropped), static_cast<unsigned long long>(stats.reports_received));
    uv_timer_stop(&dtls_timer);
    uv_timer_stop(&frame_timer);
    uv_timer_stop(&give_up_timer);
    if (ice) ice->close();
    uv_stop(loop);
  }

  void flush_dtls() {
    for (Bytes& datagram : dtls->take_datagrams()) ice->send(datagram);
    if (auto due = dtls->retransmit_in()) {
      uv_timer_start(&dtls_timer, [](uv_timer_t* t) {
        auto* self = static_cast<Peer*>(t->data);
        if (auto handled = self->dtls->handle_timeout(); !handled) return self->finish(1, handled.error().detail);
        self->flush_dtls();
      }, static_cast<uint64_t>(due->count()), 0);
    }
  }

  // As soon as the remote description is known: a DTLS server must be ready
  // for a ClientHello that beats our own ICE "connected".
  bool prepare_dtls() {
    const webrtc::MediaSection& audio = remote.audio();
    security::DtlsSession::Options options;
    // Answering, we said setup:active: the client. Offering, the browser's answer decides.
    bool client = !we_offer || audio.setup == webrtc::SetupRole::passive;
    options.role = client ? security::DtlsSession::Role::client : security::DtlsSession::Role::server;
    options.peer_fingerprint =
        expect_wrong_fingerprint ? security::DtlsIdentity::generate()->fingerprint() : audio.fingerprint_sha256;
    auto created = security::DtlsSession::create(identity, options);
    if (!created) {
      finish(1, created.error().detail);
      return false;
    }
    dtls = std::move(*created);
    std::fprintf(stderr, "webrtc_interop_peer: DTLS %s\n",
                 options.role == security::DtlsSession::Role::client ? "client" : "server");
    return true;
  }

  void on_connected() {
    if (!dtls || dtls->role() != security::DtlsSession::Role::client) return;
    if (auto started = dtls->start(); !started) return finish(1, started.error().detail);
    flush_dtls();
  }

  void set_remote_candidates() {
    terminal::IceDescription ice_remote{remote.audio().ice_ufrag, remote.audio().ice_pwd, {}};
    for (const webrtc::IceCandidate& candidate : remote.audio().candidates) {
      if (candidate.transport == "udp" && candidate.address == "127.0.0.1" && candidate.component == 1) {
        ice_remote.candidates.push_back("a=" + candidate.attribute);
      }
    }
    if (ice_remote.candidates.empty()) return finish(1, "Chromium's description has no 127.0.0.1 UDP candidate");
    ice->set_remote(ice_remote);
  }

  void on_handshake_complete() {
    auto keys = dtls->srtp_keying_material();
    std::fprintf(stderr, "webrtc_interop_peer: DTLS done, %s\n", std::string(security::to_string(keys->profile)).c_str());
    auto session = webrtc::SrtpSession::create(*keys, dtls->role());
    if (!session) return finish(1, session.error().detail);
    srtp = std::move(*session);
    uv_timer_start(&frame_timer, [](uv_timer_t* t) { static_cast<Peer*>(t->data)->send_frame(); }, 20, 20);
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
      auto protected_ = rtcp ? srtp->protect_rtcp(packet) : srtp->protect_rtp(packet);
      if (!protected_) return finish(1, protected_.error().detail);
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
    switch (webrtc::classify_packet(datagram)) {
      case webrtc::PacketKind::dtls: {
        if (!dtls) return;
        ++dtls_datagrams;
        bool was_complete = dtls->handshake_complete();
        if (auto received = dtls->receive(datagram); !received) {
          bool refused = received.error().code == security::TlsErrc::certificate_rejected;
          flush_dtls();  // the alert, so Chromium learns it too
          if (expect_wrong_fingerprint && refused) return finish(0, "refused as expected: " + received.error().detail);
          return finish(1, received.error().detail);
        }
        flush_dtls();
        if (expect_wrong_fingerprint && dtls->handshake_complete()) {
          return finish(1, "the handshake completed with a fingerprint that does not match");
        }
        if (!was_complete && dtls->handshake_complete()) on_handshake_complete();
        return;
      }
      case webrtc::PacketKind::rtp: {
        if (!srtp) return;
        Bytes packet(datagram.begin(), datagram.end());
        bool rtcp = media::is_rtcp(packet);
        auto unprotected = rtcp ? srtp->unprotect_rtcp(packet) : srtp->unprotect_rtp(packet);
        if (!unprotected) {
          ++srtp_failures;
          return;
        }
        ++(rtcp ? decrypted_rtcp : decrypted_rtp);
        voice->received(packet, now_ns());
        return;
      }
      default:
        return;
    }
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
  if (!peer.we_offer) {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto offer = webrtc::parse_session_description(text);
    if (!offer) {
      std::fprintf(stderr, "webrtc_interop_peer: the offer: %s\n", offer.error().detail.c_str());
      return 1;
    }
    peer.remote = std::move(*offer);
    voice_config.opus_payload_type = *peer.remote.audio().opus_payload_type;
    voice_config.event_payload_type = peer.remote.audio().telephone_event_payload_type.value_or(101);
    if (!peer.prepare_dtls()) return 1;
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
  events.on_gathered = [&peer, &voice_config](const terminal::IceDescription& local) {
    if (peer.we_offer) {
      webrtc::OfferParameters ours;
      ours.session_id = 1;
      ours.ice_ufrag = local.ufrag;
      ours.ice_pwd = local.password;
      ours.fingerprint_sha256 = peer.identity->fingerprint();
      ours.ssrc = voice_config.ssrc;
      ours.cname = "tsunagu-interop";
      ours.candidates = local.candidates;
      ours.end_of_candidates = true;
      auto offer = webrtc::build_offer(ours);
      if (!offer) return peer.finish(1, "build_offer: " + offer.error().detail);
      std::cout << *offer << "END-OFFER" << std::endl;
      // The loop waits here for the answer; libnice keeps its own thread.
      std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
      auto answer = webrtc::parse_session_description(text);
      if (!answer) return peer.finish(1, "Chromium's answer: " + answer.error().detail);
      if (answer->audio().opus_payload_type != voice_config.opus_payload_type) {
        return peer.finish(1, "Chromium's answer changed the Opus payload type");
      }
      peer.remote = std::move(*answer);
      if (!peer.prepare_dtls()) return;
      return peer.set_remote_candidates();
    }
    webrtc::AnswerParameters ours;
    ours.session_id = 1;
    ours.ice_ufrag = local.ufrag;
    ours.ice_pwd = local.password;
    ours.fingerprint_sha256 = peer.identity->fingerprint();
    ours.setup = webrtc::SetupRole::active;
    ours.ssrc = voice_config.ssrc;
    ours.cname = "tsunagu-interop";
    ours.candidates = local.candidates;
    ours.end_of_candidates = true;
    auto answer = webrtc::build_answer(peer.remote, ours);
    if (!answer) return peer.finish(1, "build_answer: " + answer.error().detail);
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
