#include "base/log.hpp"

#include "base/audit_log.hpp"
#include "base/log_hold.hpp"

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace tsunagu::log {
namespace {
std::atomic<Level> current_level{Level::info};
std::string program_name = "tsunagu";
constexpr const char* level_names[] = {"debug", "info", "warn", "error", "off"};
// syslog priorities (sd-daemon.h's SD_DEBUG ... SD_ERR) of the levels.
constexpr const char* journal_prefixes[] = {"<7>", "<6>", "<4>", "<3>", "<3>"};

// systemd sets JOURNAL_STREAM=DEV:INODE when stderr is the journal; it may be
// inherited by a child whose stderr went elsewhere, so the pair must match.
bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) return false;
  unsigned long long device = 0, inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) return false;
  struct stat status {};
  if (fstat(STDERR_FILENO, &status) != 0) return false;
  return static_cast<unsigned long long>(status.st_dev) == device && static_cast<unsigned long long>(status.st_ino) == inode;
}
}  // namespace

bool journal_mode() {
  static const bool journal = stderr_is_journal();
  return journal;
}

void set_level(Level level) { current_level = level; }
Level level() { return current_level; }
void set_program(std::string_view name) { program_name = std::string(name); }

std::optional<Level> parse_level(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(Level::off); ++i)
    if (name == level_names[i]) return static_cast<Level>(i);
  return std::nullopt;
}

namespace {
constexpr size_t kHeldBytes = 64 * 1024;
thread_local bool holding = false;
thread_local std::string held;

void write_out(std::string_view bytes) {
  // One write(2) per call (a line, or whole held lines) so concurrent writers
  // do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, bytes.data(), bytes.size());
  (void)ignored;
}
}  // namespace

void hold() { holding = true; }

void write_held() {
  if (held.empty()) return;
  write_out(held);
  held.clear();
}

void release() {
  holding = false;
  if (held.empty()) return;
  write_out(held);
  held.clear();
  if (held.capacity() > kHeldBytes) std::string().swap(held);
}

namespace {
// getpid() is a system call; a daemon logging a line per request paid one per
// line. The child of a fork() forgets the parent's.
std::atomic<pid_t> cached_pid{0};
pid_t current_pid() {
  pid_t pid = cached_pid.load(std::memory_order_relaxed);
  if (pid != 0) return pid;
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { cached_pid.store(0, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  pid = getpid();
  cached_pid.store(pid, std::memory_order_relaxed);
  return pid;
}
}  // namespace

void write(Level lvl, std::string_view message) {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  // The date and time to the second are formatted once per second per thread.
  thread_local time_t stamped_second = -1;
  thread_local char second_stamp[64];
  if (ts.tv_sec != stamped_second) {
    tm utc{};
    gmtime_r(&ts.tv_sec, &utc);
    std::snprintf(second_stamp, sizeof second_stamp, "%04d-%02d-%02dT%02d:%02d:%02d", utc.tm_year + 1900,
                  utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    stamped_second = ts.tv_sec;
  }
  // The milliseconds by hand: an snprintf per line was most of what a line cost.
  int millis = static_cast<int>(ts.tv_nsec / 1000000);
  const char fraction[] = {'.', static_cast<char>('0' + millis / 100), static_cast<char>('0' + millis / 10 % 10),
                           static_cast<char>('0' + millis % 10), 'Z', ' '};
  std::string line;
  line.reserve(message.size() + 64);
  // The journal keeps its own time stamp and reads the level from <N>.
  if (journal_mode()) line.append(journal_prefixes[static_cast<int>(lvl)]);
  line.append(second_stamp).append(fraction, sizeof fraction).append(program_name).append("[").append(std::to_string(current_pid()));
  line.append("] ").append(level_names[static_cast<int>(lvl)]).append(": ").append(message).append("\n");
  if (holding) {
    held.append(line);
    // A warning goes out at once, after the lines held before it.
    if (lvl > Level::info || held.size() >= kHeldBytes) {
      write_out(held);
      held.clear();
    }
    return;
  }
  write_out(line);
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
