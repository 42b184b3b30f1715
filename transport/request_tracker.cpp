#include "transport/request_tracker.hpp"

namespace tsunagu::transport {

std::string_view describe(RequestFailure failure) {
  switch (failure) {
    case RequestFailure::none: return "answered";
    case RequestFailure::timed_out: return "no response from the node";
    case RequestFailure::link_lost: return "link lost";
    case RequestFailure::stopped: return "stopped";
  }
  return "unknown";
}

bool RequestTracker::add(const proto::TransactionId& id, uint64_t deadline_ms, Handler handler) {
  auto [it, inserted] = entries_.try_emplace(id.bytes, Entry{deadline_ms, std::move(handler)});
  if (!inserted) return false;
  by_deadline_.emplace(deadline_ms, id.bytes);
  return true;
}

RequestTracker::Handler RequestTracker::take(const proto::TransactionId& id) {
  auto it = entries_.find(id.bytes);
  if (it == entries_.end()) return {};
  Handler handler = std::move(it->second.handler);
  by_deadline_.erase({it->second.deadline_ms, id.bytes});
  entries_.erase(it);
  return handler;
}

std::vector<RequestTracker::Handler> RequestTracker::take_expired(uint64_t now_ms) {
  std::vector<Handler> expired;
  while (!by_deadline_.empty() && by_deadline_.begin()->first <= now_ms) {
    auto node = by_deadline_.extract(by_deadline_.begin());
    auto it = entries_.find(node.value().second);
    expired.push_back(std::move(it->second.handler));
    entries_.erase(it);
  }
  return expired;
}

std::vector<RequestTracker::Handler> RequestTracker::take_all() {
  std::vector<Handler> all;
  all.reserve(entries_.size());
  // Earliest deadline first, the same order take_expired uses.
  for (const auto& [deadline, key] : by_deadline_) all.push_back(std::move(entries_.at(key).handler));
  entries_.clear();
  by_deadline_.clear();
  return all;
}

std::optional<uint64_t> RequestTracker::next_deadline() const {
  if (by_deadline_.empty()) return std::nullopt;
  return by_deadline_.begin()->first;
}

}  // namespace tsunagu::transport
