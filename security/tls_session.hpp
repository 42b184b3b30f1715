// The one class that owns OpenSSL's TLS: bytes in, bytes out. No sockets: the
// daemons move ciphertext between this and libuv, and tests move it between
// two sessions in memory. TLS 1.3 only; peers' certificates are verified.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.hpp"
#include "base/expected.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace tsunagu::security {

// What went wrong, for code that decides; `detail` is for people.
enum class TlsErrc {
  other,
  configuration,         // a certificate, key or CA file unreadable or mismatched
  certificate_rejected,  // we did not accept the peer's certificate (issuer, name, usage)
  protocol,              // handshake or record failure: an alert from the peer, bad records
  transport,             // the connection ended under TLS (no OpenSSL error)
};

struct TlsError {
  std::string detail;  // OpenSSL's error queue, rendered for a human
  TlsErrc code = TlsErrc::other;
};

class TlsContext {
 public:
  struct ServerOptions {
    std::string certificate_chain_file;  // PEM: leaf first, then intermediates
    std::string private_key_file;        // PEM
    // When set, clients must present a certificate issued by this CA (PEM file).
    std::optional<std::string> client_ca_file;
  };
  struct ClientOptions {
    std::string ca_file;  // trust anchor (the deployment's private CA), PEM
    std::optional<std::string> certificate_chain_file;  // client certificate, if any
    std::optional<std::string> private_key_file;
  };

  static Expected<std::shared_ptr<TlsContext>, TlsError> server(const ServerOptions& options);
  static Expected<std::shared_ptr<TlsContext>, TlsError> client(const ClientOptions& options);
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();
  SSL_CTX* raw() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsSession {
 public:
  enum class Role { client, server };

  // verify_name: for clients, the host name or IP literal the server's
  // certificate must match. Ignored for servers. Empty: the chain is still
  // verified against the CA, but no name is checked. Returns nullptr when
  // `context` is null or verify_name is unusable (an embedded NUL, say).
  static std::unique_ptr<TlsSession> create(std::shared_ptr<TlsContext> context, Role role,
                                            std::string_view verify_name = {});
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;
  ~TlsSession();

  // Client only: produces the ClientHello (take it with take_output()).
  Expected<void, TlsError> start();
  // Feeds ciphertext from the peer; appends any application bytes that could be
  // decrypted to `plaintext`. An error means the link must be closed (take_output()
  // may still hold an alert to send first).
  Expected<void, TlsError> receive(ByteView ciphertext, Bytes& plaintext);
  // Encrypts application bytes; before the handshake completes they are queued
  // and sent when it does.
  Expected<void, TlsError> send(ByteView plaintext);
  // Queues close_notify. Before the handshake completes it sends nothing and
  // drops bytes queued by send().
  void close();
  // Ciphertext waiting to go on the wire; empties the session's output.
  Bytes take_output();
  // The same, appended to `out`: a caller that reuses one buffer allocates
  // nothing per write.
  void take_output(Bytes& out);
  bool has_output() const;

  bool handshake_complete() const { return handshake_complete_; }
  bool peer_closed() const { return peer_closed_; }
  // Subject common name of the peer's verified certificate, when it presented one.
  std::optional<std::string> peer_common_name() const;
  // The verified peer certificate's serial number as uppercase hex.
  std::optional<std::string> peer_serial() const;

 private:
  TlsSession() = default;
  Expected<void, TlsError> drive();
  // Replaces a drained memory BIO holding a large buffer (or, once after the
  // handshake, any drained one) with a fresh, empty one.
  void shed_buffers();
  SSL* ssl_ = nullptr;
  std::shared_ptr<TlsContext> context_;
  Bytes pending_plaintext_;
  bool handshake_complete_ = false;
  bool shed_after_handshake_ = false;  // the handshake's buffers are gone
  bool peer_closed_ = false;
  Role role_ = Role::client;
};

}  // namespace tsunagu::security
