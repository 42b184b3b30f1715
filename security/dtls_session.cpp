#include "security/dtls_session.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/time.h>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace {

using detail::Owned;

[[noreturn]] void fatal(const char* what) { detail::abort_with_openssl_errors("dtls", what); }

Unexpected<TlsError> dtls_error(std::string detail, TlsErrc code) {
  return Unexpected(TlsError{std::move(detail), code});
}

constexpr std::string_view kExporterLabel = "EXTRACTOR-dtls_srtp";
constexpr unsigned kMaxRetransmitUs = 60'000'000;

std::string hex_fingerprint(const unsigned char* digest, size_t size) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(size * 3);
  for (size_t i = 0; i < size; ++i) {
    if (i != 0) out += ':';
    out += digits[digest[i] >> 4];
    out += digits[digest[i] & 0x0f];
  }
  return out;
}

std::string certificate_fingerprint(X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned size = 0;
  if (X509_digest(certificate, EVP_sha256(), digest.data(), &size) != 1) fatal("X509_digest");
  return hex_fingerprint(digest.data(), size);
}

// "ab:cd:..." -> "AB:CD:..." when it is 32 hex bytes; empty otherwise.
std::string normalized_fingerprint(std::string_view text) {
  if (text.size() != 32 * 3 - 1) return {};
  std::string out(text);
  for (size_t i = 0; i < out.size(); ++i) {
    char& c = out[i];
    if (i % 3 == 2) {
      if (c != ':') return {};
      continue;
    }
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return {};
  }
  return out;
}

const char* openssl_profile_name(SrtpProfile profile) {
  return profile == SrtpProfile::aead_aes_128_gcm ? "SRTP_AEAD_AES_128_GCM" : "SRTP_AES128_CM_SHA1_80";
}

}  // namespace

std::string_view to_string(SrtpProfile profile) { return openssl_profile_name(profile); }

std::string sha256_fingerprint(ByteView der) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned size = 0;
  if (EVP_Digest(der.data(), der.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) fatal("EVP_Digest");
  return hex_fingerprint(digest.data(), size);
}

// ---------------------------------------------------------------------------
// DtlsIdentity

DtlsIdentity::~DtlsIdentity() {
  X509_free(certificate_);
  EVP_PKEY_free(key_);
}

std::shared_ptr<const DtlsIdentity> DtlsIdentity::generate() {
  std::shared_ptr<DtlsIdentity> identity(new DtlsIdentity());
  // Browsers' default is ECDSA P-256 too; its signatures keep the flights small.
  identity->key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (identity->key_ == nullptr) fatal("cannot generate a P-256 key");

  Owned<X509, X509_free> certificate(X509_new());
  if (!certificate) fatal("X509_new");
  X509* raw = certificate.get();
  if (X509_set_version(raw, X509_VERSION_3) != 1) fatal("X509_set_version");
  // A random positive 63-bit serial: certificates of different calls differ.
  Owned<BIGNUM, BN_free> serial(BN_new());
  if (!serial || BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(raw)) == nullptr) {
    fatal("certificate serial");
  }
  // Valid from a day ago: a peer whose clock runs behind still accepts it (browsers do not check, others might).
  constexpr long day = 24 * 60 * 60;
  if (X509_gmtime_adj(X509_getm_notBefore(raw), -day) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(raw), 30 * day) == nullptr) {
    fatal("certificate validity");
  }
  X509_NAME* name = X509_get_subject_name(raw);
  static constexpr unsigned char common_name[] = "tsunagu";
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, common_name, -1, -1, 0) != 1 ||
      X509_set_issuer_name(raw, name) != 1 || X509_set_pubkey(raw, identity->key_) != 1 ||
      X509_sign(raw, identity->key_, EVP_sha256()) == 0) {
    fatal("cannot sign the call certificate");
  }
  identity->certificate_ = certificate.release();
  identity->fingerprint_ = certificate_fingerprint(identity->certificate_);
  return identity;
}

// ---------------------------------------------------------------------------
// The OpenSSL callbacks, with access to the session's private state.

