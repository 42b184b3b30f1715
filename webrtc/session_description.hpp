// SDP offer/answer (RFC 8866, RFC 8829 JSEP) for the subset browsers send when
// they call one audio stream: ICE credentials and candidates (RFC 8839), the
// DTLS fingerprint and setup role (RFC 8122, RFC 5763), BUNDLE (RFC 9143),
// rtcp-mux (RFC 5761), Opus (RFC 7587) and telephone-event (RFC 4733).
// Pure text in, values out; everything else a browser writes (extmap, ssrc,
// msid, rtcp-fb, other codecs) is read past. Limits: max_sdp_size bytes,
// max_sdp_lines lines, max_media_sections m-lines, max_candidates per m-line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/expected.hpp"

namespace tsunagu::webrtc {

inline constexpr size_t max_sdp_size = 64 * 1024;
inline constexpr size_t max_sdp_lines = 2048;
inline constexpr size_t max_media_sections = 16;
inline constexpr size_t max_candidates = 64;

enum class SdpErrc {
  too_large,        // more than max_sdp_size bytes, max_sdp_lines lines, or max_media_sections m-lines
  malformed,        // a line that is not "<letter>=<value>", or a field that does not parse
  no_usable_audio,  // no audio m-line offering Opus 48000/2 over UDP/TLS/RTP/SAVPF with a port
  missing_ice,      // no ice-ufrag/ice-pwd, or ones RFC 8839 does not allow
  missing_fingerprint,  // no sha-256 fingerprint (the only hash we check)
  missing_setup,    // no a=setup, or a role that cannot answer (holdconn)
  no_rtcp_mux,      // RTP and RTCP on one port is the only way we run (RFC 8829 5.1.3 "require")
};
std::string_view to_string(SdpErrc code);

struct SdpError {
  SdpErrc code = SdpErrc::malformed;
  std::string detail;  // names the line ("line 12: ...") for people reading logs
};

// RFC 4145 4: who opens the DTLS connection.
enum class SetupRole { actpass, active, passive };
std::string_view to_string(SetupRole role);

enum class Direction { sendrecv, sendonly, recvonly, inactive };
std::string_view to_string(Direction direction);

// One a=candidate (RFC 8839 5.1). `attribute` keeps the value as written
// ("candidate:1 1 udp ..."), which libnice parses itself; the fields are what
// our own checks read.
struct IceCandidate {
  std::string attribute;
  std::string foundation;
  uint32_t component = 0;
  std::string transport;  // "udp" or "tcp", lower-cased
  uint32_t priority = 0;
  std::string address;    // an IP literal, or a browser's mDNS name ("<uuid>.local")
  uint16_t port = 0;
  std::string type;       // host, srflx, prflx, relay
  bool is_mdns() const;
};
// Parses "candidate:..." (with or without the "a=" and the "candidate:" prefix,
// as browsers' RTCIceCandidate.candidate strings come with "candidate:").
Expected<IceCandidate, SdpError> parse_candidate(std::string_view value);

struct MediaSection {
  std::string kind;       // audio, video, application, ...
  uint16_t port = 0;      // 0: rejected or bundled-only
  std::string protocol;   // UDP/TLS/RTP/SAVPF for browsers' audio
  std::vector<std::string> formats;
  std::string mid;
  // Media-level values, or the session-level ones when the m-line has none.
  std::string ice_ufrag;
  std::string ice_pwd;
  bool ice_trickle = false;
  std::string fingerprint_sha256;  // uppercase "AB:CD:..." (32 bytes), empty if none
  std::optional<SetupRole> setup;
  Direction direction = Direction::sendrecv;
  bool rtcp_mux = false;
  std::optional<uint8_t> opus_payload_type;  // the first opus/48000/2
  std::string opus_fmtp;                    // its a=fmtp value, as written
  std::optional<uint8_t> telephone_event_payload_type;  // telephone-event/48000 (Opus's clock)
  std::vector<IceCandidate> candidates;
  bool end_of_candidates = false;
};

struct SessionDescription {
  std::vector<std::string> bundle_mids;  // a=group:BUNDLE, in order
  std::vector<MediaSection> media;
  size_t audio_index = 0;  // the m-line we use: the first usable audio one
  const MediaSection& audio() const { return media[audio_index]; }
};

// Parses an offer (or an answer) and checks that its audio m-line is one we
// can take: credentials, sha-256 fingerprint, setup role, rtcp-mux, Opus.
Expected<SessionDescription, SdpError> parse_session_description(std::string_view text);

// What our side puts into the answer.
struct AnswerParameters {
  uint64_t session_id = 0;   // o= line; random per call
  std::string ice_ufrag;     // ours (libnice's local credentials)
  std::string ice_pwd;
  std::string fingerprint_sha256;  // our certificate's, "AB:CD:..."
  SetupRole setup = SetupRole::active;  // active or passive; to an actpass offer RFC 5763 says active
  uint32_t ssrc = 0;
  std::string cname;                 // RTCP CNAME, a few ASCII letters
  std::vector<std::string> candidates;  // "candidate:..." values; may be empty (trickle)
  bool end_of_candidates = false;
};

// An answer accepting the offer's usable audio m-line with Opus 48000/2 (the
// offer's payload type), telephone-event when offered, rtcp-mux, and BUNDLE of
// that m-line alone; every other m-line is rejected (port 0) as RFC 8829
// 5.3.1 allows. Refuses parameters that do not fit the offer (setup active to
// an active offer, say) or would break the text (a line break in a value).
Expected<std::string, SdpError> build_answer(const SessionDescription& offer, const AnswerParameters& ours);

// What our side puts into an offer (we call a browser): one audio m-line,
// mid "0" alone in a BUNDLE group, setup:actpass, rtcp-mux, Opus 48000/2 and
// telephone-event/48000 with the payload types given. The browser's answer
// is read with parse_session_description().
struct OfferParameters {
  uint64_t session_id = 0;
  std::string ice_ufrag;
  std::string ice_pwd;
  std::string fingerprint_sha256;
  uint32_t ssrc = 0;
  std::string cname;
  uint8_t opus_payload_type = 111;
  uint8_t telephone_event_payload_type = 110;
  std::vector<std::string> candidates;
  bool end_of_candidates = false;
};
Expected<std::string, SdpError> build_offer(const OfferParameters& ours);

}  // namespace tsunagu::webrtc
