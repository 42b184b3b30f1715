// The agent's one outbound TLS link to its rendezvous node: connect (resolving
// HOST:PORT each time), agent_hello with our domains and number prefixes,
// keepalive heartbeats, answers to the node's forwarded lookups (through
// AgentCore), and reconnection with exponential backoff and jitter.
//   hello 403 (not enrolled) / 426 (version): logged as errors, retried only
//     after node.refused_retry seconds; 409 (domain held): backoff.
//   A heartbeat or hello without an answer within node.request_timeout: the
//   link is dead; it is aborted and reconnected.
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/log.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_core.hpp"
#include "security/tls_session.hpp"
#include "terminal/reconnect_backoff.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::lanagent {

struct NodeLinkStats {
  uint64_t connects = 0, hellos_accepted = 0, lookups = 0, heartbeats = 0;
};

class NodeLink {
 public:
  // `now` gives Unix seconds for table queries (injected for tests).
  NodeLink(uv_loop_t* loop, NodeSettings settings, std::shared_ptr<security::TlsContext> tls, AgentCore& core,
           std::function<int64_t()> now);
  NodeLink(const NodeLink&) = delete;
  NodeLink& operator=(const NodeLink&) = delete;
  ~NodeLink();

  void start();
  // Closes the link (close_notify) and the timers; `on_stopped` runs once
  // every handle is closed.
  void stop(std::function<void()> on_stopped = {});

  bool linked() const { return linked_; }
  const NodeLinkStats& stats() const { return stats_; }
  // Called on every state change worth a status line (tests watch it too).
  std::function<void(std::string_view state)> on_state;
  // Rings (requests) and call_event / call_candidate indications from the
  // node, with the message as it arrived (lan_call_relay.hpp).
  std::function<void(const proto::Message& message, ByteView raw)> on_call_message;
  // The link to the node closed (the node ends the calls it carried).
  std::function<void()> on_link_lost;

  // Sends a message as it is; false when not linked.
  bool send(ByteView message);
  // A request of ours; `handler` gets the response, or nullptr on timeout or a
  // lost link.
  void request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
               std::function<void(const proto::Message*)> handler);

 private:
  struct Pending {
    uint64_t deadline_ms = 0;
    std::function<void(const proto::Message*)> handler;  // nullptr: timed out or link gone
  };
  void connect();
  void connect_to(const proto::SocketAddress& address);
  void on_ready();
  void on_message(ByteView bytes);
  void on_closed(std::string_view reason);
  void schedule_retry(uint64_t delay_ms, std::string_view why);
  void on_tick();
  void fail_pending();
  void maybe_finish_stop();
  uint64_t now_ms() const;
  void report(std::string_view state);

  uv_loop_t* loop_;
  NodeSettings settings_;
  std::shared_ptr<security::TlsContext> tls_;
  AgentCore& core_;
  std::function<int64_t()> now_;
  transport::TlsLink* link_ = nullptr;
  uv_timer_t* tick_timer_ = nullptr;
  uv_timer_t* retry_timer_ = nullptr;
  uv_getaddrinfo_t* resolving_ = nullptr;
  std::map<std::array<std::byte, 12>, Pending> pending_;
  terminal::ReconnectBackoff backoff_;
  bool linked_ = false;
  bool refused_ = false;  // hello got 403 or 426: retry only after refused_retry
  bool stopping_ = false;
  unsigned open_handles_ = 0;
  std::function<void()> on_stopped_;
  uint64_t next_heartbeat_ms_ = 0;
  NodeLinkStats stats_;
  log::RateLimit bad_message_log_{5, std::chrono::seconds(60)};
};

}  // namespace tsunagu::lanagent
