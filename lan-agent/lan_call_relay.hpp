// Rings for LAN extensions: the node rings EXT@DOMAIN over the agent's link;
// the agent looks the extension up (edge policy, live lease), connects over
// TLS to the terminal at its leased address (calls.terminal_port), checks the
// terminal's certificate names that extension (issued by the agent's LAN CA),
// and passes the ring on. The terminal's answer, its trickled candidates and
// its hang-up and its call_path report go back to the node; the node's call events go to the terminal.
// One TLS connection per call, closed when the call ends.
//
// Refusals answered for the terminal (as the ring's error response):
//   403/404/481 from the lookup (policy, unknown extension, no live lease);
//   480 when the terminal cannot be reached in calls.connect_timeout_ms, its
//   TLS handshake fails, or its certificate is not the extension's.
#pragma once

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/bytes.hpp"
#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_core.hpp"
#include "lan-agent/terminal_certificates.hpp"
#include "proto/stun_message.hpp"
#include "security/tls_session.hpp"
#include "transport/tls_link.hpp"

namespace tsunagu::lanagent {

struct LanCallStats {
  uint64_t rings = 0, refused = 0, connected = 0, unauthenticated = 0, answered = 0, paths_relayed = 0;
  uint64_t candidates_held = 0;     // caller candidates passed on after the ring, having come before it
  uint64_t candidates_dropped = 0;  // beyond kMaxHeldCandidates before the terminal was rung
};

inline constexpr size_t kMaxHeldCandidates = 32;

class LanCallRelay {
 public:
  struct ToNode {
    std::function<void(ByteView message)> send;              // a message as it is
    std::function<void(const std::string& call_id)> hang_up;  // a hangup request of our own
  };
  // terminal_tls: a client context trusting the agent's LAN CA, presenting the
  // agent's LAN certificate.
  LanCallRelay(uv_loop_t* loop, AgentCore& core, CallSettings settings,
               std::shared_ptr<security::TlsContext> terminal_tls, std::shared_ptr<TerminalRevocations> revocations,
               std::function<int64_t()> now, ToNode to_node);
  LanCallRelay(const LanCallRelay&) = delete;
  LanCallRelay& operator=(const LanCallRelay&) = delete;
  ~LanCallRelay();

  // A ring request or a call_event / call_candidate indication from the node.
  void on_node_message(const proto::Message& message, ByteView raw);
  // The node link is gone: the node has ended these calls; close them here.
  void node_link_lost();
  // Closes every terminal connection (agent shutdown).
  void stop();

  size_t active_calls() const { return calls_.size(); }
  const LanCallStats& stats() const { return stats_; }

 private:
  struct LanCall;
  struct TimerTarget;
  void on_ring(const proto::Message& ring, ByteView raw);
  void refuse_ring(const proto::TransactionId& ring, uint16_t code, std::string_view reason);
  void on_terminal_ready(const std::string& call_id, transport::TlsLink& link);
  void on_terminal_message(const std::string& call_id, ByteView bytes);
  void on_terminal_closed(const std::string& call_id, transport::TlsLink& link, std::string_view reason);
  void on_connect_timeout(const std::string& call_id);
  // Forgets the call and closes its connection (after flushing what was sent).
  void finish(const std::string& call_id, std::string_view reason);

  uv_loop_t* loop_;
  AgentCore& core_;
  CallSettings settings_;
  std::shared_ptr<security::TlsContext> terminal_tls_;
  std::shared_ptr<TerminalRevocations> revocations_;
  std::function<int64_t()> now_;
  ToNode to_node_;
  std::map<std::string, std::unique_ptr<LanCall>> calls_;
  LanCallStats stats_;
};

}  // namespace tsunagu::lanagent
