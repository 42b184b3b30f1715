// Cluster mode in the running node (docs/cluster.md): presence in Redis and
// requests relayed between nodes over the Redis bus. The daemon hands every
// terminal message to take_message() first; a lookup or call for a user (or
// an EXT@DOMAIN, or a +NUMBER in an agent's number prefix) whose link is held
// by another node is sent there whole, and handled there by the holding
// node's own core on a "remote link" that stands for the asking terminal
// (logged in as its user, with its observed address). What that core sends
// to the remote link comes back over the bus to the terminal; a call's later
// messages (its CALL-ID) follow the call to the node that holds it. So a call
// always lives on its callee's node, with every rule and limit of a local call.
//
// Pub/sub keeps nothing, and SPUBLISH says how many nodes heard: a message
// no node heard is handled locally (as for a user whose link is gone), and a
// heartbeat no node hears ends what hung on that node, calls with
// link_lost as when a local link is lost.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cluster/redis/node_bus.hpp"
#include "cluster/redis/presence_directory.hpp"
#include "cluster/redis/redis_client.hpp"
#include "rendezvous/node_core.hpp"

namespace tsunagu::rendezvous {

struct ClusterOptions {
  std::vector<cluster::RedisEndpoint> redis;  // empty: not a cluster
  std::string node_name;
  cluster::RedisAuth redis_auth;  // [cluster] redis_user, redis_password_file
  uint64_t heartbeat_ms = 2000;  // how often a node with calls on another asks whether it still listens
};

// "IP:PORT" or "[IPv6]:PORT" (hiredis resolves names with a blocking call,
// so only IP literals); nullopt when it is not one.
std::optional<cluster::RedisEndpoint> parse_redis_endpoint(std::string_view text);
// A node name: 1 to 64 of a-z 0-9 - . _ (it is part of Redis keys and values).
bool valid_node_name(std::string_view name);

// Which Redis row says where a lookup or call of `target` (a valid user ID)
// is answered: a user's presence; for EXT@DOMAIN, the agent row of DOMAIN;
// for a +NUMBER inside an enrolled number prefix (`enrolled_prefix`: the
// longest one, from the agents' enrolments), that prefix's row. A +NUMBER in
// no enrolled prefix is asked for as a user. nullopt: this node answers it
// itself (`held_here` says whether a link of this node holds the row). Pure.
struct HolderQuery {
  cluster::HolderKind kind = cluster::HolderKind::user;
  std::string holder;
  bool operator==(const HolderQuery&) const = default;
};
std::optional<HolderQuery> holder_to_ask(const std::string& target, const std::optional<std::string>& enrolled_prefix,
                                         const std::function<bool(const HolderQuery&)>& held_here);

// Which calls of this node's terminals live on another node, and which
// remote links stand here for another node's terminals. Pure.
class ClusterLinks {
 public:
  static constexpr LinkId link_range_bit = LinkId{1} << 61;
  static bool is_remote(LinkId link) { return (link & link_range_bit) != 0; }

  struct Remote {
    std::string node;
    LinkId link = 0;  // on that node
    std::string user;
  };
  // The remote link standing for (node, link); opened: a new one was made.
  struct Found {
    LinkId link = 0;
    bool opened = false;
  };
  Found remote_link(const std::string& node, LinkId link, const std::string& user);
  const Remote* remote(LinkId remote_link) const;
  std::optional<LinkId> remote_link_of(const std::string& node, LinkId link) const;
  void forget_remote(LinkId remote_link);
  std::vector<LinkId> remote_links_of_node(const std::string& node) const;
  size_t remote_count() const { return remotes_.size(); }

  // A message for local `link` came from `node`, about `call_id`.
  void call_seen(LinkId link, const std::string& call_id, const std::string& node);
  void call_ended(LinkId link, const std::string& call_id);
  const std::string* call_node(LinkId link, const std::string& call_id) const;
  // Local `link` sent a request to `node`.
  void asked(LinkId link, const std::string& node) { nodes_of_link_[link].insert(node); }
  // The local link closed: the nodes it had asked, forgotten.
  std::set<std::string> local_closed(LinkId link);
  // The node is gone: the calls of local links it held, forgotten.
  std::vector<std::pair<LinkId, std::string>> node_gone(const std::string& node);
  // Every node something here depends on (heartbeats go to these).
  std::set<std::string> nodes_in_use() const;

