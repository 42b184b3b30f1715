#include "transport/reconnecting_link.hpp"

#include <netdb.h>

#include <utility>

#include "proto/signalling.hpp"
#include "security/random.hpp"

namespace tsunagu::transport {

std::string_view describe(LinkState state) {
  switch (state) {
    case LinkState::idle: return "idle";
    case LinkState::resolving: return "resolving";
    case LinkState::connecting: return "connecting";
    case LinkState::logging_in: return "logging in";
    case LinkState::up: return "up";
    case LinkState::waiting: return "waiting";
    case LinkState::stopped: return "stopped";
  }
  return "unknown";
}

std::string_view describe(CloseReason reason) {
  switch (reason) {
    case CloseReason::stopped: return "stopped";
    case CloseReason::resolve_failed: return "name not resolved";
    case CloseReason::connect_failed: return "connect failed";
    case CloseReason::peer_closed: return "peer closed";
    case CloseReason::network: return "network error";
    case CloseReason::tls: return "TLS failure";
    case CloseReason::framing: return "bad framing";
    case CloseReason::peer_not_reading: return "peer not reading";
    case CloseReason::keepalive_timeout: return "keepalive unanswered";
    case CloseReason::keepalive_refused: return "keepalive refused";
    case CloseReason::dropped: return "dropped";
  }
  return "unknown";
}

bool split_host_port(std::string_view text, std::string& host, std::string& port) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  host = std::string(text.substr(0, colon));
  port = std::string(text.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return !host.empty() && !port.empty();
}

namespace {

CloseReason reason_for(CloseCause cause) {
  switch (cause) {
    case CloseCause::local: return CloseReason::dropped;
    case CloseCause::connect_failed: return CloseReason::connect_failed;
    case CloseCause::peer_closed: return CloseReason::peer_closed;
    case CloseCause::network: return CloseReason::network;
    case CloseCause::tls: return CloseReason::tls;
    case CloseCause::framing: return CloseReason::framing;
    case CloseCause::peer_not_reading: return CloseReason::peer_not_reading;
  }
  return CloseReason::network;
}

std::vector<LinkPeer> all_peers(const ReconnectingLinkOptions& options) {
  std::vector<LinkPeer> peers{{options.address, options.verify_name}};
  peers.insert(peers.end(), options.alternates.begin(), options.alternates.end());
  return peers;
}

Expected<void, LinkError> check_addresses(const std::vector<LinkPeer>& peers) {
  std::string host, port;
  for (const auto& peer : peers)
    if (!split_host_port(peer.address, host, port))
      return Unexpected(LinkError{LinkErrorCode::bad_address, "\"" + peer.address + "\" is not HOST:PORT"});
  return {};
}

}  // namespace

// A name lookup in flight. libuv owns it until its callback, which frees it;
// the link only detaches (owner = nullptr) when it stops first.
struct ReconnectingLink::Resolve {
  uv_getaddrinfo_t request{};
  ReconnectingLink* owner = nullptr;
};

ReconnectingLink::ReconnectingLink(uv_loop_t* loop, ReconnectingLinkOptions options, ReconnectingLinkEvents events)
    : loop_(loop),
      options_(std::move(options)),
      events_(std::move(events)),
      peers_(all_peers(options_)),
      backoff_(options_.backoff, options_.unit_random) {}

ReconnectingLink::~ReconnectingLink() {
  // The owner is going away: its handlers are not called any more.
  destroying_ = true;
  if (resolving_ != nullptr) {
    resolving_->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->request));
    resolving_ = nullptr;
  }
  if (link_ != nullptr) link_->abort("link destroyed");
}

void ReconnectingLink::use_current_peer() {
  split_host_port(peers_.current().address, host_, port_);
  literal_ = proto::SocketAddress::parse(peers_.current().address);
}

