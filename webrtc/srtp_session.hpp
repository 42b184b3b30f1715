// SRTP and SRTCP (RFC 3711, RFC 7714 for AES-GCM) with libsrtp2, keyed by the
// DTLS-SRTP exporter (security/dtls_session.hpp). The one file that includes
// <srtp2/srtp.h>. libsrtp keeps the replay windows: a packet seen before, or
// one too old for the window, is refused like a forged one.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "security/dtls_session.hpp"

typedef struct srtp_ctx_t_ srtp_ctx_t;

namespace tsunagu::webrtc {

enum class SrtpErrc {
  authentication,  // the tag does not verify: forged, corrupted, or keyed for someone else
  replay,          // seen before, or older than the replay window
  malformed,       // too short to be RTP/RTCP, or longer than max_srtp_packet
  other,           // libsrtp refused for another reason (detail names its code)
};
std::string_view to_string(SrtpErrc code);

struct SrtpError {
  SrtpErrc code = SrtpErrc::other;
  std::string detail;
};

// Larger datagrams are refused before libsrtp sees them.
inline constexpr size_t max_srtp_packet = 1500;

class SrtpSession {
 public:
  // `local_role` is our side of the DTLS handshake: the client protects with
  // the client key and salt and unprotects with the server's, the server the
  // other way round (RFC 5764 4.2).
  static Expected<std::unique_ptr<SrtpSession>, SrtpError> create(const security::SrtpKeyingMaterial& keys,
                                                                  security::DtlsSession::Role local_role);
  SrtpSession(const SrtpSession&) = delete;
  SrtpSession& operator=(const SrtpSession&) = delete;
  ~SrtpSession();

  // In place: `packet` holds RTP (RTCP) and grows by the tag (and SRTCP index),
  // or holds SRTP (SRTCP) and shrinks to the plain packet. Unchanged on error.
  Expected<void, SrtpError> protect_rtp(Bytes& packet);
  Expected<void, SrtpError> unprotect_rtp(Bytes& packet);
  Expected<void, SrtpError> protect_rtcp(Bytes& packet);
  Expected<void, SrtpError> unprotect_rtcp(Bytes& packet);

 private:
  SrtpSession() = default;
  // libsrtp allows one wildcard-SSRC policy per session: one for what we
  // send (ssrc_any_outbound), one for what we receive (ssrc_any_inbound).
  srtp_ctx_t* outbound_ = nullptr;
  srtp_ctx_t* inbound_ = nullptr;
};

}  // namespace tsunagu::webrtc
