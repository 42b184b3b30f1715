// HookServer on a real Unix socket in a temporary directory, on a real uv loop.
// Each hook is a forked child (the way dnsmasq or Kea run the hook): it
// connects, writes one request, shuts down its sending side and passes back
// what the agent answered through a pipe, while this process runs the loop.
#include "lan-agent/hook_server.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "lan-agent/hook_protocol.hpp"
#include "lan-agent/hook_spool.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempDir;

namespace {

constexpr uid_t kNobody = 65534;

// The child: connect, send, half-close, read to EOF (bounded by a receive
// timeout), and write the answer to `out`. Exits 2 when it cannot connect, 5
// when the agent neither answered nor closed within the timeout. Without
// `half_close` it keeps its sending side open, as a caller still writing.
[[noreturn]] void hook_child(const std::string& path, const std::string& request, std::optional<uid_t> as_uid, int out,
                             bool half_close) {
  if (as_uid && ::setresgid(*as_uid, *as_uid, *as_uid) != 0) ::_exit(3);
  if (as_uid && ::setresuid(*as_uid, *as_uid, *as_uid) != 0) ::_exit(3);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) ::_exit(2);
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  // The agent may stop reading (an oversized request): the rest is dropped.
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  if (half_close) ::shutdown(fd, SHUT_WR);
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0)
    if (::write(out, buffer, static_cast<size_t>(n)) != n) ::_exit(4);
  ::_exit(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 5 : 0);
}

struct HookResult {
  std::string reply;
  int exit_code = -1;
};

// Runs one hook against the server while turning the loop; at most 10 s.
HookResult run_hook(uv_loop_t* loop, const std::string& path, const std::string& request,
                    std::optional<uid_t> as_uid = std::nullopt, bool half_close = true) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    hook_child(path, request, as_uid, pipe_fds[1], half_close);
  }
  ::close(pipe_fds[1]);
  HookResult result;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool eof = false;
  while (!eof && std::chrono::steady_clock::now() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, 5) <= 0) continue;
    char buffer[4096];
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof(buffer));
    if (n > 0) result.reply.append(buffer, static_cast<size_t>(n));
    else eof = true;
  }
  ::close(pipe_fds[0]);
  if (!eof) ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  CHECK(eof);
  return result;
}

std::string events_request(const std::vector<alloc::LeaseEvent>& events) {
  auto encoded = encode_events_request(events);
  REQUIRE(encoded.has_value());
  return std::string(reinterpret_cast<const char*>(encoded->data()), encoded->size());
}

const std::string ack(1, static_cast<char>(kAck));
const std::string nak(1, static_cast<char>(kNak));

// A server on dir/hook.sock with its own loop; closed and drained at the end.
struct Fixture {
  TempDir dir;
  std::string path = dir.path() + "/hook.sock";
  uv_loop_t loop{};
  std::unique_ptr<HookServer> server;
  std::vector<std::vector<alloc::LeaseEvent>> commits;
  bool commit_result = true;
  std::function<void()> on_commit;  // runs inside the commit, before it returns
  std::string init_listing = "0 02:0a:0b:0c:0d:0e 10.99.0.68 * *\n";

