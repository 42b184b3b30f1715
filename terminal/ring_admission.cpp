#include "terminal/ring_admission.hpp"

#include <algorithm>

namespace tsunagu::terminal {

RingAdmission::Decision RingAdmission::open(const proto::SocketAddress& peer) {
  const auto& allowed = policy_.agent_addresses;
  if (!allowed.empty() && std::none_of(allowed.begin(), allowed.end(), [&](const proto::SocketAddress& a) {
        return a.family == peer.family && a.ip == peer.ip;
      }))
    return Decision::not_agent_address;
  if (open_ >= policy_.max_connections) return Decision::server_full;
  std::string source = peer.ip_string();
  size_t& pending = pending_by_source_[source];
  if (pending >= policy_.max_pending_per_source) return Decision::source_full;
  ++pending;
  ++open_;
  return Decision::admit;
}

void RingAdmission::release_pending(const std::string& source) {
  auto it = pending_by_source_.find(source);
  if (it == pending_by_source_.end()) return;
  if (it->second <= 1) pending_by_source_.erase(it);
  else --it->second;
}

void RingAdmission::authenticated(const proto::SocketAddress& peer) { release_pending(peer.ip_string()); }

void RingAdmission::closed(const proto::SocketAddress& peer, bool was_authenticated) {
  if (open_ > 0) --open_;
  if (!was_authenticated) release_pending(peer.ip_string());
}

const char* RingAdmission::describe(Decision decision) {
  switch (decision) {
    case Decision::admit: return "admitted";
    case Decision::not_agent_address: return "not from our LAN agent's address (--agent-address)";
    case Decision::source_full: return "too many connections from that address that have not authenticated";
    case Decision::server_full: return "too many connections already open";
  }
  return "refused";
}

}  // namespace tsunagu::terminal
