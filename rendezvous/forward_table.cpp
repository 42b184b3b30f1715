#include "rendezvous/forward_table.hpp"

#include <algorithm>

namespace tsunagu::rendezvous {

std::optional<LinkId> LocalRouteTable::domain_holder(const std::string& domain) const {
  auto it = domains_.find(domain);
  return it == domains_.end() ? std::nullopt : std::optional<LinkId>(it->second);
}

std::optional<LinkId> LocalRouteTable::prefix_holder(const std::string& prefix) const {
  auto it = prefixes_.find(prefix);
  return it == prefixes_.end() ? std::nullopt : std::optional<LinkId>(it->second);
}

std::optional<std::pair<std::string, LinkId>> LocalRouteTable::number_holder(const std::string& number) const {
  std::optional<std::pair<std::string, LinkId>> found;
  for (const auto& [prefix, holder] : prefixes_)
    if (number.starts_with(prefix) && (!found || prefix.size() > found->first.size())) found.emplace(prefix, holder);
  return found;
}

void LocalRouteTable::hold(const std::vector<std::string>& domains, const std::vector<std::string>& prefixes,
                           LinkId agent) {
  for (const auto& d : domains) domains_[d] = agent;
  for (const auto& p : prefixes) prefixes_[p] = agent;
}

void LocalRouteTable::drop_agent(LinkId agent) {
  std::erase_if(domains_, [&](const auto& entry) { return entry.second == agent; });
  std::erase_if(prefixes_, [&](const auto& entry) { return entry.second == agent; });
}

Route find_route(const RouteTable& held, EnrolledRoutes* enrolled, const std::string& user_id) {
  Route found;
  auto at = user_id.find('@');
  if (at != std::string::npos) {
    found.route = user_id.substr(at + 1);
    found.agent = held.domain_holder(found.route);
  } else if (!user_id.empty() && user_id[0] == '+') {
    if (auto holder = held.number_holder(user_id)) {  // the longest announced prefix wins
      found.route = holder->first;
      found.agent = holder->second;
    }
  }
  if (!found.agent && enrolled != nullptr) {
    auto route = enrolled->route_of(user_id);
    if (!route) found.storage_error = route.error();
    if (route && route->has_value()) {
      found.routed = true;
      found.route = **route;
    }
  }
  found.routed = found.routed || found.agent.has_value();
  return found;
}

void LocalForwardTable::add(const proto::TransactionId& id, PendingForward forward) {
  // A reused ID replaces its forward (IDs are unique: never in practice).
  if (auto old = forwards_.find(id.bytes); old != forwards_.end()) uncount(old->second.agent);
  ++by_agent_[forward.agent];
  forwards_.insert_or_assign(id.bytes, std::move(forward));
}

const PendingForward* LocalForwardTable::find(const proto::TransactionId& id) const {
  auto it = forwards_.find(id.bytes);
  return it == forwards_.end() ? nullptr : &it->second;
}

std::optional<PendingForward> LocalForwardTable::take(const proto::TransactionId& id) {
  auto it = forwards_.find(id.bytes);
  if (it == forwards_.end()) return std::nullopt;
  PendingForward forward = std::move(it->second);
  forwards_.erase(it);
  uncount(forward.agent);
  return forward;
}

std::vector<std::pair<proto::TransactionId, PendingForward>> LocalForwardTable::take_agent(LinkId agent) {
  std::vector<std::pair<proto::TransactionId, PendingForward>> taken;
  for (auto it = forwards_.begin(); it != forwards_.end();) {
    if (it->second.agent != agent) {
      ++it;
      continue;
    }
    proto::TransactionId id;
    id.bytes = it->first;
    taken.emplace_back(id, std::move(it->second));
    it = forwards_.erase(it);
  }
  std::sort(taken.begin(), taken.end(), [](const auto& a, const auto& b) { return a.first.bytes < b.first.bytes; });
  by_agent_.erase(agent);
  return taken;
}

size_t LocalForwardTable::pending_for(LinkId agent) const {
  auto it = by_agent_.find(agent);
  return it == by_agent_.end() ? 0 : it->second;
}

void LocalForwardTable::uncount(LinkId agent) {
  auto it = by_agent_.find(agent);
  if (it != by_agent_.end() && --it->second == 0) by_agent_.erase(it);
}

}  // namespace tsunagu::rendezvous
