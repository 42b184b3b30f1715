#include "lan-agent/node_link.hpp"

#include "base/log_hold.hpp"
#include "proto/signalling.hpp"

namespace tsunagu::lanagent {

NodeLink::NodeLink(uv_loop_t* loop, NodeSettings settings, std::shared_ptr<security::TlsContext> tls,
                   AgentCore& core, std::function<int64_t()> now)
    : loop_(loop), settings_(std::move(settings)), tls_(std::move(tls)), core_(core), now_(std::move(now)) {}

NodeLink::~NodeLink() {
  if (turn_end_ == nullptr) return;
  end_of_turn();
  uv_close(reinterpret_cast<uv_handle_t*>(turn_end_), [](uv_handle_t* handle) { delete reinterpret_cast<uv_check_t*>(handle); });
}

void NodeLink::hold_for_turn() {
  if (core_.table().holding_reads()) return;
  if (turn_end_ == nullptr) {
    turn_end_ = new uv_check_t;
    uv_check_init(loop_, turn_end_);
    turn_end_->data = this;
  }
  if (!core_.table().hold_reads()) return;  // each read then opens its own and reports the error
  log::hold();
  uv_check_start(turn_end_, [](uv_check_t* check) { static_cast<NodeLink*>(check->data)->end_of_turn(); });
}

void NodeLink::end_of_turn() {
  core_.table().release_reads();
  log::release();
  if (turn_end_ != nullptr) uv_check_stop(turn_end_);
}

NodeLinkStats NodeLink::stats() const {
  NodeLinkStats stats;
  if (link_) {
    stats.connects = link_->stats().attempts;
    stats.heartbeats = link_->stats().keepalives;
  }
  stats.hellos_accepted = hellos_accepted_;
  stats.lookups = lookups_;
  return stats;
}

transport::ReconnectingLinkOptions NodeLink::link_options(const NodeSettings& settings,
                                                           std::shared_ptr<security::TlsContext> tls) const {
  transport::ReconnectingLinkOptions options;
  options.address = settings.address;
  options.verify_name = settings.server_name;
  for (const auto& [address, name] : settings.other_nodes) options.alternates.push_back({address, name});
  options.tls = std::move(tls);
  options.request_timeout_ms = static_cast<uint64_t>(settings.request_timeout_s) * 1000;
  options.backoff = {static_cast<uint64_t>(settings.reconnect_min_ms), static_cast<uint64_t>(settings.reconnect_max_ms)};
  options.keepalive_method = proto::method::keepalive;
  return options;
}

Expected<void, std::string> NodeLink::reconfigure(NodeSettings settings, std::shared_ptr<security::TlsContext> tls) {
  if (link_) {
    if (auto ok = link_->reconfigure(link_options(settings, tls)); !ok) return Unexpected("node.address: " + ok.error().detail);
  }
  settings_ = std::move(settings);
  tls_ = std::move(tls);
  return {};
}

Expected<void, std::string> NodeLink::start() {
  if (link_) return Unexpected(std::string("the node link is already started"));
  transport::ReconnectingLinkOptions options = link_options(settings_, tls_);
  transport::ReconnectingLinkEvents events;
  events.on_state = [this](transport::LinkState state) {
    if (state == transport::LinkState::connecting) log::debug() << "connecting to the node at " << settings_.address;
    if (on_state) on_state(state);
  };
  events.on_connected = [this] { send_hello(); };
  events.on_message = [this](const proto::Message& message, ByteView raw) { on_message(message, raw); };
  events.on_lost = [this](const transport::LinkLoss& loss) { on_lost(loss); };
  events.on_undecodable = [this](std::string_view detail) {
    if (bad_message_log_.allow()) log::debug() << "undecodable message from the node: " << detail;
  };
  link_ = std::make_unique<transport::ReconnectingLink>(loop_, std::move(options), std::move(events));
  if (auto started = link_->start(); !started) {
    link_.reset();
    return Unexpected("node.address: " + started.error().detail);
  }
  return {};
}

void NodeLink::send_hello() {
  auto sent = link_->request(
      proto::method::agent_hello, [this](proto::MessageBuilder& b) { core_.fill_hello(b); },
      [this](const proto::Message* response, transport::RequestFailure failure) {
        if (response != nullptr) on_hello_response(*response);
        else if (failure == transport::RequestFailure::timed_out)
          link_->drop("no answer to agent-hello", std::nullopt, transport::ReconnectingLink::Closing::at_once);
      });
  if (!sent) link_->drop("agent-hello: " + sent.error().detail);
}

void NodeLink::on_hello_response(const proto::Message& response) {
  HelloResult hello = AgentCore::read_hello_response(response);
  std::optional<uint64_t> retry_ms;  // nullopt: the backoff decides
  switch (hello.status) {
    case HelloStatus::accepted:
      ++hellos_accepted_;
      log::info() << "linked to the node at " << settings_.address << " as \""
                  << (hello.agent_name.empty() ? core_.identity().name : hello.agent_name) << "\"";
      link_->established(static_cast<uint64_t>(settings_.heartbeat_interval_s) * 1000);
      return;
    case HelloStatus::not_enrolled:
      log::error() << "the node refused our routes (403 " << hello.reason
                   << "): a domain or number prefix in agent.toml is not enrolled for this certificate; "
                      "fix agent.domains / agent.number_prefixes or re-enrol. Retrying in "
                   << settings_.refused_retry_s << " s";
      retry_ms = static_cast<uint64_t>(settings_.refused_retry_s) * 1000;
      break;
    case HelloStatus::bad_version:
      log::error() << "the node does not speak our protocol version (426 " << hello.reason
                   << "); upgrade the agent or the node. Retrying in " << settings_.refused_retry_s << " s";
      retry_ms = static_cast<uint64_t>(settings_.refused_retry_s) * 1000;
      break;
    case HelloStatus::domain_held:
      log::warn() << "another agent holds one of our domains on the node (409 " << hello.reason
                  << "); retrying with backoff";
      break;
    case HelloStatus::other:
      log::warn() << "agent-hello failed: " << hello.code << " " << hello.reason;
      break;
  }
  link_->drop("agent-hello refused", retry_ms);
}

void NodeLink::request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
                       std::function<void(const proto::Message*)> handler) {
  if (!link_) {
    handler(nullptr);
    return;
  }
  auto shared = std::make_shared<std::function<void(const proto::Message*)>>(std::move(handler));
  auto sent = link_->request(method, fill, [shared](const proto::Message* response, transport::RequestFailure) {
    (*shared)(response);
  });
  if (!sent) (*shared)(nullptr);
}

