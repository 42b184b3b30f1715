// Configuration of AllocationTable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "allocation/hostname_rule.hpp"

namespace tsunagu::alloc {

struct TableOptions {
  std::optional<HostnameRule> hostname_rule;  // none: only admin bindings
  size_t history_depth = 16;                  // changes kept per extension
  int64_t tombstone_retention = 7 * 86400;    // how long ended records keep ordering late events
  int64_t assumed_lease_seconds = 86400;      // liveness of a lease whose expiry the server did not tell
};

}  // namespace tsunagu::alloc
