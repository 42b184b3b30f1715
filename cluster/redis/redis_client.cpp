#include "cluster/redis/redis_client.hpp"

#include "cluster/redis/key_slot.hpp"

#include <algorithm>

namespace tsunagu::cluster {

RedisClient::RedisClient(uv_loop_t* loop, std::vector<RedisEndpoint> seeds, RedisBackoff backoff, RedisAuth auth)
    : loop_(loop), backoff_(backoff), auth_(std::move(auth)), endpoints_(std::move(seeds)), slot_owner_(redis_slot_count, 0),
      self_(std::make_shared<RedisClient*>(this)) {
  connections_.resize(endpoints_.size());
}

void RedisClient::start() {
  // Every seed: the first may be the one that is down.
  for (size_t i = 0; i < connections_.size(); ++i) connection(i);
}

size_t RedisClient::endpoint_index(const RedisEndpoint& endpoint) {
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i] == endpoint) return i;
  }
  endpoints_.push_back(endpoint);
  connections_.emplace_back();
  return endpoints_.size() - 1;
}

RedisConnection& RedisClient::connection(size_t index) {
  if (!connections_[index]) {
    connections_[index] = std::make_unique<RedisConnection>(loop_, endpoints_[index], backoff_, auth_);
    // Each (re)connection asks for the slot map: after a restart or a failover it may differ.
    connections_[index]->on_connected([this] { refresh_topology(); });
    connections_[index]->start();
  }
  return *connections_[index];
}

uint64_t RedisClient::connections_made() const {
  uint64_t total = 0;
  for (const auto& connection : connections_) {
    if (connection) total += connection->connections_made();
  }
  return total;
}

void RedisClient::command(std::string_view key, std::vector<std::string> argv, RedisReplyHandler handler) {
  dispatch(redis_key_slot(key), std::make_shared<std::vector<std::string>>(std::move(argv)), std::move(handler), 0,
           std::nullopt);
}

void RedisClient::dispatch(uint16_t slot, std::shared_ptr<std::vector<std::string>> argv, RedisReplyHandler handler,
                           int redirects, std::optional<size_t> ask_target) {
  RedisConnection& target = connection(ask_target ? *ask_target : slot_owner_[slot]);
  if (ask_target) target.send({"ASKING"}, [](const RedisValue&) {});
  std::weak_ptr<RedisClient*> alive = self_;
  target.send(*argv, [alive, slot, argv, handler, redirects](const RedisValue& reply) {
    auto self = alive.lock();
    if (self && reply.type == RedisValue::Type::error && redirects < max_redirects) {
      if (auto redirect = parse_redis_redirect(reply.text)) {
        RedisClient& client = **self;
        size_t index = client.endpoint_index({redirect->host, redirect->port});
        if (redirect->ask) {
          ++client.ask_followed_;
          client.dispatch(slot, argv, handler, redirects + 1, index);
        } else {
          ++client.moved_followed_;
          client.cluster_mode_ = true;
          client.slot_owner_[redirect->slot] = static_cast<uint16_t>(index);
          client.refresh_topology();
          client.dispatch(slot, argv, handler, redirects + 1, std::nullopt);
        }
        return;
      }
    }
    handler(reply);
  });
}

void RedisClient::refresh_topology() {
  if (refreshing_) return;
  // Any server that is up can tell: the seed may be the one that went away.
  RedisConnection* asked = nullptr;
  for (size_t i = 0; i < connections_.size() && asked == nullptr; ++i) {
    if (connections_[i] && connections_[i]->connected()) asked = connections_[i].get();
  }
  if (asked == nullptr) return;
  refreshing_ = true;
  std::weak_ptr<RedisClient*> alive = self_;
  asked->send({"CLUSTER", "SLOTS"}, [alive](const RedisValue& reply) {
    auto self = alive.lock();
    if (!self) return;
    RedisClient& client = **self;
    client.refreshing_ = false;
    client.apply_slots(reply);
  });
}

void RedisClient::apply_slots(const RedisValue& reply) {
  if (reply.type == RedisValue::Type::error && reply.text.find("cluster support disabled") != std::string::npos) {
    cluster_mode_ = false;
    topology_known_ = true;
    std::fill(slot_owner_.begin(), slot_owner_.end(), uint16_t{0});
  } else if (reply.type == RedisValue::Type::array && !reply.elements.empty()) {
    // Each entry: [first slot, last slot, [host, port, id...] of the primary, replicas...].
    for (const RedisValue& range : reply.elements) {
      if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
      const RedisValue& primary = range.elements[2];
      long long first = range.elements[0].integer;
      long long last = range.elements[1].integer;
      if (first < 0 || last >= redis_slot_count || first > last) continue;
      auto index = static_cast<uint16_t>(endpoint_index({primary.elements[0].text,
                                                         static_cast<int>(primary.elements[1].integer)}));
      for (long long slot = first; slot <= last; ++slot) slot_owner_[static_cast<size_t>(slot)] = index;
    }
    cluster_mode_ = true;
    topology_known_ = true;
  } else {
    return;  // unavailable, or a cluster still forming: MOVED replies will teach the map meanwhile
  }
  if (on_topology_) on_topology_();
}

}  // namespace tsunagu::cluster
