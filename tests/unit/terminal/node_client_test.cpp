// NodeClient alone against a real TLS server on 127.0.0.1 (port 0) that
// speaks the few methods the client uses, with certificates minted for the
// test: a connect that fails (closed port, foreign CA, unreadable CA file),
// the login's answers (success with the node's view of us, 401, 429, a
// notice that displaces us), a request that times out, the reconnect with
// backoff after the server closes the link, and stop() (handler and event
// at once, nothing left open on the loop).
#include "terminal/node_client.hpp"

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <vector>

#include "../security/test_pki.hpp"
#include "../transport/test_tls_server.hpp"
#include "proto/signalling.hpp"
#include "security/scram.hpp"
#include "transport/tls_link.hpp"

using namespace tsunagu;
using namespace tsunagu::terminal;
using tsunagu::security::testing::Pki;

namespace {

constexpr uint16_t kSilent = proto::method::hangup;  // the server never answers it
const proto::SocketAddress kObserved = proto::SocketAddress::v4({198, 51, 100, 9}, 40000);

uint64_t mono_ms(uv_loop_t* loop) {
  uv_update_time(loop);
  return uv_now(loop);
}

// The node's side, as little of it as the client needs: login_begin and a
// SCRAM login against alice's credentials (RFC 7677's minimum iterations),
// or a password login (success with XOR-MAPPED-ADDRESS and
// KEEPALIVE-INTERVAL, or the error it is told to give), keepalive and lookup
// answered, kSilent never.
struct Server : transport::testing::TestTlsListener {
  security::scram::ServerCredentials credentials =
      security::scram::make_credentials("correct horse", security::scram::min_iterations);
  std::string client_first_bare, server_first;
  bool legacy_account = false;   // holds a scrypt hash: every SCRAM proof fails, the password works
  bool forge_signature = false;  // answers a good proof with a ServerSignature it made up
  int login_begins = 0, password_logins = 0;
  uint16_t login_error = 0;
  uint32_t retry_after_s = 0;
  bool displace_after_login = false;
  int connections = 0, logins = 0, silent = 0;
  std::vector<uint64_t> login_times;
  std::vector<std::string> users;
  std::vector<uint32_t> roles;
  size_t reported_addresses = 0;
  std::set<transport::TlsLink*> open;
  // Session-resumption tokens: every login success carries "token-N"; a
  // login_resume is answered with the next one, or 401 when refuse_tokens.
  bool issue_tokens = false, refuse_tokens = false;
  int tokens_issued = 0;
  std::vector<std::string> tokens_presented;

  Server(uv_loop_t* l, const Pki& pki) : TestTlsListener(l, pki) {}
  proto::SocketAddress address() const { return proto::SocketAddress::v4({127, 0, 0, 1}, port); }

  void accept(uv_stream_t* s) override {
    transport::LinkCallbacks callbacks;
    callbacks.on_message = [this](transport::TlsLink& link, ByteView bytes) { on_message(link, bytes); };
    callbacks.on_closed = [this](transport::TlsLink& link, std::string_view) { open.erase(&link); };
    if (auto* link = transport::TlsLink::accept(s, tls, std::move(callbacks))) {
      ++connections;
      open.insert(link);
    }
  }

