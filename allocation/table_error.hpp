// The error AllocationTable returns: a code and a short detail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/lmdb_store.hpp"

namespace tsunagu::alloc {

enum class TableErrc : uint8_t {
  storage,           // LMDB failed (see store_code; map_full means raise map_size)
  invalid_argument,  // an event without an identity, an empty extension, ...
  corrupted_record,  // a stored value this build cannot decode
  not_found,         // unbind of an extension that has no binding
};

std::string_view to_string(TableErrc code);

struct TableError {
  TableErrc code = TableErrc::storage;
  storage::StoreErrc store_code = storage::StoreErrc::other;  // when code == storage
  std::string detail;
};

}  // namespace tsunagu::alloc
