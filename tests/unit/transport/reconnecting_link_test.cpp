// ReconnectingLink against a real TLS server on 127.0.0.1 (port 0), with
// certificates minted for the test: the login hook, requests and their
// deadlines, keepalives, a server drop and the reconnect after the backoff,
// errors returned from the call that failed, and stop() leaving nothing open
// (uv_loop_close succeeds; ASan finds no leak).
#include "transport/reconnecting_link.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "../security/test_pki.hpp"
#include "test_tls_server.hpp"
#include "proto/signalling.hpp"

using namespace tsunagu;
using tsunagu::security::testing::Pki;
using transport::CloseReason;
using transport::LinkState;
using transport::RequestFailure;

namespace {

constexpr uint16_t kLogin = proto::method::login;
constexpr uint16_t kKeepalive = proto::method::keepalive;
constexpr uint16_t kEcho = proto::method::lookup;    // answered with success
constexpr uint16_t kSilent = proto::method::hangup;  // never answered

uint64_t mono_ms(uv_loop_t* loop) {
  uv_update_time(loop);
  return uv_now(loop);
}

// The server side: accepts links, answers login and echo requests, counts
// keepalives (answers them unless told not to), and can cut every link.
struct Server : transport::testing::TestTlsListener {
  bool answer_keepalives = true;
  uint16_t login_error = 0;
  int connections = 0, logins = 0, keepalives = 0, silent = 0;
  std::vector<uint64_t> connect_times;
  std::set<transport::TlsLink*> open;

  Server(uv_loop_t* l, const Pki& pki) : TestTlsListener(l, pki) {}
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  void accept(uv_stream_t* s) override {
    transport::LinkCallbacks callbacks;
    callbacks.on_message = [this](transport::TlsLink& link, ByteView bytes) { on_message(link, bytes); };
    callbacks.on_closed = [this](transport::TlsLink& link, std::string_view) { open.erase(&link); };
    if (auto* link = transport::TlsLink::accept(s, tls, std::move(callbacks))) {
      ++connections;
      connect_times.push_back(mono_ms(loop));
      open.insert(link);
    }
  }

  void on_message(transport::TlsLink& link, ByteView bytes) {
    auto decoded = proto::decode(bytes);
    REQUIRE(decoded.has_value());
    const auto& m = decoded->message;
    if (m.message_class != proto::MessageClass::request) return;
    auto reply = [&](proto::MessageClass cls) {
      auto r = proto::MessageBuilder::response_to(m, cls);
      if (cls == proto::MessageClass::error) r.add_error(login_error, "Refused");
      link.send(r.finish());
    };
    if (m.method == kLogin) {
      ++logins;
      reply(login_error != 0 ? proto::MessageClass::error : proto::MessageClass::success);
    } else if (m.method == kKeepalive) {
      ++keepalives;
      if (answer_keepalives) reply(proto::MessageClass::success);
    } else if (m.method == kEcho) {
      reply(proto::MessageClass::success);
    } else if (m.method == kSilent) {
      ++silent;
    }
  }

  void drop_all() {
    auto links = open;
    for (auto* link : links) link->abort("server drops the link");
  }
  void close() {
    drop_all();
    close_listener();
  }
};

// One loop, one server, one link under test, and everything it saw.
struct Harness {
  Pki pki;
  uv_loop_t loop{};
  std::unique_ptr<Server> server;
  std::unique_ptr<transport::ReconnectingLink> link;
  std::vector<LinkState> states;
  std::vector<transport::LinkLoss> losses;
  std::vector<uint64_t> loss_times;
  int connected = 0;
  bool login_ok = true;
  uint64_t keepalive_ms = 0;

  Harness() {
    REQUIRE(uv_loop_init(&loop) == 0);
    server = std::make_unique<Server>(&loop, pki);
  }
  ~Harness() {
    link.reset();
    if (server) server->close();
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
    }
    CHECK(uv_loop_close(&loop) == 0);  // every handle of the link closed
  }

  std::shared_ptr<security::TlsContext> client_tls() const {
    security::TlsContext::ClientOptions options;
    options.ca_file = pki.ca_file;
    auto context = security::TlsContext::client(options);
    REQUIRE(context.has_value());
    return *context;
  }

