#include "cards/route_memory.hpp"

#include <algorithm>
#include <charconv>

namespace tsunagu::cards {
namespace {

constexpr std::string_view header = "tsunagu-routes 1";

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 255 &&
         std::all_of(name.begin(), name.end(), [](char c) { return c >= ' ' && c <= '~'; });
}

std::optional<int64_t> seconds(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  while (true) {
    size_t tab = line.find('\t');
    out.push_back(line.substr(0, tab));
    if (tab == std::string_view::npos || out.size() > 4) return out;
    line.remove_prefix(tab + 1);
  }
}

}  // namespace

std::string route_memory_text(const RouteMemory& memory) {
  std::string out(header);
  out += "\n";
  if (!memory.current.empty()) out += "current\t" + memory.current + "\n";
  for (const auto& point : memory.points)
    out += "point\t" + point.name + "\t" + std::to_string(point.failed_at) + "\t" +
           std::to_string(point.reachable_since) + "\n";
  return out;
}

std::optional<RouteMemory> parse_route_memory(std::string_view text) {
  if (text.size() > max_route_memory_size) return std::nullopt;
  RouteMemory memory;
  bool first = true;
  while (!text.empty()) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) return std::nullopt;  // every line ends with a newline
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    if (first) {
      if (line != header) return std::nullopt;
      first = false;
      continue;
    }
    auto parts = fields(line);
    if (parts[0] == "current" && parts.size() == 2 && valid_name(parts[1]) && memory.current.empty()) {
      memory.current = std::string(parts[1]);
    } else if (parts[0] == "point" && parts.size() == 4 && valid_name(parts[1])) {
      auto failed = seconds(parts[2]);
      auto since = seconds(parts[3]);
      if (!failed || !since || memory.points.size() >= max_route_memory_points) return std::nullopt;
      memory.points.push_back(RouteMemory::Point{std::string(parts[1]), *failed, *since});
    } else {
      return std::nullopt;
    }
  }
  if (first) return std::nullopt;
  return memory;
}

}  // namespace tsunagu::cards