struct DtlsCallbacks {
  // Datagram BIO: every BIO_write from OpenSSL is one datagram (a memory BIO
  // would glue a flight's records together and lose the boundaries).
  static int write(BIO* bio, const char* data, int size) {
    auto* session = static_cast<DtlsSession*>(BIO_get_data(bio));
    if (size < 0) return -1;
    const auto* bytes = reinterpret_cast<const std::byte*>(data);
    session->output_.emplace_back(bytes, bytes + size);
    return size;
  }
  static long control(BIO*, int command, long, void*) {
    switch (command) {
      case BIO_CTRL_FLUSH: return 1;
      default: return 0;  // no MTU queries (SSL_OP_NO_QUERY_MTU), nothing pending, no peer address
    }
  }
  static int create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
  }
  static const BIO_METHOD* method() {
    static BIO_METHOD* shared = [] {
      BIO_METHOD* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tsunagu datagrams");
      if (created == nullptr || BIO_meth_set_write(created, write) != 1 || BIO_meth_set_ctrl(created, control) != 1 ||
          BIO_meth_set_create(created, create) != 1) {
        fatal("BIO_meth_new");
      }
      return created;
    }();
    return shared;
  }

  // Replaces chain verification: the peer's leaf must hash to the fingerprint
  // from its SDP. Self-signed, no CA, no names.
  static int verify(X509_STORE_CTX* store, void* argument) {
    auto* session = static_cast<DtlsSession*>(argument);
    X509* certificate = X509_STORE_CTX_get0_cert(store);
    if (certificate == nullptr) {
      X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
      return 0;
    }
    std::string presented = certificate_fingerprint(certificate);
    if (presented != session->expected_fingerprint_) {
      session->rejected_fingerprint_ = presented;
      X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
      return 0;
    }
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }

  // OpenSSL's default starts at 1 s; the owner may choose (tests use a short one).
  static unsigned timer(SSL* ssl, unsigned previous_us) {
    auto* session = static_cast<DtlsSession*>(SSL_get_ex_data(ssl, 0));
    if (previous_us == 0) return session->first_retransmit_us_;
    return std::min(previous_us * 2, kMaxRetransmitUs);
  }
};

namespace {

Unexpected<TlsError> session_error(SSL* ssl, std::string_view what, int ssl_error, const std::string& rejected,
                                   const std::string& expected) {
  std::string detail(what);
  detail += ": ";
  TlsErrc code = TlsErrc::protocol;
  if (!rejected.empty()) {
    detail += "the peer's certificate has fingerprint " + rejected + ", the signalling announced " + expected;
    code = TlsErrc::certificate_rejected;
  } else if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    detail += "transport error";
    code = TlsErrc::transport;
  } else {
    detail += detail::take_openssl_errors();
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      detail += "; certificate verification: ";
      detail += X509_verify_cert_error_string(verify);
      code = TlsErrc::certificate_rejected;
    }
  }
  detail::discard_openssl_errors();
  return dtls_error(std::move(detail), code);
}

}  // namespace

// ---------------------------------------------------------------------------
// DtlsSession

DtlsSession::~DtlsSession() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

Expected<std::unique_ptr<DtlsSession>, TlsError> DtlsSession::create(std::shared_ptr<const DtlsIdentity> identity,
                                                                     const Options& options) {
  if (!identity) return dtls_error("no DTLS identity", TlsErrc::configuration);
  std::string expected = normalized_fingerprint(options.peer_fingerprint);
  if (expected.empty()) {
    return dtls_error("the peer fingerprint is not 32 hex bytes separated by colons", TlsErrc::configuration);
  }
  if (options.srtp_profiles.empty()) return dtls_error("no SRTP profile to offer", TlsErrc::configuration);
  if (options.mtu < 256 || options.mtu > 65507) return dtls_error("MTU out of range", TlsErrc::configuration);

  std::unique_ptr<DtlsSession> session(new DtlsSession());
  session->role_ = options.role;
  session->identity_ = std::move(identity);
  session->expected_fingerprint_ = std::move(expected);
  auto first_us = std::chrono::duration_cast<std::chrono::microseconds>(options.first_retransmit).count();
  session->first_retransmit_us_ = static_cast<unsigned>(std::clamp<long long>(first_us, 1000, kMaxRetransmitUs));

  detail::discard_openssl_errors();
  // One context per session: the verify callback's argument is this session.
  SSL_CTX* ctx = SSL_CTX_new(DTLS_method());
  if (ctx == nullptr) fatal("SSL_CTX_new");
  session->ctx_ = ctx;
  if (SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) != 1 || SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) != 1) {
    fatal("cannot restrict to DTLS 1.2");
  }
  if (SSL_CTX_use_certificate(ctx, session->identity_->certificate()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, session->identity_->key()) != 1) {
    fatal("cannot use the call certificate");
  }
  // Forward secrecy with the ECDSA certificate, AEAD only: what browsers offer first.
  if (SSL_CTX_set_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                                   "ECDHE-ECDSA-CHACHA20-POLY1305") != 1) {
    fatal("cipher list");
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_QUERY_MTU);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, DtlsCallbacks::verify, session.get());
  std::string profiles;
  for (SrtpProfile profile : options.srtp_profiles) {
    if (!profiles.empty()) profiles += ':';
    profiles += openssl_profile_name(profile);
  }
  if (SSL_CTX_set_tlsext_use_srtp(ctx, profiles.c_str()) != 0) fatal("use_srtp");  // 0 is success here

  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) fatal("SSL_new");
  session->ssl_ = ssl;
  if (SSL_set_ex_data(ssl, 0, session.get()) != 1) fatal("SSL_set_ex_data");
  DTLS_set_timer_cb(ssl, DtlsCallbacks::timer);

  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(DtlsCallbacks::method());
  if (in == nullptr || out == nullptr) fatal("BIO_new");
  BIO_set_mem_eof_return(in, -1);  // empty means "no datagram yet", not end of stream
  BIO_set_data(out, session.get());
  SSL_set_bio(ssl, in, out);
  SSL_ctrl(ssl, DTLS_CTRL_SET_LINK_MTU, static_cast<long>(options.mtu), nullptr);

  if (options.role == Role::client) {
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  return session;
}

