// Messages between nodes over Redis sharded pub/sub: each node subscribes to
// its own channel node:{ID} (SSUBSCRIBE, on the server holding the channel's
// slot) and sends to another node with SPUBLISH node:{OTHER}. A message is a
// bus envelope (bus_envelope.hpp): kind, sending node, opaque body. Pub/sub
// keeps nothing: a message for a node that is not subscribed (dead, or
// reconnecting) is lost, and send() says so (delivered to no subscriber), so
// the caller can answer as for a link that is gone.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <uv.h>

#include "cluster/redis/bus_envelope.hpp"
#include "cluster/redis/redis_client.hpp"

namespace tsunagu::cluster {

std::string node_channel(std::string_view node_id);

enum class BusSendOutcome { delivered, no_subscriber, unavailable, failed, too_large };

class NodeBus {
 public:
  using MessageHandler = std::function<void(const BusEnvelope&)>;
  NodeBus(uv_loop_t* loop, RedisClient& redis, std::string node_id, MessageHandler on_message);
  NodeBus(const NodeBus&) = delete;
  NodeBus& operator=(const NodeBus&) = delete;

  // Subscribes, and again after every reconnection or move of the channel's slot.
  void start();
  void send(const std::string& to_node, BusKind kind, Bytes body, std::function<void(BusSendOutcome)> handler = {});
  // The envelope's from_node is set to this node's.
  void send(const std::string& to_node, BusEnvelope envelope, std::function<void(BusSendOutcome)> handler = {});

  bool subscribed() const { return subscribed_; }
  uint64_t malformed_dropped() const { return malformed_dropped_; }
  uint64_t subscriptions_made() const { return subscriptions_made_; }

 private:
  void connect_subscriber();
  void subscribe();

  uv_loop_t* loop_;
  RedisClient& redis_;
  std::string node_id_;
  std::string channel_;
  MessageHandler on_message_;
  std::unique_ptr<RedisConnection> subscriber_;  // in subscriber mode: a connection of its own
  bool subscribed_ = false;
  uint64_t malformed_dropped_ = 0;
  uint64_t subscriptions_made_ = 0;
};

}  // namespace tsunagu::cluster
