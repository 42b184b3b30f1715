#include "security/tls_session.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "security/openssl_handles.hpp"

namespace tsunagu::security {

namespace detail {

std::string take_openssl_errors(std::string_view fallback) {
  constexpr int max_rendered = 8;  // a long queue says nothing more; keep details short
  std::string out;
  int rendered = 0;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    if (rendered == max_rendered) continue;  // keep draining, render no more
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!out.empty()) out += "; ";
    out += buffer;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ')';
    }
    ++rendered;
  }
  if (out.empty()) out = fallback;
  return out;
}

void abort_with_openssl_errors(std::string_view where, std::string_view what) {
  std::string errors = take_openssl_errors();
  std::fprintf(stderr, "tsunagu: %.*s: %.*s: %s\n", static_cast<int>(where.size()), where.data(),
               static_cast<int>(what.size()), what.data(), errors.c_str());
  std::abort();
}

void discard_openssl_errors() { ERR_clear_error(); }

}  // namespace detail

namespace {

using detail::Owned;
using detail::take_openssl_errors;

Unexpected<TlsError> tls_error(std::string detail, TlsErrc code = TlsErrc::other) {
  return Unexpected(TlsError{std::move(detail), code});
}

// Failures while building a context: files, keys, settings.
Unexpected<TlsError> tls_error_with_queue(std::string_view what) {
  std::string detail(what);
  detail += ": ";
  detail += take_openssl_errors();
  return tls_error(std::move(detail), TlsErrc::configuration);
}

[[noreturn]] void out_of_memory(const char* where) {
  std::fprintf(stderr, "tsunagu: out of memory in %s\n", where);
  std::abort();
}

// Settings shared by both ends: TLS 1.3 only, small idle footprint, no resumption.
Expected<Owned<SSL_CTX, SSL_CTX_free>, TlsError> new_context(const SSL_METHOD* method) {
  detail::discard_openssl_errors();
  Owned<SSL_CTX, SSL_CTX_free> ctx(SSL_CTX_new(method));
  if (!ctx) return tls_error_with_queue("cannot create TLS context");
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    return tls_error_with_queue("cannot restrict TLS context to TLS 1.3");
  }
  // Idle links keep no 16 KiB read/write buffers around.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // Nodes, agents and terminals hold long-lived links: resumption buys nothing.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  return ctx;
}

Expected<void, TlsError> use_certificate_and_key(SSL_CTX* ctx, const std::string& chain_file,
                                                 const std::string& key_file) {
  if (SSL_CTX_use_certificate_chain_file(ctx, chain_file.c_str()) != 1) {
    return tls_error_with_queue("cannot read certificate file " + chain_file);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return tls_error_with_queue("cannot read private key file " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return tls_error_with_queue("private key " + key_file + " does not match certificate " + chain_file);
  }
  return {};
}

Expected<void, TlsError> trust_only(SSL_CTX* ctx, const std::string& ca_file) {
  // Only this file is trusted: the system store is never loaded.
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
    return tls_error_with_queue("cannot read CA file " + ca_file);
  }
  return {};
}

bool is_ip_literal(const std::string& name) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), address) == 1 || inet_pton(AF_INET6, name.c_str(), address) == 1;
}

}  // namespace

// ---------------------------------------------------------------------------
// TlsContext

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

Expected<std::shared_ptr<TlsContext>, TlsError> TlsContext::server(const ServerOptions& options) {
  auto created = new_context(TLS_server_method());
  if (!created) return Unexpected(created.error());
  Owned<SSL_CTX, SSL_CTX_free> ctx = std::move(created).value();
  SSL_CTX* raw = ctx.get();

  // No session tickets: SSL_OP_NO_TICKET alone still makes TLS 1.3 servers send
  // stateful tickets, so the ticket count is set to zero as well.
  SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
  if (SSL_CTX_set_num_tickets(raw, 0) != 1) return tls_error_with_queue("cannot disable session tickets");

  if (auto used = use_certificate_and_key(raw, options.certificate_chain_file, options.private_key_file); !used) {
    return Unexpected(used.error());
  }
  if (options.client_ca_file) {
    if (auto trusted = trust_only(raw, *options.client_ca_file); !trusted) return Unexpected(trusted.error());
    // Tell clients which CA we accept (CertificateRequest certificate_authorities).
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.client_ca_file->c_str())) {
      SSL_CTX_set_client_CA_list(raw, names);
    }
    SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  detail::discard_openssl_errors();
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release()));
}

