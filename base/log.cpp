#include "base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace tsunagu::log {
namespace {
std::atomic<Level> current_level{Level::info};
std::string program_name = "tsunagu";
constexpr const char* level_names[] = {"debug", "info", "warn", "error", "off"};
}  // namespace

void set_level(Level level) { current_level = level; }
Level level() { return current_level; }
void set_program(std::string_view name) { program_name = std::string(name); }

std::optional<Level> parse_level(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Level::off); ++i)
    if (name == level_names[i]) return static_cast<Level>(i);
  return std::nullopt;
}

void write(Level lvl, std::string_view message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(ts.tv_nsec / 1000000));
  std::string line;
  line.reserve(message.size() + 64);
  line.append(stamp).append(" ").append(program_name).append("[").append(std::to_string(getpid()));
  line.append("] ").append(level_names[static_cast<int>(lvl)]).append(": ").append(message).append("\n");
  // One write(2) per line so concurrent writers do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

bool RateLimit::allow() {
  auto now = std::chrono::steady_clock::now();
  if (now - window_start_ >= period_) {
    window_start_ = now;
    used_ = 0;
  }
  if (used_ < burst_) {
    ++used_;
    return true;
  }
  ++suppressed_;
  return false;
}

}  // namespace tsunagu::log
