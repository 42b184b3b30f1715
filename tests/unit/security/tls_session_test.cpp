// Real TLS 1.3 handshakes between two TlsSession instances in memory: the test
// plays the network, moving take_output() from one to the other.
#include "security/tls_session.hpp"

#include <doctest/doctest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <optional>
#include <string>

#include "tests/unit/security/test_pki.hpp"

namespace tsunagu::security {
namespace {

using testing::Pki;

std::shared_ptr<TlsContext> server_context(const Pki& pki, std::optional<std::string> client_ca = std::nullopt) {
  auto ctx = TlsContext::server({.certificate_chain_file = pki.server.certificate,
                                 .private_key_file = pki.server.key,
                                 .client_ca_file = std::move(client_ca)});
  REQUIRE_MESSAGE(ctx.has_value(), (ctx ? "" : ctx.error().detail));
  return *ctx;
}

std::shared_ptr<TlsContext> client_context(const std::string& ca_file,
                                           const testing::FilePair* certificate = nullptr) {
  TlsContext::ClientOptions options{.ca_file = ca_file};
  if (certificate != nullptr) {
    options.certificate_chain_file = certificate->certificate;
    options.private_key_file = certificate->key;
  }
  auto ctx = TlsContext::client(options);
  REQUIRE_MESSAGE(ctx.has_value(), (ctx ? "" : ctx.error().detail));
  return *ctx;
}

// One end of the in-memory link: what it decrypted and the first error it hit.
struct End {
  std::unique_ptr<TlsSession> session;
  Bytes plaintext;
  std::optional<std::string> error;
  TlsErrc code = TlsErrc::other;

  void deliver(ByteView ciphertext, size_t step) {
    for (size_t offset = 0; offset < ciphertext.size() && !error; offset += step) {
      auto chunk = ciphertext.subspan(offset, std::min(step, ciphertext.size() - offset));
      auto received = session->receive(chunk, plaintext);
      if (!received) {
        error = received.error().detail;
        code = received.error().code;
      }
    }
  }
  std::string text() const { return std::string(as_chars(plaintext)); }
};

struct Link {
  End client;
  End server;

  Link(std::shared_ptr<TlsContext> client_ctx, std::shared_ptr<TlsContext> server_ctx,
       std::string_view verify_name = "node.example")
      : client{TlsSession::create(std::move(client_ctx), TlsSession::Role::client, verify_name), {}, {}},
        server{TlsSession::create(std::move(server_ctx), TlsSession::Role::server), {}, {}} {
    REQUIRE(client.session != nullptr);
    REQUIRE(server.session != nullptr);
  }

  void start() {
    auto started = client.session->start();
    REQUIRE_MESSAGE(started.has_value(), (started ? "" : started.error().detail));
  }

  // Moves bytes both ways, `step` bytes per receive() call, until nothing is left
  // in flight. Returns how many flights were moved.
  int pump(size_t step = SIZE_MAX) {
    int flights = 0;
    for (; flights < 100; ++flights) {
      bool moved = false;
      if (client.session->has_output()) {
        Bytes out = client.session->take_output();
        server.deliver(out, step);
        moved = true;
      }
      if (server.session->has_output()) {
        Bytes out = server.session->take_output();
        client.deliver(out, step);
        moved = true;
      }
      if (!moved) break;
    }
    return flights;
  }

  bool both_complete() const {
    return client.session->handshake_complete() && server.session->handshake_complete();
  }
};

void send(TlsSession& session, std::string_view text) {
  auto sent = session.send(as_bytes(text));
  REQUIRE_MESSAGE(sent.has_value(), (sent ? "" : sent.error().detail));
}

TEST_CASE("tls: handshake completes and application bytes flow both ways") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  link.start();
  link.pump();
  REQUIRE(link.both_complete());
  CHECK_FALSE(link.client.error);
  CHECK_FALSE(link.server.error);

  send(*link.client.session, "hello node");
  link.pump();
  CHECK(link.server.text() == "hello node");

  send(*link.server.session, "hello terminal");
  link.pump();
  CHECK(link.client.text() == "hello terminal");

