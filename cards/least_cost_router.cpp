#include "cards/least_cost_router.hpp"

#include <algorithm>

namespace tsunagu::cards {

const char* route_kind_name(RouteKind kind) {
  switch (kind) {
    case RouteKind::internet: return "internet";
    case RouteKind::premium: return "premium";
    case RouteKind::agent: return "agent";
  }
  return "unknown";
}

bool LeastCostRouter::usable(const std::string& name, TimePoint now) const {
  auto found = reachability_.find(name);
  if (found == reachability_.end() || !found->second.failed_at) return true;
  if (found->second.reachable_since) return true;
  return now - *found->second.failed_at >= settings_.failure_hold;
}

bool LeastCostRouter::settled(const std::string& name, TimePoint now) const {
  auto found = reachability_.find(name);
  if (found == reachability_.end() || !found->second.failed_at) return true;
  const auto& since = found->second.reachable_since;
  return since && now - *since >= settings_.recovery_hold;
}

std::vector<RouteCandidate> LeastCostRouter::rank(const Card& card, const RouteRequest& request, TimePoint now) const {
  std::vector<RouteCandidate> out;
  const Area* area = card.find_area(request.area);
  if (area == nullptr) return out;
  int minute = std::clamp(request.minute_of_day, 0, minutes_per_day - 1);
  auto add = [&](const std::vector<AccessPoint>& points, RouteKind kind) {
    for (const AccessPoint& point : points)
      if (point.reaches(request.destination) && usable(point.name, now))
        out.push_back(RouteCandidate{kind, &point, point.cost_at(minute)});
  };
  add(area->internet, RouteKind::internet);
  add(area->premium, RouteKind::premium);
  add(area->agents, RouteKind::agent);
  // Stable: equal costs keep kind order, then card order, as added.
  std::stable_sort(out.begin(), out.end(), [](const RouteCandidate& a, const RouteCandidate& b) {
    return a.cost_per_minute < b.cost_per_minute;
  });
  return out;
}

std::optional<RouteCandidate> LeastCostRouter::choose(const Card& card, const RouteRequest& request, TimePoint now) {
  std::vector<RouteCandidate> ranked = rank(card, request, now);
  if (ranked.empty()) return std::nullopt;
  auto best_settled = std::find_if(ranked.begin(), ranked.end(),
                                   [&](const RouteCandidate& c) { return settled(c.point->name, now); });
  auto current = std::find_if(ranked.begin(), ranked.end(),
                              [&](const RouteCandidate& c) { return c.point->name == current_; });
  const RouteCandidate* chosen = nullptr;
  if (current != ranked.end()) {
    chosen = &*current;
    if (best_settled != ranked.end() &&
        uint64_t{best_settled->cost_per_minute} + settings_.switch_margin <= current->cost_per_minute)
      chosen = &*best_settled;
  } else {
    chosen = best_settled != ranked.end() ? &*best_settled : &ranked.front();
  }
  current_ = chosen->point->name;
  return *chosen;
}

void LeastCostRouter::report_unreachable(std::string_view name, TimePoint now) {
  auto entry = reachability_.try_emplace(std::string(name)).first;
  entry->second.failed_at = now;
  entry->second.reachable_since.reset();
}

void LeastCostRouter::report_reachable(std::string_view name, TimePoint now) {
  auto found = reachability_.find(name);
  // A point that never failed needs no record: it is usable and settled.
  if (found == reachability_.end() || found->second.reachable_since) return;
  found->second.reachable_since = now;
}

RouteMemory LeastCostRouter::remember(TimePoint now, int64_t now_unix) const {
  auto unix_of = [&](TimePoint at) {
    return now_unix - std::chrono::duration_cast<std::chrono::seconds>(now - at).count();
  };
  RouteMemory memory;
  memory.current = current_;
  for (const auto& [name, record] : reachability_) {
    if (!record.failed_at || settled(name, now) || memory.points.size() >= max_route_memory_points) continue;
    memory.points.push_back(RouteMemory::Point{
        name, unix_of(*record.failed_at), record.reachable_since ? unix_of(*record.reachable_since) : 0});
  }
  return memory;
}

void LeastCostRouter::recall(const RouteMemory& memory, TimePoint now, int64_t now_unix) {
  // A time ahead of now (the clock was set back) counts as now.
  auto point_of = [&](int64_t unix_seconds) { return now - std::chrono::seconds(std::max<int64_t>(now_unix - unix_seconds, 0)); };
  current_ = memory.current;
  for (const auto& point : memory.points) {
    Reachability& record = reachability_[point.name];
    record.failed_at = point_of(point.failed_at);
    if (point.reachable_since != 0) record.reachable_since = point_of(point.reachable_since);
    else record.reachable_since.reset();
  }
}

}  // namespace tsunagu::cards
