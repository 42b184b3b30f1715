// Real libnice agents in one process, on 127.0.0.1 (added with local_addresses,
// since libnice ignores loopback otherwise), both driven by one libuv loop.
#include "terminal/ice_session.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

extern char** environ;

namespace tsunagu::terminal {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Runs the loop until `done` or the timeout; a 5 ms ticker keeps
// UV_RUN_ONCE returning. Returns whether `done` became true.
template <class Done>
bool run_until(uv_loop_t* loop, Done done, int timeout_ms) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 5, 5);
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done() && Clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  bool ok = done();
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);  // lets close callbacks run
    CHECK(uv_loop_close(&loop) == 0);
  }
};

proto::SocketAddress loopback() { return proto::SocketAddress::v4({127, 0, 0, 1}, 0); }

IceConfig loopback_config(bool controlling, bool reliable) {
  IceConfig config;
  config.controlling = controlling;
  config.reliable = reliable;
  config.local_addresses = {loopback()};
  return config;
}

// One side of a call: its session plus what it saw.
struct Side {
  std::unique_ptr<IceSession> session;
  std::optional<IceDescription> gathered;
  std::optional<SelectedPair> connected;
  double connected_after_ms = 0;
  std::vector<Bytes> datagrams;
  Bytes stream;
  int writable = 0;
  std::string failed;
};

// Two sessions that hand their descriptions to each other through the codec,
// the way signalling will carry them.
struct Call {
  Loop loop;
  Side a, b;
  Clock::time_point started;
  std::function<void(Side&)> on_connected_extra;
  std::function<void(Side&)> on_writable_extra;
  // b is told a's credentials and none of its candidates, as a terminal is when
  // a page offers only mDNS host names (WebRtcTransport::remote_ice()).
  bool b_told_no_candidates = false;
  // ... and then given them one by one, as a page trickles them (add_remote_candidate).
  bool b_trickled = false;

  IceDescription told(const Side& receiver, const Side& sender) const {
    IceDescription description = *sender.gathered;
    if (b_told_no_candidates && &receiver == &b) description.candidates.clear();
    return description;
  }

  void make(Side& self, Side& other, IceConfig config) {
    IceEvents events;
    events.on_gathered = [this, &self, &other](const IceDescription& d) {
      auto text = encode_ice_description(d);
      REQUIRE(text.has_value());
      auto decoded = decode_ice_description(*text);
      REQUIRE(decoded.has_value());
      CHECK(*decoded == d);
      self.gathered = *decoded;
      if (other.gathered) {
        self.session->set_remote(told(self, other));
        other.session->set_remote(told(other, self));
        if (b_trickled)
          for (const auto& line : a.gathered->candidates) b.session->add_remote_candidate(line);
      }
    };
    events.on_connected = [this, &self](const SelectedPair& pair) {
      self.connected = pair;
      self.connected_after_ms = ms_since(started);
      if (on_connected_extra) on_connected_extra(self);
    };
    events.on_data = [&self](ByteView data) {
      self.datagrams.emplace_back(data.begin(), data.end());
      self.stream.insert(self.stream.end(), data.begin(), data.end());
    };
    events.on_writable = [this, &self] {
      ++self.writable;
      if (on_writable_extra) on_writable_extra(self);
    };
    events.on_failed = [&self](std::string_view reason) { self.failed = std::string(reason); };
    auto created = IceSession::create(&loop.loop, std::move(config), std::move(events));
    REQUIRE_MESSAGE(created.has_value(), (created.has_value() ? std::string() : created.error()));
    self.session = std::move(*created);
  }

  void start() {
    started = Clock::now();
    a.session->start();
    b.session->start();
  }

  bool connect(int timeout_ms = 10'000) {
    return run_until(&loop.loop, [this] { return (a.connected && b.connected) || !a.failed.empty() || !b.failed.empty(); },
                     timeout_ms) &&
           a.connected && b.connected;
  }

  ~Call() {
    if (a.session) a.session->close();
    if (b.session) b.session->close();
    a.session.reset();
    b.session.reset();
  }
};

Bytes datagram(char side, int n) { return to_bytes(std::string("datagram ") + side + " #" + std::to_string(n)); }

}  // namespace

