#include "rendezvous/relay_names.hpp"

#include <algorithm>

namespace tsunagu::rendezvous {

std::vector<std::string> RelayNameCache::want(const std::vector<std::string>& hosts, uint64_t now_ms) {
  std::vector<std::string> lookups;
  for (const auto& host : hosts) {
    auto it = entries_.find(host);
    if (it == entries_.end()) {
      make_room();
      it = entries_.emplace(host, Entry{}).first;
    }
    Entry& entry = it->second;
    if (entry.in_flight) continue;
    uint64_t ttl_ms = uint64_t{entry.failed ? timing_.failure_ttl_s : timing_.ttl_s} * 1000;
    if (entry.answered && now_ms < entry.answered_ms + ttl_ms) continue;
    entry.in_flight = true;
    lookups.push_back(host);
  }
  return lookups;
}

void RelayNameCache::make_room() {
  if (entries_.size() < max_names) return;
  auto oldest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (!it->second.in_flight && (oldest == entries_.end() || it->second.answered_ms < oldest->second.answered_ms))
      oldest = it;
  // Every entry in flight (max_names lookups outstanding): the oldest answer
  // cannot be told, so the first goes; its answer is then dropped.
  entries_.erase(oldest != entries_.end() ? oldest : entries_.begin());
}

bool RelayNameCache::in_flight(std::string_view host) const {
  auto it = entries_.find(std::string(host));
  return it != entries_.end() && it->second.in_flight;
}

void RelayNameCache::resolved(const std::string& host, std::vector<proto::SocketAddress> addresses,
                              uint64_t now_ms) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return;  // displaced meanwhile
  if (addresses.empty()) {
    failed(host, now_ms);
    return;
  }
  std::stable_partition(addresses.begin(), addresses.end(),
                        [](const proto::SocketAddress& a) { return a.family == proto::SocketAddress::Family::ipv4; });
  it->second = Entry{std::move(addresses), now_ms, true, false, false};
}

bool RelayNameCache::failed(const std::string& host, uint64_t now_ms) {
  auto it = entries_.find(host);
  if (it == entries_.end()) return false;
  bool first = !it->second.failed;
  it->second = Entry{{}, now_ms, true, true, false};
  return first;
}

std::optional<proto::SocketAddress> RelayNameCache::address(std::string_view host, uint16_t port) const {
  auto it = entries_.find(std::string(host));
  if (it == entries_.end() || it->second.addresses.empty()) return std::nullopt;
  proto::SocketAddress chosen = it->second.addresses.front();
  chosen.port = port;
  return chosen;
}

}  // namespace tsunagu::rendezvous
