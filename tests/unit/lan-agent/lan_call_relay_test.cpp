// LanCallRelay on loopback: a real allocation table (LMDB in a temporary
// directory), the agent's real LAN CA and terminal bundles (lan_pki.hpp), and
// a "terminal" that is a TlsLink server on 127.0.0.1 in this process.
#include "lan-agent/lan_call_relay.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <functional>

#include "lan-agent/lan_pki.hpp"
#include "proto/signalling.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempDir;
using tsunagu::lanagent::testing::TempTable;
namespace sig = tsunagu::proto;

namespace {

const int64_t T = ::time(nullptr);
constexpr const char* kMac = "02:0a:0b:0c:0d:0e";

struct Decoded {
  Bytes bytes;
  proto::Message message;
};

Decoded decode(ByteView bytes) {
  Decoded d;
  d.bytes.assign(bytes.begin(), bytes.end());
  auto decoded = proto::decode(d.bytes);
  REQUIRE(decoded.has_value());
  d.message = decoded->message;
  return d;
}

uint16_t error_of(const proto::Message& m) {
  if (m.message_class != proto::MessageClass::error) return 0;
  const auto* code = m.find(sig::attr::error_code);
  return code ? proto::read_error_code(*code)->code : 0;
}

std::string reason_of(const proto::Message& m) {
  const auto* code = m.find(sig::attr::error_code);
  auto e = code ? proto::read_error_code(*code) : std::nullopt;
  return e ? std::string(e->reason) : std::string();
}

// A port on 127.0.0.1 that accepts TCP connections (the kernel's backlog) but
// never speaks TLS: a terminal that hangs in the handshake.
struct SilentListener {
  int fd = -1;
  uint16_t port = 0;
  SilentListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    socklen_t length = sizeof(address);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd); }
};

// A LAN terminal: a TLS server on 127.0.0.1 presenting `bundle`'s certificate.
// It answers a ring with success and records what it received.
struct Terminal {
  uv_tcp_t listener{};
  uint16_t port = 0;
  std::shared_ptr<security::TlsContext> tls;
  std::vector<Decoded> received;
  transport::TlsLink* link = nullptr;
  bool answer_rings = true;
  std::function<void(proto::MessageBuilder&)> answer_with;  // what the answer carries beyond PROTOCOL-VERSION

  Terminal(uv_loop_t* loop, const std::string& bundle) {
    security::TlsContext::ServerOptions options;
    options.certificate_chain_file = bundle + "/terminal.crt";
    options.private_key_file = bundle + "/terminal.key";
    options.client_ca_file = bundle + "/ca.crt";
    auto context = security::TlsContext::server(options);
    REQUIRE(context.has_value());
    tls = *context;
    REQUIRE(uv_tcp_init(loop, &listener) == 0);
    listener.data = this;
    sockaddr_in address{};
    uv_ip4_addr("127.0.0.1", 0, &address);
    REQUIRE(uv_tcp_bind(&listener, reinterpret_cast<sockaddr*>(&address), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 4, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<Terminal*>(s->data)->on_connection(s);
    }) == 0);
    int length = sizeof(address);
    REQUIRE(uv_tcp_getsockname(&listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    port = ntohs(address.sin_port);
  }
  void on_connection(uv_stream_t* server) {
    transport::LinkCallbacks callbacks;
    callbacks.on_message = [this](transport::TlsLink& from, ByteView bytes) {
      received.push_back(decode(bytes));
      const proto::Message& m = received.back().message;
      if (answer_rings && m.message_class == proto::MessageClass::request && m.method == sig::method::ring) {
        auto ok = proto::MessageBuilder::response_to(m, proto::MessageClass::success);
        ok.add_u32(sig::attr::protocol_version, sig::protocol_version);
        if (answer_with) answer_with(ok);
        from.send(ok.finish());
      }
    };
    callbacks.on_closed = [this](transport::TlsLink& closed, std::string_view) {
      if (link == &closed) link = nullptr;
    };
    link = transport::TlsLink::accept(server, tls, std::move(callbacks));
  }
  void close() {
    if (link) link->abort("test over");
    uv_close(reinterpret_cast<uv_handle_t*>(&listener), nullptr);
  }
};

// The agent's side: table with extension 4106 bound (a live lease on
// 127.0.0.1 unless `leased` is false), the LAN PKI, and the relay.
struct Fixture {
  TempDir data, bundles;
  TempTable t;
  uv_loop_t loop{};
  std::optional<AgentCore> core;
  std::shared_ptr<security::TlsContext> agent_tls;
  std::vector<Decoded> to_node;
  std::vector<std::string> hang_ups;
  std::unique_ptr<LanCallRelay> relay;