  transport::ReconnectingLinkOptions options() const {
    transport::ReconnectingLinkOptions o;
    o.address = server->address();
    o.verify_name = "127.0.0.1";
    o.tls = client_tls();
    o.request_timeout_ms = 2000;
    o.backoff = {200, 400};
    o.unit_random = [] { return 0.0; };  // delays are exactly half the ceiling
    o.keepalive_method = kKeepalive;
    return o;
  }

  // A login hook like the terminal's: one request, then established() or drop().
  transport::ReconnectingLinkEvents events() {
    transport::ReconnectingLinkEvents e;
    e.on_state = [this](LinkState s) { states.push_back(s); };
    e.on_connected = [this] {
      ++connected;
      auto sent = link->request(kLogin, {}, [this](const proto::Message* response, RequestFailure) {
        if (response != nullptr && response->message_class == proto::MessageClass::success) {
          link->established(keepalive_ms);
        } else {
          login_ok = false;
          link->drop("login refused", 1000);
        }
      });
      CHECK(sent.has_value());
    };
    e.on_lost = [this](const transport::LinkLoss& loss) {
      losses.push_back(loss);
      loss_times.push_back(mono_ms(&loop));
    };
    return e;
  }

  void make(transport::ReconnectingLinkOptions o, transport::ReconnectingLinkEvents e) {
    link = std::make_unique<transport::ReconnectingLink>(&loop, std::move(o), std::move(e));
  }

  // Closes the server, lets the loop settle, and tells whether anything
  // (of the link) is still open on it.
  // The server's listener is a member of the server: it may be freed only
  // once libuv has finished closing it (freeing it first left a dangling
  // handle in libuv's closing queue: uv__finish_close asserted in a CI check).
  void close_server() {
    server->close();
    for (int i = 0; i < 100 && !server->listener_closed; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    REQUIRE(server->listener_closed);
    server.reset();
  }

  bool loop_alive_without_server() {
    close_server();
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
    }
    return uv_loop_alive(&loop) != 0;
  }

  // Runs the loop until `done` holds, for at most `limit_ms` of wall time.
  template <class Done>
  bool run_until(Done done, uint64_t limit_ms = 5000) {
    uint64_t until = mono_ms(&loop) + limit_ms;
    uv_timer_t guard{};
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, [](uv_timer_t*) {}, 20, 20);  // wakes the loop to check `done`
    bool met = false;
    for (int turns = 0; turns < 100'000; ++turns) {
      if (done()) {
        met = true;
        break;
      }
      if (mono_ms(&loop) > until) break;
      uv_run(&loop, UV_RUN_ONCE);
    }
    // The guard lives on this stack frame: its close must have finished
    // before the frame goes (one NOWAIT turn is not always enough, e.g.
    // after uv_stop), or the next guard at the same address is initialised
    // while libuv still holds this one (uv__finish_close asserts).
    bool guard_closed = false;
    guard.data = &guard_closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&guard),
             [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
    for (int i = 0; i < 1000 && !guard_closed; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    REQUIRE(guard_closed);
    return met;
  }
};

}  // namespace

TEST_CASE("reconnecting link: connects, runs the login hook, and a request gets its response") {
  Harness h;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  CHECK(h.connected == 1);
  CHECK(h.server->logins == 1);
  CHECK(h.states == std::vector<LinkState>{LinkState::connecting, LinkState::logging_in, LinkState::up});
  CHECK(h.link->local_address().port != 0);

  int answered = 0;
  auto id = h.link->request(kEcho, {}, [&](const proto::Message* response, RequestFailure failure) {
    CHECK(failure == RequestFailure::none);
    REQUIRE(response != nullptr);
    CHECK(response->message_class == proto::MessageClass::success);
    ++answered;
  });
  REQUIRE(id.has_value());
  CHECK(h.link->requests_in_flight() == 1);
  REQUIRE(h.run_until([&] { return answered == 1; }));
  CHECK(h.link->requests_in_flight() == 0);
  CHECK(h.losses.empty());
}

