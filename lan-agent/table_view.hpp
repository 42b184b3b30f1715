// Text views of the allocation table for the admin commands and the daemon's
// log. Pure: the caller passes what it read and `now`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "allocation/binding_conflict.hpp"
#include "allocation/extension_binding.hpp"
#include "allocation/history_entry.hpp"
#include "allocation/lease_record.hpp"
#include "allocation/table_change.hpp"
#include "lan-agent/terminal_certificates.hpp"

namespace tsunagu::lanagent {

// "1h02m", "1m52s", "45s", "3d04h"; "never" for infinite, "expired" when <= 0.
std::string format_remaining(int64_t seconds);
std::string format_time(int64_t unix_seconds);  // "2026-11-22 07:54:50 UTC"
// The extension a lease belongs to under these bindings, or "".
std::string extension_of(const alloc::LeaseRecord& lease, const std::vector<alloc::ExtensionBinding>& bindings);

// `list`: one row per lease (live, or all with include_ended) and one per bound
// extension without a live lease: EXTENSION MAC ADDRESS EXPIRES-IN SOURCE.
std::string format_table(const std::vector<alloc::ExtensionBinding>& bindings,
                         const std::vector<alloc::LeaseRecord>& leases, int64_t now);
// `list`'s second part: clients whose hostname claimed a bound extension, with
// the command that would bind them; "" when there are none.
std::string format_conflicts(const std::vector<alloc::BindingConflict>& conflicts, int64_t now);
// `terminal list`: EXTENSION SERIAL EXPIRES STATUS (valid, expired, revoked).
std::string format_certificate_list(const std::vector<CertificateLedgerEntry>& issued,
                                    const std::vector<CertificateLedgerEntry>& revoked, int64_t now);
// `show EXT`.
std::string format_extension(const std::string& extension, const alloc::ExtensionBinding* binding,
                             const std::vector<alloc::LeaseRecord>& leases,
                             const std::vector<alloc::HistoryEntry>& history, int64_t now);
// One log line for a table change.
std::string describe_change(const alloc::TableChange& change);

}  // namespace tsunagu::lanagent
