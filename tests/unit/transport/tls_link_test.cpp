// TlsLink over real TLS on 127.0.0.1 (port 0), with certificates minted for
// the test (issue 11 §8: a connect() refused at once is returned, not called
// back).
#include "transport/tls_link.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <string>

#include "../security/test_pki.hpp"
#include "test_tls_server.hpp"
#include "proto/stun_message.hpp"

using namespace tsunagu;
using tsunagu::security::testing::Pki;

namespace {

struct Counts {
  int ready = 0;
  int messages = 0;
  int closed = 0;
  std::string close_reason;
};

transport::LinkCallbacks counting(Counts& counts) {
  transport::LinkCallbacks callbacks;
  callbacks.on_ready = [&counts](transport::TlsLink&) { ++counts.ready; };
  callbacks.on_message = [&counts](transport::TlsLink&, ByteView) { ++counts.messages; };
  callbacks.on_closed = [&counts](transport::TlsLink&, std::string_view reason) {
    ++counts.closed;
    counts.close_reason = reason;
  };
  return callbacks;
}

// A client that sends one binding request once TLS is up and closes on the
// first answer.
transport::LinkCallbacks ask_once(Counts& counts) {
  auto callbacks = counting(counts);
  callbacks.on_ready = [&counts](transport::TlsLink& link) {
    ++counts.ready;
    proto::TransactionId id{};
    link.send(proto::MessageBuilder(proto::MessageClass::request, proto::method_binding, id).finish());
  };
  callbacks.on_message = [&counts](transport::TlsLink& link, ByteView) {
    ++counts.messages;
    link.close("done");
  };
  return callbacks;
}

std::shared_ptr<security::TlsContext> client_context(const Pki& pki) {
  security::TlsContext::ClientOptions options;
  options.ca_file = pki.ca_file;
  auto context = security::TlsContext::client(options);
  REQUIRE(context.has_value());
  return *context;
}

proto::SocketAddress parse(const std::string& text) {
  auto address = proto::SocketAddress::parse(text);
  REQUIRE(address.has_value());
  return *address;
}

// Runs the loop until nothing is left on it, at most `turns` turns.
void drain(uv_loop_t* loop, int turns = 100) {
  for (int i = 0; i < turns && uv_run(loop, UV_RUN_NOWAIT) != 0; ++i) {
  }
  REQUIRE(uv_loop_alive(loop) == 0);
}

bool ipv6_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

void check_refused_at_once(const std::string& target, int expected_code) {
  Pki pki;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  Counts counts;
  auto link = transport::TlsLink::connect(&loop, parse(target), client_context(pki), "node.example", counting(counts));
  REQUIRE_FALSE(link.has_value());
  CHECK(link.error().uv_code == expected_code);
  CHECK(link.error().detail.rfind("connect: ", 0) == 0);
  CHECK(counts.closed == 0);  // not before connect() returned...
  drain(&loop);
  CHECK(counts.closed == 0);  // ...nor later: the failure was reported once
  CHECK(counts.ready == 0);
  CHECK(counts.messages == 0);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace

// The kernel refuses a TCP connection to a multicast group inside connect(),
// before any packet is built: nothing leaves the host.
// The test listener whose accepted links call `answer` for each message (and
// count their callbacks).
struct LoopbackServer : transport::testing::TestTlsListener {
  Counts counts;
  std::function<void(LoopbackServer&, transport::TlsLink&, ByteView)> answer;

  LoopbackServer(uv_loop_t* l, const Pki& pki) : TestTlsListener(l, pki) {}
  void accept(uv_stream_t* listening) override {
    auto callbacks = counting(counts);
    callbacks.on_message = [this](transport::TlsLink& link, ByteView bytes) {
      ++counts.messages;
      answer(*this, link, bytes);
    };
    transport::TlsLink::accept(listening, tls, std::move(callbacks));
  }
};

TEST_CASE("connect: a destination the kernel refuses at once comes back from connect() and no callback runs") {
  check_refused_at_once("224.0.0.1:7401", UV_ENETUNREACH);
}

// A link-local IPv6 address without a scope is invalid: refused with EINVAL.
TEST_CASE("connect: an invalid address comes back from connect() and no callback runs") {
  if (!ipv6_available()) return;
  check_refused_at_once("[fe80::1]:7401", UV_EINVAL);
}

TEST_CASE("connect: a loopback listener completes TLS and a message goes both ways") {
  Pki pki;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  LoopbackServer server(&loop, pki);
  server.answer = [](LoopbackServer&, transport::TlsLink& link, ByteView bytes) { link.send(bytes); };  // echo
  proto::SocketAddress target = parse("127.0.0.1:" + std::to_string(server.port));

  Counts client;
  auto callbacks = ask_once(client);
  auto link = transport::TlsLink::connect(&loop, target, client_context(pki), "node.example", std::move(callbacks));
  REQUIRE(link.has_value());
  REQUIRE(*link != nullptr);

  // Bounded: at most 5 s of wall time, then the loop is stopped regardless.
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  uv_timer_start(&guard, [](uv_timer_t* t) { uv_stop(t->loop); }, 5000, 0);
  for (int i = 0; i < 1000 && (client.closed == 0 || server.counts.closed == 0); ++i)
    if (uv_run(&loop, UV_RUN_ONCE) == 0 || !uv_is_active(reinterpret_cast<uv_handle_t*>(&guard))) break;

  CHECK(client.ready == 1);
  CHECK(client.messages == 1);
  CHECK(client.closed == 1);
  CHECK(server.counts.ready == 1);
  CHECK(server.counts.messages == 1);
  CHECK(server.counts.closed == 1);  // the client's close reached it

  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  server.close_listener();
  drain(&loop);
  CHECK(uv_loop_close(&loop) == 0);
}

// A node keeps one set of callbacks per listener, not three std::functions per
// link: every accepted link runs the same ones, and lets go of them when it is
// deleted.
struct SharedCallbacksServer : transport::testing::TestTlsListener {
  Counts counts;
  std::shared_ptr<const transport::LinkCallbacks> callbacks;

  SharedCallbacksServer(uv_loop_t* l, const Pki& pki) : TestTlsListener(l, pki) {
    auto shared = std::make_shared<transport::LinkCallbacks>(counting(counts));
    shared->on_message = [this](transport::TlsLink& link, ByteView bytes) {
      ++counts.messages;
      link.send(bytes);
    };
    callbacks = std::move(shared);
  }
  void accept(uv_stream_t* listening) override { transport::TlsLink::accept(listening, tls, callbacks); }
};

TEST_CASE("accept: links sharing one set of callbacks each run them, and let go of them when deleted") {
  Pki pki;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  SharedCallbacksServer server(&loop, pki);
  proto::SocketAddress target = parse("127.0.0.1:" + std::to_string(server.port));

  Counts client;
  auto callbacks = ask_once(client);
  for (int i = 0; i < 3; ++i)
    REQUIRE(transport::TlsLink::connect(&loop, target, client_context(pki), "node.example", callbacks).has_value());
  // A link closed before its TCP connection completes: its connect request is
  // cancelled and freed, and on_closed still comes once.
  Counts cancelled;
  auto early = transport::TlsLink::connect(&loop, target, client_context(pki), "node.example", counting(cancelled));
  REQUIRE(early.has_value());
  (*early)->abort("changed my mind");
  CHECK(cancelled.closed == 1);

  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  uv_timer_start(&guard, [](uv_timer_t* t) { uv_stop(t->loop); }, 5000, 0);
  for (int i = 0; i < 2000 && (client.closed < 3 || server.counts.closed < 3); ++i)
    if (uv_run(&loop, UV_RUN_ONCE) == 0 || !uv_is_active(reinterpret_cast<uv_handle_t*>(&guard))) break;

  CHECK(client.messages == 3);
  CHECK(client.closed == 3);
  CHECK(server.counts.ready == 3);
  CHECK(server.counts.messages == 3);
  CHECK(server.counts.closed >= 3);  // the cancelled link may have reached accept() too
  CHECK(cancelled.closed == 1);
  CHECK(cancelled.ready == 0);

  uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
  server.close_listener();
  drain(&loop);
  CHECK(server.callbacks.use_count() == 1);  // every link is deleted, none holds them
  CHECK(uv_loop_close(&loop) == 0);
}

// The server link's peer here is a plain socket with a TlsSession, so the test
// sees the records on the wire.
TEST_CASE("send: the answers of one loop turn leave as one TLS record, in order; a close sends them first") {
  Pki pki;
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  LoopbackServer server(&loop, pki);
  // Three answers per request, from one callback: one loop turn.
  server.answer = [](LoopbackServer& self, transport::TlsLink& link, ByteView bytes) {
    for (int i = 0; i < 3; ++i) link.send(bytes);
    if (self.counts.messages == 2) link.close("second request answered");
  };
  sockaddr_in bound{};
  uv_ip4_addr("127.0.0.1", server.port, &bound);

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  REQUIRE(fd >= 0);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&bound), sizeof(sockaddr_in));
  REQUIRE((rc == 0 || errno == EINPROGRESS));
  auto client = security::TlsSession::create(client_context(pki), security::TlsSession::Role::client, "node.example");
  REQUIRE(client != nullptr);
  REQUIRE(client->start().has_value());

