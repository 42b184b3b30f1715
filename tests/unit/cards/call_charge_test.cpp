#include "cards/call_charge.hpp"

#include <doctest/doctest.h>

#include "tests/unit/cards/card_test_support.hpp"

namespace tsunagu::cards {
namespace {

// 2026-12-05 00:00:00 UTC.
constexpr int64_t midnight = 1'796'428'800;
constexpr int64_t hour = 3600;

// 1 a minute, 3 from 08:00 to 20:00.
AccessPoint day_and_night() { return test::point("a-net", 1, {TariffBand{480, 1200, 3}}); }

}  // namespace

TEST_CASE("call charge: the minute of the day is UTC and wraps at midnight") {
  CHECK(minute_of_day(midnight) == 0);
  CHECK(minute_of_day(midnight + 8 * hour) == 480);
  CHECK(minute_of_day(midnight - 1) == 1439);
  CHECK(minute_of_day(-1) == 1439);
}

TEST_CASE("call charge: every started minute is charged; nothing for no time") {
  AccessPoint route = day_and_night();
  CHECK(call_charge(route, midnight, 0) == 0);
  CHECK(call_charge(route, midnight, 1) == 1);
  CHECK(call_charge(route, midnight, 60) == 1);
  CHECK(call_charge(route, midnight, 61) == 2);
  CHECK(call_charge(route, midnight + 9 * hour, 600) == 30);
}

TEST_CASE("call charge: a call over a band boundary pays each band for its own minutes") {
  AccessPoint route = day_and_night();
  // 07:58:30 for 5 minutes: minutes start 07:58:30, 07:59:30 (night), 08:00:30, 08:01:30, 08:02:30 (day).
  CHECK(call_charge(route, midnight + 8 * hour - 90, 300) == 1 + 1 + 3 + 3 + 3);
  // 19:59 for 3 minutes: 19:59 (day), 20:00, 20:01 (night).
  CHECK(call_charge(route, midnight + 20 * hour - 60, 180) == 3 + 1 + 1);
}

TEST_CASE("call meter: charges the first minute at the start and each next one as it starts") {
  AccessPoint route = day_and_night();
  int64_t start = midnight + 8 * hour - 60;  // 07:59
  CallMeter meter(route, start);
  CHECK(meter.due(start) == 1);
  CHECK(meter.next_minute() == start + 60);
  CHECK(meter.due(start + 59) == 0);
  CHECK(meter.due(start + 60) == 3);
  // A late wake-up charges every minute it missed, each at its own band.
  CHECK(meter.due(start + 185) == 6);
  CHECK(meter.minutes_charged() == 4);
  CHECK(meter.units_charged() == 10);
  CHECK(meter.units_charged() == call_charge(route, start, 185));
  CHECK(meter.finish(start + 185) == 0);
}

TEST_CASE("call meter: ten calls' meters add up to the sum of their call charges exactly") {
  AccessPoint route = day_and_night();
  uint64_t metered = 0, expected = 0;
  for (int call = 0; call < 10; ++call) {
    int64_t start = midnight + 7 * hour + 50 * 60 + call * 97;
    int64_t seconds = 30 + call * 71;
    CallMeter meter(route, start);
    for (int64_t now = start; now < start + seconds; now += 7) metered += meter.due(now);
    metered += meter.finish(start + seconds);
    expected += call_charge(route, start, seconds);
  }
  CHECK(metered == expected);
}

TEST_CASE("call meter: a shorter period (a node's debit_interval_s) charges each period at the per-minute price") {
  AccessPoint route = day_and_night();
  int64_t start = midnight + 8 * hour - 2;  // 07:59:58: night price, day price from 08:00
  CallMeter meter(route, start, 1);
  CHECK(meter.due(start) == 1);
  CHECK(meter.next_minute() == start + 1);
  CHECK(meter.due(start + 1) == 1);   // 07:59:59
  CHECK(meter.due(start + 3) == 6);   // 08:00:00 and 08:00:01, each a day "minute"
  CHECK(meter.minutes_charged() == 4);
}

TEST_CASE("call meter: a period of 0 or less is taken as a minute") {
  AccessPoint route = day_and_night();
  CallMeter meter(route, midnight, 0);
  CHECK(meter.due(midnight) == 1);
  CHECK(meter.next_minute() == midnight + 60);
}

}  // namespace tsunagu::cards
