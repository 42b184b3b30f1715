#include "transport/systemd_watchdog.hpp"

#include <systemd/sd-daemon.h>

#include <algorithm>

#include "base/log.hpp"

namespace tsunagu::transport {

std::chrono::milliseconds watchdog_ping_interval(std::uint64_t watchdog_usec) {
  auto half = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::microseconds(watchdog_usec / 2));
  return std::max(half, std::chrono::milliseconds(1));
}

std::unique_ptr<SystemdWatchdog> SystemdWatchdog::start(uv_loop_t* loop) {
  std::uint64_t usec = 0;
  int enabled = sd_watchdog_enabled(0, &usec);
  if (enabled < 0) log::warn() << "systemd watchdog: WATCHDOG_USEC or WATCHDOG_PID unreadable, not pinging";
  if (enabled <= 0 || usec == 0) return nullptr;
  auto interval = watchdog_ping_interval(usec);
  auto* timer = new uv_timer_t;
  uv_timer_init(loop, timer);
  uv_timer_start(
      timer, [](uv_timer_t*) { sd_notify(0, "WATCHDOG=1"); }, 0, static_cast<std::uint64_t>(interval.count()));
  uv_unref(reinterpret_cast<uv_handle_t*>(timer));
  log::info() << "systemd watchdog: pinging every " << interval.count() << " ms (WatchdogSec "
              << usec / 1000 << " ms)";
  return std::unique_ptr<SystemdWatchdog>(new SystemdWatchdog(timer));
}

SystemdWatchdog::~SystemdWatchdog() {
  uv_close(reinterpret_cast<uv_handle_t*>(timer_),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_timer_t*>(handle); });
}

}  // namespace tsunagu::transport
