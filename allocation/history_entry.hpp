// One remembered change of an extension (AllocationTable::history).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocation/table_change.hpp"

namespace tsunagu::alloc {

struct HistoryEntry {
  uint64_t sequence = 0;  // increasing over the whole table
  int64_t at = 0;         // the table's `now`
  ChangeKind kind = ChangeKind::lease_granted;
  std::optional<proto::SocketAddress> address;
  std::string client;  // ClientRef::index_key() of the client involved
  int64_t expires = 0;
};

}  // namespace tsunagu::alloc
