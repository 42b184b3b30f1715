// One outbound request link that stays up: resolve HOST:PORT, connect over
// TLS (TlsLink), let the owner log in (the login/hello hook), then keepalives,
// requests matched to responses with deadlines (RequestTracker), and on a
// drop a new attempt after a backoff with jitter (Backoff). One timer, armed
// to the earliest of: a request deadline, the next keepalive, the next
// attempt; nothing polls. The terminal's NodeClient and the agent's NodeLink
// are built on it.
//
// States: idle -> resolving -> connecting -> logging_in -> up; any of these
// -> waiting (a drop, with reconnect on) -> resolving ...; stop() or a drop
// with reconnect off -> stopped.
//
// Callbacks run from the loop, never from inside a call to this class, except
// that request handlers fail with `stopped` inside stop() and with
// `link_lost` inside drop(). A callback must not destroy the link.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.hpp"
#include "base/expected.hpp"
#include "proto/stun_message.hpp"
#include "transport/backoff.hpp"
#include "transport/owned_handle.hpp"
#include "transport/peer_list.hpp"
#include "transport/request_tracker.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::transport {

enum class LinkState {
  idle,        // constructed, not started
  resolving,   // looking up the host name
  connecting,  // TCP and TLS handshake
  logging_in,  // TLS up; the owner's login/hello is in flight
  up,          // the owner called established()
  waiting,     // dropped; the next attempt is scheduled
  stopped,     // stop(), or a drop with reconnect off
};

std::string_view describe(LinkState state);

// Why the connection (not a request) ended.
enum class CloseReason {
  stopped,            // stop()
  resolve_failed,     // the host name did not resolve
  connect_failed,     // no TCP connection
  peer_closed,        // EOF or close_notify
  network,            // read or write error
  tls,                // TLS handshake or record failure
  framing,            // oversized or malformed frame from the peer
  peer_not_reading,   // our output queue hit its limit
  keepalive_timeout,  // a keepalive got no answer in time
  keepalive_refused,  // the peer answered a keepalive with an error
  dropped,            // the owner called drop() (a refused login, ...)
};

std::string_view describe(CloseReason reason);

struct LinkLoss {
  CloseReason reason = CloseReason::stopped;
  std::string detail;     // for people: "connect: connection refused"
  bool was_up = false;    // the link had reached `up` before it dropped
  std::optional<uint64_t> retry_in_ms;  // when the next attempt starts; nullopt: the link stopped
  std::string next_address;             // the peer the next attempt goes to (with retry_in_ms)
};

// A call that failed at once; nothing was scheduled and no callback follows.
enum class LinkErrorCode {
  bad_address,     // not HOST:PORT
  no_tls_context,  // options.tls is null
  already_started,
  not_connected,   // request()/send() outside logging_in and up
  duplicate_id,    // the random transaction ID is in flight already
  loop_refused,    // libuv refused a handle or request (code in uv_code)
};

struct LinkError {
  LinkErrorCode code = LinkErrorCode::not_connected;
  std::string detail;
  int uv_code = 0;
};

struct ReconnectingLinkOptions {
  std::string address;      // HOST:PORT or [v6]:PORT; a name is resolved on every attempt
  std::string verify_name;  // name or IP the peer's certificate must carry
  // Further peers (other nodes of a cluster), tried in turn after `address`:
  // each loss moves the next attempt to the following one (peer_list.hpp).
  std::vector<LinkPeer> alternates;
  std::shared_ptr<security::TlsContext> tls;
  uint64_t request_timeout_ms = 10'000;
  bool reconnect = true;  // false: the first drop stops the link
  BackoffSettings backoff;
  Backoff::UnitRandom unit_random;  // empty: the system's randomness
  LinkLimits limits;
  uint16_t keepalive_method = 0;  // sent when up, every keepalive interval (0: none)
};

struct ReconnectingLinkEvents {
  // TLS is up (state logging_in): send the login/hello with request(), then
  // call established() or drop().
  std::function<void()> on_connected;
  // Requests and indications from the peer (responses go to their handlers);
  // `raw` is the message as it arrived.
  std::function<void(const proto::Message& message, ByteView raw)> on_message;
  std::function<void(LinkState state)> on_state;
  // The connection ended, after its requests failed with link_lost.
  std::function<void(const LinkLoss& loss)> on_lost;
  // A message that did not decode (counted and dropped), for a rate-limited log.
  std::function<void(std::string_view detail)> on_undecodable;
};

struct ReconnectingLinkStats {
  uint64_t attempts = 0, established = 0, keepalives = 0, timeouts = 0, unmatched_responses = 0, undecodable = 0;
};

class ReconnectingLink {
 public:
  using ResponseHandler = RequestTracker::Handler;

