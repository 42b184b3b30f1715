// Least-cost routing over a card's area table (seed 002, [0037], [0049]-[0050]):
// of the terminal's area's access points that reach the destination, the
// cheapest at this time of day, skipping those that just failed, and keeping
// a working choice until something clearly cheaper and settled is there.
// Pure: reachability comes in as reports, time as `now`.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cards/card.hpp"
#include "cards/route_memory.hpp"

namespace tsunagu::cards {

enum class RouteKind : uint8_t { internet, premium, agent };
const char* route_kind_name(RouteKind kind);

struct RouteRequest {
  std::string_view area;         // the terminal's area code
  std::string_view destination;  // the user ID called; matched against access points' destination prefixes
  int minute_of_day = 0;         // 0..1439, in the tariff's time zone (UTC on cards today)
};

struct RouteCandidate {
  RouteKind kind;
  const AccessPoint* point;  // into the card passed in; valid while it is
  uint32_t cost_per_minute;  // at the request's minute of day
};

struct RouterSettings {
  // An access point reported unreachable is skipped this long, unless it is
  // reported reachable again sooner.
  std::chrono::milliseconds failure_hold{std::chrono::seconds(60)};
  // One that failed must then stay reachable this long before it may displace
  // the current choice (so a flapping point is not chosen back and forth).
  std::chrono::milliseconds recovery_hold{std::chrono::seconds(30)};
  // The current choice is kept unless another is cheaper by at least this many
  // units per minute.
  uint32_t switch_margin = 1;
};

class LeastCostRouter {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit LeastCostRouter(RouterSettings settings = {}) : settings_(settings) {}

  // Every usable candidate, cheapest first; ties go internet, premium, agent,
  // then card order. Empty when the area is not on the card, or nothing in it
  // reaches the destination or is usable now.
  std::vector<RouteCandidate> rank(const Card& card, const RouteRequest& request, TimePoint now) const;

  // The candidate to try now, remembered as the current choice. The current
  // choice stays while it is usable and no settled candidate is cheaper by
  // switch_margin; when it fails, the next is the cheapest settled one (or the
  // cheapest usable one, if none is settled).
  std::optional<RouteCandidate> choose(const Card& card, const RouteRequest& request, TimePoint now);

  void report_unreachable(std::string_view name, TimePoint now);
  void report_reachable(std::string_view name, TimePoint now);

  // The name of the current choice; empty before the first choose().
  const std::string& current() const { return current_; }
  // The route a call went through after falling back from the choice: the
  // current choice from now on.
  void settle_on(std::string_view name) { current_ = std::string(name); }

  // The state in wall-clock seconds, to be kept between calls (each
  // `tsunagu call` is a process of its own), and back; `now` and `now_unix`
  // are the same moment. Points that have settled again are not kept.
  RouteMemory remember(TimePoint now, int64_t now_unix) const;
  void recall(const RouteMemory& memory, TimePoint now, int64_t now_unix);

 private:
  struct Reachability {
    std::optional<TimePoint> failed_at;        // the latest failure
    std::optional<TimePoint> reachable_since;  // set by reports after the latest failure
  };
  bool usable(const std::string& name, TimePoint now) const;
  bool settled(const std::string& name, TimePoint now) const;

  RouterSettings settings_;
  std::map<std::string, Reachability, std::less<>> reachability_;
  std::string current_;
};

}  // namespace tsunagu::cards
