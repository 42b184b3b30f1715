#include "terminal/node_client.hpp"

#include <netdb.h>
#include <time.h>

#include <cstring>
#include <random>

#include "security/random.hpp"

namespace tsunagu::terminal {
namespace {

template <class Handle>
void close_and_delete(Handle*& handle) {
  if (handle == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  handle = nullptr;
}

double unit_random() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(generator);
}

}  // namespace

std::optional<proto::SocketAddress> resolve_node_address(const std::string& text, std::string& host_out,
                                                          std::string& error) {
  if (auto literal = proto::SocketAddress::parse(text)) {
    host_out = literal->ip_string();
    return literal;
  }
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    error = "\"" + text + "\" is not host:port";
    return std::nullopt;
  }
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return std::nullopt;
  }
  auto address = transport::from_sockaddr(result->ai_addr);
  freeaddrinfo(result);
  host_out = host;
  return address;
}

NodeClient::NodeClient(uv_loop_t* loop, NodeClientOptions options, NodeClientEvents events)
    : loop_(loop), options_(std::move(options)), events_(std::move(events)) {}

NodeClient::~NodeClient() {
  stopped_ = true;
  if (link_ != nullptr) link_->abort("client destroyed");
  close_and_delete(tick_timer_);
  close_and_delete(retry_timer_);
}

uint64_t NodeClient::now_ms() const {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

void NodeClient::start() {
  security::TlsContext::ClientOptions tls_options;
  tls_options.ca_file = options_.ca_file;
  auto tls = security::TlsContext::client(tls_options);
  if (!tls) {
    stop(ClientFailure::tls, tls.error().detail);
    return;
  }
  tls_ = *tls;
  tick_timer_ = new uv_timer_t;
  uv_timer_init(loop_, tick_timer_);
  tick_timer_->data = this;
  uv_timer_start(tick_timer_, [](uv_timer_t* t) { static_cast<NodeClient*>(t->data)->on_tick(); }, 250, 250);
  retry_timer_ = new uv_timer_t;
  uv_timer_init(loop_, retry_timer_);
  retry_timer_->data = this;
  connect();
}

void NodeClient::connect() {
  transport::LinkCallbacks callbacks;
  callbacks.on_ready = [this](transport::TlsLink&) { on_ready(); };
  callbacks.on_message = [this](transport::TlsLink&, ByteView bytes) { on_message(bytes); };
  callbacks.on_closed = [this](transport::TlsLink&, std::string_view reason) { on_closed(reason); };
  auto link = transport::TlsLink::connect(loop_, options_.node, tls_, options_.verify_name, std::move(callbacks));
  if (!link) {
    // Refused at once (no callback follows): handled like a lost link.
    on_closed(link.error().detail);
    return;
  }
  link_ = *link;
}

void NodeClient::on_ready() {
  if (options_.authenticate) {
    send_login();
  } else if (events_.on_connected) {
    events_.on_connected();
  }
}

void NodeClient::send_login() {
  request(
      proto::method::login,
      [this](proto::MessageBuilder& b) {
        b.add_string(proto::attr::user_id, options_.user_id);
        b.add_string(proto::attr::password, options_.password);
        b.add_u32(proto::attr::link_role, options_.role);
        if (link_ != nullptr) b.add_xor_address(proto::attr::reported_address, link_->local_address());
        for (const auto& extra : options_.extra_reported) b.add_xor_address(proto::attr::reported_address, extra);
      },
      [this](const proto::Message* response, std::string_view error) {
        if (response == nullptr) {
          if (link_ != nullptr) link_->abort(std::string("login: ") + std::string(error));
          return;
        }
        if (response->message_class == proto::MessageClass::error) {
          auto code = response->find(proto::attr::error_code);
          auto parsed = code ? proto::read_error_code(*code) : std::nullopt;
          uint16_t number = parsed ? parsed->code : 0;
          std::string reason = parsed ? std::string(parsed->reason) : "malformed error";
          if (number == proto::error::too_many_attempts) {
            if (const auto* retry = response->find(proto::attr::retry_after))
              if (auto seconds = proto::read_u32(*retry)) reason += " (retry in " + std::to_string(*seconds) + " s)";
            stop(ClientFailure::rate_limited, reason);
          } else if (number == proto::error::unauthenticated) {
            stop(ClientFailure::unauthenticated, reason);
          } else if (number == proto::error::unavailable && options_.reconnect) {
            if (link_ != nullptr) link_->abort(reason);  // node trouble: retry later
          } else {
            stop(ClientFailure::protocol, std::to_string(number) + " " + reason);
          }
          return;
        }
        LoginInfo info;
        if (const auto* mapped = response->find(proto::attr::xor_mapped_address))
          if (auto address = proto::read_xor_address(*mapped, *response)) info.observed = *address;
        if (link_ != nullptr) info.local = link_->local_address();
        if (const auto* interval = response->find(proto::attr::keepalive_interval))
          if (auto seconds = proto::read_u32(*interval); seconds && *seconds > 0) keepalive_interval_s_ = *seconds;
        info.keepalive_interval_s = keepalive_interval_s_;
        logged_in_ = true;
        backoff_.reset();
        next_keepalive_ms_ = now_ms() + uint64_t{keepalive_interval_s_} * 1000;
        if (events_.on_logged_in) events_.on_logged_in(info);
      });
}

void NodeClient::request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
                         ResponseHandler handler) {
  if (link_ == nullptr || stopped_) {
    handler(nullptr, "not connected");
    return;
  }
  proto::TransactionId id;
  security::random_bytes(id.bytes);
  proto::MessageBuilder builder(proto::MessageClass::request, method, id);
  builder.add_u32(proto::attr::protocol_version, proto::protocol_version);
  fill(builder);
  pending_[id.bytes] = Pending{method, now_ms() + options_.request_timeout_ms, std::move(handler)};
  link_->send(builder.finish());
}

