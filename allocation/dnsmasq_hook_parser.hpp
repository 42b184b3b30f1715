// dnsmasq --dhcp-script calls: `PROG ACTION MAC|DUID IP [HOSTNAME]` plus
// DNSMASQ_* variables. add -> grant, old -> renew, del -> remove (release and
// expiry look the same). init, tftp, arp-add, arp-del, relay-snoop and unknown
// actions give no event (an empty vector). DHCPv6 calls (DNSMASQ_IAID set, or an
// IPv6 address) carry the client DUID in argument 2 and the MAC in DNSMASQ_MAC.
// Expiry: DNSMASQ_LEASE_EXPIRES (0 = infinite), else now + DNSMASQ_TIME_REMAINING.
#pragma once

#include <string_view>
#include <vector>

#include "allocation/hook_call.hpp"
#include "allocation/lease_event.hpp"

namespace tsunagu::alloc {

Expected<std::vector<LeaseEvent>, ParseError> parse_dnsmasq_hook(const HookCall& call);

}  // namespace tsunagu::alloc