  explicit Fixture(HookAccess access = HookAccess({}, {::getgid()}), uint64_t request_timeout_ms = 5000) {
    REQUIRE(uv_loop_init(&loop) == 0);
    HookServer::Handlers handlers;
    handlers.commit = [this](std::vector<alloc::LeaseEvent>& events) {
      commits.push_back(events);
      if (on_commit) on_commit();
      return commit_result;
    };
    handlers.init_listing = [this] { return init_listing; };
    auto started = HookServer::start(&loop, path, std::move(access), std::move(handlers), request_timeout_ms);
    REQUIRE(started.has_value());
    server = std::move(*started);
  }
  ~Fixture() {
    bool closed = false;
    server->close([&] { closed = true; });
    for (int i = 0; i < 1000 && !closed; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(closed);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

}  // namespace

TEST_CASE("hook server: events from an allowed peer are acknowledged once the commit has them") {
  Fixture f;
  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  auto b = grant("02:0a:0b:0c:0d:0f", "10.99.0.69", 2100, 1001);
  HookResult r = run_hook(&f.loop, f.path, events_request({a, b}));
  CHECK(r.reply == ack);
  REQUIRE(f.commits.size() == 1);
  CHECK(f.commits[0] == std::vector<alloc::LeaseEvent>{a, b});
  CHECK(f.server->stats().events == 2);
  CHECK(f.server->stats().commits == 1);
  CHECK(f.server->stats().connections == 1);
}

TEST_CASE("hook server: a failed commit answers NAK so the hook spools its events") {
  Fixture f;
  f.commit_result = false;
  HookResult r = run_hook(&f.loop, f.path, events_request({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)}));
  CHECK(r.reply == nak);
  CHECK(f.commits.size() == 1);
  CHECK(f.server->stats().failed_commits == 1);
  CHECK(f.server->stats().commits == 0);
}

TEST_CASE("hook server: the socket file is world-writable and access is decided by the peer's credentials") {
  // Only root can make a peer with other credentials; otherwise our own uid is
  // the one refused (root is always allowed).
  bool root = ::geteuid() == 0;
  Fixture f(HookAccess({}, {}));
  struct stat st {};
  REQUIRE(::stat(f.path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0666);
  if (root) REQUIRE(::chmod(f.dir.path().c_str(), 0755) == 0);  // nobody must reach the socket
  HookResult r = run_hook(&f.loop, f.path, events_request({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)}),
                          root ? std::optional<uid_t>(kNobody) : std::nullopt);
  CHECK(r.exit_code == 0);  // it connected, and was closed on without an answer
  CHECK(r.reply.empty());
  CHECK(f.commits.empty());
  CHECK(f.server->stats().refused_peers == 1);
  CHECK(f.server->stats().events == 0);
}

TEST_CASE("hook server: a peer whose group is allowed is served") {
  if (::geteuid() != 0) return;  // needs another uid than our own
  Fixture f(HookAccess({}, {kNobody}));  // nobody's group on Debian is nogroup (65534)
  REQUIRE(::chmod(f.dir.path().c_str(), 0755) == 0);
  HookResult r = run_hook(&f.loop, f.path, events_request({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)}),
                          kNobody);
  CHECK(r.reply == ack);
  CHECK(f.server->stats().refused_peers == 0);
}

TEST_CASE("hook server: a request over the size limit is answered NAK and counted as bad") {
  Fixture f;
  std::string huge(kMaxHookRequestBytes + 1, 'x');
  huge[0] = 'E';
  HookResult r = run_hook(&f.loop, f.path, huge);
  CHECK(r.reply == nak);
  CHECK(f.commits.empty());
  CHECK(f.server->stats().bad_requests == 1);
}

TEST_CASE("hook server: malformed records and unknown request types are answered NAK") {
  Fixture f;
  CHECK(run_hook(&f.loop, f.path, std::string("E\x01\x02\x03garbage", 11)).reply == nak);
  CHECK(run_hook(&f.loop, f.path, "X").reply == nak);
  CHECK(f.server->stats().bad_requests == 2);
  CHECK(f.commits.empty());
  // An empty request is closed on without an answer and is not a bad request.
  CHECK(run_hook(&f.loop, f.path, "").reply.empty());
  CHECK(f.server->stats().bad_requests == 2);
}

TEST_CASE("hook server: an init request is answered with the dnsmasq listing") {
  Fixture f;
  CHECK(run_hook(&f.loop, f.path, "I").reply == "0 02:0a:0b:0c:0d:0e 10.99.0.68 * *\n");
  CHECK(f.commits.empty());
}

