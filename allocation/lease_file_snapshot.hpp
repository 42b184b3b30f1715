// A DHCP server's lease file, parsed: the leases it holds (the last record per
// lease wins for append-only files) and how many lines or blocks could not be
// read. AllocationTable::sync reconciles the table with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "allocation/lease_event.hpp"
#include "allocation/parse_error.hpp"

namespace tsunagu::alloc {

// Lease files are parsed from memory with this cap (a 100,000-lease dnsmasq
// file is about 8 MiB); a bigger file is refused with too_large.
inline constexpr size_t kMaxLeaseFileBytes = 64 * 1024 * 1024;
inline constexpr size_t kMaxLeaseFileLine = 4096;

struct LeaseFileSnapshot {
  ServerKind source = ServerKind::unknown;
  int64_t taken_at = 0;              // the file's mtime as the agent read it (Unix seconds)
  std::vector<LeaseEvent> leases;    // grants for live leases, ending events for ended ones
  size_t records = 0;                // lines or blocks seen
  size_t bad_records = 0;            // lines or blocks skipped as unreadable
  std::optional<ParseError> first_error;  // the first of those, with its line
};

}  // namespace tsunagu::alloc
