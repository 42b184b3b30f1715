// Which connections a LAN terminal's ring server (`tsunagu listen --lan`)
// takes: only from its agent's addresses when they are configured
// (--agent-address), at most `max_connections` at once, and at most
// `max_pending_per_source` from one address that have not finished TLS with
// the agent's certificate, so one LAN host cannot hold every slot. Pure: the
// server reports connections opening, authenticating and closing.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::terminal {

class RingAdmission {
 public:
  struct Policy {
    std::vector<proto::SocketAddress> agent_addresses;  // IPs only (ports ignored); empty: any address
    size_t max_connections = 32;
    size_t max_pending_per_source = 4;
  };
  enum class Decision { admit, not_agent_address, source_full, server_full };

  explicit RingAdmission(Policy policy) : policy_(std::move(policy)) {}

  // Decides on a new connection from `peer`; on admit it counts as open and pending.
  Decision open(const proto::SocketAddress& peer);
  // The connection finished TLS with the agent's certificate: no longer pending.
  void authenticated(const proto::SocketAddress& peer);
  // An admitted connection closed; `was_authenticated` as reported before.
  void closed(const proto::SocketAddress& peer, bool was_authenticated);

  size_t open_connections() const { return open_; }
  static const char* describe(Decision decision);

 private:
  void release_pending(const std::string& source);

  Policy policy_;
  size_t open_ = 0;
  std::map<std::string, size_t> pending_by_source_;
};

}  // namespace tsunagu::terminal
