// When to try a peer again after a link drops: exponential backoff with
// jitter, so a node restart is not met by every client at the same instant.
// Pure: the random draw comes from an injected source (tests pass a fixed one).
#pragma once

#include <cstdint>
#include <functional>

namespace tsunagu::transport {

struct BackoffSettings {
  uint64_t initial_ms = 500;
  uint64_t max_ms = 30'000;
};

class Backoff {
 public:
  // Returns a value uniform in [0, 1).
  using UnitRandom = std::function<double()>;

  // Without a source, draws from a generator seeded by the system.
  explicit Backoff(BackoffSettings settings = {}, UnitRandom unit_random = {});

  // Delay before the next attempt. The ceiling doubles per attempt from
  // `initial_ms` up to `max_ms`; the delay is drawn from [ceiling/2, ceiling]
  // (jitter on the upper half only, so retries still back off).
  uint64_t next_delay_ms();
  // After a success: the next failure starts from `initial_ms` again.
  void reset() { attempts_ = 0; }
  uint32_t attempts() const { return attempts_; }
  uint64_t ceiling_ms() const;

 private:
  BackoffSettings settings_;
  UnitRandom unit_random_;
  uint32_t attempts_ = 0;
};

}  // namespace tsunagu::transport
