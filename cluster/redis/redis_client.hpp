// Commands routed to the Redis server that holds their key: one server, or a
// Redis Cluster. hiredis has no cluster client, so this does the little the
// directory and the bus need: the key's slot (key_slot.hpp), the slot map from
// CLUSTER SLOTS, MOVED (the slot moved: remember, refresh, retry) and ASK (this
// command only: ASKING then the command on the target). Whether the servers
// are a cluster is found out from the first server that answers CLUSTER SLOTS:
// one without cluster support answers with an error, and then every slot is
// the first seed's (a single Redis is given as the one seed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis/redis_connection.hpp"

namespace tsunagu::cluster {

class RedisClient {
 public:
  RedisClient(uv_loop_t* loop, std::vector<RedisEndpoint> seeds, RedisBackoff backoff = {}, RedisAuth auth = {});
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  void start();
  // Sends argv to the server holding `key`'s slot. The handler sees the final
  // reply after at most max_redirects MOVED/ASK hops, or `unavailable`.
  void command(std::string_view key, std::vector<std::string> argv, RedisReplyHandler handler);
  // Asks the servers for the slot map again (after MOVED, or a reconnection).
  void refresh_topology();

  bool cluster_mode() const { return cluster_mode_; }
  bool topology_known() const { return topology_known_; }
  RedisEndpoint endpoint_for_slot(uint16_t slot) const { return endpoints_[slot_owner_[slot]]; }
  size_t server_count() const { return endpoints_.size(); }
  // Every connection to every server authenticates with this (the bus's subscriber too).
  const RedisAuth& auth() const { return auth_; }
  // Connections established so far, reconnections included: when it moves,
  // a server may have restarted empty (PresenceDirectory then refreshes everything).
  uint64_t connections_made() const;
  uint64_t moved_followed() const { return moved_followed_; }
  uint64_t ask_followed() const { return ask_followed_; }
  // Called after each change of the slot map (a subscriber may have to move).
  // One listener: the node's bus.
  void on_topology(std::function<void()> handler) { on_topology_ = std::move(handler); }

  static constexpr int max_redirects = 3;

 private:
  size_t endpoint_index(const RedisEndpoint& endpoint);
  RedisConnection& connection(size_t index);
  void dispatch(uint16_t slot, std::shared_ptr<std::vector<std::string>> argv, RedisReplyHandler handler,
                int redirects, std::optional<size_t> ask_target);
  void apply_slots(const RedisValue& reply);

  uv_loop_t* loop_;
  RedisBackoff backoff_;
  RedisAuth auth_;
  std::vector<RedisEndpoint> endpoints_;                     // the seeds first
  std::vector<std::unique_ptr<RedisConnection>> connections_;  // by endpoint index, made on first use
  std::vector<uint16_t> slot_owner_;                           // endpoint index per slot
  bool cluster_mode_ = false;
  bool topology_known_ = false;
  bool refreshing_ = false;
  uint64_t moved_followed_ = 0;
  uint64_t ask_followed_ = 0;
  std::function<void()> on_topology_;
  // Handlers of replies still in flight check it: the client may be gone by then.
  std::shared_ptr<RedisClient*> self_;
};

}  // namespace tsunagu::cluster
