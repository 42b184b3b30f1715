// The agent's one outbound TLS link to its rendezvous node: connect (resolving
// HOST:PORT each time), agent_hello with our domains and number prefixes,
// keepalive heartbeats, answers to the node's forwarded lookups (through
// AgentCore), and reconnection with exponential backoff and jitter. The link
// itself is transport::ReconnectingLink; this adds the hello and the answers.
//   hello 403 (not enrolled) / 426 (version): logged as errors, retried only
//     after node.refused_retry seconds; 409 (domain held): backoff.
//   A heartbeat or hello without an answer within node.request_timeout: the
//   link is dead; it is aborted and reconnected.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/expected.hpp"
#include "base/log.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_core.hpp"
#include "security/tls_session.hpp"
#include "transport/reconnecting_link.hpp"

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
  // Aborts a connection still open; nothing calls back afterwards.
  ~NodeLink();

  // Starts the first attempt; node.address that is not HOST:PORT (or a
  // second start) comes back from here and nothing runs.
  Expected<void, std::string> start();
  // Closes the link (close_notify); `on_stopped` runs once the connection has
  // closed, or before stop() returns when none was open.
  void stop(std::function<void()> on_stopped = {});

  // A reload: `settings` and `tls` hold from the next connection on (the
  // heartbeat interval from the next hello); the link that is up stays up.
  // A node.address that is not HOST:PORT changes nothing.
  Expected<void, std::string> reconfigure(NodeSettings settings, std::shared_ptr<security::TlsContext> tls);

  bool linked() const { return link_ && link_->up(); }
  NodeLinkStats stats() const;
  // Called on every state change (tests watch it too): `up` once the node
  // accepted our hello, `waiting` after a drop.
  std::function<void(transport::LinkState state)> on_state;
  // Rings (requests) and call_event / call_candidate indications from the
  // node, with the message as it arrived (lan_call_relay.hpp).
  std::function<void(const proto::Message& message, ByteView raw)> on_call_message;
  // The link to the node closed (the node ends the calls it carried).
  std::function<void()> on_link_lost;

  // Sends a message as it is; false when not linked.
  bool send(ByteView message);
  // A request of ours; `handler` gets the response, or nullptr on timeout or a
  // lost link (at once, before request() returns, when there is no link).
  void request(uint16_t method, const std::function<void(proto::MessageBuilder&)>& fill,
               std::function<void(const proto::Message*)> handler);

 private:
  transport::ReconnectingLinkOptions link_options(const NodeSettings& settings,
                                                 std::shared_ptr<security::TlsContext> tls) const;
  void send_hello();
  void on_hello_response(const proto::Message& response);
  void on_message(const proto::Message& message, ByteView raw);
  void on_lost(const transport::LinkLoss& loss);
  // Forwarded lookups come in batches (the node sends a turn's worth in one
  // record): the batch shares one table read transaction and one log write,
  // both released when the turn ends.
  void hold_for_turn();
  void end_of_turn();
  void log_lookup(const proto::Message& message, const LookupAnswer& answer);
  static constexpr unsigned kRefusedLookupLinesPerMinute = 20;

  uv_loop_t* loop_;
  NodeSettings settings_;
  std::shared_ptr<security::TlsContext> tls_;
  AgentCore& core_;
  std::function<int64_t()> now_;
  std::unique_ptr<transport::ReconnectingLink> link_;
  uv_check_t* turn_end_ = nullptr;  // closed by the destructor, freed by its close callback
  uint64_t hellos_accepted_ = 0, lookups_ = 0;
  log::RateLimit bad_message_log_{5, std::chrono::seconds(60)};
  // Refused and failed lookups are info lines, and any account on the node may
  // dial our extensions as fast as it likes: a line each would flood the
  // journal (whose rate limit then drops the agent's other lines).
  log::RateLimit refused_lookup_log_{kRefusedLookupLinesPerMinute, std::chrono::seconds(60)};
  uint64_t refused_lookups_reported_ = 0;  // refused_lookup_log_.suppressed() already told in a line
};

}  // namespace tsunagu::lanagent