void NodeClient::send_keepalive() {
  request(proto::method::keepalive, [](proto::MessageBuilder&) {},
          [this](const proto::Message* response, std::string_view error) {
            if (response == nullptr) {
              if (link_ != nullptr) link_->abort(std::string("keepalive: ") + std::string(error));
              return;
            }
            if (response->message_class == proto::MessageClass::error && link_ != nullptr) {
              // Presence was lost on the node: log in again on a fresh link.
              logged_in_ = false;
              link_->close("keepalive refused");
            }
          });
}

void NodeClient::on_message(ByteView bytes) {
  auto decoded = proto::decode(bytes);
  if (!decoded) return;  // the node never sends these; nothing useful to do
  const proto::Message& message = decoded->message;
  if (message.message_class == proto::MessageClass::indication && message.method == proto::method::notice) {
    std::string reason = "notice";
    if (const auto* text = message.find(proto::attr::notice_reason)) reason = proto::read_string(*text);
    if (reason == "logged in elsewhere") stop(ClientFailure::displaced, reason);
    else if (reason == "logged out") stop(ClientFailure::logged_out, reason);
    // Other notices (expired presence) are followed by the node closing the
    // link, and the reconnect logic logs in again.
    return;
  }
  if (message.message_class == proto::MessageClass::indication) {
    if (events_.on_node_indication) events_.on_node_indication(message);
    return;
  }
  if (message.message_class == proto::MessageClass::request) {
    if (events_.on_node_request) events_.on_node_request(message);
    return;
  }
  if (message.message_class != proto::MessageClass::success && message.message_class != proto::MessageClass::error)
    return;
  auto it = pending_.find(message.transaction_id.bytes);
  if (it == pending_.end()) return;
  auto handler = std::move(it->second.handler);
  pending_.erase(it);
  handler(&message, {});
}

void NodeClient::fail_pending(std::string_view why) {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) p.handler(nullptr, why);
}

void NodeClient::on_closed(std::string_view reason) {
  link_ = nullptr;
  logged_in_ = false;
  std::string why(reason);
  fail_pending(why);
  if (stopped_) return;
  if (!options_.reconnect) {
    stop(why.rfind("TLS", 0) == 0 ? ClientFailure::tls : ClientFailure::network, why);
    return;
  }
  uint64_t delay = backoff_.next_delay_ms(unit_random());
  if (events_.on_link_lost) events_.on_link_lost(why, delay);
  uv_timer_start(retry_timer_, [](uv_timer_t* t) { static_cast<NodeClient*>(t->data)->connect(); }, delay, 0);
}

void NodeClient::on_tick() {
  uint64_t now = now_ms();
  std::vector<ResponseHandler> expired;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms <= now) {
      expired.push_back(std::move(it->second.handler));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& handler : expired) handler(nullptr, "no response from the node");
  if (logged_in_ && options_.role == proto::link_role::presence && now >= next_keepalive_ms_) {
    next_keepalive_ms_ = now + uint64_t{keepalive_interval_s_} * 1000;
    send_keepalive();
  }
}

void NodeClient::stop(ClientFailure failure, std::string detail) {
  if (stopped_) return;
  stopped_ = true;
  logged_in_ = false;
  // link_ stays set until its on_closed arrives, so the destructor can still
  // cut it off if the client goes away first.
  if (link_ != nullptr) link_->close("terminal stopping");
  fail_pending("stopped");
  close_and_delete(tick_timer_);
  close_and_delete(retry_timer_);
  if (events_.on_stopped) events_.on_stopped(failure, detail);
}

}  // namespace tsunagu::terminal
