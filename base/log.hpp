// Levelled logging to stderr. Daemons log; libraries in proto/, allocation/ and the
// pure cores of the daemons never do (they return errors instead).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string_view>

namespace tsunagu::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

void set_level(Level level);
Level level();
std::optional<Level> parse_level(std::string_view name);
void set_program(std::string_view name);
void write(Level level, std::string_view message);

// Builds one line and writes it when destroyed, so a line is never interleaved.
class Line {
 public:
  explicit Line(Level level) : level_(level), enabled_(level >= log::level()) {}
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  ~Line() {
    if (enabled_) write(level_, stream_.str());
  }
  template <class T>
  Line& operator<<(const T& value) {
    if (enabled_) stream_ << value;
    return *this;
  }

 private:
  Level level_;
  bool enabled_;
  std::ostringstream stream_;
};

inline Line debug() { return Line(Level::debug); }
inline Line info() { return Line(Level::info); }
inline Line warn() { return Line(Level::warn); }
inline Line error() { return Line(Level::error); }

// Lets at most `burst` lines through per `period`; counts the rest, so a peer
// sending garbage cannot flood the log.
class RateLimit {
 public:
  RateLimit(unsigned burst, std::chrono::seconds period) : burst_(burst), period_(period) {}
  bool allow();
  uint64_t suppressed() const { return suppressed_; }

 private:
  unsigned burst_;
  std::chrono::seconds period_;
  std::chrono::steady_clock::time_point window_start_{};
  unsigned used_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace tsunagu::log
