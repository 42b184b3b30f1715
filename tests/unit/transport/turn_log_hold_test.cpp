// A loop turn's audit lines leave with one write(2): stderr is one end of a
// SOCK_SEQPACKET pair, so every write(2) arrives as one packet and the test
// counts them.
#include "transport/turn_log_hold.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/audit_log.hpp"
#include "base/log.hpp"

namespace tsunagu::transport {
namespace {

struct StderrPackets {
  int reader = -1;
  int saved = -1;
  StderrPackets() {
    int pair[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, pair) == 0);
    reader = pair[0];
    saved = dup(STDERR_FILENO);
    dup2(pair[1], STDERR_FILENO);
    close(pair[1]);
  }
  ~StderrPackets() {
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(reader);
  }
  // The packets written so far, each one write(2).
  std::vector<std::string> take() {
    std::vector<std::string> packets;
    for (int i = 0; i < 1000; ++i) {
      char buffer[65536];
      ssize_t n = recv(reader, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) break;
      packets.emplace_back(buffer, static_cast<size_t>(n));
    }
    return packets;
  }
};

audit::AuditEvent login(std::string user) { return audit::AuditEvent{"login", {{"result", "ok"}, {"user", std::move(user)}}}; }

// One turn of a loop that has a live handle (the daemon's listener, here a timer).
struct Loop {
  uv_loop_t loop{};
  uv_timer_t keep_alive{};
  Loop() {
    uv_loop_init(&loop);
    uv_timer_init(&loop, &keep_alive);
    uv_timer_start(&keep_alive, [](uv_timer_t*) {}, 3600 * 1000, 0);
  }
  void turn() { uv_run(&loop, UV_RUN_NOWAIT); }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&keep_alive), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

TEST_CASE("turn log hold: a turn's audit lines leave in order with one write, before the loop polls") {
  StderrPackets stderr_packets;
  Loop loop;
  {
    TurnLogHold turn_log(&loop.loop);
    audit::AuditLog audit_log;
    audit_log.hold_lines_with([&] { turn_log.hold(); });
    audit_log.record(login("alice"));
    audit_log.record(login("bob"));
    CHECK(stderr_packets.take().empty());  // held
    loop.turn();
    auto packets = stderr_packets.take();
    REQUIRE(packets.size() == 1);
    CHECK(packets[0].find("user=alice") < packets[0].find("user=bob"));
    CHECK(packets[0].find("user=bob") != std::string::npos);

    // The next turn holds again; a warning goes out at once with the lines before it.
    audit_log.record(login("carol"));
    log::warn() << "disk nearly full";
    packets = stderr_packets.take();
    REQUIRE(packets.size() == 1);
    CHECK(packets[0].find("user=carol") < packets[0].find("disk nearly full"));
    loop.turn();
    CHECK(stderr_packets.take().empty());

    // What is held when the daemon lets go of its hold is written then.
    audit_log.record(login("dave"));
    audit_log.hold_lines_with({});
  }
  auto packets = stderr_packets.take();
  REQUIRE(packets.size() == 1);
  CHECK(packets[0].find("user=dave") != std::string::npos);
}

}  // namespace
}  // namespace tsunagu::transport
