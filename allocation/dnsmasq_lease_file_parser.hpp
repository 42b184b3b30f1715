// dnsmasq's lease file (and the lines an `init` call prints): one lease a line,
//   <expiry> <mac> <ipv4> <hostname|*> <client-id|*>
//   duid <server-duid>                       (starts the DHCPv6 part)
//   <expiry> <iaid> <ipv6> <hostname|*> <duid|*>
// expiry 0 = infinite. The file is rewritten whole, so it holds only live leases.
#pragma once

#include <optional>
#include <string_view>

#include "allocation/lease_event.hpp"
#include "allocation/lease_file_snapshot.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

// One line (no newline). Returns nullopt for the "duid" line (and sets
// server_duid), an event otherwise. reported_at is taken_at.
Expected<std::optional<LeaseEvent>, ParseError> parse_dnsmasq_lease_line(std::string_view line, int64_t taken_at,
                                                                         std::string* server_duid);
// The whole file; too_large over kMaxLeaseFileBytes; bad lines (over 4 KiB or
// unreadable) are counted and skipped.
Expected<LeaseFileSnapshot, ParseError> parse_dnsmasq_lease_file(std::string_view text, int64_t taken_at);

}  // namespace tsunagu::alloc
