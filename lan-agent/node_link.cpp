#include "lan-agent/node_link.hpp"

#include <time.h>

#include <cassert>
#include <random>

#include "proto/signalling.hpp"
#include "security/random.hpp"

namespace tsunagu::lanagent {
namespace {

double unit_random() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

bool split_host_port(const std::string& text, std::string& host, std::string& port) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty() && !port.empty();
}

}  // namespace

NodeLink::NodeLink(uv_loop_t* loop, NodeSettings settings, std::shared_ptr<security::TlsContext> tls,
                   AgentCore& core, std::function<int64_t()> now)
    : loop_(loop),
      settings_(std::move(settings)),
      tls_(std::move(tls)),
      core_(core),
      now_(std::move(now)),
      backoff_(static_cast<uint64_t>(settings_.reconnect_min_ms), static_cast<uint64_t>(settings_.reconnect_max_ms)) {}

NodeLink::~NodeLink() {
  // stop() and a loop run must come first: handles and the link call back into us.
  assert(link_ == nullptr && tick_timer_ == nullptr && retry_timer_ == nullptr && resolving_ == nullptr);
}

uint64_t NodeLink::now_ms() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void NodeLink::report(std::string_view state) {
  if (on_state) on_state(state);
}

void NodeLink::start() {
  tick_timer_ = new uv_timer_t;
  uv_timer_init(loop_, tick_timer_);
  tick_timer_->data = this;
  uv_timer_start(tick_timer_, [](uv_timer_t* t) { static_cast<NodeLink*>(t->data)->on_tick(); }, 250, 250);
  retry_timer_ = new uv_timer_t;
  uv_timer_init(loop_, retry_timer_);
  retry_timer_->data = this;
  open_handles_ = 2;
  connect();
}

void NodeLink::connect() {
  if (stopping_) return;
  std::string host, port;
  if (!split_host_port(settings_.address, host, port)) {
    log::error() << "node.address \"" << settings_.address << "\" is not HOST:PORT";
    return;
  }
  if (auto literal = proto::SocketAddress::parse(settings_.address)) {
    connect_to(*literal);
    return;
  }
  resolving_ = new uv_getaddrinfo_t;
  resolving_->data = this;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_, resolving_,
      [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
        auto* self = static_cast<NodeLink*>(req->data);
        delete req;
        self->resolving_ = nullptr;
        std::optional<proto::SocketAddress> address;
        if (status == 0 && result != nullptr) address = transport::from_sockaddr(result->ai_addr);
        if (result != nullptr) uv_freeaddrinfo(result);
        if (self->stopping_) {
          self->maybe_finish_stop();
          return;
        }
        if (!address) {
          self->schedule_retry(self->backoff_.next_delay_ms(unit_random()),
                               std::string("cannot resolve ") + self->settings_.address + ": " + uv_strerror(status));
          return;
        }
        self->connect_to(*address);
      },
      host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete resolving_;
    resolving_ = nullptr;
    schedule_retry(backoff_.next_delay_ms(unit_random()), std::string("resolve: ") + uv_strerror(rc));
  }
}

void NodeLink::connect_to(const proto::SocketAddress& address) {
  ++stats_.connects;
  transport::LinkCallbacks callbacks;
  callbacks.on_ready = [this](transport::TlsLink&) { on_ready(); };
  callbacks.on_message = [this](transport::TlsLink&, ByteView bytes) { on_message(bytes); };
  callbacks.on_closed = [this](transport::TlsLink&, std::string_view reason) { on_closed(reason); };
  log::debug() << "connecting to the node at " << address.to_string();
  auto link = transport::TlsLink::connect(loop_, address, tls_, settings_.server_name, std::move(callbacks));
  if (!link) {
    // Refused at once (no callback follows): retry as after a lost link.
    report("down");
    schedule_retry(backoff_.next_delay_ms(unit_random()), link.error().detail);
    return;
  }
  link_ = *link;
}

void NodeLink::on_ready() {
  request(
      proto::method::agent_hello, [this](proto::MessageBuilder& b) { core_.fill_hello(b); },
      [this](const proto::Message* response) {
        if (link_ == nullptr) return;
        if (response == nullptr) {
          link_->abort("no answer to agent-hello");
          return;
        }
        HelloResult hello = AgentCore::read_hello_response(*response);
        switch (hello.status) {
          case HelloStatus::accepted:
            linked_ = true;
            ++stats_.hellos_accepted;
            backoff_.reset();
            refused_ = false;
            next_heartbeat_ms_ = now_ms() + static_cast<uint64_t>(settings_.heartbeat_interval_s) * 1000;
            log::info() << "linked to the node at " << settings_.address << " as \""
                        << (hello.agent_name.empty() ? core_.identity().name : hello.agent_name) << "\"";
            report("linked");
            return;
          case HelloStatus::not_enrolled:
            log::error() << "the node refused our routes (403 " << hello.reason
                         << "): a domain or number prefix in agent.toml is not enrolled for this certificate; "
                            "fix agent.domains / agent.number_prefixes or re-enrol. Retrying in "
                         << settings_.refused_retry_s << " s";
            refused_ = true;
            break;
          case HelloStatus::bad_version:
            log::error() << "the node does not speak our protocol version (426 " << hello.reason
                         << "); upgrade the agent or the node. Retrying in " << settings_.refused_retry_s << " s";
            refused_ = true;
            break;
          case HelloStatus::domain_held:
            log::warn() << "another agent holds one of our domains on the node (409 " << hello.reason
                        << "); retrying with backoff";
            break;
          case HelloStatus::other:
            log::warn() << "agent-hello failed: " << hello.code << " " << hello.reason;
            break;
        }
        report("refused");
        link_->close("agent-hello refused");
      });
}

