// Where routed IDs go and the questions waiting on LAN agents. Pure: no
// sockets, no clocks (a forward's answer deadline lives in NodeCore's
// queue of forward expiries, in sending order).
//
// RouteTable: the domains and number prefixes held by connected agents.
// EnrolledRoutes: the enrolments in storage (the agent registry), so that an
// ID inside an enrolled route is routed even while its agent is away.
// ForwardTable: forwarded lookups sent to an agent and not answered yet.
//
// Each is an interface with a local, in-memory implementation. In cluster
// mode (docs/cluster.md) the agent holding a domain may be linked to another
// node: the relay (cluster_relay.hpp) finds that node in Redis and sends the
// whole lookup there, where these tables answer it as a local one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "rendezvous/presence_table.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::rendezvous {

class RouteTable {
 public:
  virtual ~RouteTable() = default;
  virtual std::optional<LinkId> domain_holder(const std::string& domain) const = 0;
  virtual std::optional<LinkId> prefix_holder(const std::string& prefix) const = 0;
  // The longest held prefix `number` starts with, and its agent.
  virtual std::optional<std::pair<std::string, LinkId>> number_holder(const std::string& number) const = 0;
  virtual void hold(const std::vector<std::string>& domains, const std::vector<std::string>& prefixes, LinkId agent) = 0;
  // The agent's link closed: it holds nothing any more.
  virtual void drop_agent(LinkId agent) = 0;
};

class LocalRouteTable final : public RouteTable {
 public:
  std::optional<LinkId> domain_holder(const std::string& domain) const override;
  std::optional<LinkId> prefix_holder(const std::string& prefix) const override;
  std::optional<std::pair<std::string, LinkId>> number_holder(const std::string& number) const override;
  void hold(const std::vector<std::string>& domains, const std::vector<std::string>& prefixes, LinkId agent) override;
  void drop_agent(LinkId agent) override;

 private:
  std::unordered_map<std::string, LinkId> domains_;
  std::map<std::string, LinkId> prefixes_;
};

class EnrolledRoutes {
 public:
  virtual ~EnrolledRoutes() = default;
  // The enrolled domain or prefix `user_id` lies in, if any.
  virtual Expected<std::optional<std::string>, storage::StoreError> route_of(const std::string& user_id) = 0;
};

// Where a routed ID (EXT@DOMAIN, +NUMBER) goes: `routed` when a domain or
// prefix is held by a connected agent or enrolled; `agent` when its agent is
// connected. Storage is asked only when no connected agent holds the ID
// (`enrolled` may be null); when it fails, `storage_error` says so and
// `routed` is false, and a caller must not go on as if the ID were an
// account's: it answers 503 (the ID may be an extension whose agent is away).
struct Route {
  bool routed = false;
  std::optional<LinkId> agent;
  std::string route;  // the domain or prefix
  std::optional<storage::StoreError> storage_error;
};
Route find_route(const RouteTable& held, EnrolledRoutes* enrolled, const std::string& user_id);

struct PendingForward {
  LinkId caller = 0;
  proto::TransactionId caller_transaction;
  LinkId agent = 0;
  // lookup: the agent's answer is the caller's; voicemail_begin: the agent's
  // edge policy decides, then `request` (the caller's, as it came) goes on.
  uint16_t method = proto::method::lookup;
  Bytes request;
};

class ForwardTable {
 public:
  virtual ~ForwardTable() = default;
  // `id` is the forwarded request's transaction ID (unique among those pending;
  // NodeCore makes them from a random prefix and a counter).
  virtual void add(const proto::TransactionId& id, PendingForward forward) = 0;
  virtual const PendingForward* find(const proto::TransactionId& id) const = 0;
  virtual std::optional<PendingForward> take(const proto::TransactionId& id) = 0;
  // Every forward waiting on `agent`, removed, in transaction ID order.
  virtual std::vector<std::pair<proto::TransactionId, PendingForward>> take_agent(LinkId agent) = 0;
  // Forwards waiting on `agent` (its limit: NodeSettings::max_forwards_per_agent).
  virtual size_t pending_for(LinkId agent) const = 0;
  virtual size_t size() const = 0;
};

class LocalForwardTable final : public ForwardTable {
 public:
  void add(const proto::TransactionId& id, PendingForward forward) override;
  const PendingForward* find(const proto::TransactionId& id) const override;
  std::optional<PendingForward> take(const proto::TransactionId& id) override;
  std::vector<std::pair<proto::TransactionId, PendingForward>> take_agent(LinkId agent) override;
  size_t pending_for(LinkId agent) const override;
  size_t size() const override { return forwards_.size(); }

 private:
  void uncount(LinkId agent);
  // The node makes the IDs (an agent's answer only looks one up), so a
  // plain hash of the bytes cannot be flooded.
  struct IdHash {
    size_t operator()(const std::array<std::byte, 12>& id) const {
      uint64_t high = 0, low = 0;
      for (size_t i = 0; i < 4; ++i) high = (high << 8) | static_cast<uint8_t>(id[i]);
      for (size_t i = 4; i < 12; ++i) low = (low << 8) | static_cast<uint8_t>(id[i]);
      return static_cast<size_t>((low ^ (high * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull);
    }
  };
  std::unordered_map<std::array<std::byte, 12>, PendingForward, IdHash> forwards_;
  std::unordered_map<LinkId, size_t> by_agent_;
};

}  // namespace tsunagu::rendezvous