void NodeLink::on_message(const proto::Message& message, ByteView raw) {
  if (message.message_class == proto::MessageClass::request) {
    if (message.method == proto::method::keepalive) {
      auto b = proto::MessageBuilder::response_to(message, proto::MessageClass::success);
      b.add_u32(proto::attr::protocol_version, proto::protocol_version);
      (void)link_->send(b.finish());  // the node asked on this very connection
      return;
    }
    if (message.method == proto::method::ring) {
      if (on_call_message) on_call_message(message, raw);
      return;
    }
    if (message.method == proto::method::forwarded_lookup) hold_for_turn();
    LookupAnswer answer;
    Bytes response = core_.respond(message, now_(), &answer);
    if (message.method == proto::method::forwarded_lookup) {
      ++lookups_;
      // An answered lookup is a debug line (at saturation the line was about a
      // tenth of the agent's CPU); a refused or failed one stays at info, so the
      // operator still sees which rule refused whom (docs/lan-agent.md), at
      // most kRefusedLookupLinesPerMinute a minute; /metrics counts them all.
      if (answer.error == 0 ? log::level() <= log::Level::debug
                            : log::level() <= log::Level::info && refused_lookup_log_.allow())
        log_lookup(message, answer);
    }
    (void)link_->send(response);
    return;
  }
  if (message.message_class == proto::MessageClass::indication && on_call_message) on_call_message(message, raw);
}

void NodeLink::log_lookup(const proto::Message& message, const LookupAnswer& answer) {
  // Built in one reused string: a log::Line per lookup (its std::ostringstream
  // and locale) was about a tenth of the agent's CPU at saturation.
  thread_local std::string line;
  line.assign("lookup ");
  if (const auto* user = message.find(proto::attr::user_id)) line.append(proto::read_string(*user));
  line.append(" by ");
  if (const auto* caller = message.find(proto::attr::caller_id)) line.append(proto::read_string(*caller));
  line.append(": ");
  if (answer.error == 0) {
    line.append(std::to_string(answer.addresses.size())).append(" address(es)");
  } else {
    line.append(std::to_string(answer.error)).append(" (").append(answer.log_detail).append(")");
    if (uint64_t unlogged = refused_lookup_log_.suppressed() - refused_lookups_reported_; unlogged != 0) {
      line.append("; ").append(std::to_string(unlogged)).append(" refused or failed lookup(s) before it not logged (at most ")
          .append(std::to_string(kRefusedLookupLinesPerMinute)).append(" such lines a minute)");
      refused_lookups_reported_ += unlogged;
    }
  }
  log::write(answer.error == 0 ? log::Level::debug : log::Level::info, line);
}

bool NodeLink::send(ByteView message) { return linked() && link_->send(message).has_value(); }

void NodeLink::on_lost(const transport::LinkLoss& loss) {
  if (loss.was_up) {
    log::warn() << "link to the node lost: " << loss.detail;
    if (on_link_lost) on_link_lost();
  }
  if (loss.retry_in_ms) log::info() << "node link: " << loss.detail << "; reconnecting in " << *loss.retry_in_ms << " ms";
}

void NodeLink::stop(std::function<void()> on_stopped) {
  auto done = on_stopped ? std::move(on_stopped) : [] {};
  if (!link_ || !link_->stop(done)) done();
}

}  // namespace tsunagu::lanagent