TEST_CASE("reconnecting link: a request without an answer times out at its deadline and the link stays up") {
  Harness h;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  RequestFailure seen = RequestFailure::none;
  int calls = 0;
  uint64_t sent_at = mono_ms(&h.loop);
  uint64_t failed_at = 0;
  REQUIRE(h.link->request(kSilent, {}, [&](const proto::Message* response, RequestFailure failure) {
    CHECK(response == nullptr);
    seen = failure;
    ++calls;
    failed_at = mono_ms(&h.loop);
  }, 150).has_value());
  REQUIRE(h.run_until([&] { return calls > 0; }));
  CHECK(seen == RequestFailure::timed_out);
  CHECK(failed_at - sent_at >= 150);
  CHECK(failed_at - sent_at < 1500);
  CHECK(h.server->silent == 1);
  h.run_until([] { return false; }, 100);
  CHECK(calls == 1);
  CHECK(h.link->up());
  CHECK(h.link->stats().timeouts == 1);
}

// The loop's cached time stands still while a callback blocks (the CLI's
// interactive prompt did): a deadline counted from it would already be over.
TEST_CASE("reconnecting link: a request made after the loop was blocked still gets its whole timeout") {
  Harness h;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  usleep(300'000);  // the loop's time is now 300 ms behind
  auto sent_at = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point failed_at;
  REQUIRE(h.link->request(kSilent, {}, [&](const proto::Message*, RequestFailure) {
    failed_at = std::chrono::steady_clock::now();
  }, 200).has_value());
  REQUIRE(h.run_until([&] { return failed_at != std::chrono::steady_clock::time_point{}; }));
  // libuv counts whole milliseconds: up to one less than asked; a deadline
  // from the stale time would have expired at the next loop turn.
  CHECK(failed_at - sent_at >= std::chrono::milliseconds(199));
}

TEST_CASE("reconnecting link: a server drop fails pending requests once and reconnects after the backoff") {
  Harness h;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  std::vector<RequestFailure> failures;
  REQUIRE(h.link->request(kSilent, {}, [&](const proto::Message*, RequestFailure f) { failures.push_back(f); })
              .has_value());
  REQUIRE(h.run_until([&] { return h.server->silent == 1; }));
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.server->logins == 2 && h.link->up(); }));
  CHECK(failures == std::vector<RequestFailure>{RequestFailure::link_lost});
  REQUIRE(h.losses.size() == 1);
  CHECK(h.losses[0].was_up);
  CHECK(h.losses[0].reason == CloseReason::peer_closed);
  REQUIRE(h.losses[0].retry_in_ms.has_value());
  CHECK(*h.losses[0].retry_in_ms == 100);  // half of the 200 ms ceiling
  REQUIRE(h.server->connect_times.size() == 2);
  // on_lost is stamped just after the retry was scheduled: allow its millisecond.
  CHECK(h.server->connect_times[1] - h.loss_times[0] >= 99);
  CHECK(h.link->stats().attempts == 2);
  CHECK(h.losses[0].next_address == h.server->address());  // the only peer
}

TEST_CASE("reconnecting link: repeated failures back off longer each time and a success resets the backoff") {
  Harness h;
  auto o = h.options();
  h.make(o, h.events());
  // Nothing listens on the address: connect fails with ECONNREFUSED each time.
  uint16_t port = h.server->port;
  h.close_server();
  o.address = "127.0.0.1:" + std::to_string(port);
  h.make(o, h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.losses.size() >= 3; }));
  CHECK(h.losses[0].reason == CloseReason::connect_failed);
  CHECK(h.losses[0].retry_in_ms == 100);
  CHECK(h.losses[1].retry_in_ms == 200);
  CHECK(h.losses[2].retry_in_ms == 200);  // capped at 400 ms
  CHECK(h.loss_times[1] - h.loss_times[0] >= 99);  // each stamp may lag its schedule by 1 ms
  CHECK(h.loss_times[2] - h.loss_times[1] >= 199);
  CHECK(h.connected == 0);
}

