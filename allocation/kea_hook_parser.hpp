// Kea's run_script hook (libdhcp_run_script.so): argv[1] is the hook point and
// the environment holds Kea's variables only.
//   leases4_committed / leases6_committed: LEASES4_SIZE + LEASES4_AT<n>_* -> grant,
//     DELETED_LEASES4_SIZE + DELETED_LEASES4_AT<n>_* -> release (v6 alike)
//   lease4_renew, lease6_renew, lease6_rebind -> renew; lease4_release,
//   lease6_release -> release; lease4_expire, lease6_expire -> expire;
//   lease4_decline, lease6_decline -> decline; lease4_recover, lease6_recover -> grant
//   other hook points -> no event.
// expires = CLTT + VALID_LIFETIME (0xffffffff = infinite), reported_at = CLTT,
// which orders Kea's concurrent, out-of-order calls. v6 prefix delegations
// (TYPE IA_PD) are skipped.
#pragma once

#include <vector>

#include "allocation/hook_call.hpp"
#include "allocation/lease_event.hpp"

namespace tsunagu::alloc {

inline constexpr int64_t kMaxKeaLeasesPerCall = 256;

Expected<std::vector<LeaseEvent>, ParseError> parse_kea_hook(const HookCall& call);

}  // namespace tsunagu::alloc
