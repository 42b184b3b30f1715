#include "terminal/webrtc_transport.hpp"

#include "media/rtp.hpp"
#include "security/random.hpp"
#include "webrtc/packet_demux.hpp"

namespace tsunagu::terminal {

WebRtcTransport::WebRtcTransport(uint32_t ssrc, std::string cname)
    : identity_(security::DtlsIdentity::generate()), ssrc_(ssrc), cname_(std::move(cname)) {
  if (identity_) fingerprint_ = identity_->fingerprint();
}

namespace {
uint64_t session_id() {
  uint64_t id = 0;
  security::random_bytes(std::as_writable_bytes(std::span(&id, 1)));
  return id >> 2;  // o= session IDs are written as decimal; keep it well inside 63 bits
}
}  // namespace

Expected<std::string, webrtc::SdpError> WebRtcTransport::offer(const IceDescription& local, uint8_t opus_payload_type,
                                                               uint8_t event_payload_type) {
  webrtc::OfferParameters ours;
  ours.session_id = session_id();
  ours.ice_ufrag = local.ufrag;
  ours.ice_pwd = local.password;
  ours.fingerprint_sha256 = fingerprint_;
  ours.ssrc = ssrc_;
  ours.cname = cname_;
  ours.opus_payload_type = opus_payload_type;
  ours.telephone_event_payload_type = event_payload_type;
  ours.candidates = local.candidates;
  ours.end_of_candidates = true;
  return webrtc::build_offer(ours);
}

Expected<std::string, webrtc::SdpError> WebRtcTransport::answer(webrtc::SessionDescription offer,
                                                                const IceDescription& local) {
  webrtc::AnswerParameters ours;
  ours.session_id = session_id();
  ours.ice_ufrag = local.ufrag;
  ours.ice_pwd = local.password;
  ours.fingerprint_sha256 = fingerprint_;
  ours.setup = webrtc::SetupRole::active;  // RFC 5763 5: the answerer to actpass should be active
  ours.ssrc = ssrc_;
  ours.cname = cname_;
  ours.candidates = local.candidates;
  ours.end_of_candidates = true;
  auto text = webrtc::build_answer(offer, ours);
  if (!text) return text;
  remote_ = std::move(offer);
  have_remote_ = true;
  dtls_client_ = true;
  return text;
}

Expected<void, std::string> WebRtcTransport::take_answer(webrtc::SessionDescription answer) {
  const webrtc::MediaSection& audio = answer.audio();
  if (audio.setup == webrtc::SetupRole::actpass) return Unexpected(std::string("the answer says setup:actpass"));
  remote_ = std::move(answer);
  have_remote_ = true;
  // The answer's role decides: active means the browser sends ClientHello.
  dtls_client_ = remote_.audio().setup == webrtc::SetupRole::passive;
  return {};
}

Expected<void, std::string> WebRtcTransport::prepare(std::optional<std::string> expected_fingerprint) {
  if (!have_remote_) return Unexpected(std::string("no remote description yet"));
  if (!identity_) return Unexpected(std::string("no DTLS certificate could be made"));
  security::DtlsSession::Options options;
  options.role = dtls_client_ ? security::DtlsSession::Role::client : security::DtlsSession::Role::server;
  options.peer_fingerprint = expected_fingerprint.value_or(remote_.audio().fingerprint_sha256);
  auto created = security::DtlsSession::create(identity_, options);
  if (!created) return Unexpected(created.error().detail);
  dtls_ = std::move(*created);
  return {};
}

IceDescription WebRtcTransport::remote_ice() const {
  IceDescription ice{remote_.audio().ice_ufrag, remote_.audio().ice_pwd, {}};
  for (const webrtc::IceCandidate& candidate : remote_.audio().candidates) {
    if (candidate.is_mdns()) continue;
    if (candidate.transport == "udp" && candidate.component == 1 && ice.candidates.size() < max_ice_candidates)
      ice.candidates.push_back("a=" + candidate.attribute);
  }
  return ice;
}

Expected<void, std::string> WebRtcTransport::connected() {
  if (!dtls_) return Unexpected(std::string("DTLS is not prepared"));
  if (!dtls_client_ || dtls_->handshake_complete()) return {};
  if (auto started = dtls_->start(); !started) return Unexpected(started.error().detail);
  return {};
}

Expected<void, std::string> WebRtcTransport::keys_ready() {
  auto keys = dtls_->srtp_keying_material();
  if (!keys) return Unexpected(std::string("the DTLS handshake exported no SRTP keys"));
  auto session = webrtc::SrtpSession::create(*keys, dtls_->role());
  if (!session) return Unexpected(session.error().detail);
  srtp_ = std::move(*session);
  return {};
}

Expected<std::optional<Bytes>, std::string> WebRtcTransport::datagram(ByteView datagram) {
  switch (webrtc::classify_packet(datagram)) {
    case webrtc::PacketKind::dtls: {
      ++counters_.dtls_datagrams;
      if (!dtls_) return std::optional<Bytes>();
      bool was_complete = dtls_->handshake_complete();
      if (auto received = dtls_->receive(datagram); !received) {
        ++counters_.dtls_refused;
        return Unexpected(received.error().detail);
      }
      if (!was_complete && dtls_->handshake_complete())
        if (auto ready = keys_ready(); !ready) return Unexpected(ready.error());
      return std::optional<Bytes>();
    }
    case webrtc::PacketKind::rtp: {
      if (!srtp_) {
        ++counters_.before_keys;
        return std::optional<Bytes>();
      }
      Bytes packet(datagram.begin(), datagram.end());
      auto unprotected = media::is_rtcp(packet) ? srtp_->unprotect_rtcp(packet) : srtp_->unprotect_rtp(packet);
      if (!unprotected) {
        switch (unprotected.error().code) {
          case webrtc::SrtpErrc::authentication: ++counters_.srtp_authentication; break;
          case webrtc::SrtpErrc::replay: ++counters_.srtp_replays; break;
          default: ++counters_.srtp_other; break;
        }
        return std::optional<Bytes>();
      }
      ++counters_.srtp_packets;
      return std::optional<Bytes>(std::move(packet));
    }
    default:
      ++counters_.other_datagrams;
      return std::optional<Bytes>();
  }
}

Expected<void, std::string> WebRtcTransport::protect(Bytes& packet) {
  if (!srtp_) return Unexpected(std::string("no SRTP keys yet"));
  auto done = media::is_rtcp(packet) ? srtp_->protect_rtcp(packet) : srtp_->protect_rtp(packet);
  if (!done) return Unexpected(done.error().detail);
  return {};
}

std::vector<Bytes> WebRtcTransport::take_datagrams() { return dtls_ ? dtls_->take_datagrams() : std::vector<Bytes>{}; }

std::optional<std::chrono::milliseconds> WebRtcTransport::retransmit_in() const {
  return dtls_ ? dtls_->retransmit_in() : std::nullopt;
}

Expected<void, std::string> WebRtcTransport::handle_timeout() {
  if (!dtls_) return {};
  if (auto handled = dtls_->handle_timeout(); !handled) return Unexpected(handled.error().detail);
  return {};
}

std::optional<std::string> WebRtcTransport::trickled_candidate(std::string_view text) {
  auto candidate = webrtc::parse_candidate(text);
  if (!candidate) return std::nullopt;
  if (candidate->is_mdns()) {
    ++trickled_mdns_;
    return std::nullopt;
  }
  if (candidate->transport != "udp" || candidate->component != 1) return std::nullopt;
  ++counters_.trickled_candidates;
  return "a=" + candidate->attribute;
}

size_t WebRtcTransport::mdns_candidates() const {
  size_t count = trickled_mdns_;
  for (const webrtc::IceCandidate& candidate : remote_.audio().candidates) count += candidate.is_mdns() ? 1 : 0;
  return count;
}

std::string WebRtcTransport::srtp_profile() const {
  if (!srtp_ || !dtls_) return {};
  auto keys = dtls_->srtp_keying_material();
  return keys ? std::string(security::to_string(keys->profile)) : std::string();
}

std::string webrtc_report_json(const WebRtcTransport& transport) {
  const WebRtcCounters& c = transport.counters();
  auto field = [](const char* name, uint64_t value) { return std::string(", \"") + name + "\": " + std::to_string(value); };
  return std::string("{\"dtls_role\": \"") + (transport.dtls_client() ? "client" : "server") + "\", \"srtp_profile\": \"" +
         transport.srtp_profile() + "\"" + field("dtls_datagrams", c.dtls_datagrams) + field("dtls_refused", c.dtls_refused) +
         field("dtls_wrong_address", c.dtls_wrong_address) +
         field("srtp_packets", c.srtp_packets) + field("srtp_authentication", c.srtp_authentication) +
         field("srtp_replays", c.srtp_replays) + field("srtp_other", c.srtp_other) + field("before_keys", c.before_keys) +
         field("other_datagrams", c.other_datagrams) + field("mdns_candidates", transport.mdns_candidates()) +
         field("trickled_candidates", c.trickled_candidates) + "}";
}

}  // namespace tsunagu::terminal