TEST_CASE("hook server: start replaces a stale socket, refuses a live one and a non-socket file") {
  TempDir dir;
  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  std::string path = dir.path() + "/hook.sock";
  {
    // A stale socket: bound, then its owner gone without removing it.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    ::close(fd);
  }
  auto first = HookServer::start(&loop, path, HookAccess(), {});
  REQUIRE(first.has_value());
  auto second = HookServer::start(&loop, path, HookAccess(), {});
  REQUIRE(!second.has_value());
  CHECK(second.error().find("another agent") != std::string::npos);

  std::string plain = dir.path() + "/plain";
  std::ofstream(plain) << "not a socket";
  auto third = HookServer::start(&loop, plain, HookAccess(), {});
  REQUIRE(!third.has_value());
  CHECK(third.error().find("not a socket") != std::string::npos);
  CHECK(std::filesystem::exists(plain));

  bool closed = false;
  (*first)->close([&] { closed = true; });
  for (int i = 0; i < 1000 && !closed; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(closed);
  CHECK(!std::filesystem::exists(path));  // close removes the socket file
  CHECK(uv_loop_close(&loop) == 0);
}

namespace {

// Hooks that have all connected, written and half-closed before the loop turns
// once: the server reads them in the same loop turn.
struct ConcurrentHooks {
  std::vector<pid_t> children;
  std::vector<int> answers;  // read ends, one per child
  std::vector<std::string> replies;

  ConcurrentHooks(const std::string& path, const std::vector<std::string>& requests) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    for (const auto& request : requests) {
      int out[2];
      REQUIRE(::pipe(out) == 0);
      pid_t child = ::fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        ::close(out[0]);
        ::close(ready[0]);
        // hook_child with a "sent" byte once the request is written.
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) ::_exit(2);
        timeval timeout{10, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
          ::_exit(3);
        ::shutdown(fd, SHUT_WR);
        if (::write(ready[1], "s", 1) != 1) ::_exit(4);
        char buffer[64];
        for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;)
          if (::write(out[1], buffer, static_cast<size_t>(n)) != n) ::_exit(4);
        ::_exit(0);
      }
      ::close(out[1]);
      children.push_back(child);
      answers.push_back(out[0]);
    }
    ::close(ready[1]);
    size_t sent = 0;
    for (int i = 0; i < 1000 && sent < requests.size(); ++i) {
      pollfd p{ready[0], POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      char buffer[64];
      ssize_t n = ::read(ready[0], buffer, sizeof(buffer));
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    ::close(ready[0]);
    REQUIRE(sent == requests.size());
    replies.resize(requests.size());
  }

  // How many hooks have an answer to read, waiting up to ms for one.
  size_t answered_within_ms(int ms) const {
    std::vector<pollfd> fds;
    for (int fd : answers) fds.push_back({fd, POLLIN, 0});
    int rc = ::poll(fds.data(), fds.size(), ms);
    return rc > 0 ? static_cast<size_t>(rc) : 0;
  }

  // Turns the loop until every hook has its answer and has exited (at most 10 s).
  void finish(uv_loop_t* loop) {
    std::vector<bool> eof(answers.size(), false);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::find(eof.begin(), eof.end(), false) != eof.end() && std::chrono::steady_clock::now() < deadline) {
      uv_run(loop, UV_RUN_NOWAIT);
      for (size_t i = 0; i < answers.size(); ++i) {
        if (eof[i]) continue;
        pollfd p{answers[i], POLLIN, 0};
        if (::poll(&p, 1, 1) <= 0) continue;
        char buffer[64];
        ssize_t n = ::read(answers[i], buffer, sizeof(buffer));
        if (n > 0) replies[i].append(buffer, static_cast<size_t>(n));
        else eof[i] = true;
      }
    }
    for (size_t i = 0; i < answers.size(); ++i) {
      ::close(answers[i]);
      if (!eof[i]) ::kill(children[i], SIGKILL);
      int status = 0;
      ::waitpid(children[i], &status, 0);
      CHECK(eof[i]);
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
  }
};

std::vector<alloc::LeaseEvent> eight_grants() {
  std::vector<alloc::LeaseEvent> events;
  for (int i = 0; i < 8; ++i)
    events.push_back(grant("02:0a:0b:0c:0d:1" + std::to_string(i), "10.99.0." + std::to_string(100 + i), 2000 + i,
                           1000 + i));
  return events;
}

}  // namespace