// A terminal given several nodes of a cluster: a node that dies costs one
// attempt on the backoff, which keeps growing across peers while none answers.
TEST_CASE("reconnecting link: given alternates, each loss moves the next attempt to the following peer") {
  Harness h;
  Server second(&h.loop, h.pki);
  auto o = h.options();
  o.alternates = {{second.address(), "127.0.0.1"}};
  h.make(o, h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  CHECK(h.server->logins == 1);
  CHECK(second.logins == 0);
  std::string first = h.server->address();

  h.close_server();  // the first node dies with its links; its port refuses from now on
  REQUIRE(h.run_until([&] { return second.logins == 1 && h.link->up(); }));
  REQUIRE(h.losses.size() == 1);
  CHECK(h.losses[0].was_up);
  CHECK(h.losses[0].retry_in_ms == 100);
  CHECK(h.losses[0].next_address == second.address());

  second.drop_all();  // back to the first, which refuses, then the second again
  REQUIRE(h.run_until([&] { return second.logins == 2 && h.link->up(); }));
  REQUIRE(h.losses.size() == 3);
  CHECK(h.losses[1].next_address == first);
  CHECK(h.losses[1].retry_in_ms == 100);
  CHECK(h.losses[2].reason == CloseReason::connect_failed);
  CHECK(h.losses[2].next_address == second.address());
  CHECK(h.losses[2].retry_in_ms == 200);  // the backoff grew across peers

  h.link.reset();
  second.close();
  for (int i = 0; i < 100 && !second.listener_closed; ++i) uv_run(&h.loop, UV_RUN_NOWAIT);
  REQUIRE(second.listener_closed);
}

TEST_CASE("reconnecting link: a bad alternate address comes back from start()") {
  Harness h;
  auto o = h.options();
  o.alternates = {{"no-port-here", "x"}};
  h.make(o, h.events());
  auto started = h.link->start();
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code == transport::LinkErrorCode::bad_address);
}

TEST_CASE("reconnecting link: an unanswered keepalive ends the connection and the link comes back") {
  Harness h;
  h.keepalive_ms = 100;
  auto o = h.options();
  o.request_timeout_ms = 200;
  h.make(o, h.events());
  h.server->answer_keepalives = false;
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.server->logins >= 2; }));
  REQUIRE(!h.losses.empty());
  CHECK(h.losses[0].reason == CloseReason::keepalive_timeout);
  CHECK(h.server->keepalives >= 1);
}

TEST_CASE("reconnecting link: answered keepalives keep the link up") {
  Harness h;
  h.keepalive_ms = 50;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.server->keepalives >= 4; }));
  CHECK(h.losses.empty());
  CHECK(h.link->up());
  CHECK(h.link->stats().keepalives >= 4);
}

TEST_CASE("reconnecting link: a refused login drops the link and waits the delay the hook asked for") {
  Harness h;
  h.server->login_error = 403;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return !h.losses.empty(); }));
  CHECK_FALSE(h.login_ok);
  CHECK(h.losses[0].reason == CloseReason::dropped);
  CHECK_FALSE(h.losses[0].was_up);
  CHECK(h.losses[0].retry_in_ms == 1000);
  h.run_until([] { return false; }, 300);
  CHECK(h.server->connections == 1);  // not retried on the backoff
  CHECK(h.link->state() == LinkState::waiting);
}

TEST_CASE("reconnecting link: a bad address and a missing TLS context come back from start()") {
  Harness h;
  auto o = h.options();
  o.address = "no-port-here";
  int callbacks = 0;
  transport::ReconnectingLinkEvents e;
  e.on_state = [&](LinkState) { ++callbacks; };
  e.on_lost = [&](const transport::LinkLoss&) { ++callbacks; };
  h.make(o, e);
  auto started = h.link->start();
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code == transport::LinkErrorCode::bad_address);
  o = h.options();
  o.tls = nullptr;
  h.make(o, e);
  started = h.link->start();
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code == transport::LinkErrorCode::no_tls_context);
  h.run_until([] { return false; }, 50);
  CHECK(callbacks == 0);
}

// The kernel refuses TCP to a multicast group inside connect(): nothing leaves the host.
TEST_CASE("reconnecting link: without reconnect, a connect refused at once comes back from start()") {
  Harness h;
  auto o = h.options();
  o.address = "224.0.0.1:7401";
  o.reconnect = false;
  int callbacks = 0;
  transport::ReconnectingLinkEvents e;
  e.on_lost = [&](const transport::LinkLoss&) { ++callbacks; };
  h.make(o, e);
  auto started = h.link->start();
  REQUIRE_FALSE(started.has_value());
  CHECK(started.error().code == transport::LinkErrorCode::loop_refused);
  CHECK(started.error().uv_code == UV_ENETUNREACH);
  CHECK(h.link->state() == LinkState::idle);
  h.run_until([] { return false; }, 50);
  CHECK(callbacks == 0);
}

