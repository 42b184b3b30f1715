// What a terminal's least-cost router keeps between calls (docs/cards.md,
// "Least-cost routing"): the route it chose last and the access points that
// failed lately, in wall-clock seconds, as a small text file in the card
// directory. Pure: text in, text out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tsunagu::cards {

struct RouteMemory {
  struct Point {
    std::string name;             // an access point's name on the card
    int64_t failed_at = 0;        // Unix seconds of its latest failure
    int64_t reachable_since = 0;  // Unix seconds it answered again after that; 0: not yet
    bool operator==(const Point&) const = default;
  };
  std::string current;  // the route chosen last; empty: none
  std::vector<Point> points;
  bool operator==(const RouteMemory&) const = default;
};

inline constexpr size_t max_route_memory_size = 32 * 1024;
inline constexpr size_t max_route_memory_points = 64;

// "tsunagu-routes 1", then "current\tNAME" and "point\tNAME\tFAILED\tSINCE"
// lines (tab-separated: names may hold spaces).
std::string route_memory_text(const RouteMemory& memory);
// nullopt for text above max_route_memory_size, another header, a malformed
// or unknown line, a name that is not 1-255 printable ASCII characters, or
// more than max_route_memory_points points: the terminal then starts afresh.
std::optional<RouteMemory> parse_route_memory(std::string_view text);

}  // namespace tsunagu::cards
