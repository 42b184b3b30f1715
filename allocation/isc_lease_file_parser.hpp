// ISC dhcpd's dhcpd.leases: `lease IP { starts|ends|cltt|tstp W YYYY/MM/DD
// HH:MM:SS; binding state S; hardware ethernet MAC; uid "..."; client-hostname
// "..."; ... }` blocks, appended; the last block for an address wins. Times are
// UTC (or `epoch N;` with db-time-format local, or `never`). Other statements,
// nested blocks (`on expiry { ... }`) and comments are skipped. Blocks with
// neither hardware address nor uid (never-used pool addresses) give no lease.
// binding state active -> grant (expires = ends); free/released -> release;
// expired -> expire; abandoned -> decline; others -> remove.
#pragma once

#include <string_view>

#include "allocation/lease_file_snapshot.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

Expected<LeaseFileSnapshot, ParseError> parse_isc_lease_file(std::string_view text, int64_t taken_at);
// "2026/11/22" "07:54:50" (UTC) -> Unix seconds.
Expected<int64_t, ParseError> parse_isc_time(std::string_view date, std::string_view time);

}  // namespace tsunagu::alloc