 private:
  LinkId next_remote_ = 1;
  std::unordered_map<LinkId, Remote> remotes_;
  std::map<std::pair<std::string, LinkId>, LinkId> remote_by_origin_;
  std::map<std::pair<LinkId, std::string>, std::string> calls_;  // (local link, call ID) -> node
  std::unordered_map<LinkId, std::set<std::string>> nodes_of_link_;
};

class ClusterRelay {
 public:
  struct Hooks {
    std::function<Now()> now;
    // Sends to a terminal link of this node; false when it is not open.
    std::function<bool(LinkId, ByteView)> send_to_link;
    // Runs the daemon's turn (commit, actions) after work done outside a loop callback's drain.
    std::function<void()> drain;
    // The enrolled route a +NUMBER lies in: its longest enrolled number prefix
    // (AgentDirectory::route_of; PostgreSQL's agent_routes with --pg). Empty:
    // numbers are not relayed.
    std::function<Expected<std::optional<std::string>, storage::StoreError>(const std::string& user_id)> enrolled_route;
  };
  ClusterRelay(uv_loop_t* loop, NodeCore& core, ClusterOptions options, Hooks hooks);
  ~ClusterRelay();
  ClusterRelay(const ClusterRelay&) = delete;
  ClusterRelay& operator=(const ClusterRelay&) = delete;

  void start();
  // Closes the Redis connections and the timer; the relay does nothing after.
  void shutdown();

  static bool owns_link(LinkId link) { return ClusterLinks::is_remote(link); }
  // A message from terminal link `link` of this node: true when the relay
  // took it (it goes to another node, or to the core once Redis answered).
  bool take_message(LinkId link, ByteView message, const proto::SocketAddress& observed);
  // What the core does to a remote link: sent to its node.
  void core_action(const NodeAction& action);
  // A link of this node closed (after the core heard of it).
  void link_closed(LinkId link);
  // The core's presence changes of this round, written to Redis.
  void write_presence();

  const std::string& node_name() const { return options_.node_name; }
  size_t remote_links() const { return links_.remote_count(); }

 private:
  void on_bus(const cluster::BusEnvelope& envelope);
  void relay(LinkId link, const std::string& node, Bytes message, const proto::SocketAddress& observed);
  // The Redis row that says where `target` is answered, reading its +NUMBER's
  // longest enrolled prefix within `within` (the number, then ever shorter);
  // nullopt: this node answers it.
  std::optional<HolderQuery> holder_for(const std::string& target, const std::string& within);
  // Asks Redis, then relays `message` to the holding node, or answers here.
  void ask_holder(LinkId link, const proto::SocketAddress& observed, Bytes message, std::string target,
                  HolderQuery query);
  void refuse_unavailable(LinkId link, const Bytes& message);
  void handle_here(LinkId link, const Bytes& message);
  void close_remote(LinkId remote_link);
  void heartbeat();
  void node_gone(const std::string& node);
  void refresh_agents();

  uv_loop_t* loop_;
  NodeCore& core_;
  ClusterOptions options_;
  Hooks hooks_;
  std::unique_ptr<cluster::RedisClient> redis_;
  std::unique_ptr<cluster::PresenceDirectory> presence_;
  std::unique_ptr<cluster::NodeBus> bus_;
  uv_timer_t* heartbeat_timer_ = nullptr;  // freed in its close callback
  uv_timer_t* agent_timer_ = nullptr;
  ClusterLinks links_;
  // An agent link held here -> the domains and number prefixes it holds (kind, holder).
  std::unordered_map<LinkId, std::vector<HolderQuery>> agent_routes_;
  bool holds_agent_route(const HolderQuery& route) const;
  // Reply handlers check it: a Redis reply may come after shutdown.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tsunagu::rendezvous