  void on_message(transport::TlsLink& link, ByteView bytes) {
    auto decoded = proto::decode(bytes);
    REQUIRE(decoded.has_value());
    const auto& m = decoded->message;
    if (m.message_class != proto::MessageClass::request) return;
    if (m.method == kSilent) {
      ++silent;
      return;
    }
    if (m.method == proto::method::login_begin) {
      ++login_begins;
      auto first = security::scram::parse_client_first(proto::read_string(*m.find(proto::attr::scram_client_first)));
      REQUIRE(first.has_value());
      users.push_back(first->username);
      client_first_bare = first->bare;
      server_first = security::scram::build_server_first(
          {first->nonce + "the-test-servers-nonce", credentials.salt, credentials.iterations});
      auto ok = proto::MessageBuilder::response_to(m, proto::MessageClass::success);
      ok.add_string(proto::attr::scram_server_first, server_first);
      link.send(ok.finish());
      return;
    }
    if (m.method == proto::method::login_resume) {
      const auto* token = m.find(proto::attr::resume_token);
      REQUIRE(token != nullptr);
      tokens_presented.emplace_back(proto::read_string(*token));
      users.emplace_back(proto::read_string(*m.find(proto::attr::user_id)));
      if (refuse_tokens) {
        auto refused = proto::MessageBuilder::response_to(m, proto::MessageClass::error);
        refused.add_error(proto::error::unauthenticated, "Unauthenticated: resume token refused; log in again");
        link.send(refused.finish());
        return;
      }
      ++logins;
      login_times.push_back(mono_ms(loop));
      auto ok = proto::MessageBuilder::response_to(m, proto::MessageClass::success);
      ok.add_xor_address(proto::attr::xor_mapped_address, kObserved);
      ok.add_string(proto::attr::resume_token, "token-" + std::to_string(++tokens_issued));
      link.send(ok.finish());
      return;
    }
    if (m.method != proto::method::login) {
      link.send(proto::MessageBuilder::response_to(m, proto::MessageClass::success).finish());
      return;
    }
    ++logins;
    login_times.push_back(mono_ms(loop));
    bool proven = false;
    std::string server_final;
    if (const auto* final_attribute = m.find(proto::attr::scram_client_final)) {
      auto final_message = security::scram::parse_client_final(proto::read_string(*final_attribute));
      REQUIRE(final_message.has_value());
      std::string auth = security::scram::auth_message(client_first_bare, server_first, final_message->without_proof);
      proven = !legacy_account && security::scram::verify_client_proof(credentials.stored_key, auth, final_message->proof);
      Bytes signature = security::scram::server_signature(credentials.server_key, auth);
      if (forge_signature) signature[0] ^= std::byte{1};
      server_final = security::scram::build_server_final({signature, {}});
    } else {
      ++password_logins;
      if (const auto* user = m.find(proto::attr::user_id)) users.emplace_back(proto::read_string(*user));
      const auto* password = m.find(proto::attr::password);
      proven = password != nullptr && proto::read_string(*password) == "correct horse";
    }
    if (login_error == 0 && !proven) {
      auto refused = proto::MessageBuilder::response_to(m, proto::MessageClass::error);
      refused.add_error(proto::error::unauthenticated, "Unauthenticated: wrong user ID or password");
      link.send(refused.finish());
      return;
    }
    if (const auto* role = m.find(proto::attr::link_role)) roles.push_back(proto::read_u32(*role).value_or(99));
    reported_addresses = m.find_all(proto::attr::reported_address).size();
    if (login_error != 0) {
      auto refused = proto::MessageBuilder::response_to(m, proto::MessageClass::error);
      refused.add_error(login_error, "Refused by the test");
      if (retry_after_s != 0) refused.add_u32(proto::attr::retry_after, retry_after_s);
      link.send(refused.finish());
      return;
    }
    auto ok = proto::MessageBuilder::response_to(m, proto::MessageClass::success);
    ok.add_xor_address(proto::attr::xor_mapped_address, kObserved);
    ok.add_u32(proto::attr::keepalive_interval, 7);
    if (!server_final.empty()) ok.add_string(proto::attr::scram_server_final, server_final);
    if (issue_tokens) ok.add_string(proto::attr::resume_token, "token-" + std::to_string(++tokens_issued));
    link.send(ok.finish());
    if (displace_after_login) {
      proto::TransactionId id;
      id.bytes[0] = std::byte{1};
      proto::MessageBuilder notice(proto::MessageClass::indication, proto::method::notice, id);
      notice.add_u32(proto::attr::notice_code, proto::notice_code::displaced);
      notice.add_string(proto::attr::notice_reason, "logged in elsewhere");
      link.send(notice.finish());
    }
  }

  void drop_all() {
    auto links = open;
    for (auto* link : links) link->abort("the test's server drops the link");
  }
  void close() {
    drop_all();
    close_listener();
  }
};

// One loop, one server, one client under test, and every event it gave.
struct Harness {
  Pki pki;
  uv_loop_t loop{};
  std::unique_ptr<Server> server;
  std::unique_ptr<NodeClient> client;
  std::vector<LoginInfo> logins;
  std::vector<std::pair<std::string, uint64_t>> losses;  // reason, retry_in_ms
  std::vector<uint64_t> loss_times;
  std::vector<std::pair<ClientFailure, std::string>> stops;
  int connected = 0;

