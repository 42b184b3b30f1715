#include "node/cluster_relay.hpp"

#include <algorithm>

#include "base/log.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::rendezvous {
namespace {
namespace sig = tsunagu::proto;

template <class Handle>
void close_and_delete(Handle* handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
}

std::optional<std::string> string_attribute(const proto::Message& message, uint16_t type) {
  const proto::Attribute* attribute = message.find(type);
  if (attribute == nullptr) return std::nullopt;
  return std::string(proto::read_string(*attribute));
}
}  // namespace

std::optional<cluster::RedisEndpoint> parse_redis_endpoint(std::string_view text) {
  auto address = proto::SocketAddress::parse(text);
  if (!address || address->port == 0) return std::nullopt;
  return cluster::RedisEndpoint{address->ip_string(), address->port};
}

bool valid_node_name(std::string_view name) {
  if (name.empty() || name.size() > cluster::bus_max_node_id_size) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) return false;
  return true;
}

std::optional<HolderQuery> holder_to_ask(const std::string& target, const std::optional<std::string>& enrolled_prefix,
                                         const std::function<bool(const HolderQuery&)>& held_here) {
  HolderQuery query{cluster::HolderKind::user, target};
  if (auto at = target.find('@'); at != std::string::npos) {
    query = {cluster::HolderKind::agent, target.substr(at + 1)};
  } else if (target.starts_with('+') && enrolled_prefix && !enrolled_prefix->empty() &&
             target.starts_with(*enrolled_prefix)) {
    query = {cluster::HolderKind::prefix, *enrolled_prefix};
  }
  if (held_here(query)) return std::nullopt;
  return query;
}

ClusterLinks::Found ClusterLinks::remote_link(const std::string& node, LinkId link, const std::string& user) {
  auto key = std::make_pair(node, link);
  if (auto it = remote_by_origin_.find(key); it != remote_by_origin_.end()) return {it->second, false};
  LinkId remote = link_range_bit | next_remote_++;
  remotes_[remote] = Remote{node, link, user};
  remote_by_origin_[key] = remote;
  return {remote, true};
}

const ClusterLinks::Remote* ClusterLinks::remote(LinkId remote_link) const {
  auto it = remotes_.find(remote_link);
  return it == remotes_.end() ? nullptr : &it->second;
}

std::optional<LinkId> ClusterLinks::remote_link_of(const std::string& node, LinkId link) const {
  auto it = remote_by_origin_.find({node, link});
  if (it == remote_by_origin_.end()) return std::nullopt;
  return it->second;
}

void ClusterLinks::forget_remote(LinkId remote_link) {
  auto it = remotes_.find(remote_link);
  if (it == remotes_.end()) return;
  remote_by_origin_.erase({it->second.node, it->second.link});
  remotes_.erase(it);
}

std::vector<LinkId> ClusterLinks::remote_links_of_node(const std::string& node) const {
  std::vector<LinkId> found;
  for (auto it = remote_by_origin_.lower_bound({node, 0}); it != remote_by_origin_.end() && it->first.first == node; ++it)
    found.push_back(it->second);
  return found;
}

void ClusterLinks::call_seen(LinkId link, const std::string& call_id, const std::string& node) {
  calls_[{link, call_id}] = node;
  nodes_of_link_[link].insert(node);
}

void ClusterLinks::call_ended(LinkId link, const std::string& call_id) { calls_.erase({link, call_id}); }

const std::string* ClusterLinks::call_node(LinkId link, const std::string& call_id) const {
  auto it = calls_.find({link, call_id});
  return it == calls_.end() ? nullptr : &it->second;
}

std::set<std::string> ClusterLinks::local_closed(LinkId link) {
  calls_.erase(calls_.lower_bound({link, std::string()}), calls_.lower_bound({link + 1, std::string()}));
  std::set<std::string> nodes;
  if (auto it = nodes_of_link_.find(link); it != nodes_of_link_.end()) {
    nodes = std::move(it->second);
    nodes_of_link_.erase(it);
  }
  return nodes;
}