TEST_CASE("reconnecting link: with reconnect, a connect refused at once is reported from the loop and retried") {
  Harness h;
  auto o = h.options();
  o.address = "224.0.0.1:7401";
  bool inside_start = false;
  int losses_inside_start = 0;
  auto e = h.events();
  auto record = e.on_lost;
  e.on_lost = [&](const transport::LinkLoss& loss) {
    if (inside_start) ++losses_inside_start;
    record(loss);
  };
  h.make(o, e);
  inside_start = true;
  REQUIRE(h.link->start().has_value());
  inside_start = false;
  REQUIRE(h.run_until([&] { return h.losses.size() >= 2; }));
  CHECK(losses_inside_start == 0);
  CHECK(h.losses[0].reason == CloseReason::connect_failed);
  CHECK(h.link->stats().attempts >= 2);
}

TEST_CASE("reconnecting link: a request or send while not connected comes back as an error and no handler runs") {
  Harness h;
  h.make(h.options(), h.events());
  int handled = 0;
  auto before_start = h.link->request(kEcho, {}, [&](const proto::Message*, RequestFailure) { ++handled; });
  REQUIRE_FALSE(before_start.has_value());
  CHECK(before_start.error().code == transport::LinkErrorCode::not_connected);
  Bytes message = proto::MessageBuilder(proto::MessageClass::indication, kEcho, {}).finish();
  CHECK_FALSE(h.link->send(message).has_value());
  REQUIRE(h.link->start().has_value());
  auto connecting = h.link->request(kEcho, {}, [&](const proto::Message*, RequestFailure) { ++handled; });
  CHECK_FALSE(connecting.has_value());
  CHECK(h.link->start().error().code == transport::LinkErrorCode::already_started);
  h.run_until([&] { return h.link->up(); });
  CHECK(handled == 0);
}

TEST_CASE("reconnecting link: a host name is resolved on each attempt") {
  Harness h;
  auto o = h.options();
  o.address = "localhost:" + std::to_string(h.server->port);
  h.make(o, h.events());
  REQUIRE(h.link->start().has_value());
  CHECK(h.link->state() == LinkState::resolving);
  // localhost may resolve to ::1 first, where nothing listens: then it retries.
  bool linked = h.run_until([&] { return h.link->up(); }, 3000);
  CHECK((linked || !h.losses.empty()));
  CHECK(h.states.front() == LinkState::resolving);
}

TEST_CASE("reconnecting link: stop fails pending requests, sends close_notify and leaves no handle open") {
  Harness h;
  h.keepalive_ms = 1000;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  std::vector<RequestFailure> failures;
  REQUIRE(h.link->request(kSilent, {}, [&](const proto::Message*, RequestFailure f) { failures.push_back(f); })
              .has_value());
  bool closed = false;
  bool closing = h.link->stop([&] { closed = true; });
  CHECK(failures == std::vector<RequestFailure>{RequestFailure::stopped});
  CHECK(h.link->state() == LinkState::stopped);
  if (closing) REQUIRE(h.run_until([&] { return closed; }));
  REQUIRE(h.run_until([&] { return h.server->open.empty(); }));  // the server saw the close
  CHECK(h.losses.empty());
  CHECK_FALSE(h.link->stop());
  CHECK_FALSE(h.link->request(kEcho, {}, [](const proto::Message*, RequestFailure) {}).has_value());
  // The link object still exists, and nothing of it is left on the loop.
  CHECK_FALSE(h.loop_alive_without_server());
}

TEST_CASE("reconnecting link: destroying a link while it waits to retry leaves no handle open") {
  Harness h;
  h.make(h.options(), h.events());
  REQUIRE(h.link->start().has_value());
  REQUIRE(h.run_until([&] { return h.link->up(); }));
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.link->state() == LinkState::waiting; }));
  h.link.reset();
  CHECK_FALSE(h.loop_alive_without_server());
}
