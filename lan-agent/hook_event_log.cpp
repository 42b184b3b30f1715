#include "lan-agent/hook_event_log.hpp"

namespace tsunagu::lanagent {

std::string_view to_string(HookPath path) { return path == HookPath::socket ? "socket" : "spool"; }

void HookEventLog::record(const alloc::LeaseEvent& event, HookPath path, int64_t now) {
  size_t kind = static_cast<size_t>(event.source);
  if (kind >= kServerKindCount) kind = 0;  // decoded from a spool: only the known kinds are counted apart
  ++counts_[static_cast<size_t>(path)][kind];
  if (recent_.size() == kRecentHookEvents) recent_.pop_back();
  recent_.push_front(RecentHookEvent{now, path, event});
}

uint64_t HookEventLog::count(HookPath path, alloc::ServerKind source) const {
  size_t kind = static_cast<size_t>(source);
  return kind < kServerKindCount ? counts_[static_cast<size_t>(path)][kind] : 0;
}

}  // namespace tsunagu::lanagent