Expected<std::shared_ptr<TlsContext>, TlsError> TlsContext::client(const ClientOptions& options) {
  if (options.certificate_chain_file.has_value() != options.private_key_file.has_value()) {
    return tls_error("a client certificate needs both certificate_chain_file and private_key_file",
                     TlsErrc::configuration);
  }
  auto created = new_context(TLS_client_method());
  if (!created) return Unexpected(created.error());
  Owned<SSL_CTX, SSL_CTX_free> ctx = std::move(created).value();
  SSL_CTX* raw = ctx.get();

  if (auto trusted = trust_only(raw, options.ca_file); !trusted) return Unexpected(trusted.error());
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (options.certificate_chain_file) {
    if (auto used = use_certificate_and_key(raw, *options.certificate_chain_file, *options.private_key_file); !used) {
      return Unexpected(used.error());
    }
  }
  detail::discard_openssl_errors();
  return std::shared_ptr<TlsContext>(new TlsContext(ctx.release()));
}

// ---------------------------------------------------------------------------
// TlsSession

std::unique_ptr<TlsSession> TlsSession::create(std::shared_ptr<TlsContext> context, Role role,
                                               std::string_view verify_name) {
  if (!context) return nullptr;
  std::string name(verify_name);
  if (name.find('\0') != std::string::npos) return nullptr;  // would be cut short by C APIs

  std::unique_ptr<TlsSession> session(new TlsSession());
  session->role_ = role;
  session->ssl_ = SSL_new(context->raw());
  if (session->ssl_ == nullptr) out_of_memory("SSL_new");
  session->context_ = std::move(context);
  SSL* ssl = session->ssl_;

  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (in == nullptr || out == nullptr) out_of_memory("BIO_new");
  // An empty input BIO means "no bytes yet", not end of stream.
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);  // the SSL owns both from here on

  if (role == Role::client) {
    SSL_set_connect_state(ssl);
    if (!name.empty()) {
      if (is_ip_literal(name)) {
        // IP literals: no SNI (RFC 6066), match an IP subjectAltName.
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1) {
          detail::discard_openssl_errors();
          return nullptr;
        }
      } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        // SSL_set_tlsext_host_name() is a macro with a C cast; this is what it expands to.
        if (SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name.data()) != 1 ||
            SSL_set1_host(ssl, name.c_str()) != 1) {
          detail::discard_openssl_errors();
          return nullptr;
        }
      }
    }
  } else {
    SSL_set_accept_state(ssl);
  }
  return session;
}

TlsSession::~TlsSession() { SSL_free(ssl_); }

namespace {

// Turns a failed SSL_* call into an error: the queue, and the verification
// result when the peer's certificate was the reason.
Unexpected<TlsError> session_error(SSL* ssl, std::string_view what, int ssl_error) {
  std::string detail(what);
  detail += ": ";
  TlsErrc code = TlsErrc::protocol;
  if (ssl_error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    detail += "transport error";
    code = TlsErrc::transport;
  } else {
    detail += take_openssl_errors();
  }
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    detail += "; certificate verification: ";
    detail += X509_verify_cert_error_string(verify);
    code = TlsErrc::certificate_rejected;
  }
  detail::discard_openssl_errors();
  return tls_error(std::move(detail), code);
}

// SSL_get_error reads the thread's error queue, so it must be empty before each
// SSL_read/SSL_write; it nearly always is, and ERR_clear_error wipes all of its
// sixteen slots every time (about 1% of a lookup's CPU, twice per message).
void clear_stale_openssl_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

Expected<void, TlsError> write_all(SSL* ssl, ByteView plaintext) {
  size_t offset = 0;
  while (offset < plaintext.size()) {
    int chunk = static_cast<int>(std::min<size_t>(plaintext.size() - offset, INT_MAX));
    clear_stale_openssl_errors();
    int written = SSL_write(ssl, plaintext.data() + offset, chunk);
    if (written <= 0) return session_error(ssl, "TLS write failed", SSL_get_error(ssl, written));
    offset += static_cast<size_t>(written);
  }
  return {};
}

}  // namespace

Expected<void, TlsError> TlsSession::drive() {
  if (handshake_complete_) return {};
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_);
  if (result != 1) {
    int error = SSL_get_error(ssl_, result);
    if (error == SSL_ERROR_WANT_READ) return {};
    return session_error(ssl_, "TLS handshake failed", error);
  }
  handshake_complete_ = true;
  if (!pending_plaintext_.empty()) {
    Bytes queued;
    queued.swap(pending_plaintext_);
    return write_all(ssl_, queued);
  }
  return {};
}

namespace {

// Memory BIOs keep the largest buffer they ever held. Past this size a
// drained one is replaced; every link otherwise holds its handshake flights
// (2-3 KB) for as long as it lives, and a link that once carried a large
// message holds that.
constexpr size_t kKeptBioBuffer = 4096;

BIO* new_memory_bio() {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) out_of_memory("BIO_new");
  // An empty input BIO means "no bytes yet", not end of stream.
  BIO_set_mem_eof_return(bio, -1);
  return bio;
}

size_t buffer_size(BIO* bio) {
  BUF_MEM* memory = nullptr;
  BIO_get_mem_ptr(bio, &memory);
  return memory == nullptr ? 0 : memory->max;
}

}  // namespace

