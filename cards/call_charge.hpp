// What a call through an access point costs ([0044]: by time; the route's row
// on the card stands for the distance): every started minute is charged at
// the tariff in force when that minute starts, so a call over a band boundary
// pays each band for its own minutes. Pure; times are Unix seconds, tariffs UTC.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "cards/card.hpp"

namespace tsunagu::cards {

// 0..1439: the UTC minute of the day `unix_seconds` falls in.
int minute_of_day(int64_t unix_seconds);

// "08:00" -> 480; "24:00" -> 1440 (a band's end). nullopt if malformed.
std::optional<int> parse_clock_minutes(std::string_view text);

// The minute of the day least-cost routing ranks by: `now_unix`'s, or, when
// `clock_override` is not empty, that "HH:MM" (00:00-23:59; nullopt when
// malformed). The terminal's test hook TSUNAGU_TEST_CARD_CLOCK gives it, so a
// test sees the tariff of another hour without waiting for it.
std::optional<int> routing_minute(int64_t now_unix, std::string_view clock_override);

// Units for the call minute that starts at `minute_start`.
uint32_t minute_charge(const AccessPoint& route, int64_t minute_start);

// Units for a whole call of `seconds` started at `start`: the sum of
// minute_charge() over its started minutes (0 seconds: nothing).
uint64_t call_charge(const AccessPoint& route, int64_t start, int64_t seconds);

// The node's view of one call in progress: ask at each minute boundary what
// to debit, so the ledger always holds what has been spoken so far, and a call
// whose card runs out ends at the minute it cannot pay.
class CallMeter {
 public:
  // `period_s`: the length of a charged "minute" (60; a node's
  // [cards] debit_interval_s, shorter in tests); each period costs the
  // tariff's per-minute price at its start.
  CallMeter(const AccessPoint& route, int64_t start, int64_t period_s = 60)
      : route_(route), start_(start), period_s_(period_s > 0 ? period_s : 60) {}

  // The charge for every minute that has started by `now` and was not yet
  // charged (the first minute is charged at the start); 0 when none.
  uint64_t due(int64_t now);
  // At the call's end: the charge for the minutes that started before `end`
  // and were not yet charged (a wake-up may have come late).
  uint64_t finish(int64_t end) { return end > start_ ? due(end - 1) : 0; }
  // When the next minute starts: the time to call due() again.
  int64_t next_minute() const { return start_ + static_cast<int64_t>(minutes_charged_) * period_s_; }
  uint64_t minutes_charged() const { return minutes_charged_; }
  uint64_t units_charged() const { return units_charged_; }

 private:
  const AccessPoint& route_;
  int64_t start_;
  int64_t period_s_;
  uint64_t minutes_charged_ = 0;
  uint64_t units_charged_ = 0;
};

}  // namespace tsunagu::cards