TEST_CASE("ice: two sessions connect over a loopback host pair and datagrams flow both ways") {
  Call call;
  call.make(call.a, call.b, loopback_config(true, false));
  call.make(call.b, call.a, loopback_config(false, false));
  call.start();
  REQUIRE_MESSAGE(call.connect(), "a failed: ", call.a.failed, " b failed: ", call.b.failed);
  MESSAGE("datagram mode connected after ", call.a.connected_after_ms, " ms (controlling), ",
          call.b.connected_after_ms, " ms (controlled)");
  for (Side* side : {&call.a, &call.b}) {
    CHECK(side->connected->local_type == "host");
    CHECK(side->connected->remote_type == "host");
    CHECK(side->connected->local.ip_string() == "127.0.0.1");
    CHECK(side->connected->remote.ip_string() == "127.0.0.1");
    CHECK(side->gathered->candidates.size() == 1);
  }
  CHECK(call.a.connected->local == call.b.connected->remote);
  CHECK(call.a.connected->remote == call.b.connected->local);

  constexpr int count = 20;
  for (int i = 0; i < count; ++i) {
    Bytes from_a = datagram('a', i), from_b = datagram('b', i);
    CHECK(call.a.session->send(from_a) == from_a.size());
    CHECK(call.b.session->send(from_b) == from_b.size());
  }
  REQUIRE(run_until(&call.loop.loop, [&] { return call.a.datagrams.size() == count && call.b.datagrams.size() == count; },
                    5000));
  for (int i = 0; i < count; ++i) {  // boundaries kept, nothing lost on loopback
    CHECK(call.b.datagrams[static_cast<size_t>(i)] == datagram('a', i));
    CHECK(call.a.datagrams[static_cast<size_t>(i)] == datagram('b', i));
  }
  CHECK(call.a.failed.empty());
  CHECK(call.b.failed.empty());
}

TEST_CASE("ice: a peer that sent no candidate is learnt as peer-reflexive from its checks; trickled after "
          "set_remote, its candidates are paired like the description's") {
  for (bool trickled : {false, true}) {
    for (bool b_controlling : {false, true}) {
      CAPTURE(trickled);
      CAPTURE(b_controlling);
      Call call;
      call.b_told_no_candidates = true;
      call.b_trickled = trickled;
      call.make(call.a, call.b, loopback_config(!b_controlling, false));
      call.make(call.b, call.a, loopback_config(b_controlling, false));
      call.start();
      REQUIRE_MESSAGE(call.connect(), "a failed: ", call.a.failed, " b failed: ", call.b.failed);
      CHECK(call.b.connected->remote_type == (trickled ? "host" : "prflx"));
      CHECK(call.b.connected->remote == call.a.connected->local);
      CHECK(call.a.connected->remote_type == "host");
      Bytes from_b = datagram('b', 1);
      CHECK(call.b.session->send(from_b) == from_b.size());
      REQUIRE(run_until(&call.loop.loop, [&] { return !call.a.datagrams.empty(); }, 5000));
      CHECK(call.a.datagrams[0] == from_b);
    }
  }
}