Expected<void, LinkError> ReconnectingLink::reconfigure(const ReconnectingLinkOptions& next) {
  auto peers = all_peers(next);
  if (auto checked = check_addresses(peers); !checked) return checked;
  if (!next.tls) return Unexpected(LinkError{LinkErrorCode::no_tls_context, "no TLS context"});
  options_.address = next.address;
  options_.verify_name = next.verify_name;
  options_.alternates = next.alternates;
  peers_ = PeerList(std::move(peers));
  use_current_peer();
  options_.tls = next.tls;
  options_.request_timeout_ms = next.request_timeout_ms;
  if (next.backoff.initial_ms != options_.backoff.initial_ms || next.backoff.max_ms != options_.backoff.max_ms) {
    options_.backoff = next.backoff;
    backoff_ = Backoff(options_.backoff, options_.unit_random);
  }
  return {};
}

uint64_t ReconnectingLink::now_ms() const {
  // The loop's cached time lags by however long the current callback has run
  // (a blocking prompt, a slow disk): a deadline counted from it could expire
  // at once. Timers count from the loop time too, so both stay in step.
  uv_update_time(loop_);
  return uv_now(loop_);
}

void ReconnectingLink::set_state(LinkState state) {
  if (state_ == state) return;
  state_ = state;
  if (events_.on_state) events_.on_state(state);
}

proto::SocketAddress ReconnectingLink::local_address() const {
  return link_ != nullptr ? link_->local_address() : proto::SocketAddress{};
}

Expected<void, LinkError> ReconnectingLink::start() {
  if (state_ != LinkState::idle) return Unexpected(LinkError{LinkErrorCode::already_started, "already started"});
  if (auto checked = check_addresses(peers_.peers()); !checked) return checked;
  if (!options_.tls) return Unexpected(LinkError{LinkErrorCode::no_tls_context, "no TLS context"});
  use_current_peer();
  auto timer = make_timer(loop_);
  if (!timer)
    return Unexpected(LinkError{LinkErrorCode::loop_refused, std::string("timer: ") + uv_strerror(timer.error()),
                                timer.error()});
  timer_ = std::move(*timer);
  timer_->data = this;
  auto first = attempt();
  if (!first) {
    if (!options_.reconnect) {
      timer_.reset();
      state_ = LinkState::idle;  // nothing is left running: start() may be called again
      return Unexpected(std::move(first.error()));
    }
    // Reported from the loop like any later failure, so no callback runs
    // inside start().
    deferred_loss_ = LinkLoss{first.error().code == LinkErrorCode::bad_address ? CloseReason::resolve_failed
                                                                               : CloseReason::connect_failed,
                              first.error().detail, false, std::nullopt};
    rearm();
  }
  return {};
}

Expected<void, LinkError> ReconnectingLink::attempt() {
  ++stats_.attempts;
  if (literal_) return connect_to(*literal_);
  set_state(LinkState::resolving);
  auto resolve = std::make_unique<Resolve>();
  resolve->owner = this;
  resolve->request.data = resolve.get();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  int rc = uv_getaddrinfo(
      loop_, &resolve->request,
      [](uv_getaddrinfo_t* request, int status, addrinfo* result) {
        std::unique_ptr<Resolve> done(static_cast<Resolve*>(request->data));
        std::optional<proto::SocketAddress> address;
        if (status == 0 && result != nullptr) address = from_sockaddr(result->ai_addr);
        if (result != nullptr) uv_freeaddrinfo(result);
        if (done->owner == nullptr) return;  // stopped or destroyed meanwhile
        done->owner->resolving_ = nullptr;
        done->owner->on_resolved(status, address);
      },
      host_.c_str(), port_.c_str(), &hints);
  if (rc != 0)
    return Unexpected(
        LinkError{LinkErrorCode::loop_refused, "resolve " + host_ + ": " + std::string(uv_strerror(rc)), rc});
  resolving_ = resolve.release();
  return {};
}

void ReconnectingLink::on_resolved(int status, std::optional<proto::SocketAddress> address) {
  if (!address) {
    lost(CloseReason::resolve_failed,
         "cannot resolve " + host_ + ": " + (status != 0 ? uv_strerror(status) : "no address"));
    return;
  }
  if (auto connecting = connect_to(*address); !connecting) lost(CloseReason::connect_failed, connecting.error().detail);
}

