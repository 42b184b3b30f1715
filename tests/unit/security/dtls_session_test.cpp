// Real DTLS 1.2 handshakes between two DtlsSession instances in memory: the
// test plays the network, moving each datagram from one side to the other
// (and losing some on purpose).
#include "security/dtls_session.hpp"

#include <doctest/doctest.h>

#include <thread>

namespace tsunagu::security {
namespace {

using namespace std::chrono_literals;

struct Pair {
  std::shared_ptr<const DtlsIdentity> client_identity = DtlsIdentity::generate();
  std::shared_ptr<const DtlsIdentity> server_identity = DtlsIdentity::generate();
  std::unique_ptr<DtlsSession> client;
  std::unique_ptr<DtlsSession> server;
  std::optional<TlsError> client_error;
  std::optional<TlsError> server_error;

  explicit Pair(DtlsSession::Options client_options = {}, DtlsSession::Options server_options = {},
                std::string client_expects = {}, std::string server_expects = {}) {
    client_options.role = DtlsSession::Role::client;
    client_options.peer_fingerprint = client_expects.empty() ? server_identity->fingerprint() : client_expects;
    server_options.role = DtlsSession::Role::server;
    server_options.peer_fingerprint = server_expects.empty() ? client_identity->fingerprint() : server_expects;
    auto c = DtlsSession::create(client_identity, client_options);
    auto s = DtlsSession::create(server_identity, server_options);
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().detail));
    REQUIRE_MESSAGE(s.has_value(), (s ? "" : s.error().detail));
    client = std::move(*c);
    server = std::move(*s);
  }

  // Delivers every datagram either side has queued, until both are quiet or one failed.
  // Returns how many datagrams went across.
  size_t exchange() {
    size_t moved = 0;
    for (int round = 0; round < 20; ++round) {
      bool any = false;
      for (Bytes& datagram : client->take_datagrams()) {
        any = true;
        ++moved;
        if (!server_error) {
          if (auto received = server->receive(datagram); !received) server_error = received.error();
        }
      }
      for (Bytes& datagram : server->take_datagrams()) {
        any = true;
        ++moved;
        if (!client_error) {
          if (auto received = client->receive(datagram); !received) client_error = received.error();
        }
      }
      if (!any) break;
    }
    return moved;
  }
};

TEST_CASE("identity: a P-256 certificate per call, its SHA-256 fingerprint in SDP form") {
  auto first = DtlsIdentity::generate();
  auto second = DtlsIdentity::generate();
  const std::string& fingerprint = first->fingerprint();
  CHECK(fingerprint.size() == 95);
  for (size_t i = 0; i < fingerprint.size(); ++i) {
    if (i % 3 == 2) {
      CHECK(fingerprint[i] == ':');
    } else {
      CHECK(std::string_view("0123456789ABCDEF").find(fingerprint[i]) != std::string_view::npos);
    }
  }
  CHECK(first->fingerprint() != second->fingerprint());
}

TEST_CASE("handshake: both sides complete and export the same SRTP keys") {
  Pair pair;
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE_FALSE(pair.client_error.has_value());
  REQUIRE_FALSE(pair.server_error.has_value());
  REQUIRE(pair.client->handshake_complete());
  REQUIRE(pair.server->handshake_complete());
  auto client_keys = pair.client->srtp_keying_material();
  auto server_keys = pair.server->srtp_keying_material();
  REQUIRE(client_keys.has_value());
  REQUIRE(server_keys.has_value());
  // Both prefer AEAD_AES_128_GCM by default.
  CHECK(client_keys->profile == SrtpProfile::aead_aes_128_gcm);
  CHECK(server_keys->profile == SrtpProfile::aead_aes_128_gcm);
  CHECK(client_keys->client_key.size() == 16);
  CHECK(client_keys->client_salt.size() == 12);
  CHECK(client_keys->client_key == server_keys->client_key);
  CHECK(client_keys->server_key == server_keys->server_key);
  CHECK(client_keys->client_salt == server_keys->client_salt);
  CHECK(client_keys->server_salt == server_keys->server_salt);
  CHECK(client_keys->client_key != client_keys->server_key);
  CHECK_FALSE(pair.client->retransmit_in().has_value());
}

TEST_CASE("handshake: SRTP_AES128_CM_SHA1_80 when the client offers only that") {
  DtlsSession::Options client_options;
  client_options.srtp_profiles = {SrtpProfile::aes128_cm_sha1_80};
  Pair pair(client_options);
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE(pair.client->handshake_complete());
  REQUIRE(pair.server->handshake_complete());
  auto keys = pair.server->srtp_keying_material();
  REQUIRE(keys.has_value());
  CHECK(keys->profile == SrtpProfile::aes128_cm_sha1_80);
  CHECK(keys->server_key.size() == 16);
  CHECK(keys->server_salt.size() == 14);
  CHECK(keys->server_key == pair.client->srtp_keying_material()->server_key);
}

TEST_CASE("handshake: a lowercase expected fingerprint matches") {
  Pair pair;
  // A client expecting the server's fingerprint written in lowercase.
  std::string expected = pair.server_identity->fingerprint();
  for (char& c : expected) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  DtlsSession::Options options;
  options.peer_fingerprint = expected;
  auto client = DtlsSession::create(pair.client_identity, options);
  REQUIRE(client.has_value());
  pair.client = std::move(*client);
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  CHECK(pair.client->handshake_complete());
  CHECK(pair.server->handshake_complete());
}

