// Voicemail for LAN extensions: the node keeps messages left for EXT@DOMAIN
// in that mailbox; when the extension's terminal shows up again (a lease
// granted or renewed, or the agent's node link coming up) the agent reads the
// mailbox over its node link, passes each message to the terminal over TLS
// (voicemail_deliver chunks, the same LAN certificates as rings) and, once the
// terminal says the whole message is saved, deletes it on the node. A message
// is deleted only after the terminal's acknowledgement; any failure leaves it
// on the node for the next delivery.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "lan-agent/agent_config.hpp"
#include "lan-agent/agent_core.hpp"
#include "lan-agent/terminal_certificates.hpp"
#include "lan-agent/node_link.hpp"
#include "security/tls_session.hpp"

namespace tsunagu::lanagent {

struct CourierStats {
  uint64_t delivered = 0, failed = 0;
};

class LanVoicemailCourier {
 public:
  LanVoicemailCourier(uv_loop_t* loop, AgentCore& core, NodeLink& node, CallSettings settings,
                      std::shared_ptr<security::TlsContext> terminal_tls,
                      std::shared_ptr<TerminalRevocations> revocations, std::function<int64_t()> now);
  LanVoicemailCourier(const LanVoicemailCourier&) = delete;
  LanVoicemailCourier& operator=(const LanVoicemailCourier&) = delete;
  ~LanVoicemailCourier();

  // Delivers what waits for `extension` (in each of our domains), after any
  // delivery already queued; a repeat while one is queued is ignored.
  void deliver(const std::string& extension);
  // Every extension with a live lease (the node link just came up).
  void deliver_all();
  void stop();
  const CourierStats& stats() const { return stats_; }

 private:
  struct Job;
  void next_job();
  void finish_job(std::string_view outcome);

  uv_loop_t* loop_;
  AgentCore& core_;
  NodeLink& node_;
  CallSettings settings_;
  std::shared_ptr<security::TlsContext> terminal_tls_;
  std::shared_ptr<TerminalRevocations> revocations_;
  std::function<int64_t()> now_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
  std::shared_ptr<Job> job_;
  bool stopped_ = false;
  CourierStats stats_;
};

}  // namespace tsunagu::lanagent