  explicit Fixture(bool leased = true) {
    REQUIRE(uv_loop_init(&loop) == 0);
    core.emplace(*t.table, AgentIdentity{"acme", {"acme"}, {}}, EdgePolicy());
    REQUIRE(t.table->bind("4106", *alloc::ClientRef::mac(kMac), T).has_value());
    if (leased) REQUIRE(t.table->apply(grant(kMac, "127.0.0.1", T + 600, T), T).has_value());
    auto pki = ensure_lan_pki(data.path(), "acme");
    REQUIRE_MESSAGE(pki.has_value(), pki.error());
    security::TlsContext::ClientOptions options;
    options.ca_file = pki->ca_certificate;
    options.certificate_chain_file = pki->agent_certificate;
    options.private_key_file = pki->agent_key;
    auto context = security::TlsContext::client(options);
    REQUIRE(context.has_value());
    agent_tls = *context;
  }
  // A terminal bundle for `extension` (terminal.crt names terminal:EXT).
  std::string bundle_for(const std::string& extension) {
    std::string out = bundles.path() + "/t" + extension;
    auto issued = issue_terminal_bundle(data.path(), "acme", extension, out, TerminalIssue{30, false, T});
    REQUIRE_MESSAGE(issued.has_value(), issued.error());
    return out;
  }
  void start_relay(uint16_t terminal_port, int64_t connect_timeout_ms = 3000,
                   std::vector<std::string> call_waiting = {}) {
    CallSettings settings;
    settings.terminal_port = terminal_port;
    settings.connect_timeout_ms = connect_timeout_ms;
    settings.call_waiting = std::move(call_waiting);
    auto revocations = std::make_shared<TerminalRevocations>(terminal_certificate_files(data.path()).revoked);
    LanCallRelay::ToNode node;
    node.send = [this](ByteView message) { to_node.push_back(decode(message)); };
    node.hang_up = [this](const std::string& call_id) { hang_ups.push_back(call_id); };
    relay = std::make_unique<LanCallRelay>(&loop, *core, settings, agent_tls, revocations, [] { return T; },
                                           std::move(node));
  }
  // The node's ring; `more` adds what a particular call carries (MEDIA-PROFILE, an offer, ...).
  Bytes ring(const std::string& call_id, const std::string& user = "4106@acme",
             const std::function<void(proto::MessageBuilder&)>& more = {}) {
    proto::TransactionId id{};
    id.bytes[0] = std::byte{0x17};
    proto::MessageBuilder b(proto::MessageClass::request, sig::method::ring, id);
    b.add_u32(sig::attr::protocol_version, sig::protocol_version);
    b.add_string(sig::attr::call_id, call_id);
    b.add_string(sig::attr::user_id, user);
    b.add_string(sig::attr::caller_id, "alice");
    if (more) more(b);
    Bytes raw = b.finish();
    auto decoded = proto::decode(raw);
    REQUIRE(decoded.has_value());
    relay->on_node_message(decoded->message, raw);
    return raw;
  }
  // Turns the loop until `done` or 5 s.
  template <typename Done>
  void run_until(Done done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(&loop, UV_RUN_NOWAIT), ::usleep(1000);
  }
  ~Fixture() {
    if (relay) relay->stop();
    for (int i = 0; i < 200 && uv_run(&loop, UV_RUN_NOWAIT) != 0; ++i) ::usleep(1000);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

constexpr const char* kCall = "0123456789abcdef0123456789abcdef";

}  // namespace

TEST_CASE("lan call relay: a ring to an extension without a live lease is refused with 481") {
  Fixture f(false);
  f.start_relay(1);
  f.ring(kCall);
  REQUIRE(f.to_node.size() == 1);
  CHECK(f.to_node[0].message.method == sig::method::ring);
  CHECK(error_of(f.to_node[0].message) == 481);
  CHECK(f.relay->active_calls() == 0);
  CHECK(f.relay->stats().refused == 1);
}

TEST_CASE("lan call relay: a second ring for an extension in a call is busy (486) unless [calls] call_waiting "
          "names it; a third always is") {
  const std::string second = "1123456789abcdef0123456789abcdef", third = "2123456789abcdef0123456789abcdef";
  for (bool waiting : {false, true}) {
    CAPTURE(waiting);
    Fixture f;
    Terminal terminal(&f.loop, f.bundle_for("4106"));
    f.start_relay(terminal.port, 3000, waiting ? std::vector<std::string>{"4106"} : std::vector<std::string>{});
    f.ring(kCall);
    f.run_until([&] { return !f.to_node.empty(); });
    REQUIRE(f.to_node.size() == 1);
    CHECK(f.to_node[0].message.message_class == proto::MessageClass::success);
    f.ring(second);  // a refusal is answered at once; a waiting call goes to the terminal
    if (!waiting) {
      REQUIRE(f.to_node.size() == 2);
      CHECK(error_of(f.to_node[1].message) == 486);
      CHECK(f.relay->active_calls() == 1);
    } else {
      CHECK(f.to_node.size() == 1);
      CHECK(f.relay->active_calls() == 2);
      f.ring(third);
      REQUIRE(f.to_node.size() == 2);
      CHECK(error_of(f.to_node[1].message) == 486);
      CHECK(f.relay->active_calls() == 2);
    }
    terminal.close();
  }
}

TEST_CASE("lan call relay: a ring to an extension the agent does not know is refused with 404") {
  Fixture f;
  f.start_relay(1);
  f.ring(kCall, "4999@acme");
  REQUIRE(f.to_node.size() == 1);
  CHECK(error_of(f.to_node[0].message) == 404);
}

TEST_CASE("lan call relay: a terminal that never finishes its handshake gives 480 within the connect timeout") {
  Fixture f;
  SilentListener silent;
  f.start_relay(silent.port, 300);
  // The timer counts from the loop's cached time, stale since the PKI was made.
  uv_update_time(&f.loop);
  auto started = std::chrono::steady_clock::now();
  f.ring(kCall);
  CHECK(f.relay->active_calls() == 1);
  f.run_until([&] { return !f.to_node.empty(); });
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  REQUIRE(f.to_node.size() == 1);
  CHECK(error_of(f.to_node[0].message) == 480);
  CHECK(reason_of(f.to_node[0].message).find("did not answer within 300 ms") != std::string::npos);
  CHECK(elapsed.count() >= 290);
  CHECK(elapsed.count() < 2000);
  CHECK(f.relay->active_calls() == 0);
}

TEST_CASE("lan call relay: a closed terminal port gives 480") {
  Fixture f;
  uint16_t port;
  {
    SilentListener gone;  // bound and closed again: nothing listens there now
    port = gone.port;
  }
  f.start_relay(port, 3000);
  f.ring(kCall);
  f.run_until([&] { return !f.to_node.empty(); });
  REQUIRE(f.to_node.size() == 1);
  CHECK(error_of(f.to_node[0].message) == 480);
  CHECK(f.relay->active_calls() == 0);
}

TEST_CASE("lan call relay: a terminal presenting another extension's certificate is refused with 480") {
  Fixture f;
  Terminal terminal(&f.loop, f.bundle_for("4107"));
  f.start_relay(terminal.port);
  f.ring(kCall);
  f.run_until([&] { return !f.to_node.empty(); });
  REQUIRE(f.to_node.size() == 1);
  CHECK(error_of(f.to_node[0].message) == 480);
  CHECK(f.relay->stats().unauthenticated == 1);
  CHECK(f.relay->stats().connected == 0);
  f.run_until([&] { return terminal.link == nullptr; });
  // The ring never reached the impostor.
  CHECK(terminal.received.empty());
  terminal.close();
}

TEST_CASE("lan call relay: the right terminal gets the ring, its answer and path report go to the node, its hang-up "
          "ends the call") {
  Fixture f;
  Terminal terminal(&f.loop, f.bundle_for("4106"));
  f.start_relay(terminal.port);
  f.ring(kCall);
  f.run_until([&] { return !f.to_node.empty(); });
  REQUIRE(f.to_node.size() == 1);
  CHECK(f.to_node[0].message.message_class == proto::MessageClass::success);
  CHECK(f.to_node[0].message.method == sig::method::ring);
  CHECK(f.to_node[0].message.transaction_id.bytes[0] == std::byte{0x17});
  REQUIRE(terminal.received.size() == 1);
  CHECK(terminal.received[0].message.method == sig::method::ring);
  CHECK(f.relay->stats().connected == 1);
  CHECK(f.relay->stats().answered == 1);

  // A node call_event reaches the terminal as it is.
  proto::MessageBuilder event(proto::MessageClass::indication, sig::method::call_event, proto::TransactionId{});
  event.add_string(sig::attr::call_id, kCall);
  event.add_u32(sig::attr::call_state, sig::call_state::accepted);
  Bytes raw = event.finish();
  f.relay->on_node_message(decode(raw).message, raw);
  f.run_until([&] { return terminal.received.size() == 2; });
  REQUIRE(terminal.received.size() == 2);
  CHECK(terminal.received[1].message.method == sig::method::call_event);

  // Its call_path report (listen --lan, once connected) goes to the node as it
  // is, for the call end audit line; one naming another call does not.
  auto path_report = [](const std::string& call_id) {
    proto::MessageBuilder path(proto::MessageClass::indication, sig::method::call_path, proto::TransactionId{});
    path.add_u32(sig::attr::protocol_version, sig::protocol_version);
    path.add_string(sig::attr::call_id, call_id);
    path.add_string(sig::attr::ice_path, "host/prflx");
    return path.finish();
  };
  REQUIRE(terminal.link != nullptr);
  terminal.link->send(path_report(std::string(32, 'e')));
  terminal.link->send(path_report(kCall));
  f.run_until([&] { return f.to_node.size() == 2; });
  REQUIRE(f.to_node.size() == 2);
  CHECK(f.to_node[1].message.method == sig::method::call_path);
  CHECK(f.to_node[1].message.message_class == proto::MessageClass::indication);
  const auto* reported = f.to_node[1].message.find(sig::attr::ice_path);
  REQUIRE(reported != nullptr);
  CHECK(proto::read_string(*reported) == "host/prflx");
  CHECK(f.relay->stats().paths_relayed == 1);

  // The terminal hangs up: the relay answers it and tells the node.
  proto::TransactionId hangup_id{};
  hangup_id.bytes[0] = std::byte{0x33};
  proto::MessageBuilder hangup(proto::MessageClass::request, sig::method::hangup, hangup_id);
  hangup.add_string(sig::attr::call_id, kCall);
  REQUIRE(terminal.link != nullptr);
  terminal.link->send(hangup.finish());
  f.run_until([&] { return !f.hang_ups.empty() && terminal.received.size() == 3; });
  CHECK(f.hang_ups == std::vector<std::string>{kCall});
  REQUIRE(terminal.received.size() == 3);
  CHECK(terminal.received[2].message.message_class == proto::MessageClass::success);
  CHECK(terminal.received[2].message.method == sig::method::hangup);
  CHECK(f.relay->active_calls() == 0);
  terminal.close();
}

// docs/webrtc.md: a page calling 4106@acme. The node's ring says MEDIA-PROFILE
// webrtc and carries the page's SDP offer; the terminal decides from them to
// answer in WebRTC's profile, so the agent must pass both on as they came, and
// the terminal's SDP answer back to the node.
TEST_CASE("lan call relay: a ring from a page reaches the terminal with MEDIA-PROFILE and its SDP offer unchanged, "
          "and the terminal's SDP answer reaches the node") {
  const std::string offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n";
  const std::string answer = "v=0\r\no=tsunagu 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
  Fixture f;
  Terminal terminal(&f.loop, f.bundle_for("4106"));
  terminal.answer_with = [&](proto::MessageBuilder& ok) { ok.add_string(sig::attr::ice_description, answer); };
  f.start_relay(terminal.port);
  Bytes sent = f.ring(kCall, "4106@acme", [&](proto::MessageBuilder& b) {
    b.add_string(sig::attr::ice_description, offer);
    b.add_u32(sig::attr::call_media, 0);
    b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc);
    b.add_string(sig::attr::turn_username, "1700000000:4106@acme");
  });
  f.run_until([&] { return !f.to_node.empty(); });
  REQUIRE(terminal.received.size() == 1);
  CHECK(terminal.received[0].bytes == sent);  // byte for byte: nothing dropped, added or reordered
  const proto::Message& ring = terminal.received[0].message;
  const auto* profile = ring.find(sig::attr::media_profile);
  REQUIRE(profile != nullptr);
  CHECK(proto::read_u32(*profile).value_or(0) == sig::media_profile::webrtc);
  const auto* offered = ring.find(sig::attr::ice_description);
  REQUIRE(offered != nullptr);
  CHECK(proto::read_string(*offered) == offer);

