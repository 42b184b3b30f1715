#include "allocation/lease_record.hpp"

namespace tsunagu::alloc {

std::string_view to_string(LeaseState state) {
  switch (state) {
    case LeaseState::active: return "active";
    case LeaseState::released: return "released";
    case LeaseState::expired: return "expired";
    case LeaseState::declined: return "declined";
    case LeaseState::removed: return "removed";
  }
  return "unknown";
}

}  // namespace tsunagu::alloc
