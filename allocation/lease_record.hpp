// A lease as the table holds it: the latest knowledge about one client's lease
// of one address family, live or ended (ended records stay for
// TableOptions::tombstone_retention so late events stay ordered).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "allocation/lease_event.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::alloc {

enum class LeaseState : uint8_t {
  active = 1,
  released = 2,
  expired = 3,   // by the server, or by AllocationTable::expire_stale
  declined = 4,
  removed = 5,   // dnsmasq del, or absent from a synced lease file
};

std::string_view to_string(LeaseState state);

struct LeaseRecord {
  std::string key;  // "4|m=aa:.." / "6|c=00:01:..": family and identity
  LeaseState state = LeaseState::active;
  ServerKind source = ServerKind::unknown;
  proto::SocketAddress address;
  std::string mac, client_id, hostname, server;
  int64_t expires = LeaseEvent::kUnknownExpiry;  // as the server told it
  int64_t live_until = 0;   // expires, or reported_at + assumed_lease_seconds when unknown
  int64_t reported_at = 0;  // of the event that last changed the record
  int64_t updated_at = 0;   // the table's `now` when it last changed

  bool live(int64_t now) const { return state == LeaseState::active && live_until > now; }
  friend bool operator==(const LeaseRecord&, const LeaseRecord&) = default;
};

}  // namespace tsunagu::alloc
