#include "cluster/redis/node_bus.hpp"

#include "cluster/redis/key_slot.hpp"

namespace tsunagu::cluster {

std::string node_channel(std::string_view node_id) {
  std::string channel = "node:{";
  channel.append(node_id);
  channel.push_back('}');
  return channel;
}

NodeBus::NodeBus(uv_loop_t* loop, RedisClient& redis, std::string node_id, MessageHandler on_message)
    : loop_(loop), redis_(redis), node_id_(std::move(node_id)), channel_(node_channel(node_id_)),
      on_message_(std::move(on_message)) {}

void NodeBus::start() {
  // A new slot map may put the channel on another server: follow it.
  redis_.on_topology([this] {
    if (!subscriber_ || subscriber_->endpoint() != redis_.endpoint_for_slot(redis_key_slot(channel_))) {
      connect_subscriber();
    }
  });
  connect_subscriber();
}

void NodeBus::connect_subscriber() {
  subscribed_ = false;
  subscriber_ = std::make_unique<RedisConnection>(loop_, redis_.endpoint_for_slot(redis_key_slot(channel_)),
                                                  RedisBackoff{}, redis_.auth());
  subscriber_->on_connected([this] { subscribe(); });
  subscriber_->start();
}

void NodeBus::subscribe() {
  subscriber_->subscribe_sharded(
      channel_,
      [this](const RedisValue& reply) {
        if (reply.type == RedisValue::Type::array) {
          subscribed_ = true;
          ++subscriptions_made_;
        } else if (reply.type == RedisValue::Type::error && parse_redis_redirect(reply.text)) {
          // MOVED: this server no longer holds the channel's slot.
          redis_.refresh_topology();
        }
      },
      [this](const std::string& /*channel*/, const std::string& message) {
        auto envelope = decode_bus_envelope(as_bytes(message));
        if (!envelope) {
          ++malformed_dropped_;
          return;
        }
        on_message_(*envelope);
      });
}

void NodeBus::send(const std::string& to_node, BusKind kind, Bytes body, std::function<void(BusSendOutcome)> handler) {
  send(to_node, BusEnvelope{kind, {}, std::move(body)}, std::move(handler));
}

void NodeBus::send(const std::string& to_node, BusEnvelope envelope, std::function<void(BusSendOutcome)> handler) {
  envelope.from_node = node_id_;
  auto encoded = encode_bus_envelope(envelope);
  if (!encoded) {
    if (handler) handler(BusSendOutcome::too_large);
    return;
  }
  std::string channel = node_channel(to_node);
  std::string payload(reinterpret_cast<const char*>(encoded->data()), encoded->size());
  redis_.command(channel, {"SPUBLISH", channel, std::move(payload)}, [handler = std::move(handler)](const RedisValue& reply) {
    if (!handler) return;
    if (reply.type == RedisValue::Type::unavailable) {
      handler(BusSendOutcome::unavailable);
    } else if (reply.type != RedisValue::Type::integer) {
      handler(BusSendOutcome::failed);
    } else {
      handler(reply.integer > 0 ? BusSendOutcome::delivered : BusSendOutcome::no_subscriber);
    }
  });
}

}  // namespace tsunagu::cluster