TEST_CASE("hook server: events from several connections in one loop turn go into one commit, acked after it") {
  Fixture f;
  auto events = eight_grants();
  std::vector<std::string> requests;
  for (const auto& e : events) requests.push_back(events_request({e}));
  ConcurrentHooks hooks(f.path, requests);
  size_t answered_at_commit = 99;
  f.on_commit = [&] { answered_at_commit = hooks.answered_within_ms(20); };
  hooks.finish(&f.loop);
  CHECK(answered_at_commit == 0);
  for (const auto& reply : hooks.replies) CHECK(reply == ack);
  REQUIRE(f.commits.size() == 1);
  CHECK(f.commits[0].size() == events.size());
  for (const auto& e : events) CHECK(std::find(f.commits[0].begin(), f.commits[0].end(), e) != f.commits[0].end());
  CHECK(f.server->stats().commits == 1);
  CHECK(f.server->stats().connections == events.size());
}

TEST_CASE("hook server: a failed group commit answers NAK to every hook in it") {
  Fixture f;
  f.commit_result = false;
  auto events = eight_grants();
  std::vector<std::string> requests;
  for (const auto& e : events) requests.push_back(events_request({e}));
  ConcurrentHooks hooks(f.path, requests);
  hooks.finish(&f.loop);
  for (const auto& reply : hooks.replies) CHECK(reply == nak);
  REQUIRE(f.commits.size() == 1);
  CHECK(f.commits[0].size() == events.size());
  CHECK(f.server->stats().failed_commits == 1);
}

