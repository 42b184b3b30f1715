// When to try the node again after a link drops: exponential backoff with full
// jitter, so a node restart is not met by every terminal at the same instant.
// Pure: the random draw is passed in.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tsunagu::terminal {

class ReconnectBackoff {
 public:
  ReconnectBackoff(uint64_t initial_ms = 500, uint64_t max_ms = 30'000) : initial_ms_(initial_ms), max_ms_(max_ms) {}

  // Delay before the next attempt; `unit_random` is uniform in [0, 1).
  uint64_t next_delay_ms(double unit_random) {
    uint64_t ceiling = std::min(max_ms_, initial_ms_ << std::min<uint32_t>(attempts_, 20));
    ++attempts_;
    // Full jitter, but never below half the ceiling so retries still back off.
    return ceiling / 2 + static_cast<uint64_t>(unit_random * static_cast<double>(ceiling / 2));
  }
  void reset() { attempts_ = 0; }
  uint32_t attempts() const { return attempts_; }

 private:
  uint64_t initial_ms_;
  uint64_t max_ms_;
  uint32_t attempts_ = 0;
};

}  // namespace tsunagu::terminal
