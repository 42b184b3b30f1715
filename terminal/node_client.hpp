// The terminal's link to its rendezvous node: connect over TLS, log in, keep
// presence alive, send requests and match their responses, and (for a
// long-running login) reconnect with backoff when the link drops. The link
// itself is transport::ReconnectingLink; this adds the login step and the
// terminal's view of failures (ClientFailure, the CLI's exit codes).
//
// The login is SCRAM-SHA-256 (docs/protocol.md, login_begin): the password
// never goes to the node; SaltedPassword (the slow PBKDF2) is derived once and
// kept in this object's memory only, so a reconnect costs no PBKDF2 here and
// a few HMACs on the node. The node must prove it holds the account's
// ServerKey, or the client stops. A node that answers the proof 401 gets one
// password login (how accounts still holding a scrypt hash migrate) until a
// SCRAM login has succeeded in this process; never after.
//
// Every login success carries a session-resumption token (docs/security.md,
// "Session resumption tokens"), kept in this object's memory only (never
// written to disk; a new process logs in by SCRAM). A reconnect presents it
// with login_resume: one round trip and one HMAC on the node. A refused
// token (expired, the password changed, the account removed) is dropped and
// the login goes on by SCRAM on the same link.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/signalling.hpp"
#include "proto/stun_message.hpp"
#include "transport/reconnecting_link.hpp"

namespace tsunagu::terminal {

struct NodeClientOptions {
  proto::SocketAddress node;
  std::string verify_name;  // name or IP the node's certificate must carry
  // Other nodes of the same cluster, tried in turn when the link to one is
  // lost or a connect fails (transport/peer_list.hpp); empty: `node` only.
  std::vector<transport::LinkPeer> other_nodes;
  std::string ca_file;      // the deployment's CA
  std::string user_id;
  std::string password;
  uint32_t role = proto::link_role::presence;
  bool reconnect = false;  // keep the presence up until stopped
  std::vector<proto::SocketAddress> extra_reported;
  uint64_t request_timeout_ms = 10'000;
  bool authenticate = true;  // false: only connect (for register)
  // The one password login after a 401 to SCRAM, for accounts not migrated
  // yet (docs/security.md, "Logins"); false: SCRAM only.
  bool password_fallback = true;
};

struct LoginInfo {
  proto::SocketAddress observed;  // the node's view of us (our NAT's mapping)
  proto::SocketAddress local;     // our end of the link: the reported address
  uint32_t keepalive_interval_s = 0;
  bool resumed = false;  // by the session-resumption token, not SCRAM
};

// Why the client gave up; maps onto the CLI's exit codes.
enum class ClientFailure { none, network, tls, unauthenticated, rate_limited, protocol, displaced, logged_out };

// start() could not begin: nothing runs and no event follows.
struct ClientStartFailure {
  ClientFailure failure = ClientFailure::network;
  std::string detail;
};

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

  // Starts connecting. A failure (the CA file, an address libuv refuses at
  // once when not reconnecting) comes back from here and no event follows.
  Expected<void, ClientStartFailure> start();
  // Sends a request (method + attributes added by `fill`); PROTOCOL-VERSION is
  // added here. The handler gets the response, or nullptr and an error text;
  // when the request cannot be sent (not connected, stopped) that is at once,
  // before request() returns.
  void request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill, ResponseHandler handler);
  // Sends an already encoded message (a response to a node request, an
  // indication); false when there is no connection to send it on.
  bool send_message(ByteView message);
  // Ends the session; on_stopped(failure) follows before this returns.
  void stop(ClientFailure failure = ClientFailure::none, std::string detail = {});
  bool logged_in() const { return logged_in_; }
  transport::LinkState link_state() const {
    return link_ ? link_->state() : transport::LinkState::idle;
  }

 private:
  void on_connected();
  void on_message(const proto::Message& message);
  void on_lost(const transport::LinkLoss& loss);
  void send_login_begin();
  void on_login_begin_response(const proto::Message* response, transport::RequestFailure failure);
  void send_scram_login(const proto::Message& server_first_response);
  void send_password_login();
  void add_login_details(proto::MessageBuilder& b);
  // An error answer to login_begin or login; false when the response was not one.
  bool handled_login_error(const proto::Message* response, transport::RequestFailure failure);
  void on_login_response(const proto::Message* response, transport::RequestFailure failure);
  void send_token_login();
  void on_token_login_response(const proto::Message* response, transport::RequestFailure failure);
  // A login success (SCRAM, password or token): keep its token, report it.
  void complete_login(const proto::Message& response, bool resumed);
  // Derives SaltedPassword, or takes it from the cache for the same salt and iterations.
  const Bytes& salted_password(ByteView salt, uint32_t iterations);

  uv_loop_t* loop_;
  NodeClientOptions options_;
  NodeClientEvents events_;
  std::unique_ptr<transport::ReconnectingLink> link_;
  bool logged_in_ = false;
  bool stopped_ = false;
  uint32_t keepalive_interval_s_ = 15;
  // SCRAM: this login's exchange, and SaltedPassword kept across reconnects.
  std::string client_nonce_;
  std::string auth_message_;
  bool password_login_in_flight_ = false;
  bool scram_succeeded_ = false;  // after one SCRAM login, never send the password
  Bytes salted_password_;
  Bytes salted_for_salt_;
  uint32_t salted_for_iterations_ = 0;
  Bytes resume_token_;  // from the last login success; empty: log in by SCRAM
};

// A --node value: "host:port" or several separated by commas (nodes of one
// cluster, in the order to try them); an empty entry is an error.
std::optional<std::vector<std::string>> split_node_list(std::string_view text, std::string& error);

// "host:port" with host an IP literal or a name (resolved once, blocking).
std::optional<proto::SocketAddress> resolve_node_address(const std::string& text, std::string& host_out,
                                                          std::string& error);

}  // namespace tsunagu::terminal
