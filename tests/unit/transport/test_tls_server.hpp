// The listening half of a test's TLS server on 127.0.0.1 (port 0), with the
// certificate of a test Pki; each accepted connection goes to accept(). Shared
// by the tests of the client side's link (transport/) and of NodeClient
// (terminal/). The listener is a member: close_listener(), then run the loop
// until listener_closed, before the server is freed, or libuv's closing queue
// keeps a dangling handle (uv__finish_close asserts).
#pragma once

#include <uv.h>

#include <doctest/doctest.h>

#include <memory>

#include "../security/test_pki.hpp"
#include "security/tls_session.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::transport::testing {

struct TestTlsListener {
  uv_loop_t* loop;
  uv_tcp_t listener{};
  std::shared_ptr<security::TlsContext> tls;
  uint16_t port = 0;
  bool listener_closed = false;

  TestTlsListener(uv_loop_t* l, const security::testing::Pki& pki) : loop(l) {
    security::TlsContext::ServerOptions options;
    options.certificate_chain_file = pki.server.certificate;
    options.private_key_file = pki.server.key;
    auto context = security::TlsContext::server(options);
    REQUIRE(context.has_value());
    tls = *context;
    uv_tcp_init(loop, &listener);
    listener.data = this;
    sockaddr_in any{};
    uv_ip4_addr("127.0.0.1", 0, &any);
    REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<const sockaddr*>(&any), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 8, [](uv_stream_t* s, int status) {
              if (status == 0) static_cast<TestTlsListener*>(s->data)->accept(s);
            }) == 0);
    sockaddr_storage bound{};
    int length = sizeof bound;
    uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&bound), &length);
    port = from_sockaddr(reinterpret_cast<sockaddr*>(&bound)).port;
  }
  TestTlsListener(const TestTlsListener&) = delete;
  TestTlsListener& operator=(const TestTlsListener&) = delete;
  virtual ~TestTlsListener() = default;

  virtual void accept(uv_stream_t* listening) = 0;

  void close_listener() {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener),
             [](uv_handle_t* h) { static_cast<TestTlsListener*>(h->data)->listener_closed = true; });
  }
};

}  // namespace tsunagu::transport::testing
