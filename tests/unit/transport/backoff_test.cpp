// Backoff: the delay bounds per attempt, the jitter range, the cap, reset.
#include "transport/backoff.hpp"

#include <doctest/doctest.h>

using tsunagu::transport::Backoff;
using tsunagu::transport::BackoffSettings;

TEST_CASE("backoff: the ceiling doubles per attempt from the initial delay up to the cap") {
  Backoff backoff({100, 1000}, [] { return 0.999999; });
  CHECK(backoff.next_delay_ms() == 99);   // ceiling 100: [50, 100)
  CHECK(backoff.next_delay_ms() == 199);  // 200
  CHECK(backoff.next_delay_ms() == 399);  // 400
  CHECK(backoff.next_delay_ms() == 799);  // 800
  CHECK(backoff.next_delay_ms() == 999);  // capped at 1000
  CHECK(backoff.next_delay_ms() == 999);
  CHECK(backoff.attempts() == 6);
}

TEST_CASE("backoff: a zero draw gives half the ceiling, so retries still back off") {
  Backoff backoff({100, 1000}, [] { return 0.0; });
  CHECK(backoff.next_delay_ms() == 50);
  CHECK(backoff.next_delay_ms() == 100);
  CHECK(backoff.next_delay_ms() == 200);
}

TEST_CASE("backoff: the jitter spreads delays across the upper half of the ceiling") {
  double draws[] = {0.0, 0.25, 0.5, 0.75};
  int next = 0;
  BackoffSettings settings{1000, 1000};
  Backoff backoff(settings, [&] { return draws[next++ % 4]; });
  CHECK(backoff.next_delay_ms() == 500);
  CHECK(backoff.next_delay_ms() == 625);
  CHECK(backoff.next_delay_ms() == 750);
  CHECK(backoff.next_delay_ms() == 875);
}

TEST_CASE("backoff: the system's randomness stays within the bounds of each attempt") {
  Backoff backoff({500, 30'000});
  for (int attempt = 0; attempt < 200; ++attempt) {
    uint64_t ceiling = backoff.ceiling_ms();
    uint64_t delay = backoff.next_delay_ms();
    CHECK(delay >= ceiling / 2);
    CHECK(delay <= ceiling);
    CHECK(ceiling <= 30'000);
  }
}

TEST_CASE("backoff: reset after a success starts again from the initial delay") {
  Backoff backoff({100, 10'000}, [] { return 0.0; });
  for (int i = 0; i < 5; ++i) (void)backoff.next_delay_ms();
  CHECK(backoff.next_delay_ms() == 1600);
  backoff.reset();
  CHECK(backoff.attempts() == 0);
  CHECK(backoff.next_delay_ms() == 50);
}

TEST_CASE("backoff: a draw outside [0, 1) from a faulty source is clamped into the bounds") {
  Backoff high({100, 100}, [] { return 7.0; });
  CHECK(high.next_delay_ms() == 100);
  Backoff low({100, 100}, [] { return -3.0; });
  CHECK(low.next_delay_ms() == 50);
}

TEST_CASE("backoff: a cap below the initial delay and a zero initial delay are made sane") {
  Backoff capped({1000, 10}, [] { return 0.0; });
  CHECK(capped.next_delay_ms() == 500);
  Backoff zero({0, 10}, [] { return 0.0; });
  CHECK(zero.next_delay_ms() == 0);  // ceiling 1 ms
  CHECK(zero.next_delay_ms() == 1);  // ceiling 2 ms: it grows
}

TEST_CASE("backoff: many failures never overflow the shift") {
  Backoff backoff({1'000'000, UINT64_MAX}, [] { return 0.0; });
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    uint64_t delay = backoff.next_delay_ms();
    CHECK(delay >= last);
    last = delay;
  }
  CHECK(last == (uint64_t{1'000'000} << 20) / 2);
}
