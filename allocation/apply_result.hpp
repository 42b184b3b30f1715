// What AllocationTable::apply did with one event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocation/table_change.hpp"

namespace tsunagu::alloc {

enum class ApplyOutcome : uint8_t {
  applied,    // the event was newer: the table changed (changes may still be empty
              // for an ending event about a lease the table never saw)
  duplicate,  // the same knowledge again (dnsmasq's repeated `old`): nothing changed
  stale,      // older than what the table knows: nothing changed
};

struct ApplyResult {
  ApplyOutcome outcome = ApplyOutcome::applied;
  std::vector<TableChange> changes;
};

}  // namespace tsunagu::alloc
