// The terminal's link to its rendezvous node: connect over TLS, log in, keep
// presence alive, send requests and match their responses, and (for a
// long-running login) reconnect with backoff when the link drops.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "terminal/reconnect_backoff.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::terminal {

struct NodeClientOptions {
  proto::SocketAddress node;
  std::string verify_name;  // name or IP the node's certificate must carry
  std::string ca_file;      // the deployment's CA
  std::string user_id;
  std::string password;
  uint32_t role = proto::link_role::presence;
  bool reconnect = false;  // keep the presence up until stopped
  std::vector<proto::SocketAddress> extra_reported;
  uint64_t request_timeout_ms = 10'000;
  bool authenticate = true;  // false: only connect (for register)
};

struct LoginInfo {
  proto::SocketAddress observed;  // the node's view of us (our NAT's mapping)
  proto::SocketAddress local;     // our end of the link: the reported address
  uint32_t keepalive_interval_s = 0;
};

// Why the client gave up; maps onto the CLI's exit codes.
enum class ClientFailure { none, network, tls, unauthenticated, rate_limited, protocol, displaced, logged_out };

struct NodeClientEvents {
  std::function<void(const LoginInfo&)> on_logged_in;
  std::function<void()> on_connected;  // TLS up, when authenticate is false
  std::function<void(std::string_view reason, uint64_t retry_in_ms)> on_link_lost;  // reconnecting
  std::function<void(ClientFailure failure, std::string_view detail)> on_stopped;  // final
  // Requests the node sends us (ring) and indications other than notices
  // (call_event, call_candidate); the message is valid during the call.
  std::function<void(const proto::Message&)> on_node_request;
  std::function<void(const proto::Message&)> on_node_indication;
};

class NodeClient {
 public:
  using ResponseHandler = std::function<void(const proto::Message* response, std::string_view error)>;

  NodeClient(uv_loop_t* loop, NodeClientOptions options, NodeClientEvents events);
  NodeClient(const NodeClient&) = delete;
  NodeClient& operator=(const NodeClient&) = delete;
  ~NodeClient();

  void start();
  // Sends a request (method + attributes added by `fill`); PROTOCOL-VERSION is
  // added here. The handler gets the response, or nullptr and an error text.
  void request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill, ResponseHandler handler);
  // Sends an already encoded message (a response to a node request, an indication).
  void send_message(ByteView message) {
    if (link_ != nullptr && !stopped_) link_->send(message);
  }
  // Ends the session; on_stopped(ClientFailure::none) follows.
  void stop(ClientFailure failure = ClientFailure::none, std::string detail = {});
  bool logged_in() const { return logged_in_; }

 private:
  struct Pending {
    uint16_t method = 0;
    uint64_t deadline_ms = 0;
    ResponseHandler handler;
  };
  void connect();
  void on_ready();
  void on_message(ByteView bytes);
  void on_closed(std::string_view reason);
  void send_login();
  void send_keepalive();
  void on_tick();
  void fail_pending(std::string_view why);
  uint64_t now_ms() const;

  uv_loop_t* loop_;
  NodeClientOptions options_;
  NodeClientEvents events_;
  std::shared_ptr<security::TlsContext> tls_;
  transport::TlsLink* link_ = nullptr;
  uv_timer_t* tick_timer_ = nullptr;
  uv_timer_t* retry_timer_ = nullptr;
  std::map<std::array<std::byte, 12>, Pending> pending_;
  ReconnectBackoff backoff_;
  bool logged_in_ = false;
  bool stopped_ = false;
  uint32_t keepalive_interval_s_ = 15;
  uint64_t next_keepalive_ms_ = 0;
};

// "host:port" with host an IP literal or a name (resolved once, blocking).
std::optional<proto::SocketAddress> resolve_node_address(const std::string& text, std::string& host_out,
                                                          std::string& error);

}  // namespace tsunagu::terminal
