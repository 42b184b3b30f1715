#include "webrtc/srtp_session.hpp"

#include <srtp2/srtp.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace tsunagu::webrtc {

std::string_view to_string(SrtpErrc code) {
  switch (code) {
    case SrtpErrc::authentication: return "authentication failed";
    case SrtpErrc::replay: return "replayed";
    case SrtpErrc::malformed: return "malformed";
    case SrtpErrc::other: return "refused";
  }
  return "refused";
}

namespace {

Unexpected<SrtpError> srtp_failure(std::string_view what, srtp_err_status_t status) {
  SrtpErrc code = SrtpErrc::other;
  switch (status) {
    case srtp_err_status_auth_fail: code = SrtpErrc::authentication; break;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old: code = SrtpErrc::replay; break;
    case srtp_err_status_bad_param: code = SrtpErrc::malformed; break;
    default: break;
  }
  return Unexpected(SrtpError{code, std::string(what) + ": libsrtp status " + std::to_string(static_cast<int>(status))});
}

void initialise_libsrtp_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (srtp_err_status_t status = srtp_init(); status != srtp_err_status_ok) {
      std::fprintf(stderr, "tsunagu: srtp_init failed (%d)\n", static_cast<int>(status));
      std::abort();
    }
  });
}

// The replay window: libsrtp's default (128) is small for a jittery path with
// reordering; 1024 packets is 20 s of 20 ms audio.
constexpr unsigned long kReplayWindow = 1024;

using Protect = srtp_err_status_t (*)(srtp_t, void*, int*);

Expected<void, SrtpError> run(srtp_t session, Bytes& packet, Protect operation, size_t headroom, size_t minimum,
                              std::string_view what) {
  if (packet.size() < minimum || packet.size() > max_srtp_packet) {
    return Unexpected(SrtpError{SrtpErrc::malformed, std::string(what) + ": " + std::to_string(packet.size()) + " bytes"});
  }
  size_t original = packet.size();
  packet.resize(original + headroom);
  int length = static_cast<int>(original);
  srtp_err_status_t status = operation(session, packet.data(), &length);
  if (status != srtp_err_status_ok) {
    packet.resize(original);
    return srtp_failure(what, status);
  }
  packet.resize(static_cast<size_t>(length));
  return {};
}

}  // namespace

SrtpSession::~SrtpSession() {
  if (outbound_ != nullptr) srtp_dealloc(outbound_);
  if (inbound_ != nullptr) srtp_dealloc(inbound_);
}

Expected<std::unique_ptr<SrtpSession>, SrtpError> SrtpSession::create(const security::SrtpKeyingMaterial& keys,
                                                                      security::DtlsSession::Role local_role) {
  initialise_libsrtp_once();
  bool gcm = keys.profile == security::SrtpProfile::aead_aes_128_gcm;
  size_t salt_size = gcm ? SRTP_AEAD_SALT_LEN : SRTP_SALT_LEN;
  if (keys.client_key.size() != SRTP_AES_128_KEY_LEN || keys.server_key.size() != SRTP_AES_128_KEY_LEN ||
      keys.client_salt.size() != salt_size || keys.server_salt.size() != salt_size) {
    return Unexpected(SrtpError{SrtpErrc::other, "key or salt sizes do not match the profile"});
  }
  bool client = local_role == security::DtlsSession::Role::client;
  // libsrtp reads each master key and salt as one block: key | salt.
  auto master = [](const Bytes& key, const Bytes& salt) {
    Bytes joined(key);
    joined.insert(joined.end(), salt.begin(), salt.end());
    return joined;
  };
  Bytes outbound_key = client ? master(keys.client_key, keys.client_salt) : master(keys.server_key, keys.server_salt);
  Bytes inbound_key = client ? master(keys.server_key, keys.server_salt) : master(keys.client_key, keys.client_salt);

  srtp_policy_t outbound = {};
  srtp_policy_t inbound = {};
  for (srtp_policy_t* policy : {&outbound, &inbound}) {
    if (gcm) {
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&policy->rtcp);
    } else {
      srtp_crypto_policy_set_rtp_default(&policy->rtp);  // AES_CM_128_HMAC_SHA1_80
      srtp_crypto_policy_set_rtcp_default(&policy->rtcp);
    }
    policy->window_size = kReplayWindow;
    policy->allow_repeat_tx = 0;
  }
  outbound.ssrc.type = ssrc_any_outbound;
  outbound.key = reinterpret_cast<unsigned char*>(outbound_key.data());
  inbound.ssrc.type = ssrc_any_inbound;
  inbound.key = reinterpret_cast<unsigned char*>(inbound_key.data());

  std::unique_ptr<SrtpSession> session(new SrtpSession());
  srtp_err_status_t status = srtp_create(&session->outbound_, &outbound);
  if (status != srtp_err_status_ok) session->outbound_ = nullptr;
  if (status == srtp_err_status_ok) {
    status = srtp_create(&session->inbound_, &inbound);
    if (status != srtp_err_status_ok) session->inbound_ = nullptr;
  }
  // libsrtp keeps its own expanded keys.
  std::fill(outbound_key.begin(), outbound_key.end(), std::byte{0});
  std::fill(inbound_key.begin(), inbound_key.end(), std::byte{0});
  if (status != srtp_err_status_ok) return srtp_failure("srtp_create", status);
  return session;
}

// RTP needs its 12-byte header; RTCP its 8-byte SR/RR start. The trailer room
// is what libsrtp documents it may write.
Expected<void, SrtpError> SrtpSession::protect_rtp(Bytes& packet) {
  return run(outbound_, packet, srtp_protect, SRTP_MAX_TRAILER_LEN, 12, "protect RTP");
}
Expected<void, SrtpError> SrtpSession::unprotect_rtp(Bytes& packet) {
  return run(inbound_, packet, srtp_unprotect, 0, 12, "unprotect SRTP");
}
Expected<void, SrtpError> SrtpSession::protect_rtcp(Bytes& packet) {
  return run(outbound_, packet, srtp_protect_rtcp, SRTP_MAX_TRAILER_LEN + 4, 8, "protect RTCP");
}
Expected<void, SrtpError> SrtpSession::unprotect_rtcp(Bytes& packet) {
  return run(inbound_, packet, srtp_unprotect_rtcp, 0, 8, "unprotect SRTCP");
}

}  // namespace tsunagu::webrtc
