// The WebRTC media profile of one call (docs/webrtc.md), without sockets or a
// clock: our SDP (offer or answer) around the local ICE description, the
// browser's description read back into ICE's form, DTLS on the selected pair
// (RFC 5763: the answer's setup role decides the client) and SRTP keyed by
// its export, around the unchanged media::VoiceSession packets. The owner
// moves datagrams between it and IceSession and runs the DTLS retransmission
// timer (retransmit_in(), handle_timeout()) on its loop.
//
// Used by `tsunagu call`/`listen` when the other party is a browser, and by
// tests/browser/webrtc_interop_peer.cpp against Chromium.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "security/dtls_session.hpp"
#include "terminal/ice_description.hpp"
#include "webrtc/session_description.hpp"
#include "webrtc/srtp_session.hpp"

namespace tsunagu::terminal {

// What the transport refused or dropped, by reason (each also a line for the report).
struct WebRtcCounters {
  uint64_t dtls_datagrams = 0;          // DTLS records in (handshake, alerts)
  uint64_t srtp_packets = 0;            // SRTP and SRTCP that unprotected
  uint64_t srtp_authentication = 0;     // forged, corrupted, or keyed for someone else
  uint64_t srtp_replays = 0;            // a packet seen before, or too old
  uint64_t srtp_other = 0;              // malformed, or refused by libsrtp otherwise
  uint64_t before_keys = 0;             // SRTP before the handshake finished: dropped
  uint64_t other_datagrams = 0;         // neither DTLS nor SRTP (RFC 7983's other ranges)
  uint64_t dtls_refused = 0;            // a handshake that failed: a certificate other than the signalled one, ...
  uint64_t dtls_wrong_address = 0;      // DTLS from an address other than the selected pair's remote: dropped
  uint64_t trickled_candidates = 0;     // candidates the browser sent after its description (call_candidate), used
};

class WebRtcTransport;
// --report's "webrtc" object: the DTLS role, the SRTP profile and the counters.
std::string webrtc_report_json(const WebRtcTransport& transport);

class WebRtcTransport {
 public:
  // A fresh per-call certificate. `cname` goes into our SDP's a=ssrc.
  WebRtcTransport(uint32_t ssrc, std::string cname);

  const std::string& fingerprint() const { return fingerprint_; }

  // We offer (a terminal calls a browser): one audio m-line, setup:actpass.
  Expected<std::string, webrtc::SdpError> offer(const IceDescription& local, uint8_t opus_payload_type,
                                                uint8_t event_payload_type);
  // We answer the browser's offer, setup:active (so we are the DTLS client).
  // Keeps the offer as the remote description.
  Expected<std::string, webrtc::SdpError> answer(webrtc::SessionDescription offer, const IceDescription& local);
  // The browser's answer to our offer.
  Expected<void, std::string> take_answer(webrtc::SessionDescription answer);

  // After offer/answer: the DTLS session, ready for a ClientHello that beats our
  // own ICE "connected". `expected_fingerprint` replaces the SDP's for tests
  // of a tampered signalling path.
  Expected<void, std::string> prepare(std::optional<std::string> expected_fingerprint = std::nullopt);
  // The remote description's ICE, for IceSession::set_remote: credentials and
  // its UDP candidates of component 1, without mDNS host names ("<uuid>.local":
  // libnice has no mDNS resolver). The browser's checks from that address are
  // learnt as peer-reflexive; its srflx and relay candidates are kept.
  IceDescription remote_ice() const;
  // How many of the remote description's candidates, and of those it
  // trickled, are mDNS names (dropped above and below).
  size_t mdns_candidates() const;
  // A candidate the browser trickled after its description (the node's
  // call_candidate, RTCIceCandidate.candidate text): its "a=candidate:" line
  // for IceSession, or nullopt for one the terminal does not use, like
  // remote_ice() (an mDNS name, counted; TCP; another component; malformed).
  std::optional<std::string> trickled_candidate(std::string_view text);
  // ICE connected: the DTLS client sends its ClientHello.
  Expected<void, std::string> connected();

  // One datagram from the selected pair. DTLS moves the handshake on (then
  // take_datagrams() may hold an answer); SRTP/SRTCP comes back as plain
  // RTP/RTCP for the VoiceSession; anything else is counted and dropped
  // (nullopt). An error ends the call: a refused certificate names both
  // fingerprints.
  Expected<std::optional<Bytes>, std::string> datagram(ByteView datagram);
  // RTP or RTCP from the VoiceSession, protected in place (after the handshake).
  Expected<void, std::string> protect(Bytes& packet);
  bool media_ready() const { return srtp_ != nullptr; }
  std::vector<Bytes> take_datagrams();
  std::optional<std::chrono::milliseconds> retransmit_in() const;
  Expected<void, std::string> handle_timeout();

  const webrtc::SessionDescription& remote() const { return remote_; }
  bool dtls_client() const { return dtls_client_; }
  std::string srtp_profile() const;  // empty before the keys
  const WebRtcCounters& counters() const { return counters_; }
  // The owner dropped a DTLS record that came from elsewhere than the selected pair's remote.
  void dropped_from_elsewhere() { ++counters_.dtls_wrong_address; }

 private:
  Expected<void, std::string> keys_ready();
  std::shared_ptr<const security::DtlsIdentity> identity_;
  std::string fingerprint_;
  uint32_t ssrc_ = 0;
  size_t trickled_mdns_ = 0;
  std::string cname_;
  webrtc::SessionDescription remote_;
  bool have_remote_ = false;
  bool dtls_client_ = true;
  std::unique_ptr<security::DtlsSession> dtls_;
  std::unique_ptr<webrtc::SrtpSession> srtp_;
  WebRtcCounters counters_;
};

}  // namespace tsunagu::terminal
