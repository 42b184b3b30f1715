#include "cards/call_charge.hpp"

namespace tsunagu::cards {

int minute_of_day(int64_t unix_seconds) {
  int64_t second_of_day = ((unix_seconds % 86400) + 86400) % 86400;
  return static_cast<int>(second_of_day / 60);
}

std::optional<int> parse_clock_minutes(std::string_view text) {
  if (text.size() != 5 || text[2] != ':') return std::nullopt;
  for (size_t i : {0, 1, 3, 4})
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
  int hours = (text[0] - '0') * 10 + (text[1] - '0');
  int minutes = (text[3] - '0') * 10 + (text[4] - '0');
  if (minutes > 59 || hours > 24 || (hours == 24 && minutes != 0)) return std::nullopt;
  return hours * 60 + minutes;
}

std::optional<int> routing_minute(int64_t now_unix, std::string_view clock_override) {
  if (clock_override.empty()) return minute_of_day(now_unix);
  auto minute = parse_clock_minutes(clock_override);
  if (!minute || *minute >= minutes_per_day) return std::nullopt;
  return minute;
}

uint32_t minute_charge(const AccessPoint& route, int64_t minute_start) {
  return route.cost_at(minute_of_day(minute_start));
}

uint64_t call_charge(const AccessPoint& route, int64_t start, int64_t seconds) {
  uint64_t total = 0;
  for (int64_t offset = 0; offset < seconds; offset += 60) total += minute_charge(route, start + offset);
  return total;
}

uint64_t CallMeter::due(int64_t now) {
  uint64_t charge = 0;
  while (next_minute() <= now) {
    charge += minute_charge(route_, next_minute());
    ++minutes_charged_;
  }
  units_charged_ += charge;
  return charge;
}

}  // namespace tsunagu::cards