void NodeLink::request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
                       std::function<void(const proto::Message*)> handler) {
  if (link_ == nullptr) {
    handler(nullptr);
    return;
  }
  proto::TransactionId id;
  security::random_bytes(id.bytes);
  proto::MessageBuilder builder(proto::MessageClass::request, method, id);
  builder.add_u32(proto::attr::protocol_version, proto::protocol_version);
  fill(builder);
  pending_[id.bytes] = Pending{now_ms() + static_cast<uint64_t>(settings_.request_timeout_s) * 1000,
                               std::move(handler)};
  link_->send(builder.finish());
}

void NodeLink::on_message(ByteView bytes) {
  auto decoded = proto::decode(bytes);
  if (!decoded) {
    if (bad_message_log_.allow()) log::debug() << "undecodable message from the node: " << decoded.error().detail;
    return;
  }
  const proto::Message& message = decoded->message;
  if (message.message_class == proto::MessageClass::request) {
    if (message.method == proto::method::keepalive) {
      auto b = proto::MessageBuilder::response_to(message, proto::MessageClass::success);
      b.add_u32(proto::attr::protocol_version, proto::protocol_version);
      link_->send(b.finish());
      return;
    }
    if (message.method == proto::method::ring) {
      if (on_call_message) on_call_message(message, bytes);
      return;
    }
    LookupAnswer answer;
    Bytes response = core_.respond(message, now_(), &answer);
    if (message.method == proto::method::forwarded_lookup) {
      ++stats_.lookups;
      std::string user;
      std::string caller;
      if (const auto* u = message.find(proto::attr::user_id)) user = proto::read_string(*u);
      if (const auto* c = message.find(proto::attr::caller_id)) caller = proto::read_string(*c);
      if (answer.error == 0)
        log::info() << "lookup " << user << " by " << caller << ": " << answer.addresses.size() << " address(es)";
      else
        log::info() << "lookup " << user << " by " << caller << ": " << answer.error << " (" << answer.log_detail
                    << ")";
    }
    link_->send(response);
    return;
  }
  if (message.message_class == proto::MessageClass::indication) {
    if (on_call_message) on_call_message(message, bytes);
    return;
  }
  auto it = pending_.find(message.transaction_id.bytes);
  if (it == pending_.end()) return;
  auto handler = std::move(it->second.handler);
  pending_.erase(it);
  handler(&message);
}

bool NodeLink::send(ByteView message) {
  if (!linked_ || link_ == nullptr) return false;
  link_->send(message);
  return true;
}

void NodeLink::fail_pending() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) p.handler(nullptr);
}

void NodeLink::on_closed(std::string_view reason) {
  link_ = nullptr;
  bool was_linked = linked_;
  linked_ = false;
  fail_pending();
  if (was_linked && on_link_lost) on_link_lost();
  if (stopping_) {
    maybe_finish_stop();
    return;
  }
  if (was_linked) log::warn() << "link to the node lost: " << reason;
  report("down");
  if (refused_) {
    schedule_retry(static_cast<uint64_t>(settings_.refused_retry_s) * 1000, reason);
  } else {
    schedule_retry(backoff_.next_delay_ms(unit_random()), reason);
  }
}

void NodeLink::schedule_retry(uint64_t delay_ms, std::string_view why) {
  if (stopping_ || retry_timer_ == nullptr) return;
  log::info() << "node link: " << why << "; reconnecting in " << delay_ms << " ms";
  uv_timer_start(retry_timer_, [](uv_timer_t* t) { static_cast<NodeLink*>(t->data)->connect(); }, delay_ms, 0);
}

void NodeLink::on_tick() {
  uint64_t now = now_ms();
  std::vector<std::function<void(const proto::Message*)>> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms <= now) {
      expired.push_back(std::move(it->second.handler));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& handler : expired) handler(nullptr);
  if (linked_ && link_ != nullptr && now >= next_heartbeat_ms_) {
    next_heartbeat_ms_ = now + static_cast<uint64_t>(settings_.heartbeat_interval_s) * 1000;
    ++stats_.heartbeats;
    request(proto::method::keepalive, [](proto::MessageBuilder&) {}, [this](const proto::Message* response) {
      if (link_ == nullptr) return;
      if (response == nullptr) {
        link_->abort("heartbeat: no answer within " + std::to_string(settings_.request_timeout_s) + " s");
      } else if (response->message_class == proto::MessageClass::error) {
        link_->close("heartbeat refused by the node");
      }
    });
  }
}

void NodeLink::stop(std::function<void()> on_stopped) {
  if (stopping_) return;
  stopping_ = true;
  on_stopped_ = std::move(on_stopped);
  if (resolving_ != nullptr) uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
  if (link_ != nullptr) link_->close("agent stopping");
  for (uv_timer_t** timer : {&tick_timer_, &retry_timer_}) {
    if (*timer == nullptr) continue;
    uv_close(reinterpret_cast<uv_handle_t*>(*timer), [](uv_handle_t* h) {
      auto* self = static_cast<NodeLink*>(h->data);
      delete reinterpret_cast<uv_timer_t*>(h);
      --self->open_handles_;
      self->maybe_finish_stop();
    });
    *timer = nullptr;
  }
  maybe_finish_stop();
}

void NodeLink::maybe_finish_stop() {
  if (!stopping_ || link_ != nullptr || resolving_ != nullptr || open_handles_ != 0 || !on_stopped_) return;
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  done();
}

}  // namespace tsunagu::lanagent