  Harness() {
    REQUIRE(uv_loop_init(&loop) == 0);
    server = std::make_unique<Server>(&loop, pki);
  }
  ~Harness() {
    client.reset();
    if (server) server->close();
    for (int i = 0; i < 100 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) {
    }
    CHECK(uv_loop_close(&loop) == 0);  // nothing of the client (or server) left open
  }

  NodeClientOptions options() const {
    NodeClientOptions o;
    o.node = server->address();
    o.verify_name = "127.0.0.1";
    o.ca_file = pki.ca_file;
    o.user_id = "alice";
    o.password = "correct horse";
    o.request_timeout_ms = 2000;
    return o;
  }

  void make(NodeClientOptions o) {
    NodeClientEvents e;
    e.on_logged_in = [this](const LoginInfo& info) { logins.push_back(info); };
    e.on_connected = [this] { ++connected; };
    e.on_link_lost = [this](std::string_view reason, uint64_t retry_in_ms) {
      losses.emplace_back(std::string(reason), retry_in_ms);
      loss_times.push_back(mono_ms(&loop));
    };
    e.on_stopped = [this](ClientFailure failure, std::string_view detail) { stops.emplace_back(failure, detail); };
    client = std::make_unique<NodeClient>(&loop, std::move(o), std::move(e));
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
    // The guard's close must finish before this frame goes (see unit/transport).
    bool guard_closed = false;
    guard.data = &guard_closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
    for (int i = 0; i < 1000 && !guard_closed; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    REQUIRE(guard_closed);
    return met;
  }
};

// A port on 127.0.0.1 nobody listens on: bound, then closed.
uint16_t closed_port(uv_loop_t* loop) {
  uv_tcp_t probe{};
  uv_tcp_init(loop, &probe);
  sockaddr_in any{};
  uv_ip4_addr("127.0.0.1", 0, &any);
  REQUIRE(uv_tcp_bind(&probe, reinterpret_cast<const sockaddr*>(&any), 0) == 0);
  sockaddr_storage bound{};
  int length = sizeof bound;
  uv_tcp_getsockname(&probe, reinterpret_cast<sockaddr*>(&bound), &length);
  uint16_t port = transport::from_sockaddr(reinterpret_cast<sockaddr*>(&bound)).port;
  uv_close(reinterpret_cast<uv_handle_t*>(&probe), nullptr);
  for (int i = 0; i < 10; ++i) uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

}  // namespace

TEST_CASE("node client: logs in and reports the node's view of us; its requests get their responses") {
  Harness h;
  auto options = h.options();
  options.extra_reported = {proto::SocketAddress::v4({192, 168, 1, 20}, 5060)};
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.logins.empty(); }));
  CHECK(h.client->logged_in());
  CHECK(h.client->link_state() == transport::LinkState::up);
  CHECK(h.logins[0].observed == kObserved);
  CHECK(h.logins[0].keepalive_interval_s == 7);
  CHECK(h.logins[0].local.port != 0);
  CHECK(h.server->users == std::vector<std::string>{"alice"});
  CHECK(h.server->roles == std::vector<uint32_t>{proto::link_role::presence});
  CHECK(h.server->reported_addresses == 2);  // our end of the link and the extra one

  int answered = 0;
  h.client->request(proto::method::lookup, [](proto::MessageBuilder& b) { b.add_string(proto::attr::user_id, "bob"); },
                    [&](const proto::Message* response, std::string_view error) {
                      REQUIRE(response != nullptr);
                      CHECK(error.empty());
                      CHECK(response->message_class == proto::MessageClass::success);
                      CHECK(response->method == proto::method::lookup);
                      ++answered;
                    });
  REQUIRE(h.run_until([&] { return answered == 1; }));
  CHECK(h.stops.empty());
  CHECK(h.losses.empty());
}