  CHECK(link.client.session->peer_common_name() == "node.example");
  CHECK_FALSE(link.server.session->peer_common_name());  // no client certificate was asked for
  CHECK_FALSE(link.client.session->has_output());
  CHECK(link.client.session->take_output().empty());
}

TEST_CASE("tls: an error left on the thread's OpenSSL queue by other code does not fail a read or a write") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  link.start();
  link.pump();
  REQUIRE(link.both_complete());
  // SSL_get_error would report a stale entry as this link's SSL_ERROR_SSL.
  ERR_raise(ERR_LIB_USER, 1);
  send(*link.client.session, "after a stale error");
  ERR_raise(ERR_LIB_USER, 2);
  link.pump();
  CHECK_FALSE(link.server.error);
  CHECK(link.server.text() == "after a stale error");
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("tls: the server sends no session ticket after the handshake") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  link.start();
  link.server.deliver(link.client.session->take_output(), SIZE_MAX);  // ClientHello
  link.client.deliver(link.server.session->take_output(), SIZE_MAX);  // ServerHello .. Finished
  REQUIRE(link.client.session->handshake_complete());
  link.server.deliver(link.client.session->take_output(), SIZE_MAX);  // client Finished
  REQUIRE(link.server.session->handshake_complete());
  CHECK_FALSE(link.server.error);
  // A NewSessionTicket would be waiting here; resumption is off, so nothing is.
  CHECK_FALSE(link.server.session->has_output());
}

TEST_CASE("tls: a megabyte each way arrives intact") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  link.start();
  link.pump();
  REQUIRE(link.both_complete());

  Bytes big(1 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = std::byte(i * 7 + i / 251);
  REQUIRE(link.client.session->send(big).has_value());
  REQUIRE(link.server.session->send(big).has_value());
  link.pump();
  CHECK(link.server.plaintext == big);
  CHECK(link.client.plaintext == big);
}

TEST_CASE("tls: bytes fed one at a time still complete the handshake") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  link.start();
  link.pump(1);
  REQUIRE(link.both_complete());
  CHECK_FALSE(link.client.error);
  CHECK_FALSE(link.server.error);

  send(*link.client.session, "one byte at a time");
  send(*link.server.session, "and back");
  link.pump(1);
  CHECK(link.server.text() == "one byte at a time");
  CHECK(link.client.text() == "and back");
}

TEST_CASE("tls: a client trusting a different CA fails with a verify error mentioning the reason") {
  Pki pki;
  Link link(client_context(pki.other_ca_file), server_context(pki));
  link.start();
  link.pump();
  CHECK_FALSE(link.client.session->handshake_complete());
  CHECK_FALSE(link.server.session->handshake_complete());
  REQUIRE(link.client.error);
  INFO(*link.client.error);
  CHECK(link.client.error->find("certificate verify failed") != std::string::npos);
  CHECK(link.client.error->find("unable to get local issuer certificate") != std::string::npos);
  CHECK(link.client.code == TlsErrc::certificate_rejected);
  // The client's alert told the server why.
  REQUIRE(link.server.error);
  CHECK(link.server.error->find("unknown ca") != std::string::npos);
  CHECK(link.server.code == TlsErrc::protocol);
  CHECK(ERR_peek_error() == 0);  // the failure left nothing in OpenSSL's queue
}

TEST_CASE("tls: a name mismatch fails") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki), "other.example");
  link.start();
  link.pump();
  CHECK_FALSE(link.client.session->handshake_complete());
  REQUIRE(link.client.error);
  INFO(*link.client.error);
  CHECK(link.client.error->find("hostname mismatch") != std::string::npos);
  CHECK(link.client.code == TlsErrc::certificate_rejected);
  CHECK(link.server.error);
}

TEST_CASE("tls: an IP subjectAltName is accepted for an IP literal verify_name") {
  Pki pki;
  for (const char* address : {"127.0.0.1", "::1"}) {
    CAPTURE(address);
    Link link(client_context(pki.ca_file), server_context(pki), address);
    link.start();
    link.pump();
    CHECK_FALSE(link.client.error);
    CHECK(link.both_complete());
  }
}

TEST_CASE("tls: an IP literal not in the certificate fails") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki), "127.0.0.2");
  link.start();
  link.pump();
  REQUIRE(link.client.error);
  INFO(*link.client.error);
  CHECK(link.client.error->find("IP address mismatch") != std::string::npos);
}

TEST_CASE("tls: a client certificate presented as a server certificate is refused") {
  Pki pki;
  auto ctx = TlsContext::server({.certificate_chain_file = pki.client.certificate,
                                 .private_key_file = pki.client.key,
                                 .client_ca_file = std::nullopt});
  REQUIRE(ctx.has_value());
  Link link(client_context(pki.ca_file), *ctx, "");
  link.start();
  link.pump();
  CHECK_FALSE(link.client.session->handshake_complete());
  REQUIRE(link.client.error);
  INFO(*link.client.error);
  CHECK(link.client.error->find("unsuitable certificate purpose") != std::string::npos);
}