namespace {

// Runs the built tsunagu-dhcp-hook as dnsmasq does (`add MAC IP HOST`, lease
// variables in the environment) while turning the loop; its exit status.
int run_real_hook(uv_loop_t* loop, const std::string& hook, const std::string& config, const std::string& mac,
                  const std::string& ip) {
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::setenv("DNSMASQ_LEASE_EXPIRES", "4000000000", 1);
    ::setenv("DNSMASQ_INTERFACE", "lan0", 1);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) ::dup2(null, STDERR_FILENO);
    ::execl(hook.c_str(), hook.c_str(), "--config", config.c_str(), "--", "add", mac.c_str(), ip.c_str(), "host",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  pid_t done = 0;
  while ((done = ::waitpid(child, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    pollfd none{-1, 0, 0};
    ::poll(&none, 1, 1);
  }
  if (done == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("hook server: the real tsunagu-dhcp-hook spools what a failed commit refused, and not what was acked") {
  const char* hook = std::getenv("TSUNAGU_DHCP_HOOK");
  if (hook == nullptr) {
    MESSAGE("skipped: TSUNAGU_DHCP_HOOK is not set (meson test sets it to the built hook)");
    return;
  }
  Fixture f;
  std::string spool = f.dir.path() + "/spool";
  REQUIRE(prepare_spool_directory(spool, ::getgid()).has_value());
  std::string config =
      f.dir.write("agent.toml", "[hook]\nsocket = \"" + f.path + "\"\nspool_directory = \"" + spool + "\"\n");
  std::string spool_file = spool_file_for(spool, ::getuid());

  f.commit_result = false;
  CHECK(run_real_hook(&f.loop, hook, config, "02:0a:0b:0c:0d:77", "10.99.0.77") == 0);
  REQUIRE(f.commits.size() == 1);
  REQUIRE(f.commits[0].size() == 1);
  CHECK(f.commits[0][0].mac == "02:0a:0b:0c:0d:77");
  auto read_spool = [&] {
    std::ifstream in(spool_file, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<alloc::LeaseEvent> events;
    alloc::replay_spool(ByteView(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
                        [&](const alloc::LeaseEvent& e) {
                          events.push_back(e);
                          return true;
                        });
    return events;
  };
  auto spooled = read_spool();
  REQUIRE(spooled.size() == 1);
  CHECK(spooled[0] == f.commits[0][0]);

  f.commit_result = true;
  CHECK(run_real_hook(&f.loop, hook, config, "02:0a:0b:0c:0d:78", "10.99.0.78") == 0);
  REQUIRE(f.commits.size() == 2);
  CHECK(f.commits[1][0].mac == "02:0a:0b:0c:0d:78");
  CHECK(read_spool().size() == 1);  // the acked event is not spooled
}

TEST_CASE("hook server: a request that completes after close() is committed and acked, and close() finishes") {
  // The agent's orderly stop waits for close(); before, a hook still sending
  // when it began was left waiting for a commit that never came, so close()
  // never finished and the stop never wrote the table's clean-shutdown marker.
  TempDir dir;
  std::string path = dir.path() + "/hook.sock";
  uv_loop_t loop{};
  REQUIRE(uv_loop_init(&loop) == 0);
  std::vector<std::vector<alloc::LeaseEvent>> commits;
  HookServer::Handlers handlers;
  handlers.commit = [&](std::vector<alloc::LeaseEvent>& events) {
    commits.push_back(events);
    return true;
  };
  auto server = HookServer::start(&loop, path, HookAccess({}, {::getgid()}), std::move(handlers));
  REQUIRE(server.has_value());

  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  std::string request = events_request({a});
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  REQUIRE(::send(fd, request.data(), 1, MSG_NOSIGNAL) == 1);  // accepted and read in part before the stop
  for (int i = 0; i < 20 && (*server)->stats().connections == 0; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  REQUIRE((*server)->stats().connections == 1);

  bool closed = false;
  (*server)->close([&] { closed = true; });
  REQUIRE(::send(fd, request.data() + 1, request.size() - 1, MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size() - 1));
  ::shutdown(fd, SHUT_WR);
  for (int i = 0; i < 1000 && !closed; ++i) {
    uv_run(&loop, UV_RUN_NOWAIT);
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 5);
  }
  CHECK(closed);
  char reply[4] = {};
  CHECK(::recv(fd, reply, sizeof reply, MSG_DONTWAIT) == 1);
  CHECK(std::string(reply, 1) == ack);
  REQUIRE(commits.size() == 1);
  CHECK(commits[0] == std::vector<alloc::LeaseEvent>{a});
  ::close(fd);
  server->reset();
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(&loop) == 0);
}

namespace {

// A connected client socket of the test's own (no child): the test decides
// when each byte goes out while it turns the loop.
int connect_to(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
  return fd;
}

// Turns the loop until `done` or 10 s; false when it timed out.
bool turn_until(uv_loop_t* loop, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    uv_run(loop, UV_RUN_NOWAIT);
    pollfd none{-1, 0, 0};
    ::poll(&none, 1, 1);
  }
  return true;
}

// What the agent has sent on fd so far, and whether it has closed: reads
// without blocking.
struct Received {
  std::string bytes;
  bool closed = false;
};
void receive_available(int fd, Received& r) {
  char buffer[256];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) != 0;) {
    if (n < 0) {
      if (errno != EAGAIN) r.closed = true;  // ECONNRESET counts as closed
      return;
    }
    r.bytes.append(buffer, static_cast<size_t>(n));
  }
  r.closed = true;
}

}  // namespace

TEST_CASE("hook server: a request written in two pieces with a pause between is read to its end and acked") {
  Fixture f;
  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  auto b = grant("02:0a:0b:0c:0d:0f", "10.99.0.69", 2100, 1001);
  std::string request = events_request({a, b});
  int fd = connect_to(f.path);
  // The first piece ends inside the first record: the server cannot have a
  // whole request at accept time, so the rest must come through the loop.
  size_t first = 5;
  REQUIRE(::send(fd, request.data(), first, MSG_NOSIGNAL) == static_cast<ssize_t>(first));
  REQUIRE(turn_until(&f.loop, [&] { return f.server->stats().connections == 1; }));
  for (int i = 0; i < 20; ++i) uv_run(&f.loop, UV_RUN_NOWAIT);  // the pause: turns with nothing new
  CHECK(f.commits.empty());
  Received r;
  receive_available(fd, r);
  CHECK(r.bytes.empty());
  CHECK(!r.closed);
  REQUIRE(::send(fd, request.data() + first, request.size() - first, MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size() - first));
  ::shutdown(fd, SHUT_WR);
  CHECK(turn_until(&f.loop, [&] {
    receive_available(fd, r);
    return r.closed;
  }));
  ::close(fd);
  CHECK(r.bytes == ack);
  REQUIRE(f.commits.size() == 1);
  CHECK(f.commits[0] == std::vector<alloc::LeaseEvent>{a, b});
  CHECK(f.server->stats().events == 2);
}

TEST_CASE("hook server: a caller that never finishes its request is cut at the deadline; others are served meanwhile") {
  Fixture f(HookAccess({}, {::getgid()}), 200);
  auto started = std::chrono::steady_clock::now();
  int silent = connect_to(f.path);
  int partial = connect_to(f.path);
  REQUIRE(::send(partial, "E", 1, MSG_NOSIGNAL) == 1);
  REQUIRE(turn_until(&f.loop, [&] { return f.server->stats().connections == 2; }));
  // A complete request while both wait is answered at once.
  auto a = grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000);
  HookResult served = run_hook(&f.loop, f.path, events_request({a}));
  CHECK(served.reply == ack);
  Received from_silent, from_partial;
  CHECK(turn_until(&f.loop, [&] {
    receive_available(silent, from_silent);
    receive_available(partial, from_partial);
    return from_silent.closed && from_partial.closed;
  }));
  auto waited = std::chrono::steady_clock::now() - started;
  ::close(silent);
  ::close(partial);
  CHECK(from_silent.bytes.empty());  // cut without an answer: the hook spools
  CHECK(from_partial.bytes.empty());
  CHECK(waited >= std::chrono::milliseconds(190));  // not before its time (the loop's clock is in ms)
  REQUIRE(f.commits.size() == 1);
  CHECK(f.commits[0] == std::vector<alloc::LeaseEvent>{a});
  CHECK(f.server->stats().bad_requests == 0);
}

TEST_CASE("hook server: a refused peer is closed on before its request is read, even one still writing") {
  // As in the credentials case: root is always allowed, so as root the
  // refused peer is a child running as nobody.
  bool root = ::geteuid() == 0;
  Fixture f(HookAccess({}, {}), 60000);  // only the refusal can close it within the child's 5 s
  if (root) REQUIRE(::chmod(f.dir.path().c_str(), 0755) == 0);
  HookResult r = run_hook(&f.loop, f.path, events_request({grant("02:0a:0b:0c:0d:0e", "10.99.0.68", 2000, 1000)}),
                          root ? std::optional<uid_t>(kNobody) : std::nullopt, /*half_close=*/false);
  CHECK(r.exit_code == 0);  // closed on (5: still open after 5 s)
  CHECK(r.reply.empty());
  CHECK(f.server->stats().refused_peers == 1);
  CHECK(f.server->stats().events == 0);
  CHECK(f.commits.empty());
}

TEST_CASE("hook server: an init listing larger than the socket's buffer arrives whole") {
  Fixture f;
  f.init_listing.clear();
  for (int i = 0; f.init_listing.size() < (4u << 20); ++i)
    f.init_listing += "0 02:0a:0b:" + std::to_string(i) + " 10.99.0.68 * *\n";
  HookResult r = run_hook(&f.loop, f.path, "I");
  CHECK(r.exit_code == 0);
  CHECK(r.reply.size() == f.init_listing.size());
  CHECK(r.reply == f.init_listing);
}
