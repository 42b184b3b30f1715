// The lease events the agent received from DHCP hooks (over the socket or
// replayed from a spool): counted by server kind, and the last
// kRecentHookEvents kept for the status page (agent_web.hpp). Pure: the
// daemon records, the page and /metrics read.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "allocation/lease_event.hpp"

namespace tsunagu::lanagent {

inline constexpr size_t kRecentHookEvents = 100;

// How an event reached the agent: the hook's socket, or its spool (when the
// agent was down or slow).
enum class HookPath : uint8_t { socket, spool };
inline constexpr size_t kHookPathCount = 2;
std::string_view to_string(HookPath path);
inline constexpr size_t kServerKindCount = 4;  // alloc::ServerKind: unknown, dnsmasq, isc_dhcpd, kea

struct RecentHookEvent {
  int64_t received_at = 0;  // the agent's clock (Unix seconds)
  HookPath path = HookPath::socket;
  alloc::LeaseEvent event;
};

class HookEventLog {
 public:
  void record(const alloc::LeaseEvent& event, HookPath path, int64_t now);
  // Newest first.
  const std::deque<RecentHookEvent>& recent() const { return recent_; }
  uint64_t count(HookPath path, alloc::ServerKind source) const;

 private:
  std::deque<RecentHookEvent> recent_;
  std::array<std::array<uint64_t, kServerKindCount>, kHookPathCount> counts_{};
};

}  // namespace tsunagu::lanagent
