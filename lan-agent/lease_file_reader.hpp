// Reads a DHCP server's lease file (bounded by alloc::kMaxLeaseFileBytes) and
// parses it with the allocation/ parser of its kind. The snapshot's taken_at is
// the file's mtime.
#pragma once

#include <functional>
#include <string>

#include "allocation/lease_file_snapshot.hpp"
#include "base/expected.hpp"
#include "lan-agent/agent_config.hpp"

namespace tsunagu::lanagent {

// progress(bytes_read, total) is called while reading, when given.
Expected<alloc::LeaseFileSnapshot, std::string> read_lease_file(
    const SyncSource& source, const std::function<void(size_t, size_t)>& progress = {});

}  // namespace tsunagu::lanagent

#include "allocation/allocation_table.hpp"

namespace tsunagu::lanagent {

// Reconciles the table with a snapshot: the leases in committed batches of
// 25,000, then the leases of that server absent from the file are ended in a
// last batch. With `progress` and more than kProgressLeases leases, each batch
// reports applied/total. Without list_changes the result counts the changes
// but does not list them.
inline constexpr size_t kProgressLeases = 5000;
Expected<alloc::SyncResult, alloc::TableError> sync_snapshot(alloc::AllocationTable& table,
                                                             const alloc::LeaseFileSnapshot& snapshot, int64_t now,
                                                             const std::function<void(size_t, size_t)>& progress = {},
                                                             bool list_changes = true);

}  // namespace tsunagu::lanagent