void TlsSession::shed_buffers() {
  if (!handshake_complete_) return;
  bool force = !shed_after_handshake_;
  shed_after_handshake_ = true;
  BIO* in = SSL_get_rbio(ssl_);
  BIO* out = SSL_get_wbio(ssl_);
  if (BIO_ctrl_pending(in) == 0 && (force || buffer_size(in) > kKeptBioBuffer)) SSL_set0_rbio(ssl_, new_memory_bio());
  if (BIO_ctrl_pending(out) == 0 && (force || buffer_size(out) > kKeptBioBuffer))
    SSL_set0_wbio(ssl_, new_memory_bio());
}

Expected<void, TlsError> TlsSession::start() {
  if (role_ != Role::client) return tls_error("start() is for clients; servers wait for the ClientHello");
  return drive();
}

Expected<void, TlsError> TlsSession::receive(ByteView ciphertext, Bytes& plaintext) {
  BIO* in = SSL_get_rbio(ssl_);
  size_t offset = 0;
  while (offset < ciphertext.size()) {
    int chunk = static_cast<int>(std::min<size_t>(ciphertext.size() - offset, INT_MAX));
    int written = BIO_write(in, ciphertext.data() + offset, chunk);
    if (written <= 0) out_of_memory("BIO_write");
    offset += static_cast<size_t>(written);
  }

  if (auto driven = drive(); !driven) return driven;
  if (!handshake_complete_) return {};

  // One TLS record at most per SSL_read. Read into a scratch buffer and append
  // what came: growing `plaintext` by a whole record first would zero-fill
  // 16 KiB (and often allocate) for every small message.
  constexpr size_t read_size = 16384;
  thread_local std::array<std::byte, read_size> scratch;
  BIO* in_bio = SSL_get_rbio(ssl_);
  for (;;) {
    clear_stale_openssl_errors();
    int got = SSL_read(ssl_, scratch.data(), static_cast<int>(read_size));
    if (got > 0) {
      plaintext.insert(plaintext.end(), scratch.begin(), scratch.begin() + got);
      // Nothing buffered on either side: another SSL_read would only say
      // WANT_READ, and it costs as much as a small record's decryption.
      if (BIO_ctrl_pending(in_bio) == 0 && SSL_pending(ssl_) == 0) {
        if (!has_output()) shed_buffers();
        return {};
      }
      continue;
    }
    int error = SSL_get_error(ssl_, got);
    if (error == SSL_ERROR_WANT_READ) {
      if (!has_output()) shed_buffers();
      return {};
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      return {};
    }
    return session_error(ssl_, "TLS read failed", error);
  }
}

Expected<void, TlsError> TlsSession::send(ByteView plaintext) {
  if (!handshake_complete_) {
    pending_plaintext_.insert(pending_plaintext_.end(), plaintext.begin(), plaintext.end());
    return {};
  }
  return write_all(ssl_, plaintext);
}

void TlsSession::close() {
  if (!handshake_complete_) {
    // Nothing was sent yet that a close_notify could end; queued bytes are dropped.
    pending_plaintext_.clear();
    return;
  }
  ERR_clear_error();
  SSL_shutdown(ssl_);  // 0: close_notify queued, the peer's not seen yet; that is all we need
  ERR_clear_error();
}

Bytes TlsSession::take_output() {
  Bytes result;
  take_output(result);
  return result;
}

void TlsSession::take_output(Bytes& out) {
  BIO* out_bio = SSL_get_wbio(ssl_);
  size_t before = out.size();
  out.resize(before + BIO_ctrl_pending(out_bio));
  size_t filled = before;
  while (filled < out.size()) {
    int chunk = static_cast<int>(std::min<size_t>(out.size() - filled, INT_MAX));
    int got = BIO_read(out_bio, out.data() + filled, chunk);
    if (got <= 0) break;
    filled += static_cast<size_t>(got);
  }
  out.resize(filled);
  shed_buffers();
}

bool TlsSession::has_output() const { return BIO_ctrl_pending(SSL_get_wbio(ssl_)) > 0; }

std::optional<std::string> TlsSession::peer_serial() const {
  if (!handshake_complete_) return std::nullopt;
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  if (certificate == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return std::nullopt;
  return detail::serial_hex(X509_get0_serialNumber(certificate));
}

std::optional<std::string> TlsSession::peer_common_name() const {
  if (!handshake_complete_) return std::nullopt;
  X509* certificate = SSL_get0_peer_certificate(ssl_);
  if (certificate == nullptr || SSL_get_verify_result(ssl_) != X509_V_OK) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(certificate);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return std::nullopt;
  ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int length = ASN1_STRING_to_UTF8(&utf8, value);
  if (length < 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::string name(reinterpret_cast<const char*>(utf8), static_cast<size_t>(length));
  OPENSSL_free(utf8);
  return name;
}

}  // namespace tsunagu::security