TEST_CASE("tls: a server requiring client certificates refuses a client without one") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki, pki.ca_file));
  link.start();
  link.pump();
  CHECK_FALSE(link.server.session->handshake_complete());
  REQUIRE(link.server.error);
  INFO(*link.server.error);
  CHECK(link.server.error->find("peer did not return a certificate") != std::string::npos);
  // TLS 1.3: the client finished its side, then learns of the refusal from the alert.
  CHECK(link.client.error);
  CHECK(link.server.text().empty());
}

TEST_CASE("tls: a server requiring client certificates refuses one issued by another CA") {
  Pki pki;
  Link link(client_context(pki.ca_file, &pki.foreign_client), server_context(pki, pki.ca_file));
  send(*link.client.session, "let me in");
  link.start();
  link.pump();
  CHECK_FALSE(link.server.session->handshake_complete());
  REQUIRE(link.server.error);
  INFO(*link.server.error);
  CHECK(link.server.error->find("unable to get local issuer certificate") != std::string::npos);
  CHECK(link.client.error);
  CHECK(link.server.text().empty());  // what the client queued never surfaced
  CHECK_FALSE(link.server.session->peer_common_name());
}

TEST_CASE("tls: a server requiring client certificates accepts one from its CA and reports its common name") {
  Pki pki;
  Link link(client_context(pki.ca_file, &pki.client), server_context(pki, pki.ca_file));
  link.start();
  link.pump();
  REQUIRE(link.both_complete());
  CHECK_FALSE(link.server.error);
  CHECK_FALSE(link.client.error);
  CHECK(link.server.session->peer_common_name() == "agent-7");
  CHECK(link.client.session->peer_common_name() == "node.example");
}

TEST_CASE("tls: close makes the peer see peer_closed") {
  Pki pki;
  SUBCASE("client closes") {
    Link link(client_context(pki.ca_file), server_context(pki));
    link.start();
    link.pump();
    REQUIRE(link.both_complete());
    send(*link.client.session, "bye");
    link.client.session->close();
    link.pump();
    CHECK_FALSE(link.server.error);
    CHECK(link.server.text() == "bye");
    CHECK(link.server.session->peer_closed());
    CHECK_FALSE(link.client.session->peer_closed());
    CHECK_FALSE(link.client.session->send(as_bytes("after close")).has_value());
  }
  SUBCASE("server closes") {
    Link link(client_context(pki.ca_file), server_context(pki));
    link.start();
    link.pump();
    REQUIRE(link.both_complete());
    link.server.session->close();
    link.pump();
    CHECK_FALSE(link.client.error);
    CHECK(link.client.session->peer_closed());
  }
}

TEST_CASE("tls: garbage ciphertext gives an error") {
  Pki pki;
  SUBCASE("instead of a ClientHello") {
    auto server = TlsSession::create(server_context(pki), TlsSession::Role::server);
    Bytes plaintext;
    auto received = server->receive(as_bytes("GET / HTTP/1.1\r\nHost: node.example\r\n\r\n"), plaintext);
    REQUIRE_FALSE(received.has_value());
    CHECK_FALSE(received.error().detail.empty());
    CHECK(plaintext.empty());
  }
  SUBCASE("after the handshake") {
    Link link(client_context(pki.ca_file), server_context(pki));
    link.start();
    link.pump();
    REQUIRE(link.both_complete());
    // A well-formed record header (application_data, TLS 1.2, 32 bytes) around junk.
    Bytes junk = {std::byte{0x17}, std::byte{0x03}, std::byte{0x03}, std::byte{0x00}, std::byte{0x20}};
    junk.resize(junk.size() + 32, std::byte{0x5a});
    Bytes plaintext;
    auto received = link.client.session->receive(junk, plaintext);
    REQUIRE_FALSE(received.has_value());
    INFO(received.error().detail);
    CHECK(received.error().detail.find("bad record mac") != std::string::npos);
    CHECK(received.error().code == TlsErrc::protocol);
    CHECK(link.client.session->has_output());  // the alert to send before closing
  }
  CHECK(ERR_peek_error() == 0);  // nothing left behind for the next caller
}