Expected<void, TlsError> DtlsSession::start() {
  if (role_ != Role::client) return dtls_error("start() is for clients; servers wait for the ClientHello", TlsErrc::other);
  return drive();
}

Expected<void, TlsError> DtlsSession::drive() {
  if (handshake_complete_) return {};
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  if (result != 1) {
    int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) return {};
    return session_error(ssl_, "DTLS handshake failed", error, rejected_fingerprint_, expected_fingerprint_);
  }
  return finish_handshake();
}

Expected<void, TlsError> DtlsSession::finish_handshake() {
  const SRTP_PROTECTION_PROFILE* selected = SSL_get_selected_srtp_profile(ssl_);
  if (selected == nullptr) {
    return dtls_error("DTLS handshake completed without an SRTP profile (use_srtp)", TlsErrc::protocol);
  }
  SrtpKeyingMaterial material;
  size_t key_size = 16, salt_size = 0;
  if (selected->id == SRTP_AES128_CM_SHA1_80) {
    material.profile = SrtpProfile::aes128_cm_sha1_80;
    salt_size = 14;
  } else if (selected->id == SRTP_AEAD_AES_128_GCM) {
    material.profile = SrtpProfile::aead_aes_128_gcm;
    salt_size = 12;
  } else {
    return dtls_error(std::string("unexpected SRTP profile ") + selected->name, TlsErrc::protocol);
  }
  Bytes block(2 * (key_size + salt_size));
  if (SSL_export_keying_material(ssl_, reinterpret_cast<unsigned char*>(block.data()), block.size(), kExporterLabel.data(),
                                 kExporterLabel.size(), nullptr, 0, 0) != 1) {
    return session_error(ssl_, "exporting SRTP keys failed", SSL_ERROR_SSL, {}, {});
  }
  auto slice = [&block](size_t offset, size_t size) {
    return Bytes(block.begin() + static_cast<std::ptrdiff_t>(offset),
                 block.begin() + static_cast<std::ptrdiff_t>(offset + size));
  };
  material.client_key = slice(0, key_size);
  material.server_key = slice(key_size, key_size);
  material.client_salt = slice(2 * key_size, salt_size);
  material.server_salt = slice(2 * key_size + salt_size, salt_size);
  std::fill(block.begin(), block.end(), std::byte{0});
  keying_material_ = std::move(material);
  handshake_complete_ = true;
  return {};
}

Expected<void, TlsError> DtlsSession::receive(ByteView datagram) {
  if (datagram.empty()) return {};
  if (BIO_write(SSL_get_rbio(ssl_), datagram.data(), static_cast<int>(std::min<size_t>(datagram.size(), 65535))) <= 0) {
    fatal("BIO_write");
  }
  bool was_complete = handshake_complete_;
  if (auto driven = drive(); !driven) return driven;
  if (!handshake_complete_) return {};
  if (!was_complete && BIO_ctrl_pending(SSL_get_rbio(ssl_)) == 0) return {};
  // After the handshake: a retransmitted flight of the peer's (SSL_read
  // answers it), application data (dropped), or close_notify.
  std::array<unsigned char, 2048> scratch{};
  for (;;) {
    ERR_clear_error();
    int got = SSL_read(ssl_, scratch.data(), static_cast<int>(scratch.size()));
    if (got > 0) {
      dropped_application_bytes_ += static_cast<uint64_t>(got);
      continue;
    }
    int error = SSL_get_error(ssl_, got);
    if (error == SSL_ERROR_WANT_READ) return {};
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return {};
    }
    return session_error(ssl_, "DTLS read failed", error, rejected_fingerprint_, expected_fingerprint_);
  }
}

std::vector<Bytes> DtlsSession::take_datagrams() {
  std::vector<Bytes> taken;
  taken.swap(output_);
  return taken;
}

std::optional<std::chrono::milliseconds> DtlsSession::retransmit_in() const {
  timeval left{};
  // DTLSv1_get_timeout() is a macro with a C cast; this is what it expands to.
  if (SSL_ctrl(ssl_, DTLS_CTRL_GET_TIMEOUT, 0, &left) != 1) return std::nullopt;
  auto ms = static_cast<long long>(left.tv_sec) * 1000 + (static_cast<long long>(left.tv_usec) + 999) / 1000;
  return std::chrono::milliseconds(ms);
}

Expected<void, TlsError> DtlsSession::handle_timeout() {
  ERR_clear_error();
  // DTLSv1_handle_timeout(): 1 resent, 0 not due (or no timer), -1 failed (too many resends).
  if (SSL_ctrl(ssl_, DTLS_CTRL_HANDLE_TIMEOUT, 0, nullptr) < 0) {
    return session_error(ssl_, "DTLS retransmission failed", SSL_ERROR_SSL, {}, {});
  }
  return {};
}

void DtlsSession::close() {
  if (!handshake_complete_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace tsunagu::security