  ReconnectingLink(uv_loop_t* loop, ReconnectingLinkOptions options, ReconnectingLinkEvents events);
  ReconnectingLink(const ReconnectingLink&) = delete;
  ReconnectingLink& operator=(const ReconnectingLink&) = delete;
  // Aborts a connection still open (no close_notify); handlers of requests in
  // flight are dropped without a call (their owner is going away); every
  // handle is closed and none refers to this object afterwards.
  ~ReconnectingLink();

  // Starts the first attempt. An error comes back from here (bad address,
  // no TLS context, libuv refused the timer; with reconnect off, a connect
  // refused at once) and then nothing was started.
  Expected<void, LinkError> start();

  // Sends a request with PROTOCOL-VERSION added (and `fill`'s attributes).
  // The handler runs once: with the response, or with a failure. A request
  // that cannot be sent returns the error and its handler never runs.
  Expected<proto::TransactionId, LinkError> request(uint16_t method,
                                                     const std::function<void(proto::MessageBuilder&)>& fill,
                                                     ResponseHandler handler,
                                                     std::optional<uint64_t> timeout_ms = std::nullopt);
  // Sends an encoded message (a response, an indication) as it is.
  Expected<void, LinkError> send(ByteView message);

  // The login step succeeded: state up, backoff reset, keepalives every
  // `keepalive_interval_ms` (0: none).
  void established(uint64_t keepalive_interval_ms);
  // Ends this connection (close_notify) and, with reconnect on, tries again
  // after `retry_in_ms` or, when not given, the backoff's next delay.
  // `at_once` skips close_notify: for a peer that stopped answering, whose
  // unread output would otherwise hold the close back.
  enum class Closing { graceful, at_once };
  void drop(std::string_view detail, std::optional<uint64_t> retry_in_ms = std::nullopt,
            Closing closing = Closing::graceful);
  // Closes for good: requests fail with `stopped`, the connection sends
  // close_notify. True when a connection is still closing: `on_closed` runs
  // once it has (use it to wait before destroying the loop). False: nothing was
  // open and `on_closed` never runs.
  bool stop(std::function<void()> on_closed = {});

  // A reload: the address and alternates (from the first again), the name to verify, the TLS context, the request
  // timeout and the backoff of `next` hold from the next attempt on; the
  // connection that is up keeps its own. A bad address or no TLS context
  // changes nothing.
  Expected<void, LinkError> reconfigure(const ReconnectingLinkOptions& next);

  LinkState state() const { return state_; }
  bool up() const { return state_ == LinkState::up; }
  // The local and observed ends of the current connection (empty when none).
  proto::SocketAddress local_address() const;
  // The detail of the last drop, for request handlers that got link_lost.
  const std::string& last_loss_detail() const { return last_loss_detail_; }
  const ReconnectingLinkStats& stats() const { return stats_; }
  size_t requests_in_flight() const { return tracker_.size(); }

 private:
  struct Resolve;
  Expected<void, LinkError> attempt();
  Expected<void, LinkError> connect_to(const proto::SocketAddress& address);
  void use_current_peer();
  void on_resolved(int status, std::optional<proto::SocketAddress> address);
  void on_link_closed(TlsLink& link, std::string_view reason);
  void lost(CloseReason reason, std::string detail);
  void on_message(ByteView bytes);
  void on_timer();
  void send_keepalive();
  void rearm();
  void set_state(LinkState state);
  uint64_t now_ms() const;

  uv_loop_t* loop_;
  ReconnectingLinkOptions options_;
  ReconnectingLinkEvents events_;
  PeerList peers_;
  std::string host_, port_;
  std::optional<proto::SocketAddress> literal_;
  Backoff backoff_;
  RequestTracker tracker_;
  OwnedTimer timer_;
  TlsLink* link_ = nullptr;  // owns itself; we forget it in its on_closed
  Resolve* resolving_ = nullptr;  // freed by its callback; we only detach
  LinkState state_ = LinkState::idle;
  std::optional<LinkLoss> deferred_loss_;  // a first attempt refused inside start()
  std::optional<CloseReason> pending_close_;  // set by drop() or a keepalive failure
  std::optional<uint64_t> retry_override_ms_;
  uint64_t keepalive_interval_ms_ = 0;
  uint64_t next_keepalive_ms_ = 0;
  uint64_t retry_at_ms_ = 0;
  std::string last_loss_detail_;
  std::function<void()> on_stop_closed_;
  bool destroying_ = false;
  ReconnectingLinkStats stats_;
};

// Splits HOST:PORT ([v6]:PORT too); false when either part is missing.
bool split_host_port(std::string_view text, std::string& host, std::string& port);

}  // namespace tsunagu::transport
