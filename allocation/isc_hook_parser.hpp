// ISC dhcpd `execute()` calls as docs/lan-agent.md configures them:
//   on commit  -> PROG commit  IP MAC HOSTNAME [LEASE-SECONDS]
//   on release -> PROG release IP MAC [HOSTNAME]
//   on expiry  -> PROG expiry  IP MAC [HOSTNAME]
// dhcpd passes no environment. MAC comes unpadded from binary-to-ascii
// ("2:a:b:c:d:e") and is normalised. Without LEASE-SECONDS the expiry is unknown
// and the table orders by the hook's clock (call.now).
#pragma once

#include <vector>

#include "allocation/hook_call.hpp"
#include "allocation/lease_event.hpp"

namespace tsunagu::alloc {

Expected<std::vector<LeaseEvent>, ParseError> parse_isc_hook(const HookCall& call);

}  // namespace tsunagu::alloc