  REQUIRE(f.to_node.size() == 1);
  CHECK(f.to_node[0].message.message_class == proto::MessageClass::success);
  const auto* answered = f.to_node[0].message.find(sig::attr::ice_description);
  REQUIRE(answered != nullptr);
  CHECK(proto::read_string(*answered) == answer);
  terminal.close();
}

TEST_CASE("lan call relay: a terminal's 603 for a page's ring (no audio) reaches the node as it was sent") {
  Fixture f;
  Terminal terminal(&f.loop, f.bundle_for("4106"));
  terminal.answer_rings = false;
  f.start_relay(terminal.port);
  f.ring(kCall, "4106@acme",
         [](proto::MessageBuilder& b) { b.add_u32(sig::attr::media_profile, sig::media_profile::webrtc); });
  f.run_until([&] { return terminal.link != nullptr && terminal.received.size() == 1; });
  REQUIRE(terminal.received.size() == 1);
  auto refusal = proto::MessageBuilder::response_to(terminal.received[0].message, proto::MessageClass::error);
  refusal.add_u32(sig::attr::protocol_version, sig::protocol_version);
  refusal.add_error(sig::error::declined, "Declined: the other party is a browser, which takes only phone calls");
  Bytes declined = refusal.finish();
  terminal.link->send(declined);
  f.run_until([&] { return !f.to_node.empty(); });
  REQUIRE(f.to_node.size() == 1);
  CHECK(f.to_node[0].bytes == declined);
  CHECK(error_of(f.to_node[0].message) == 603);
  CHECK(f.relay->stats().answered == 0);
  f.run_until([&] { return f.relay->active_calls() == 0; });
  CHECK(f.relay->active_calls() == 0);
  terminal.close();
}

// docs/webrtc.md: a page trickles its candidates from the moment it calls, so
// some reach the agent before its link to the terminal is up. The terminal
// knows no call before its ring: the agent holds them and passes them on after
// the ring, in order (they were lost before, so ICE could use them only after
// the page sent them again at the answer).
TEST_CASE("lan call relay: candidates that come before the terminal is rung follow the ring, in order") {
  Fixture f;
  Terminal terminal(&f.loop, f.bundle_for("4106"));
  f.start_relay(terminal.port);
  f.ring(kCall);
  auto candidate = [&](const std::string& call_id, const std::string& text) {
    proto::MessageBuilder b(proto::MessageClass::indication, sig::method::call_candidate, proto::TransactionId{});
    b.add_string(sig::attr::call_id, call_id);
    b.add_string(sig::attr::ice_candidate, text);
    Bytes raw = b.finish();
    f.relay->on_node_message(decode(raw).message, raw);
  };
  // The TLS connection to the terminal is not up yet: nothing has turned the loop.
  candidate(kCall, "candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host");
  candidate(kCall, "candidate:2 1 udp 1686052607 198.51.100.7 40000 typ srflx raddr 0.0.0.0 rport 0");
  candidate(std::string(32, 'f'), "candidate:3 1 udp 1 192.0.2.9 9 typ host");  // no such call here
  f.run_until([&] { return terminal.received.size() >= 3; });
  REQUIRE(terminal.received.size() == 3);
  CHECK(terminal.received[0].message.method == sig::method::ring);
  for (size_t i = 1; i < 3; ++i) {
    CHECK(terminal.received[i].message.method == sig::method::call_candidate);
    const auto* text = terminal.received[i].message.find(sig::attr::ice_candidate);
    REQUIRE(text != nullptr);
    CHECK(proto::read_string(*text).substr(0, 11) == "candidate:" + std::to_string(i));
  }
  CHECK(f.relay->stats().candidates_held == 2);
  CHECK(f.relay->stats().candidates_dropped == 0);

  // Once rung, later candidates go straight through.
  candidate(kCall, "candidate:4 1 udp 2122260223 192.0.2.1 50002 typ host");
  f.run_until([&] { return terminal.received.size() >= 4; });
  REQUIRE(terminal.received.size() == 4);
  CHECK(terminal.received[3].message.method == sig::method::call_candidate);
  CHECK(f.relay->stats().candidates_held == 2);
  terminal.close();
}
