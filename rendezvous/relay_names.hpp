// Host names of card relays (`turn:relay.example.net:3478` on an access
// point), resolved off the node's loop (the daemon's uv_getaddrinfo) and kept
// for a while, so the caller of a card call is handed the relay its route
// debits even when the card names it by host name (docs/cards.md, "Calls on a
// card"). Pure: the clock is given, the daemon does the lookups.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proto/socket_address.hpp"

namespace tsunagu::rendezvous {

struct RelayNameTiming {
  uint32_t ttl_s = 300;         // a name that resolved is looked up again after this
  uint32_t failure_ttl_s = 60;  // one that did not, after this
};

class RelayNameCache {
 public:
  using Timing = RelayNameTiming;
  static constexpr size_t max_names = 256;

  RelayNameCache() = default;
  explicit RelayNameCache(Timing timing) : timing_(timing) {}

  // Of `hosts`, the names to look up now: not known, or known for longer than
  // their TTL, and not already being looked up; they are marked in flight. A
  // new name past max_names displaces the entry answered longest ago.
  std::vector<std::string> want(const std::vector<std::string>& hosts, uint64_t now_ms);
  bool in_flight(std::string_view host) const;
  // The lookup's answer: the addresses (their ports are ignored), IPv4 first.
  void resolved(const std::string& host, std::vector<proto::SocketAddress> addresses, uint64_t now_ms);
  // The lookup failed: the name has no addresses until a later lookup gives
  // some. true when it had not failed before (the daemon logs it once).
  bool failed(const std::string& host, uint64_t now_ms);
  // The address to hand out for `host` (the first, IPv4 preferred) with
  // `port`; nothing when it has not resolved or its last lookup failed. An
  // entry past its TTL still answers until the next lookup replaces it.
  std::optional<proto::SocketAddress> address(std::string_view host, uint16_t port) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::vector<proto::SocketAddress> addresses;
    uint64_t answered_ms = 0;
    bool answered = false;
    bool failed = false;
    bool in_flight = false;
  };
  void make_room();
  Timing timing_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace tsunagu::rendezvous