Expected<void, LinkError> ReconnectingLink::connect_to(const proto::SocketAddress& address) {
  set_state(LinkState::connecting);
  LinkCallbacks callbacks;
  callbacks.on_ready = [this](TlsLink&) {
    set_state(LinkState::logging_in);
    if (events_.on_connected) events_.on_connected();
    else established(0);
  };
  callbacks.on_message = [this](TlsLink&, ByteView bytes) { on_message(bytes); };
  callbacks.on_closed = [this](TlsLink& link, std::string_view reason) { on_link_closed(link, reason); };
  auto link = TlsLink::connect(loop_, address, options_.tls, peers_.current().verify_name, std::move(callbacks),
                               options_.limits);
  if (!link)
    return Unexpected(LinkError{LinkErrorCode::loop_refused, std::move(link.error().detail), link.error().uv_code});
  link_ = *link;
  return {};
}

void ReconnectingLink::on_link_closed(TlsLink& link, std::string_view reason) {
  link_ = nullptr;
  if (destroying_) return;
  if (state_ == LinkState::stopped) {
    if (auto done = std::move(on_stop_closed_)) {
      on_stop_closed_ = nullptr;
      done();
    }
    return;
  }
  CloseReason why = pending_close_.value_or(reason_for(link.close_cause()));
  lost(why, std::string(reason));
}

void ReconnectingLink::lost(CloseReason reason, std::string detail) {
  LinkLoss loss{reason, std::move(detail), state_ == LinkState::up, std::nullopt};
  pending_close_.reset();
  keepalive_interval_ms_ = 0;
  last_loss_detail_ = loss.detail;
  if (options_.reconnect) {
    uint64_t delay = retry_override_ms_ ? *retry_override_ms_ : backoff_.next_delay_ms();
    retry_at_ms_ = now_ms() + delay;
    loss.retry_in_ms = delay;
    if (peers_.size() > 1) {
      peers_.advance();
      use_current_peer();
    }
    loss.next_address = peers_.current().address;
    set_state(LinkState::waiting);
  } else {
    set_state(LinkState::stopped);
    timer_.reset();
  }
  retry_override_ms_.reset();
  for (auto& handler : tracker_.take_all()) handler(nullptr, RequestFailure::link_lost);
  if (state_ == LinkState::stopped) loss.retry_in_ms.reset();  // a handler stopped us
  if (events_.on_lost) events_.on_lost(loss);
  rearm();
}

void ReconnectingLink::on_message(ByteView bytes) {
  auto decoded = proto::decode(bytes, options_.limits.max_message_size);
  if (!decoded) {
    ++stats_.undecodable;
    if (events_.on_undecodable) events_.on_undecodable(decoded.error().detail);
    return;
  }
  const proto::Message& message = decoded->message;
  if (message.message_class == proto::MessageClass::success || message.message_class == proto::MessageClass::error) {
    auto handler = tracker_.take(message.transaction_id);
    if (!handler) {
      ++stats_.unmatched_responses;  // late (timed out) or never ours
      return;
    }
    handler(&message, RequestFailure::none);
    rearm();
    return;
  }
  if (events_.on_message) events_.on_message(message, bytes);
}

Expected<proto::TransactionId, LinkError> ReconnectingLink::request(
    uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill, ResponseHandler handler,
    std::optional<uint64_t> timeout_ms) {
  if (link_ == nullptr || (state_ != LinkState::logging_in && state_ != LinkState::up))
    return Unexpected(LinkError{LinkErrorCode::not_connected, "not connected"});
  proto::TransactionId id;
  security::random_bytes(id.bytes);
  proto::MessageBuilder builder(proto::MessageClass::request, method, id);
  builder.add_u32(proto::attr::protocol_version, proto::protocol_version);
  if (fill) fill(builder);
  if (!tracker_.add(id, now_ms() + timeout_ms.value_or(options_.request_timeout_ms), std::move(handler)))
    return Unexpected(LinkError{LinkErrorCode::duplicate_id, "transaction ID already in flight"});
  rearm();
  link_->send(builder.finish());
  return id;
}

Expected<void, LinkError> ReconnectingLink::send(ByteView message) {
  if (link_ == nullptr || (state_ != LinkState::logging_in && state_ != LinkState::up))
    return Unexpected(LinkError{LinkErrorCode::not_connected, "not connected"});
  link_->send(message);
  return {};
}

