#include "storage/store_error_label.hpp"

namespace tsunagu::storage {

std::string_view metric_label(StoreErrc code) {
  switch (code) {
    case StoreErrc::not_found: return "not_found";
    case StoreErrc::map_full: return "map_full";
    case StoreErrc::readers_full: return "readers_full";
    case StoreErrc::disk_full: return "disk_full";
    case StoreErrc::io_error: return "io_error";
    case StoreErrc::corrupted: return "corrupted";
    case StoreErrc::busy: return "busy";
    case StoreErrc::poisoned: return "poisoned";
    case StoreErrc::value_too_large: return "value_too_large";
    case StoreErrc::other: return "other";
  }
  return "other";
}

}  // namespace tsunagu::storage
