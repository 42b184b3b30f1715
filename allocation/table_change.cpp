#include "allocation/table_change.hpp"

namespace tsunagu::alloc {

std::string_view to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::lease_granted: return "lease granted";
    case ChangeKind::lease_renewed: return "lease renewed";
    case ChangeKind::lease_moved: return "lease moved";
    case ChangeKind::lease_ended: return "lease ended";
    case ChangeKind::lease_expired: return "lease expired";
    case ChangeKind::lease_purged: return "lease purged";
    case ChangeKind::binding_set: return "binding set";
    case ChangeKind::binding_learned: return "binding learned";
    case ChangeKind::binding_removed: return "binding removed";
    case ChangeKind::binding_conflict: return "binding conflict";
  }
  return "unknown";
}

}  // namespace tsunagu::alloc
