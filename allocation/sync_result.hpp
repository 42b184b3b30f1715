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
  std::vector<TableChange> changes;
};

}  // namespace tsunagu::alloc
