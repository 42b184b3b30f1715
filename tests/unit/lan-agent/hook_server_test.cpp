// HookServer on a real Unix socket in a temporary directory, on a real uv loop.
// Each hook is a forked child (the way dnsmasq or Kea run the hook): it
// connects, writes one request, shuts down its sending side and passes back
// what the agent answered through a pipe, while this process runs the loop.
#include "lan-agent/hook_server.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "lan-agent/hook_protocol.hpp"
#include "test_support.hpp"

using namespace tsunagu;
using namespace tsunagu::lanagent;
using tsunagu::lanagent::testing::grant;
using tsunagu::lanagent::testing::TempDir;

namespace {

constexpr uid_t kNobody = 65534;

// The child: connect, send, half-close, read to EOF (bounded by a receive
// timeout), and write the answer to `out`. Exits 2 when it cannot connect.
[[noreturn]] void hook_child(const std::string& path, const std::string& request, std::optional<uid_t> as_uid, int out) {
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
  ::shutdown(fd, SHUT_WR);
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;)
    if (::write(out, buffer, static_cast<size_t>(n)) != n) ::_exit(4);
  ::_exit(0);
}

struct HookResult {
  std::string reply;
  int exit_code = -1;
};

// Runs one hook against the server while turning the loop; at most 10 s.
HookResult run_hook(uv_loop_t* loop, const std::string& path, const std::string& request,
                    std::optional<uid_t> as_uid = std::nullopt) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    hook_child(path, request, as_uid, pipe_fds[1]);
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

  explicit Fixture(HookAccess access = HookAccess({}, {::getgid()})) {
    REQUIRE(uv_loop_init(&loop) == 0);
    HookServer::Handlers handlers;
    handlers.commit = [this](std::vector<alloc::LeaseEvent>& events) {
      commits.push_back(events);
      return commit_result;
    };
    handlers.init_listing = [] { return std::string("0 02:0a:0b:0c:0d:0e 10.99.0.68 * *\n"); };
    auto started = HookServer::start(&loop, path, std::move(access), std::move(handlers));
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
