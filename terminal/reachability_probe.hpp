// Reachability measured before a call on a card (docs/cards.md, "Least-cost
// routing"): a TCP connection to each access point's node, all at once, each
// given `timeout`. What the least-cost router is told before it chooses, so a
// dead access point costs one timeout for all of them, not one failed call.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::terminal {

struct ProbeResult {
  bool reachable = false;
  std::chrono::milliseconds took{0};  // to the connection, or to the refusal or the timeout
};

std::vector<ProbeResult> probe_nodes(const std::vector<proto::SocketAddress>& nodes, std::chrono::milliseconds timeout);

}  // namespace tsunagu::terminal
