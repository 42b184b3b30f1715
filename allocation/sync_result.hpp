// What AllocationTable::sync did with one lease file snapshot.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocation/table_change.hpp"

namespace tsunagu::alloc {

struct SyncResult {
  size_t applied = 0, duplicates = 0, stale = 0;
  size_t ended_absent = 0;      // live leases of this server missing from the file, ended
  bool absent_checked = false;  // false when the file had bad records: nothing was ended
  // Filled only when list_changes is set before the sync (the agent logs each
  // change; the admin command prints counts, and copying 200,000 changes of a
  // first sync was a tenth of its time).
  bool list_changes = true;
  std::vector<TableChange> changes;
};

}  // namespace tsunagu::alloc
