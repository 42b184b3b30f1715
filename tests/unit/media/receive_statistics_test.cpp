#include "media/receive_statistics.hpp"

#include <doctest/doctest.h>

using namespace tsunagu::media;
using Verdict = ReceiveStatistics::Verdict;

TEST_CASE("receive statistics: loss, expected and wrap-around (RFC 3550 A.3)") {
  ReceiveStatistics s;
  for (uint32_t k = 0; k < 200; ++k) {
    if (k % 10 == 3) continue;  // 10 % lost
    CHECK(s.on_packet(static_cast<uint16_t>(65500 + k)) == Verdict::accepted);
  }
  CHECK(s.expected() == 200);
  CHECK(s.received() == 180);
  CHECK(s.lost() == 20);
  CHECK(s.cumulative_lost() == 20);
  CHECK(s.extended_max() == 0x10000u + (65500 + 199 - 65536));
  CHECK(s.take_fraction_lost() == 25);  // 20/200 * 256 = 25.6
  for (uint32_t k = 200; k < 300; ++k) s.on_packet(static_cast<uint16_t>(65500 + k));
  CHECK(s.take_fraction_lost() == 0);
}

TEST_CASE("receive statistics: reordered packets count once, duplicates are recognised") {
  ReceiveStatistics s;
  for (uint16_t seq : {10, 12, 11, 13, 15, 14}) CHECK(s.on_packet(seq) == Verdict::accepted);
  CHECK(s.on_packet(12) == Verdict::duplicate);
  CHECK(s.on_packet(15) == Verdict::duplicate);
  CHECK(s.lost() == 0);
  CHECK(s.received() == 6);
}

TEST_CASE("receive statistics: a jump is dropped unless the next packet confirms a restart") {
  ReceiveStatistics s;
  s.on_packet(100);
  s.on_packet(101);
  CHECK(s.on_packet(30000) == Verdict::jumped);
  CHECK(s.on_packet(102) == Verdict::accepted);
  CHECK(s.on_packet(40000) == Verdict::jumped);
  CHECK(s.on_packet(40001) == Verdict::accepted);
  CHECK(s.received() == 1);  // restarted at 40001
}

TEST_CASE("receive statistics: interarrival jitter (RFC 3550 A.8)") {
  ReceiveStatistics s;
  for (uint32_t k = 0; k < 100; ++k) s.on_transit(k * 960, 5000 + k * 960);
  CHECK(s.jitter() == doctest::Approx(0));
  // Every other packet 480 samples (10 ms) late: |D| = 480 each time, J tends to 480.
  for (uint32_t k = 100; k < 400; ++k) s.on_transit(k * 960, 5000 + k * 960 + (k % 2) * 480);
  CHECK(s.jitter() == doctest::Approx(480).epsilon(0.01));
}
