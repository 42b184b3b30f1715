#include "cards/call_charge.hpp"

namespace tsunagu::cards {

int minute_of_day(int64_t unix_seconds) {
  int64_t second_of_day = ((unix_seconds % 86400) + 86400) % 86400;
  return static_cast<int>(second_of_day / 60);
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