std::vector<std::pair<LinkId, std::string>> ClusterLinks::node_gone(const std::string& node) {
  std::vector<std::pair<LinkId, std::string>> ended;
  for (auto it = calls_.begin(); it != calls_.end();) {
    if (it->second == node) {
      ended.push_back(it->first);
      it = calls_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = nodes_of_link_.begin(); it != nodes_of_link_.end();) {
    it->second.erase(node);
    it = it->second.empty() ? nodes_of_link_.erase(it) : std::next(it);
  }
  return ended;
}

std::set<std::string> ClusterLinks::nodes_in_use() const {
  std::set<std::string> nodes;
  for (const auto& [link, node] : calls_) nodes.insert(node);
  for (const auto& [origin, remote] : remote_by_origin_) nodes.insert(origin.first);
  return nodes;
}

ClusterRelay::ClusterRelay(uv_loop_t* loop, NodeCore& core, ClusterOptions options, Hooks hooks)
    : loop_(loop), core_(core), options_(std::move(options)), hooks_(std::move(hooks)) {}

ClusterRelay::~ClusterRelay() { shutdown(); }

void ClusterRelay::start() {
  const NodeSettings& settings = core_.settings();
  // A row outlives its last keepalive as long as the node's own presence does.
  uint64_t ttl_ms = uint64_t{settings.keepalive_interval_s} * settings.keepalive_misses * 1000;
  redis_ = std::make_unique<cluster::RedisClient>(loop_, options_.redis, cluster::RedisBackoff{}, options_.redis_auth);
  presence_ = std::make_unique<cluster::PresenceDirectory>(loop_, *redis_, options_.node_name, ttl_ms);
  bus_ = std::make_unique<cluster::NodeBus>(loop_, *redis_, options_.node_name,
                                            [this](const cluster::BusEnvelope& envelope) { on_bus(envelope); });
  redis_->start();
  bus_->start();
  core_.watch_cluster_presence(true);
  heartbeat_timer_ = new uv_timer_t;
  uv_timer_init(loop_, heartbeat_timer_);
  heartbeat_timer_->data = this;
  uv_timer_start(
      heartbeat_timer_, [](uv_timer_t* timer) { static_cast<ClusterRelay*>(timer->data)->heartbeat(); },
      options_.heartbeat_ms, options_.heartbeat_ms);
  // Agents' keepalives are the link's own business (TLS): their rows are
  // renewed on the presence interval while the link holds the domain.
  agent_timer_ = new uv_timer_t;
  uv_timer_init(loop_, agent_timer_);
  agent_timer_->data = this;
  uint64_t interval_ms = uint64_t{settings.keepalive_interval_s} * 1000;
  uv_timer_start(
      agent_timer_, [](uv_timer_t* timer) { static_cast<ClusterRelay*>(timer->data)->refresh_agents(); },
      interval_ms, interval_ms);
  log::info() << "cluster: node " << options_.node_name << ", Redis " << options_.redis.front().to_string()
              << (options_.redis.size() > 1 ? " and more" : "");
}

void ClusterRelay::shutdown() {
  if (!*alive_) return;
  *alive_ = false;
  core_.watch_cluster_presence(false);
  close_and_delete(heartbeat_timer_);
  heartbeat_timer_ = nullptr;
  close_and_delete(agent_timer_);
  agent_timer_ = nullptr;
  bus_.reset();
  presence_.reset();
  redis_.reset();
}

bool ClusterRelay::take_message(LinkId link, ByteView message, const proto::SocketAddress& observed) {
  if (!*alive_ || !bus_) return false;
  auto decoded = proto::decode(message, proto::default_max_message_size);
  if (!decoded || decoded->consumed != message.size()) return false;  // the core counts it malformed
  const proto::Message& request = decoded->message;
  auto call_id = string_attribute(request, sig::attr::call_id);
  if (call_id) {
    if (const std::string* node = links_.call_node(link, *call_id)) {
      relay(link, *node, Bytes(message.begin(), message.end()), observed);
      return true;
    }
  }
  if (request.message_class != proto::MessageClass::request) return false;
  bool wanted = request.method == sig::method::lookup || (request.method == sig::method::call && !call_id);
  if (!wanted) return false;
  auto target = string_attribute(request, sig::attr::user_id);
  if (!target || !sig::valid_user_id(*target) || !core_.link_user(link)) return false;
  auto query = holder_for(*target, *target);
  if (!query) return false;
  ask_holder(link, observed, Bytes(message.begin(), message.end()), *target, std::move(*query));
  return true;
}

std::optional<HolderQuery> ClusterRelay::holder_for(const std::string& target, const std::string& within) {
  std::optional<std::string> enrolled_prefix;
  if (target.starts_with('+') && hooks_.enrolled_route) {
    auto route = hooks_.enrolled_route(within);
    if (!route) return std::nullopt;  // the core reads the route again and answers the storage error
    enrolled_prefix = *route;
  }
  return holder_to_ask(target, enrolled_prefix, [&](const HolderQuery& asked) {
    return asked.kind == cluster::HolderKind::prefix ? holds_agent_route(asked) : core_.held_here(target);
  });
}

void ClusterRelay::ask_holder(LinkId link, const proto::SocketAddress& observed, Bytes message, std::string target,
                              HolderQuery query) {
  auto asked = [this, alive = alive_, link, observed, message = std::move(message), target = std::move(target),
                query](cluster::PresenceOutcome outcome, std::optional<std::string> node) mutable {
    if (!*alive) return;
    if (outcome == cluster::PresenceOutcome::done && node && *node != options_.node_name) {
      relay(link, *node, std::move(message), observed);
      return;
    }
    if (outcome != cluster::PresenceOutcome::done) {
      // Redis is away or refused us: another node may hold it, so "offline"
      // would be a guess. The terminal is told to try again.
      refuse_unavailable(link, message);
      return;
    }
    // Nobody holds that prefix: as on one node, the longest shorter enrolled
    // prefix whose agent is linked (here or elsewhere) answers. Each round
    // asks for a shorter one, so at most 31 rounds.
    if (query.kind == cluster::HolderKind::prefix && query.holder.size() > 1 && core_.link_user(link)) {
      auto shorter = holder_for(target, query.holder.substr(0, query.holder.size() - 1));
      if (shorter && shorter->kind == cluster::HolderKind::prefix) {
        ask_holder(link, observed, std::move(message), std::move(target), std::move(*shorter));
        return;
      }
    }
    // Nobody else holds it: what this node knows is the answer.
    handle_here(link, message);
  };
  presence_->lookup(query.kind, query.holder, std::move(asked));
}

void ClusterRelay::refuse_unavailable(LinkId link, const Bytes& message) {
  if (!core_.link_user(link)) return;
  auto decoded = proto::decode(message, proto::default_max_message_size);
  if (!decoded) return;
  proto::MessageBuilder error(proto::MessageClass::error, decoded->message.method, decoded->message.transaction_id);
  error.add_u32(sig::attr::protocol_version, sig::protocol_version);
  error.add_error(sig::error::unavailable, "Unavailable: the cluster's presence directory (Redis) cannot be reached");
  hooks_.send_to_link(link, error.finish());
  hooks_.drain();
}

void ClusterRelay::handle_here(LinkId link, const Bytes& message) {
  if (!core_.link_user(link)) return;  // closed (or logged out) while Redis was asked
  core_.message(link, message, hooks_.now());
  hooks_.drain();
}

void ClusterRelay::relay(LinkId link, const std::string& node, Bytes message, const proto::SocketAddress& observed) {
  auto user = core_.link_user(link);
  if (!user) return;
  links_.asked(link, node);
  cluster::BusEnvelope envelope{cluster::BusKind::link_message, {}, message, link, *user, observed};
  bus_->send(node, std::move(envelope),
             [this, alive = alive_, link, node, message](cluster::BusSendOutcome outcome) {
               if (!*alive || outcome == cluster::BusSendOutcome::delivered) return;
               log::debug() << "cluster: node " << node << " did not hear a message for link " << link
                            << "; answered here";
               if (outcome == cluster::BusSendOutcome::no_subscriber) node_gone(node);
               handle_here(link, message);
             });
}

void ClusterRelay::on_bus(const cluster::BusEnvelope& envelope) {
  using cluster::BusKind;
  switch (envelope.kind) {
    case BusKind::link_message: {
      if (envelope.link == 0 || envelope.user.empty() || !sig::valid_user_id(envelope.user)) return;
      if (auto existing = links_.remote_link_of(envelope.from_node, envelope.link)) {
        // The terminal logged in again as someone else on its link: a new remote link.
        if (links_.remote(*existing)->user != envelope.user) close_remote(*existing);
      }
      if (!links_.remote_link_of(envelope.from_node, envelope.link) &&
          links_.remote_count() >= core_.settings().max_links) {
        log::warn() << "cluster: remote links at the limit (limits.max_links); a message from node "
                    << envelope.from_node << " dropped";
        return;
      }
      auto found = links_.remote_link(envelope.from_node, envelope.link, envelope.user);
      if (found.opened)
        core_.remote_link_opened(found.link, envelope.user,
                                 envelope.observed.value_or(proto::SocketAddress::v4({0, 0, 0, 0}, 0)), hooks_.now());
      core_.message(found.link, envelope.body, hooks_.now());
      hooks_.drain();
      return;
    }
    case BusKind::link_reply: {
      auto decoded = proto::decode(envelope.body, proto::default_max_message_size);
      if (!decoded) return;
      const proto::Message& message = decoded->message;
      if (auto call_id = string_attribute(message, sig::attr::call_id)) {
        const proto::Attribute* state = message.find(sig::attr::call_state);
        auto value = state ? proto::read_u32(*state) : std::nullopt;
        bool ended = (message.method == sig::method::call_event && value == sig::call_state::ended) ||
                     (message.method == sig::method::call && message.message_class == proto::MessageClass::error);
        if (ended) links_.call_ended(envelope.link, *call_id);
        else links_.call_seen(envelope.link, *call_id, envelope.from_node);
      }
      if (!hooks_.send_to_link(envelope.link, envelope.body)) {
        // The terminal is gone: the other node ends what it held for it.
        bus_->send(envelope.from_node, cluster::BusEnvelope{BusKind::link_gone, {}, {}, envelope.link});
      }
      return;
    }
    case BusKind::link_gone:
      if (auto remote = links_.remote_link_of(envelope.from_node, envelope.link)) {
        close_remote(*remote);
        hooks_.drain();
      }
      return;
    case BusKind::link_notice:
      // A newer login of this user on the sending node.
      if (!envelope.user.empty() && sig::valid_user_id(envelope.user)) {
        core_.presence_taken_elsewhere(envelope.user, hooks_.now());
        hooks_.drain();
      }
      return;
    default: return;  // heartbeat: hearing it was all
  }
}

void ClusterRelay::core_action(const NodeAction& action) {
  const ClusterLinks::Remote* remote = links_.remote(action.link);
  if (remote == nullptr || !bus_) return;
  if (action.kind == NodeAction::Kind::close) {
    // The core ends a remote link as a local one (too many bad messages): its
    // terminal keeps its own link to its node.
    close_remote(action.link);
    return;
  }
  std::string node = remote->node;
  bus_->send(node, cluster::BusEnvelope{cluster::BusKind::link_reply, {}, action.message, remote->link},
             [this, alive = alive_, node](cluster::BusSendOutcome outcome) {
               if (*alive && outcome == cluster::BusSendOutcome::no_subscriber) {
                 node_gone(node);
                 hooks_.drain();
               }
             });
}

void ClusterRelay::close_remote(LinkId remote_link) {
  links_.forget_remote(remote_link);
  core_.link_closed(remote_link, hooks_.now());
}

void ClusterRelay::link_closed(LinkId link) {
  if (!bus_) return;
  for (const auto& node : links_.local_closed(link))
    bus_->send(node, cluster::BusEnvelope{cluster::BusKind::link_gone, {}, {}, link});
  if (auto it = agent_routes_.find(link); it != agent_routes_.end()) {
    for (const auto& route : it->second) presence_->release(route.kind, route.holder, [](cluster::PresenceOutcome) {});
    agent_routes_.erase(it);
  }
}

bool ClusterRelay::holds_agent_route(const HolderQuery& route) const {
  // A node holds a handful of agent links: a scan is cheaper than another index to keep.
  for (const auto& [link, routes] : agent_routes_)
    if (std::find(routes.begin(), routes.end(), route) != routes.end()) return true;
  return false;
}

void ClusterRelay::write_presence() {
  if (!presence_) return;
  using Kind = NodeCore::ClusterPresenceChange::Kind;
  for (auto& change : core_.take_cluster_presence_changes()) {
    auto holder_kind = !change.agent          ? cluster::HolderKind::user
                       : change.number_prefix ? cluster::HolderKind::prefix
                                              : cluster::HolderKind::agent;
    switch (change.kind) {
      case Kind::linked:
        if (change.agent) {
          auto& routes = agent_routes_[change.link];
          HolderQuery route{holder_kind, change.holder};
          if (std::find(routes.begin(), routes.end(), route) == routes.end()) routes.push_back(std::move(route));
        }
        presence_->claim(holder_kind, change.holder,
                         [this, alive = alive_, holder = change.holder, agent = change.agent](
                             cluster::PresenceOutcome outcome, std::optional<std::string> previous) {
                           if (!*alive) return;
                           if (outcome != cluster::PresenceOutcome::done) {
                             log::warn() << "cluster: presence of " << holder << " not written to Redis";
                           } else if (previous && *previous != options_.node_name) {
                             log::info() << "cluster: " << holder << " moved here from node " << *previous;
                             // The older link there is displaced, as by a second login on one node.
                             if (!agent)
                               bus_->send(*previous, cluster::BusEnvelope{cluster::BusKind::link_notice, {}, {}, 0, holder});
                           }
                         });
        break;
      case Kind::refreshed:
        presence_->refresh(holder_kind, change.holder, [holder = change.holder](cluster::PresenceOutcome outcome) {
          if (outcome == cluster::PresenceOutcome::held_elsewhere)
            log::info() << "cluster: " << holder << " logged in on another node since";
          else if (outcome != cluster::PresenceOutcome::done)
            log::debug() << "cluster: presence of " << holder << " not refreshed in Redis";
        });
        break;
      case Kind::ended: presence_->release(holder_kind, change.holder, [](cluster::PresenceOutcome) {}); break;
    }
  }
}

void ClusterRelay::refresh_agents() {
  for (const auto& [link, routes] : agent_routes_)
    for (const auto& route : routes) presence_->refresh(route.kind, route.holder);
}

void ClusterRelay::heartbeat() {
  for (const auto& node : links_.nodes_in_use()) {
    bus_->send(node, cluster::BusEnvelope{cluster::BusKind::heartbeat, {}, {}},
               [this, alive = alive_, node](cluster::BusSendOutcome outcome) {
                 // Only a Redis that answered "nobody listens" says the node is gone; a Redis away says nothing.
                 if (*alive && outcome == cluster::BusSendOutcome::no_subscriber) {
                   node_gone(node);
                   hooks_.drain();
                 }
               });
  }
}

void ClusterRelay::node_gone(const std::string& node) {
  auto ended = links_.node_gone(node);
  if (!ended.empty() || !links_.remote_links_of_node(node).empty())
    log::info() << "cluster: node " << node << " no longer listens; " << ended.size()
                << " call(s) of links here ended";
  for (const auto& [link, call_id] : ended) {
    // What the core says when a party's link is lost, from the node that held the call.
    proto::TransactionId id;
    security::random_bytes(id.bytes);
    proto::MessageBuilder event(proto::MessageClass::indication, sig::method::call_event, id);
    event.add_u32(sig::attr::protocol_version, sig::protocol_version);
    event.add_string(sig::attr::call_id, call_id);
    event.add_u32(sig::attr::call_state, sig::call_state::ended);
    event.add_u32(sig::attr::end_code, sig::error::link_lost);
    event.add_string(sig::attr::notice_reason, "Link Lost: the node holding the call is gone");
    hooks_.send_to_link(link, event.finish());
  }
  for (LinkId remote : links_.remote_links_of_node(node)) close_remote(remote);
}

}  // namespace tsunagu::rendezvous
