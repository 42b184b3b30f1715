// Kea's memfile CSV (kea-leases4.csv / kea-leases6.csv). The header names the
// columns; rows are appended, the last row per address wins; a row with
// valid_lifetime 0 is a deletion (release). state 1 = declined, 2 =
// expired-reclaimed. expires = expire, reported_at = expire - valid_lifetime
// (the CLTT). Kea writes a comma inside a field as "&#x2c".
#pragma once

#include <string_view>

#include "allocation/lease_file_snapshot.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

Expected<LeaseFileSnapshot, ParseError> parse_kea_lease_file(std::string_view text, int64_t taken_at);

}  // namespace tsunagu::alloc