TEST_CASE("ice: reliable mode carries 1 MB byte-identical, waiting for on_writable on partial sends") {
  Call call;
  call.make(call.a, call.b, loopback_config(true, true));
  call.make(call.b, call.a, loopback_config(false, true));

  Bytes payload(1 << 20);
  std::mt19937 random(42);
  for (auto& byte : payload) byte = std::byte(random() & 0xff);
  size_t offset = 0;
  int partial_sends = 0;
  auto pump = [&](Side& side) {
    if (&side != &call.a) return;
    while (offset < payload.size()) {
      size_t sent = side.session->send(ByteView(payload).subspan(offset, std::min<size_t>(64 * 1024, payload.size() - offset)));
      offset += sent;
      if (sent < std::min<size_t>(64 * 1024, payload.size() - offset + sent)) {
        ++partial_sends;
        break;  // on_writable resumes
      }
    }
  };
  call.on_connected_extra = pump;
  call.on_writable_extra = pump;
  call.start();
  REQUIRE_MESSAGE(call.connect(), "a failed: ", call.a.failed, " b failed: ", call.b.failed);
  MESSAGE("reliable mode connected after ", call.a.connected_after_ms, " ms");
  auto transfer_start = Clock::now();
  REQUIRE_MESSAGE(run_until(&call.loop.loop, [&] { return call.b.stream.size() >= payload.size(); }, 30'000),
                  "received ", call.b.stream.size(), " of ", payload.size(), " (sent ", offset, ")");
  MESSAGE("1 MB transferred in ", ms_since(transfer_start), " ms; ", partial_sends, " partial sends, ",
          call.a.writable, " on_writable");
  CHECK(call.b.stream.size() == payload.size());
  CHECK(call.b.stream == payload);
  CHECK(partial_sends > 0);  // 1 MB never fits the ~60 KB window at once
  CHECK(call.a.writable > 0);
}

TEST_CASE("ice: close() during gathering returns at once and no callback fires after it") {
  Loop loop;
  int callbacks = 0;
  IceEvents events;
  events.on_gathered = [&](const IceDescription&) { ++callbacks; };
  events.on_failed = [&](std::string_view) { ++callbacks; };
  auto session = IceSession::create(&loop.loop, loopback_config(true, false), events);
  REQUIRE(session.has_value());
  (*session)->start();
  auto before = Clock::now();
  (*session)->close();
  MESSAGE("close() during gathering took ", ms_since(before), " ms");
  CHECK(ms_since(before) < 1000);
  (*session)->close();  // twice is fine
  CHECK((*session)->send(as_bytes("late")) == 0);
  run_until(&loop.loop, [] { return false; }, 100);
  CHECK(callbacks == 0);
}

TEST_CASE("ice: close() while a TURN server does not answer is bounded") {
  Loop loop;
  // A UDP port that nobody answers on: bind it ourselves and never read.
  auto config = loopback_config(true, false);
  uv_udp_t silent;
  uv_udp_init(&loop.loop, &silent);
  sockaddr_in bind_to{};
  uv_ip4_addr("127.0.0.1", 0, &bind_to);
  REQUIRE(uv_udp_bind(&silent, reinterpret_cast<const sockaddr*>(&bind_to), 0) == 0);
  sockaddr_in bound{};
  int length = sizeof bound;
  uv_udp_getsockname(&silent, reinterpret_cast<sockaddr*>(&bound), &length);
  config.turn = IceConfig::Turn{proto::SocketAddress::v4({127, 0, 0, 1}, ntohs(bound.sin_port)), "user", "pass"};
  auto session = IceSession::create(&loop.loop, config, IceEvents{});
  REQUIRE(session.has_value());
  (*session)->start();
  run_until(&loop.loop, [] { return false; }, 200);  // the Allocate is in flight
  auto before = Clock::now();
  session->reset();
  MESSAGE("destroying with an unanswered TURN Allocate took ", ms_since(before), " ms");
  CHECK(ms_since(before) < IceSession::close_timeout_ms + 500);
  uv_close(reinterpret_cast<uv_handle_t*>(&silent), nullptr);
}

TEST_CASE("ice: destruction without close(), also from inside a callback, does not hang") {
  SUBCASE("right after create") {
    Loop loop;
    auto session = IceSession::create(&loop.loop, loopback_config(false, true), IceEvents{});
    REQUIRE(session.has_value());
  }
  SUBCASE("from on_gathered") {
    Loop loop;
    std::unique_ptr<IceSession> session;
    int gathered = 0;
    IceEvents events;
    events.on_gathered = [&](const IceDescription&) {
      ++gathered;
      session.reset();
    };
    auto created = IceSession::create(&loop.loop, loopback_config(true, false), events);
    REQUIRE(created.has_value());
    session = std::move(*created);
    session->start();
    CHECK(run_until(&loop.loop, [&] { return gathered > 0; }, 5000));
    CHECK(session == nullptr);
  }
  SUBCASE("connected, mid-transfer") {
    Call call;
    call.make(call.a, call.b, loopback_config(true, true));
    call.make(call.b, call.a, loopback_config(false, true));
    call.start();
    REQUIRE(call.connect());
    Bytes chunk(32 * 1024, std::byte{1});
    call.a.session->send(chunk);
    call.a.session.reset();
    call.b.session.reset();
  }
}

// ----------------------------------------------------------------- TURN relay

namespace {

bool have_program(const char* name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    if (access((path.substr(start, end - start) + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

// A free UDP port on 127.0.0.1 right now (there is a window before coturn binds it).
uint16_t free_udp_port() {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

bool udp_port_taken(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  bool taken = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0;
  ::close(fd);
  return taken;
}

// coturn on 127.0.0.1, started with `turnserver -c FILE`, stopped by PID.
struct Coturn {
  std::filesystem::path directory;
  pid_t pid = -1;
  uint16_t port = 0;
  static constexpr const char* user = "tsunagu";
  static constexpr const char* password = "relay-test-password";

  bool start(std::string& error) {
    char pattern[] = "/tmp/tsunagu-ice-coturn-XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      error = "mkdtemp failed";
      return false;
    }
    directory = pattern;
    port = free_udp_port();
    uint16_t relay_low = static_cast<uint16_t>(40000 + (getpid() % 200) * 100);
    std::ofstream config(directory / "turnserver.conf");
    config << "listening-ip=127.0.0.1\n"
           << "relay-ip=127.0.0.1\n"
           << "listening-port=" << port << "\n"
           << "min-port=" << relay_low << "\nmax-port=" << relay_low + 99 << "\n"
           << "lt-cred-mech\nuser=" << user << ":" << password << "\n"
           << "realm=tsunagu.test\n"  // without a realm libnice gets no relay
           // coturn 4.6.1 answers CreatePermission for a loopback peer with
           // "403 Forbidden IP" unless allow-loopback-peers is set;
           // allowed-peer-ip=127.0.0.1 alone does not lift that (verified).
           << "allow-loopback-peers\n"
           << "fingerprint\nno-tls\nno-dtls\nno-cli\nno-rfc5780\nno-software-attribute\n"
           << "log-file=stdout\nsimple-log\nverbose\n"
           << "pidfile=" << (directory / "turnserver.pid").string() << "\n"
           << "userdb=" << (directory / "turndb").string() << "\n";
    config.close();
    std::string config_path = (directory / "turnserver.conf").string();
    std::string log_path = (directory / "turnserver.log").string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    std::string program = "turnserver", flag = "-c";
    char* argv[] = {program.data(), flag.data(), config_path.data(), nullptr};
    int rc = posix_spawnp(&pid, "turnserver", &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid = -1;
      error = "posix_spawnp turnserver failed";
      return false;
    }
    for (int i = 0; i < 100 && !udp_port_taken(port); ++i) usleep(20'000);
    if (!udp_port_taken(port)) {
      error = "turnserver did not bind 127.0.0.1:" + std::to_string(port) + "; see " + log_path;
      return false;
    }
    return true;
  }

  std::string log() const {
    std::ifstream in(directory / "turnserver.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  ~Coturn() {
    if (pid > 0) {
      kill(pid, SIGCONT);  // in case a test stopped it
      kill(pid, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100; ++i) {  // up to 2 s, then SIGKILL
        if (waitpid(pid, &status, WNOHANG) == pid) {
          pid = -1;
          break;
        }
        usleep(20'000);
      }
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
      }
    }
    if (!directory.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(directory, ignored);
    }
  }
};

}  // namespace

TEST_CASE("ice: two relay_only sessions connect through coturn with a relay pair") {
  if (!have_program("turnserver")) {
    MESSAGE("skipped: turnserver (coturn) is not installed");
    return;
  }
  Coturn coturn;
  std::string error;
  REQUIRE_MESSAGE(coturn.start(error), error);
  auto relay_config = [&](bool controlling) {
    IceConfig config = loopback_config(controlling, false);
    config.relay_only = true;
    config.turn = IceConfig::Turn{proto::SocketAddress::v4({127, 0, 0, 1}, coturn.port), Coturn::user,
                                  Coturn::password};
    return config;
  };
  {
    Call call;
    call.make(call.a, call.b, relay_config(true));
    call.make(call.b, call.a, relay_config(false));
    call.start();
    bool connected = call.connect(15'000);
    if (!connected) MESSAGE("coturn log:\n", coturn.log());
    REQUIRE_MESSAGE(connected, "a failed: ", call.a.failed, " b failed: ", call.b.failed);
    MESSAGE("relay_only connected after ", call.a.connected_after_ms, " ms; pair ", call.a.connected->local_type, " ",
            call.a.connected->local.to_string(), " -> ", call.a.connected->remote_type, " ",
            call.a.connected->remote.to_string());
    for (Side* side : {&call.a, &call.b}) {
      REQUIRE(side->gathered.has_value());
      for (const auto& line : side->gathered->candidates) CHECK(line.find(" typ relay") != std::string::npos);
      CHECK(side->connected->local_type == "relay");
      CHECK(side->connected->local.port != coturn.port);
    }
    Bytes from_a = datagram('a', 0), from_b = datagram('b', 0);
    CHECK(call.a.session->send(from_a) == from_a.size());
    CHECK(call.b.session->send(from_b) == from_b.size());
    REQUIRE(run_until(&call.loop.loop, [&] { return !call.a.datagrams.empty() && !call.b.datagrams.empty(); }, 5000));
    CHECK(call.b.datagrams[0] == from_a);
    CHECK(call.a.datagrams[0] == from_b);
    auto before = Clock::now();
    call.a.session->close();
    call.b.session->close();
    MESSAGE("closing both (TURN allocations released) took ", ms_since(before), " ms");
  }
  {
    // The TURN server stops answering (SIGSTOP): close() still returns, bounded.
    Call call;
    call.make(call.a, call.b, relay_config(true));
    call.make(call.b, call.a, relay_config(false));
    call.start();
    REQUIRE(call.connect(15'000));
    REQUIRE(kill(coturn.pid, SIGSTOP) == 0);
    auto before = Clock::now();
    call.a.session->close();
    call.b.session->close();
    double took = ms_since(before);
    kill(coturn.pid, SIGCONT);
    MESSAGE("closing both with coturn stopped took ", took, " ms");
    // libnice gives up on the lifetime-0 Refresh after ~0.7 s each (we shorten
    // its STUN timer at close); the close_timeout_ms cap is not reached.
    CHECK(took < IceSession::close_timeout_ms);
  }
  if (std::getenv("ICE_TEST_COTURN_LOG") != nullptr) MESSAGE("coturn log:\n", coturn.log());
}


// Issue 10, item 4: "ICE connectivity checks failed" alone sent an admin nowhere.
TEST_CASE("an ICE failure says whether a relay was configured, never gathered, or gathered and lost") {
  CHECK(candidate_type_of("a=candidate:1 1 UDP 2013266431 10.0.0.5 4444 typ host") == "host");
  CHECK(candidate_type_of("a=candidate:3 1 UDP 16777215 203.0.113.11 49152 typ relay raddr 0.0.0.0 rport 0") ==
        "relay");
  CHECK(candidate_type_of("a=candidate:garbage").empty());

  IceFailureContext none{std::nullopt, {"host", "srflx"}, {"host"}};
  std::string no_turn = explain_ice_failure(none);
  CHECK(no_turn.find("local candidates: host, srflx; remote: host") != std::string::npos);
  CHECK(no_turn.find("no TURN server was configured") != std::string::npos);

  IceFailureContext never{std::string("203.0.113.11:3478"), {"host", "host", "srflx"}, {"relay"}};
  std::string never_gathered = explain_ice_failure(never);
  CHECK(never_gathered.find("local candidates: host, srflx;") != std::string::npos);
  CHECK(never_gathered.find("no relay candidate was gathered from TURN server 203.0.113.11:3478") != std::string::npos);
  CHECK(never_gathered.find("realm=") != std::string::npos);

  IceFailureContext lost{std::string("203.0.113.11:3478"), {"relay", "srflx", "host"}, {"relay"}};
  std::string gathered = explain_ice_failure(lost);
  CHECK(gathered.find("a relay candidate from 203.0.113.11:3478 was gathered") != std::string::npos);
  CHECK(gathered.find("denied-peer-ip") != std::string::npos);
}

}  // namespace tsunagu::terminal