TEST_CASE("node client: a login refused with 401 stops with unauthenticated, 429 with rate_limited and the wait") {
  for (uint16_t code : {proto::error::unauthenticated, proto::error::too_many_attempts}) {
    Harness h;
    h.server->login_error = code;
    h.server->retry_after_s = code == proto::error::too_many_attempts ? 42 : 0;
    h.make(h.options());
    REQUIRE(h.client->start().has_value());
    REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
    REQUIRE(h.stops.size() == 1);
    CHECK_FALSE(h.client->logged_in());
    CHECK(h.logins.empty());
    if (code == proto::error::unauthenticated) {
      CHECK(h.stops[0].first == ClientFailure::unauthenticated);
    } else {
      CHECK(h.stops[0].first == ClientFailure::rate_limited);
      CHECK(h.stops[0].second.find("retry in 42 s") != std::string::npos);
    }
    // A 401 to SCRAM gets the one password login (an account not migrated yet).
    CHECK(h.server->logins == (code == proto::error::unauthenticated ? 2 : 1));
  }
}

TEST_CASE("node client: a displaced notice ends the session with displaced") {
  Harness h;
  h.server->displace_after_login = true;
  auto options = h.options();
  options.reconnect = true;  // a displaced session does not come back on its own
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
  CHECK(h.stops[0].first == ClientFailure::displaced);
  CHECK(h.stops[0].second == "logged in elsewhere");
  h.run_until([] { return false; }, 300);
  CHECK(h.server->logins == 1);
}

TEST_CASE("node client: connecting fails with network to a closed port and with tls to a node of another CA") {
  SUBCASE("closed port") {
    Harness h;
    auto options = h.options();
    options.node = proto::SocketAddress::v4({127, 0, 0, 1}, closed_port(&h.loop));
    h.make(options);
    auto started = h.client->start();
    if (started) REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
    ClientFailure failure = started ? h.stops.at(0).first : started.error().failure;
    CHECK(failure == ClientFailure::network);
    CHECK(h.logins.empty());
    CHECK(h.server->connections == 0);
  }
  SUBCASE("the node's certificate is not of our CA") {
    Harness h;
    auto options = h.options();
    options.ca_file = h.pki.other_ca_file;
    h.make(options);
    REQUIRE(h.client->start().has_value());
    REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
    CHECK(h.stops[0].first == ClientFailure::tls);
    CHECK(h.logins.empty());
    CHECK(h.server->logins == 0);
  }
  SUBCASE("the CA file cannot be read: start() says so and no event follows") {
    Harness h;
    auto options = h.options();
    options.ca_file = h.pki.dir.path() + "/missing.pem";
    h.make(options);
    auto started = h.client->start();
    REQUIRE_FALSE(started.has_value());
    CHECK(started.error().failure == ClientFailure::tls);
    h.run_until([] { return false; }, 200);
    CHECK(h.stops.empty());
    CHECK(h.server->connections == 0);
  }
}

TEST_CASE("node client: a request without an answer fails at its timeout and the session stays") {
  Harness h;
  auto options = h.options();
  options.request_timeout_ms = 300;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.logins.empty(); }));
  std::string error;
  bool answered = false, got_response = false;
  uint64_t sent_at = mono_ms(&h.loop), failed_at = 0;
  h.client->request(kSilent, {}, [&](const proto::Message* response, std::string_view why) {
    answered = true;
    got_response = response != nullptr;
    error = why;
    failed_at = mono_ms(&h.loop);
  });
  REQUIRE(h.run_until([&] { return answered; }));
  CHECK_FALSE(got_response);
  CHECK(error == transport::describe(transport::RequestFailure::timed_out));
  CHECK(failed_at - sent_at >= 300);
  CHECK(failed_at - sent_at < 2000);
  CHECK(h.server->silent == 1);
  CHECK(h.client->logged_in());
  CHECK(h.stops.empty());
  CHECK(h.losses.empty());
}

TEST_CASE("node client: when the server closes the link it reconnects after the backoff and logs in again") {
  Harness h;
  auto options = h.options();
  options.reconnect = true;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.logins.size() == 1; }));

  // Dropped while up: the first retry waits within the upper half of the
  // first ceiling (0.5 s), and the login comes no earlier.
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.logins.size() == 2; }));
  REQUIRE(h.losses.size() == 1);
  CHECK(h.losses[0].second >= 250);
  CHECK(h.losses[0].second <= 500);
  CHECK(h.server->login_times[1] + 5 >= h.loss_times[0] + h.losses[0].second);
  CHECK(h.client->logged_in());

  // The login reset the backoff; refusals (503, node trouble) grow it.
  h.server->login_error = proto::error::unavailable;
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.losses.size() == 3; }));
  CHECK(h.losses[1].second >= 250);
  CHECK(h.losses[1].second <= 500);
  CHECK(h.losses[2].second >= 500);
  CHECK(h.losses[2].second <= 1000);
  CHECK(h.server->login_times[2] + 5 >= h.loss_times[1] + h.losses[1].second);
  h.server->login_error = 0;
  REQUIRE(h.run_until([&] { return h.logins.size() == 3; }));
  CHECK(h.server->login_times.back() + 5 >= h.loss_times[2] + h.losses[2].second);
  CHECK(h.stops.empty());
  CHECK(h.client->link_state() == transport::LinkState::up);
  CHECK(h.logins.back().observed == kObserved);
}

