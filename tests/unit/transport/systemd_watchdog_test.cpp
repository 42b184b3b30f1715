// SystemdWatchdog: the ping interval is half of WATCHDOG_USEC; no watchdog is
// started when systemd asked for none or asked another process (WATCHDOG_PID).
// The pings themselves: tests/integration/systemd_test.py, against both daemons.
#include "transport/systemd_watchdog.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using tsunagu::transport::SystemdWatchdog;
using tsunagu::transport::watchdog_ping_interval;
using std::chrono::milliseconds;

TEST_CASE("systemd watchdog: pings at half of WatchdogSec, in whole milliseconds") {
  CHECK(watchdog_ping_interval(30'000'000) == milliseconds(15'000));  // WatchdogSec=30s in our units
  CHECK(watchdog_ping_interval(400'000) == milliseconds(200));
  CHECK(watchdog_ping_interval(3'001) == milliseconds(1));  // 1500.5 us rounds down
  CHECK(watchdog_ping_interval(1) == milliseconds(1));      // never 0: libuv would not repeat
  CHECK(watchdog_ping_interval(0) == milliseconds(1));
}

namespace {
struct LoopWithEnvironment {
  uv_loop_t loop{};
  LoopWithEnvironment() { uv_loop_init(&loop); }
  ~LoopWithEnvironment() {
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
};
}  // namespace

TEST_CASE("systemd watchdog: not started without WATCHDOG_USEC") {
  LoopWithEnvironment fixture;
  unsetenv("WATCHDOG_USEC");
  CHECK(SystemdWatchdog::start(&fixture.loop) == nullptr);
}

TEST_CASE("systemd watchdog: not started when WATCHDOG_PID names another process") {
  LoopWithEnvironment fixture;
  setenv("WATCHDOG_USEC", "400000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  CHECK(SystemdWatchdog::start(&fixture.loop) == nullptr);
}

TEST_CASE("systemd watchdog: started for this process, and its timer does not keep the loop running") {
  LoopWithEnvironment fixture;
  setenv("WATCHDOG_USEC", "400000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  auto watchdog = SystemdWatchdog::start(&fixture.loop);
  REQUIRE(watchdog != nullptr);
  // Unreferenced: a loop with only the watchdog left returns at once.
  CHECK(uv_run(&fixture.loop, UV_RUN_DEFAULT) == 0);
  watchdog.reset();
}
