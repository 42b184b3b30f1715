#include "rendezvous/login_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tsunagu::rendezvous {

std::string source_key(const proto::SocketAddress& address) {
  if (address.family == proto::SocketAddress::Family::ipv4) return address.ip_string();
  const auto& ip = address.ip;
  bool v4_mapped = std::all_of(ip.begin(), ip.begin() + 10, [](uint8_t b) { return b == 0; }) && ip[10] == 0xff &&
                   ip[11] == 0xff;
  if (v4_mapped) return proto::SocketAddress::v4({ip[12], ip[13], ip[14], ip[15]}, 0).ip_string();
  proto::SocketAddress network = address;
  std::fill(network.ip.begin() + 8, network.ip.end(), uint8_t{0});
  return network.ip_string() + "/64";
}

void LoginLimiter::refill(Bucket& bucket, unsigned burst, uint64_t refill_ms, uint64_t now_ms) {
  if (now_ms > bucket.updated_ms) {
    bucket.tokens = std::min<double>(burst, bucket.tokens + static_cast<double>(now_ms - bucket.updated_ms) /
                                                                static_cast<double>(refill_ms));
    bucket.updated_ms = now_ms;
  }
}

uint32_t LoginLimiter::wait_seconds(const Bucket& bucket, uint64_t refill_ms) {
  if (bucket.tokens >= 1.0) return 0;
  double ms = (1.0 - bucket.tokens) * static_cast<double>(refill_ms);
  return static_cast<uint32_t>(std::max(1.0, std::ceil(ms / 1000.0)));
}

std::string LoginLimiter::pair_key(std::string_view user_id, std::string_view source) {
  std::string key(user_id);
  key.push_back('\0');
  key.append(source);
  return key;
}

uint32_t LoginLimiter::wait_for(std::unordered_map<std::string, Bucket>& map, const std::string& key, unsigned burst,
                                uint64_t refill_ms, uint64_t now_ms, bool* drained) {
  auto it = map.find(key);
  if (it == map.end()) return 0;
  refill(it->second, burst, refill_ms, now_ms);
  if (drained != nullptr) *drained = it->second.tokens < burst;
  return wait_seconds(it->second, refill_ms);
}

uint32_t LoginLimiter::retry_after(std::string_view user_id, std::string_view source, uint64_t now_ms) {
  bool pair_failed = false;
  uint32_t wait = wait_for(pairs_, pair_key(user_id, source), policy_.per_pair_burst, policy_.per_pair_refill_ms,
                           now_ms, &pair_failed);
  wait = std::max(wait, wait_for(sources_, std::string(source), policy_.per_source_burst,
                                 policy_.per_source_refill_ms, now_ms));
  // The ID's own limit holds back only sources that already failed for it:
  // the owner, somewhere else, still gets in during a distributed flood.
  if (pair_failed)
    wait = std::max(wait, wait_for(users_, std::string(user_id), policy_.per_user_burst, policy_.per_user_refill_ms,
                                   now_ms));
  return wait;
}

void LoginLimiter::refund(std::unordered_map<std::string, Bucket>& map, std::string_view key, unsigned burst) {
  if (auto it = map.find(std::string(key)); it != map.end())
    it->second.tokens = std::min<double>(burst, it->second.tokens + 1.0);
}

uint32_t LoginLimiter::register_retry_after(std::string_view source, uint64_t now_ms) {
  return wait_for(registrations_, std::string(source), policy_.register_burst, policy_.register_refill_ms, now_ms);
}

void LoginLimiter::record_registration(std::string_view source, uint64_t now_ms) {
  drain(registrations_, source, policy_.register_burst, policy_.register_refill_ms, now_ms);
}

void LoginLimiter::drain(std::unordered_map<std::string, Bucket>& map, std::string_view key, unsigned burst,
                         uint64_t refill_ms, uint64_t now_ms) {
  auto it = map.find(std::string(key));
  if (it == map.end()) {
    // Only a new key makes room: pruning must never forget the bucket being drained.
    if (map.size() >= policy_.max_tracked) prune(map, burst, refill_ms, now_ms);
    it = map.emplace(std::string(key), Bucket{static_cast<double>(burst), now_ms}).first;
  }
  refill(it->second, burst, refill_ms, now_ms);
  it->second.tokens = std::max(0.0, it->second.tokens - 1.0);
}

void LoginLimiter::prune(std::unordered_map<std::string, Bucket>& map, unsigned burst, uint64_t refill_ms,
                         uint64_t now_ms) {
  // Full buckets carry no information. If that frees no room, forget the
  // fuller half (the least drained buckets) rather than grow without bound.
  for (auto it = map.begin(); it != map.end();) {
    refill(it->second, burst, refill_ms, now_ms);
    it = it->second.tokens >= burst ? map.erase(it) : std::next(it);
  }
  if (map.size() < policy_.max_tracked) return;
  std::vector<std::unordered_map<std::string, Bucket>::iterator> order;
  order.reserve(map.size());
  for (auto it = map.begin(); it != map.end(); ++it) order.push_back(it);
  auto fuller = order.begin() + static_cast<std::ptrdiff_t>(order.size() / 2);
  std::nth_element(order.begin(), fuller, order.end(),
                   [](const auto& a, const auto& b) { return a->second.tokens < b->second.tokens; });
  for (auto it = fuller; it != order.end(); ++it) map.erase(*it);
}

void LoginLimiter::record_failure(std::string_view user_id, std::string_view source, uint64_t now_ms) {
  drain(pairs_, pair_key(user_id, source), policy_.per_pair_burst, policy_.per_pair_refill_ms, now_ms);
  drain(users_, user_id, policy_.per_user_burst, policy_.per_user_refill_ms, now_ms);
  drain(sources_, source, policy_.per_source_burst, policy_.per_source_refill_ms, now_ms);
}

void LoginLimiter::record_success(std::string_view user_id, std::string_view source) {
  // The ID's bucket is not cleared: a distributed guesser must not get a
  // fresh allowance each time the owner logs in.
  pairs_.erase(pair_key(user_id, source));
  refund(users_, user_id, policy_.per_user_burst);
  refund(sources_, source, policy_.per_source_burst);
}

}  // namespace tsunagu::rendezvous