  Bytes wire;       // every byte the server sent after the handshake
  Bytes plaintext;  // what the client decrypted
  auto pump = [&](auto done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (client->has_output()) {
        Bytes out = client->take_output();
        REQUIRE(::send(fd, out.data(), out.size(), 0) == static_cast<ssize_t>(out.size()));
      }
      std::byte buffer[16384];
      ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got > 0) {
        if (client->handshake_complete()) wire.insert(wire.end(), buffer, buffer + got);
        REQUIRE(client->receive(ByteView(buffer, static_cast<size_t>(got)), plaintext).has_value());
      } else {
        usleep(1000);
      }
    }
  };
  pump([&] { return client->handshake_complete() && server.counts.ready == 1; });
  REQUIRE(client->handshake_complete());

  proto::TransactionId id{};
  Bytes request = proto::MessageBuilder(proto::MessageClass::request, proto::method_binding, id).finish();
  auto application_records = [&wire] {
    int records = 0;
    for (size_t at = 0; at + 5 <= wire.size();) {
      size_t record = (std::to_integer<size_t>(wire[at + 3]) << 8) | std::to_integer<size_t>(wire[at + 4]);
      if (wire[at] == std::byte{23}) ++records;
      at += 5 + record;
    }
    return records;
  };

  REQUIRE(client->send(request).has_value());
  pump([&] { return plaintext.size() >= 3 * request.size(); });
  CHECK(server.counts.messages == 1);
  CHECK(plaintext.size() == 3 * request.size());
  CHECK(application_records() == 1);  // was 3: one record per send()
  for (size_t i = 0; i < 3; ++i)
    CHECK(std::equal(request.begin(), request.end(), plaintext.begin() + static_cast<ptrdiff_t>(i * request.size())));

  // The second request's answers are sent, then the link is closed in the
  // same callback: the answers still come, before close_notify.
  plaintext.clear();
  REQUIRE(client->send(request).has_value());
  pump([&] { return client->peer_closed(); });
  CHECK(plaintext.size() == 3 * request.size());
  CHECK(client->peer_closed());
  CHECK(server.counts.closed == 1);

  ::close(fd);
  server.close_listener();
  drain(&loop);
  CHECK(uv_loop_close(&loop) == 0);
}
