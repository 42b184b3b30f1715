// TlsLink over real TLS on 127.0.0.1 (port 0), with certificates minted for
// the test (issue 11 §8: a connect() refused at once is returned, not called
// back).
#include "transport/tls_link.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "../security/test_pki.hpp"
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
  security::TlsContext::ServerOptions server_options;
  server_options.certificate_chain_file = pki.server.certificate;
  server_options.private_key_file = pki.server.key;
  auto server_tls = security::TlsContext::server(server_options);
  REQUIRE(server_tls.has_value());

  struct Server {
    uv_tcp_t listener{};
    std::shared_ptr<security::TlsContext> tls;
    Counts counts;
  } server;
  server.tls = *server_tls;
  uv_tcp_init(&loop, &server.listener);
  server.listener.data = &server;
  sockaddr_in any{};
  uv_ip4_addr("127.0.0.1", 0, &any);
  REQUIRE(uv_tcp_bind(&server.listener, reinterpret_cast<const sockaddr*>(&any), 0) == 0);
  REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&server.listener), 4, [](uv_stream_t* s, int status) {
            if (status != 0) return;
            auto* self = static_cast<Server*>(s->data);
            auto callbacks = counting(self->counts);
            callbacks.on_message = [self](transport::TlsLink& link, ByteView bytes) {
              ++self->counts.messages;
              link.send(bytes);  // echo
            };
            transport::TlsLink::accept(s, self->tls, std::move(callbacks));
          }) == 0);
  sockaddr_storage bound{};
  int length = sizeof bound;
  uv_tcp_getsockname(&server.listener, reinterpret_cast<sockaddr*>(&bound), &length);
  proto::SocketAddress target = transport::from_sockaddr(reinterpret_cast<sockaddr*>(&bound));

  proto::TransactionId id{};
  Bytes message = proto::MessageBuilder(proto::MessageClass::request, proto::method_binding, id).finish();
  Counts client;
  auto callbacks = counting(client);
  callbacks.on_ready = [&client, &message](transport::TlsLink& link) {
    ++client.ready;
    link.send(message);
  };
  callbacks.on_message = [&client](transport::TlsLink& link, ByteView) {
    ++client.messages;
    link.close("done");
  };
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
  uv_close(reinterpret_cast<uv_handle_t*>(&server.listener), nullptr);
  drain(&loop);
  CHECK(uv_loop_close(&loop) == 0);
}