void ReconnectingLink::established(uint64_t keepalive_interval_ms) {
  if (state_ != LinkState::logging_in) return;
  ++stats_.established;
  backoff_.reset();
  keepalive_interval_ms_ = options_.keepalive_method != 0 ? keepalive_interval_ms : 0;
  next_keepalive_ms_ = now_ms() + keepalive_interval_ms_;
  set_state(LinkState::up);
  rearm();
}

void ReconnectingLink::drop(std::string_view detail, std::optional<uint64_t> retry_in_ms, Closing closing) {
  if (link_ == nullptr || state_ == LinkState::stopped) return;
  if (!pending_close_) pending_close_ = CloseReason::dropped;
  retry_override_ms_ = retry_in_ms;
  if (closing == Closing::at_once) link_->abort(detail);
  else link_->close(detail);
}

bool ReconnectingLink::stop(std::function<void()> on_closed) {
  if (state_ == LinkState::stopped) return false;
  set_state(LinkState::stopped);
  timer_.reset();
  deferred_loss_.reset();
  if (resolving_ != nullptr) {
    resolving_->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->request));
    resolving_ = nullptr;
  }
  for (auto& handler : tracker_.take_all()) handler(nullptr, RequestFailure::stopped);
  if (link_ == nullptr) return false;
  link_->close("stopping");
  // close() finishes at once when nothing is queued; then on_closed never runs.
  if (link_ == nullptr) return false;
  on_stop_closed_ = std::move(on_closed);
  return true;
}

void ReconnectingLink::send_keepalive() {
  ++stats_.keepalives;
  auto sent = request(options_.keepalive_method, {}, [this](const proto::Message* response, RequestFailure failure) {
    if (failure == RequestFailure::timed_out) {
      pending_close_ = CloseReason::keepalive_timeout;
      drop("keepalive: no answer within " + std::to_string(options_.request_timeout_ms) + " ms", std::nullopt,
           Closing::at_once);
    } else if (response != nullptr && response->message_class == proto::MessageClass::error) {
      pending_close_ = CloseReason::keepalive_refused;
      drop("keepalive refused", std::nullopt, Closing::graceful);
    }
  });
  (void)sent;  // only sent while up, when request() cannot refuse
}

void ReconnectingLink::on_timer() {
  uint64_t now = now_ms();
  auto expired = tracker_.take_expired(now);
  stats_.timeouts += expired.size();
  for (auto& handler : expired) handler(nullptr, RequestFailure::timed_out);
  if (state_ == LinkState::up && keepalive_interval_ms_ > 0 && now >= next_keepalive_ms_) {
    next_keepalive_ms_ = now + keepalive_interval_ms_;
    send_keepalive();
  }
  if (deferred_loss_ && state_ != LinkState::stopped) {
    LinkLoss loss = std::move(*deferred_loss_);
    deferred_loss_.reset();
    lost(loss.reason, std::move(loss.detail));
  } else if (state_ == LinkState::waiting && now >= retry_at_ms_) {
    if (auto started = attempt(); !started)
      lost(started.error().code == LinkErrorCode::bad_address ? CloseReason::resolve_failed
                                                              : CloseReason::connect_failed,
           started.error().detail);
  }
  rearm();
}

void ReconnectingLink::rearm() {
  if (!timer_ || state_ == LinkState::stopped) return;
  std::optional<uint64_t> next = tracker_.next_deadline();
  auto earliest = [&next](uint64_t at) { next = next ? std::min(*next, at) : at; };
  uint64_t now = now_ms();
  if (deferred_loss_) earliest(now);
  if (state_ == LinkState::up && keepalive_interval_ms_ > 0) earliest(next_keepalive_ms_);
  if (state_ == LinkState::waiting) earliest(retry_at_ms_);
  if (!next) {
    uv_timer_stop(timer_.get());
    return;
  }
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* timer) {
        if (timer->data != nullptr) static_cast<ReconnectingLink*>(timer->data)->on_timer();
      },
      *next > now ? *next - now : 0, 0);
}

}  // namespace tsunagu::transport