TEST_CASE("tls: a TLS 1.2-only client is refused") {
  Pki pki;
  auto server = TlsSession::create(server_context(pki), TlsSession::Role::server);

  // A raw OpenSSL client that stops at TLS 1.2 (test-only use of OpenSSL).
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  REQUIRE(ctx != nullptr);
  REQUIRE(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) == 1);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in, -1);
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);

  int result = SSL_do_handshake(ssl);
  CHECK(SSL_get_error(ssl, result) == SSL_ERROR_WANT_READ);
  Bytes hello(static_cast<size_t>(BIO_ctrl_pending(out)));
  REQUIRE(BIO_read(out, hello.data(), static_cast<int>(hello.size())) == static_cast<int>(hello.size()));

  Bytes plaintext;
  auto received = server->receive(hello, plaintext);
  REQUIRE_FALSE(received.has_value());
  INFO(received.error().detail);
  CHECK(received.error().detail.find("unsupported protocol") != std::string::npos);
  CHECK_FALSE(server->handshake_complete());

  // The server's alert ends the old client's attempt too.
  Bytes alert = server->take_output();
  REQUIRE_FALSE(alert.empty());
  REQUIRE(BIO_write(in, alert.data(), static_cast<int>(alert.size())) == static_cast<int>(alert.size()));
  result = SSL_do_handshake(ssl);
  CHECK(result <= 0);
  CHECK(SSL_get_error(ssl, result) == SSL_ERROR_SSL);
  ERR_clear_error();
  SSL_free(ssl);
  SSL_CTX_free(ctx);
}

TEST_CASE("tls: data sent before the handshake completes arrives after it") {
  Pki pki;
  Link link(client_context(pki.ca_file), server_context(pki));
  send(*link.client.session, "queued ");
  send(*link.client.session, "by the client");
  CHECK_FALSE(link.client.session->has_output());  // nothing leaves before start()
  link.start();
  // The server answers the ClientHello and queues its own bytes mid-handshake.
  link.server.deliver(link.client.session->take_output(), SIZE_MAX);
  REQUIRE_FALSE(link.server.error);
  CHECK_FALSE(link.server.session->handshake_complete());
  send(*link.server.session, "queued by the server");
  link.pump();
  REQUIRE(link.both_complete());
  CHECK(link.server.text() == "queued by the client");
  CHECK(link.client.text() == "queued by the server");
}

TEST_CASE("tls: start is for clients only") {
  Pki pki;
  auto server = TlsSession::create(server_context(pki), TlsSession::Role::server);
  CHECK_FALSE(server->start().has_value());
}

TEST_CASE("tls: a verify_name with an embedded NUL is refused") {
  Pki pki;
  using namespace std::string_view_literals;
  CHECK(TlsSession::create(client_context(pki.ca_file), TlsSession::Role::client, "node.example\0.evil"sv) == nullptr);
  CHECK(TlsSession::create(nullptr, TlsSession::Role::client, "node.example") == nullptr);
}

TEST_CASE("tls context: unreadable or mismatched files give clear errors") {
  Pki pki;
  SUBCASE("missing certificate file") {
    auto ctx = TlsContext::server({.certificate_chain_file = pki.dir.path() + "/missing.pem",
                                   .private_key_file = pki.server.key,
                                   .client_ca_file = std::nullopt});
    REQUIRE_FALSE(ctx.has_value());
    INFO(ctx.error().detail);
    CHECK(ctx.error().detail.starts_with("cannot read certificate file " + pki.dir.path() + "/missing.pem: "));
    CHECK(ctx.error().detail.find("No such file") != std::string::npos);
    CHECK(ctx.error().code == TlsErrc::configuration);
  }
  SUBCASE("key of another certificate") {
    auto ctx = TlsContext::server({.certificate_chain_file = pki.server.certificate,
                                   .private_key_file = pki.client.key,
                                   .client_ca_file = std::nullopt});
    REQUIRE_FALSE(ctx.has_value());
    INFO(ctx.error().detail);
    CHECK(ctx.error().detail.find(pki.client.key) != std::string::npos);
  }
  SUBCASE("missing client CA file") {
    auto ctx = TlsContext::server({.certificate_chain_file = pki.server.certificate,
                                   .private_key_file = pki.server.key,
                                   .client_ca_file = pki.dir.path() + "/nope.pem"});
    REQUIRE_FALSE(ctx.has_value());
    CHECK(ctx.error().detail.starts_with("cannot read CA file "));
  }
  SUBCASE("a CA file without certificates") {
    auto ctx = TlsContext::client({.ca_file = pki.dir.write("empty.pem", "not a certificate\n"),
                                   .certificate_chain_file = std::nullopt,
                                   .private_key_file = std::nullopt});
    REQUIRE_FALSE(ctx.has_value());
    CHECK(ctx.error().detail.starts_with("cannot read CA file "));
  }
  SUBCASE("client certificate without its key") {
    auto ctx = TlsContext::client({.ca_file = pki.ca_file,
                                   .certificate_chain_file = pki.client.certificate,
                                   .private_key_file = std::nullopt});
    REQUIRE_FALSE(ctx.has_value());
  }
  CHECK(ERR_peek_error() == 0);  // errors do not leak into the next call
}

}  // namespace
}  // namespace tsunagu::security