// Nodes of one cluster: the first is a closed port (a node that is down),
// so the login lands on the second after one backoff delay; when that one
// drops the link, the next attempt goes back to the first.
TEST_CASE("node client: given other nodes, a failed connect or a lost link moves to the next node") {
  Harness h;
  auto options = h.options();
  options.reconnect = true;
  proto::SocketAddress down = proto::SocketAddress::v4({127, 0, 0, 1}, closed_port(&h.loop));
  options.other_nodes = {{h.server->address().to_string(), "127.0.0.1"}};
  options.node = down;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.logins.size() == 1; }));
  REQUIRE(h.losses.size() == 1);
  CHECK(h.losses[0].first.find("next node " + h.server->address().to_string()) != std::string::npos);
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.losses.size() == 2; }));
  CHECK(h.losses[1].first.find("next node " + down.to_string()) != std::string::npos);
  REQUIRE(h.run_until([&] { return h.logins.size() == 2; }));  // the first refuses again; back to the server
  CHECK(h.losses.size() == 3);
  CHECK(h.stops.empty());
}

TEST_CASE("node client: a --node list splits on commas and refuses an empty entry") {
  std::string error;
  auto one = split_node_list("node.example:7400", error);
  REQUIRE(one.has_value());
  CHECK(*one == std::vector<std::string>{"node.example:7400"});
  auto three = split_node_list("10.0.0.1:7400,[2001:db8::1]:7400,c.example:7400", error);
  REQUIRE(three.has_value());
  CHECK(*three == std::vector<std::string>{"10.0.0.1:7400", "[2001:db8::1]:7400", "c.example:7400"});
  for (const char* bad : {"", "a:1,", ",a:1", "a:1,,b:2"}) {
    error.clear();
    CHECK_FALSE(split_node_list(bad, error).has_value());
    CHECK(error.find("empty node") != std::string::npos);
  }
}

TEST_CASE("node client: a reconnect presents the last login's token; a refused token falls back to SCRAM on that link") {
  Harness h;
  auto options = h.options();
  options.reconnect = true;
  h.make(options);
  h.server->issue_tokens = true;
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.logins.size() == 1; }));
  CHECK_FALSE(h.logins[0].resumed);
  CHECK(h.server->login_begins == 1);

  // The link drops (a network change): one login_resume with token-1, no SCRAM.
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.logins.size() == 2; }));
  CHECK(h.logins[1].resumed);
  CHECK(h.server->tokens_presented == std::vector<std::string>{"token-1"});
  CHECK(h.server->login_begins == 1);
  CHECK(h.server->connections == 2);

  // Again: the token the resumed login got (token-2), not the first one.
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.logins.size() == 3; }));
  CHECK(h.server->tokens_presented == std::vector<std::string>{"token-1", "token-2"});

  // Refused (the password changed, say): SCRAM follows on the same connection.
  h.server->refuse_tokens = true;
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.logins.size() == 4; }));
  CHECK_FALSE(h.logins[3].resumed);
  CHECK(h.server->tokens_presented.back() == "token-3");
  CHECK(h.server->login_begins == 2);
  CHECK(h.server->connections == 4);
  CHECK(h.stops.empty());
  // And that SCRAM login's token is the one presented next.
  h.server->refuse_tokens = false;
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return h.logins.size() == 5; }));
  CHECK(h.server->tokens_presented.back() == "token-4");
  CHECK(h.logins[4].resumed);
}

TEST_CASE("node client: without reconnect, the server's close stops it with network") {
  Harness h;
  h.make(h.options());
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.logins.size() == 1; }));
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
  CHECK(h.stops[0].first == ClientFailure::network);
  CHECK(h.losses.empty());
  CHECK(h.server->logins == 1);
}

