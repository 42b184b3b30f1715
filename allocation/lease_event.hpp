// One lease change as a DHCP server reported it, already normalised by a parser
// (or decoded from the hook's socket message / spool). The unit of input of
// AllocationTable::apply.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "allocation/mac_address.hpp"
#include "proto/socket_address.hpp"

namespace tsunagu::alloc {

enum class ServerKind : uint8_t {
  unknown = 0,
  dnsmasq = 1,
  isc_dhcpd = 2,
  kea = 3,
};

enum class LeaseAction : uint8_t {
  grant = 1,    // new lease or re-grant (dnsmasq add, ISC commit, Kea leases4_committed)
  renew = 2,    // same lease, later expiry (dnsmasq old, Kea lease4_renew)
  release = 3,  // the client gave it back (ISC release, Kea lease4_release)
  expire = 4,   // the server expired/reclaimed it (ISC expiry, Kea lease4_expire)
  decline = 5,  // the client found the address in use (Kea lease4_decline)
  remove = 6,   // ended, reason not told (dnsmasq del: release and expiry alike)
};

std::string_view to_string(ServerKind kind);
std::string_view to_string(LeaseAction action);
inline bool ends_lease(LeaseAction action) {
  return action != LeaseAction::grant && action != LeaseAction::renew;
}

struct LeaseEvent {
  static constexpr int64_t kUnknownExpiry = 0;
  static constexpr int64_t kInfinite = std::numeric_limits<int64_t>::max();

  LeaseAction action = LeaseAction::grant;
  ServerKind source = ServerKind::unknown;
  proto::SocketAddress address;  // port 0; family says IPv4 or IPv6
  MacAddress mac;                // "aa:bb:cc:dd:ee:ff" or empty; inline, no heap string
  std::string client_id;         // "01:aa:..": DHCPv4 client-id, or the DUID for v6; or empty
  std::string hostname;          // lowercase, no trailing dot, <= 253; or empty
  std::string server;            // which server instance (interface, server DUID); <= 64
  // Absolute Unix seconds when the lease ends (for an ending event: when the
  // ended lease would have ended). kUnknownExpiry, or kInfinite.
  int64_t expires = kUnknownExpiry;
  // Unix seconds when the server or hook saw the change (Kea's CLTT, the hook's
  // clock otherwise). Orders events whose expiry is unknown.
  int64_t reported_at = 0;

  bool is_v6() const { return address.family == proto::SocketAddress::Family::ipv6; }
  friend bool operator==(const LeaseEvent&, const LeaseEvent&) = default;
};

}  // namespace tsunagu::alloc
