// A storage error's kind as a short fixed name ("map_full", "disk_full"),
// for a metrics label; to_string(StoreErrc) is the text for people.
#pragma once

#include <string_view>

#include "storage/lmdb_store.hpp"

namespace tsunagu::storage {

std::string_view metric_label(StoreErrc code);

}  // namespace tsunagu::storage
