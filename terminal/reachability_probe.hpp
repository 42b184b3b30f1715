// Reachability measured before a call on a card (docs/cards.md, "Least-cost
// routing"): a TCP connection to each access point's node and a STUN Binding
// request over UDP to each of its relays, all at once, each given `timeout`.
// What the least-cost router is told before it chooses, so a dead access
// point or relay costs one timeout for all of them, not one failed call.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::terminal {

struct ProbeTarget {
  enum class Kind { tcp_connect, stun_binding } kind = Kind::tcp_connect;
  proto::SocketAddress address;
};

struct ProbeResult {
  bool reachable = false;
  std::chrono::milliseconds took{0};  // to the connection or the answer, or to the refusal or the timeout
};

// One result per target, in order. A Binding request unanswered is sent
// again every 500 ms until the timeout (UDP loses datagrams); any STUN
// response with its transaction ID counts as an answer.
std::vector<ProbeResult> probe_targets(const std::vector<ProbeTarget>& targets, std::chrono::milliseconds timeout);

}  // namespace tsunagu::terminal
