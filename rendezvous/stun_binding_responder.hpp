// The node's UDP STUN Binding service, as a pure function: a datagram and its
// source in, the response bytes (or nothing) out. Answers RFC 8489 requests
// with XOR-MAPPED-ADDRESS and classic RFC 3489 requests with MAPPED-ADDRESS
// (libnice and old clients send those).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "base/bytes.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

struct BindingCounters {
  uint64_t answered = 0;
  uint64_t classic = 0;
  uint64_t dropped = 0;             // not STUN, not a request, bad fingerprint, malformed
  uint64_t unknown_attributes = 0;  // answered with 420
};

class StunBindingResponder {
 public:
  explicit StunBindingResponder(std::string_view software) : software_(software) {}

  // Writes the response into `out` (cleared first); false when the datagram
  // gets no answer (RFC 8489: silently discard).
  bool answer(ByteView datagram, const proto::SocketAddress& from, Bytes& out);
  const BindingCounters& counters() const { return counters_; }

 private:
  std::string_view software_;
  BindingCounters counters_;
};

}  // namespace tsunagu::rendezvous
