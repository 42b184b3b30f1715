// Pings systemd's service watchdog (WATCHDOG=1) from a timer on the daemon's own
// libuv loop, so a loop that is stuck stops the pings and systemd restarts the
// service. Does nothing when the unit sets no WatchdogSec (or the watchdog is
// meant for another process: systemd's WATCHDOG_PID check).
#pragma once

#include <uv.h>

#include <chrono>
#include <cstdint>
#include <memory>

namespace tsunagu::transport {

// Half of systemd's WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, in whole
// milliseconds (libuv's timer unit), never below 1 ms.
std::chrono::milliseconds watchdog_ping_interval(std::uint64_t watchdog_usec);

class SystemdWatchdog {
 public:
  // nullptr when systemd asked for no watchdog; otherwise pings until destroyed.
  // The timer is unreferenced: it never keeps a stopping loop alive.
  static std::unique_ptr<SystemdWatchdog> start(uv_loop_t* loop);
  ~SystemdWatchdog();  // closes the timer; the loop must run once more to free it
  SystemdWatchdog(const SystemdWatchdog&) = delete;
  SystemdWatchdog& operator=(const SystemdWatchdog&) = delete;

 private:
  explicit SystemdWatchdog(uv_timer_t* timer) : timer_(timer) {}
  uv_timer_t* timer_;  // owned by the loop from uv_close until its close callback
};

}  // namespace tsunagu::transport