TEST_CASE("node client: stop() fails what is in flight, says so at once, and later calls fail at once") {
  Harness h;
  h.make(h.options());
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.logins.empty(); }));
  bool in_flight_failed = false;
  h.client->request(kSilent, {}, [&](const proto::Message* response, std::string_view why) {
    CHECK(response == nullptr);
    CHECK_FALSE(why.empty());
    in_flight_failed = true;
  });
  REQUIRE(h.run_until([&] { return h.server->silent == 1; }));
  h.client->stop();
  // on_stopped and the in-flight handler before stop() returned.
  REQUIRE(h.stops.size() == 1);
  CHECK(h.stops[0].first == ClientFailure::none);
  CHECK(in_flight_failed);
  CHECK_FALSE(h.client->logged_in());
  h.client->stop(ClientFailure::protocol);  // once only
  CHECK(h.stops.size() == 1);

  bool refused = false;
  h.client->request(proto::method::lookup, {}, [&](const proto::Message* response, std::string_view why) {
    CHECK(response == nullptr);
    CHECK(why == "not connected");
    refused = true;
  });
  CHECK(refused);  // before request() returned
  CHECK_FALSE(h.client->send_message(Bytes(20)));
  // The server sees the link close; the loop empties once the server closes too.
  REQUIRE(h.run_until([&] { return h.server->open.empty(); }));
}

TEST_CASE("node client: authenticate = false only connects (for register)") {
  Harness h;
  auto options = h.options();
  options.authenticate = false;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.connected == 1; }));
  CHECK(h.server->logins == 0);
  CHECK_FALSE(h.client->logged_in());
  CHECK(h.client->link_state() == transport::LinkState::up);
  int answered = 0;
  h.client->request(proto::method::lookup, {}, [&](const proto::Message* response, std::string_view) {
    CHECK(response != nullptr);
    ++answered;
  });
  REQUIRE(h.run_until([&] { return answered == 1; }));
}

TEST_CASE("node client: logs in by SCRAM: the password never reaches the node, and the node's signature is checked") {
  Harness h;
  h.make(h.options());
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.logins.empty(); }));
  CHECK(h.server->login_begins == 1);
  CHECK(h.server->logins == 1);
  CHECK(h.server->password_logins == 0);
  CHECK(h.server->users == std::vector<std::string>{"alice"});
}

TEST_CASE("node client: a node whose ServerSignature is wrong is refused, and no password is sent to it") {
  Harness h;
  h.server->forge_signature = true;
  auto options = h.options();
  options.reconnect = true;  // refusing the node is final, not a reason to retry
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
  CHECK(h.stops[0].first == ClientFailure::protocol);
  CHECK(h.stops[0].second.find("could not prove") != std::string::npos);
  CHECK(h.logins.empty());
  CHECK_FALSE(h.client->logged_in());
  CHECK(h.server->password_logins == 0);
}

TEST_CASE("node client: an account still holding a scrypt hash logs in by its one password login") {
  Harness h;
  h.server->legacy_account = true;
  h.make(h.options());
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.logins.empty(); }));
  CHECK(h.server->logins == 2);
  CHECK(h.server->password_logins == 1);
}

TEST_CASE("node client: without password_fallback a 401 to SCRAM stops at once") {
  Harness h;
  h.server->legacy_account = true;
  auto options = h.options();
  options.password_fallback = false;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return !h.stops.empty(); }));
  CHECK(h.stops[0].first == ClientFailure::unauthenticated);
  CHECK(h.server->password_logins == 0);
}

TEST_CASE("node client: a reconnect logs in by SCRAM again, and after a SCRAM success never falls back to the password") {
  Harness h;
  auto options = h.options();
  options.reconnect = true;
  h.make(options);
  REQUIRE(h.client->start().has_value());
  REQUIRE(h.run_until([&] { return h.logins.size() == 1; }));
  h.server->legacy_account = true;  // from now on every proof fails (a node that lost its keys)
  h.server->drop_all();
  REQUIRE(h.run_until([&] { return !h.stops.empty(); }, 8000));
  CHECK(h.stops[0].first == ClientFailure::unauthenticated);
  CHECK(h.server->login_begins == 2);
  CHECK(h.server->password_logins == 0);
}
