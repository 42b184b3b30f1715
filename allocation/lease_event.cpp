#include "allocation/lease_event.hpp"

namespace tsunagu::alloc {

std::string_view to_string(ServerKind kind) {
  switch (kind) {
    case ServerKind::unknown: return "unknown";
    case ServerKind::dnsmasq: return "dnsmasq";
    case ServerKind::isc_dhcpd: return "isc-dhcpd";
    case ServerKind::kea: return "kea";
  }
  return "unknown";
}

std::string_view to_string(LeaseAction action) {
  switch (action) {
    case LeaseAction::grant: return "grant";
    case LeaseAction::renew: return "renew";
    case LeaseAction::release: return "release";
    case LeaseAction::expire: return "expire";
    case LeaseAction::decline: return "decline";
    case LeaseAction::remove: return "remove";
  }
  return "unknown";
}

}  // namespace tsunagu::alloc