TEST_CASE("handshake: the server refuses a client whose certificate does not match the signalled fingerprint") {
  auto stranger = DtlsIdentity::generate();
  Pair pair({}, {}, {}, stranger->fingerprint());
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE(pair.server_error.has_value());
  CHECK(pair.server_error->code == TlsErrc::certificate_rejected);
  CHECK(pair.server_error->detail.find(stranger->fingerprint()) != std::string::npos);
  CHECK(pair.server_error->detail.find(pair.client_identity->fingerprint()) != std::string::npos);
  CHECK_FALSE(pair.server->handshake_complete());
  CHECK_FALSE(pair.server->srtp_keying_material().has_value());
  // The server's alert ended the client's handshake too.
  CHECK(pair.client_error.has_value());
  CHECK_FALSE(pair.client->handshake_complete());
}

TEST_CASE("handshake: the client refuses a server whose certificate does not match") {
  auto stranger = DtlsIdentity::generate();
  Pair pair({}, {}, stranger->fingerprint());
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE(pair.client_error.has_value());
  CHECK(pair.client_error->code == TlsErrc::certificate_rejected);
  CHECK_FALSE(pair.client->handshake_complete());
  CHECK_FALSE(pair.server->handshake_complete());
}

TEST_CASE("create: a fingerprint that is not 32 hex bytes is a configuration error") {
  DtlsSession::Options options;
  options.peer_fingerprint = "AB:CD";
  auto session = DtlsSession::create(DtlsIdentity::generate(), options);
  REQUIRE_FALSE(session.has_value());
  CHECK(session.error().code == TlsErrc::configuration);
  options.peer_fingerprint = std::string(95, 'G');
  CHECK_FALSE(DtlsSession::create(DtlsIdentity::generate(), options).has_value());
}

TEST_CASE("retransmission: a lost ClientHello is sent again once the timer expires") {
  DtlsSession::Options client_options;
  // Long enough that a loaded machine (ASan, shared cores) does not reach it
  // between start() and the "not due yet" check; OpenSSL already treats the
  // last 15 ms as expired.
  client_options.first_retransmit = 300ms;
  Pair pair(client_options);
  REQUIRE(pair.client->start().has_value());
  auto lost = pair.client->take_datagrams();  // the network drops the first flight
  REQUIRE_FALSE(lost.empty());
  auto due = pair.client->retransmit_in();
  REQUIRE(due.has_value());
  CHECK(*due <= 300ms);
  CHECK(*due > 200ms);
  // Not due yet: nothing is resent early.
  REQUIRE(pair.client->handle_timeout().has_value());
  CHECK(pair.client->take_datagrams().empty());
  std::this_thread::sleep_for(*due + 5ms);
  CHECK(*pair.client->retransmit_in() == 0ms);
  REQUIRE(pair.client->handle_timeout().has_value());
  auto resent = pair.client->take_datagrams();
  REQUIRE(resent.size() == lost.size());
  // The next wait doubles.
  auto next = pair.client->retransmit_in();
  REQUIRE(next.has_value());
  CHECK(*next > 300ms);
  CHECK(*next <= 600ms);
  for (Bytes& datagram : resent) REQUIRE(pair.server->receive(datagram).has_value());
  pair.exchange();
  CHECK(pair.client->handshake_complete());
  CHECK(pair.server->handshake_complete());
}

TEST_CASE("retransmission: a lost server flight is sent again and the handshake completes") {
  DtlsSession::Options server_options;
  server_options.first_retransmit = 40ms;
  Pair pair({}, server_options);
  REQUIRE(pair.client->start().has_value());
  for (Bytes& datagram : pair.client->take_datagrams()) REQUIRE(pair.server->receive(datagram).has_value());
  auto lost = pair.server->take_datagrams();  // ServerHello..ServerHelloDone, dropped
  REQUIRE_FALSE(lost.empty());
  // Within the MTU: boundaries are kept.
  for (const Bytes& datagram : lost) CHECK(datagram.size() <= 1200);
  auto due = pair.server->retransmit_in();
  REQUIRE(due.has_value());
  std::this_thread::sleep_for(*due + 5ms);
  REQUIRE(pair.server->handle_timeout().has_value());
  // Resent as separate records (OpenSSL packs the first sending into fewer
  // datagrams); each still within the MTU.
  auto resent = pair.server->take_datagrams();
  CHECK_FALSE(resent.empty());
  for (const Bytes& datagram : resent) CHECK(datagram.size() <= 1200);
  // The resent flight was taken away above; resend once more and deliver it.
  std::this_thread::sleep_for(*pair.server->retransmit_in() + 5ms);
  REQUIRE(pair.server->handle_timeout().has_value());
  pair.exchange();
  CHECK_FALSE(pair.client_error.has_value());
  CHECK_FALSE(pair.server_error.has_value());
  CHECK(pair.client->handshake_complete());
  CHECK(pair.server->handshake_complete());
}

TEST_CASE("close: close_notify reaches the peer") {
  Pair pair;
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE(pair.server->handshake_complete());
  pair.client->close();
  pair.exchange();
  CHECK(pair.server->peer_closed());
}

TEST_CASE("receive: garbage after the handshake is an error, not a crash") {
  Pair pair;
  REQUIRE(pair.client->start().has_value());
  pair.exchange();
  REQUIRE(pair.server->handshake_complete());
  Bytes junk(64, std::byte{0x17});
  auto received = pair.server->receive(junk);
  // DTLS drops records it cannot authenticate (RFC 6347 4.1.2.7): no error, nothing read.
  CHECK(received.has_value());
  CHECK(pair.server->dropped_application_bytes() == 0);
}

}  // namespace
}  // namespace tsunagu::security
