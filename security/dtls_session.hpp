// DTLS 1.2 for WebRTC's media (RFC 5763, RFC 5764, RFC 8827): the handshake
// that proves each side holds the certificate whose fingerprint the signalling
// carried, and the SRTP keys it exports. Datagrams in, datagrams out, no
// sockets: the daemon moves them between this and its ICE transport; tests
// move them between two sessions in memory.
//
// Peers are trusted by fingerprint, not by a CA: each call generates its own
// self-signed ECDSA P-256 certificate (DtlsIdentity), its SHA-256 fingerprint
// goes into our SDP, and the peer's certificate must hash to the fingerprint in
// the peer's SDP.
//
// Retransmission: OpenSSL keeps the DTLS timer on its own clock. The owner asks
// retransmit_in() after every call, arms one timer for it, and calls
// handle_timeout() when it fires (which resends the last flight if it is due).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "security/tls_session.hpp"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;

namespace tsunagu::security {

// A per-call certificate and key. Shared by the DtlsSession(s) of one call.
class DtlsIdentity {
 public:
  // ECDSA P-256, self-signed, CN "tsunagu", valid from a day ago for 30 days.
  static std::shared_ptr<const DtlsIdentity> generate();
  DtlsIdentity(const DtlsIdentity&) = delete;
  DtlsIdentity& operator=(const DtlsIdentity&) = delete;
  ~DtlsIdentity();
  // SHA-256 of the certificate's DER, as SDP writes it: "AB:CD:..." (95 characters).
  const std::string& fingerprint() const { return fingerprint_; }
  EVP_PKEY* key() const { return key_; }
  X509* certificate() const { return certificate_; }

 private:
  DtlsIdentity() = default;
  EVP_PKEY* key_ = nullptr;
  X509* certificate_ = nullptr;
  std::string fingerprint_;
};

// SHA-256 fingerprint of a DER certificate in SDP form (tests, and checks of a peer).
std::string sha256_fingerprint(ByteView der);

// RFC 5764 4.1.2 protection profiles we accept.
enum class SrtpProfile {
  aes128_cm_sha1_80,  // SRTP_AES128_CM_SHA1_80: 16-byte key, 14-byte salt
  aead_aes_128_gcm,   // SRTP_AEAD_AES_128_GCM (RFC 7714): 16-byte key, 12-byte salt
};
std::string_view to_string(SrtpProfile profile);

// RFC 5764 4.2: the exported block is client key | server key | client salt |
// server salt. The client (the DTLS side that sent ClientHello) protects what
// it sends with the client key and salt; the server with the server's.
struct SrtpKeyingMaterial {
  SrtpProfile profile = SrtpProfile::aes128_cm_sha1_80;
  Bytes client_key;
  Bytes client_salt;
  Bytes server_key;
  Bytes server_salt;
};

class DtlsSession {
 public:
  enum class Role { client, server };  // SDP setup:active is the client, setup:passive the server
  struct Options {
    Role role = Role::client;
    // The peer's a=fingerprint:sha-256 value; upper or lower case hex.
    std::string peer_fingerprint;
    // Offered (client) or accepted (server) in this order of preference.
    std::vector<SrtpProfile> srtp_profiles{SrtpProfile::aead_aes_128_gcm, SrtpProfile::aes128_cm_sha1_80};
    // The first retransmission waits this long; each next one twice as long (at most 60 s).
    std::chrono::milliseconds first_retransmit{1000};
    // Largest datagram we write (ICE over TURN leaves room below 1280).
    size_t mtu = 1200;
  };

  // Fails (TlsErrc::configuration) when the identity is missing, the peer
  // fingerprint is not 32 hex bytes, or no SRTP profile is given.
  static Expected<std::unique_ptr<DtlsSession>, TlsError> create(std::shared_ptr<const DtlsIdentity> identity,
                                                                 const Options& options);
  DtlsSession(const DtlsSession&) = delete;
  DtlsSession& operator=(const DtlsSession&) = delete;
  ~DtlsSession();

  // Client only: writes the ClientHello (take it with take_datagrams()).
  Expected<void, TlsError> start();
  // One datagram from the peer (first byte 20-63). Handshake records move the
  // handshake on; application data is not used by WebRTC audio and is dropped.
  // An error ends the session (take_datagrams() may hold an alert to send).
  // A wrong peer certificate gives TlsErrc::certificate_rejected.
  Expected<void, TlsError> receive(ByteView datagram);
  // Datagrams to send, in order, each whole; empties the output.
  std::vector<Bytes> take_datagrams();
  // How long until handle_timeout() has a flight to resend; nullopt when no
  // timer runs (before start(), or once the handshake is done).
  std::optional<std::chrono::milliseconds> retransmit_in() const;
  // Resends the last flight if its timer expired; nothing otherwise.
  Expected<void, TlsError> handle_timeout();
  // Queues close_notify once the handshake completed.
  void close();

  bool handshake_complete() const { return handshake_complete_; }
  bool peer_closed() const { return peer_closed_; }
  Role role() const { return role_; }
  // After the handshake: the negotiated profile and its keys (RFC 5764 4.2).
  std::optional<SrtpKeyingMaterial> srtp_keying_material() const { return keying_material_; }
  // Application-data bytes received and dropped (counted, never used).
  uint64_t dropped_application_bytes() const { return dropped_application_bytes_; }

 private:
  DtlsSession() = default;
  Expected<void, TlsError> drive();
  Expected<void, TlsError> finish_handshake();
  friend struct DtlsCallbacks;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::shared_ptr<const DtlsIdentity> identity_;
  std::string expected_fingerprint_;
  std::string rejected_fingerprint_;  // what the peer presented when it did not match
  std::vector<Bytes> output_;
  std::optional<SrtpKeyingMaterial> keying_material_;
  unsigned first_retransmit_us_ = 1'000'000;
  uint64_t dropped_application_bytes_ = 0;
  bool handshake_complete_ = false;
  bool peer_closed_ = false;
  Role role_ = Role::client;
};

}  // namespace tsunagu::security
