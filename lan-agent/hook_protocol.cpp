#include "lan-agent/hook_protocol.hpp"

#include "allocation/field_normalisation.hpp"
#include "allocation/lease_event_codec.hpp"

namespace tsunagu::lanagent {

Expected<Bytes, alloc::ParseError> encode_events_request(std::span<const alloc::LeaseEvent> events) {
  if (events.size() > kMaxHookEvents)
    return Unexpected(alloc::ParseError{alloc::ParseErrc::too_large, "more than 512 events in one hook call", 0});
  Bytes out{kRequestEvents};
  for (const auto& e : events)
    if (auto ok = alloc::encode_lease_event(e, out); !ok) return Unexpected(ok.error());
  return out;
}

Expected<std::vector<alloc::LeaseEvent>, alloc::ParseError> decode_events_request(ByteView body) {
  std::vector<alloc::LeaseEvent> events;
  size_t pos = 0;
  while (pos < body.size()) {
    if (events.size() >= kMaxHookEvents)
      return Unexpected(alloc::ParseError{alloc::ParseErrc::too_large, "more than 512 events in one request", 0});
    auto decoded = alloc::decode_lease_event(body.subspan(pos));
    if (!decoded) return Unexpected(decoded.error());
    events.push_back(std::move(decoded->event));
    pos += decoded->consumed;
  }
  return events;
}

std::string dnsmasq_init_listing(const std::vector<alloc::LeaseRecord>& leases, int64_t now) {
  std::string out;
  for (const auto& lease : leases) {
    if (lease.source != alloc::ServerKind::dnsmasq || !lease.live(now) || lease.mac.empty() ||
        lease.address.family != proto::SocketAddress::Family::ipv4)
      continue;
    int64_t expiry = lease.expires == alloc::LeaseEvent::kInfinite ? 0 : lease.live_until;
    out += std::to_string(expiry) + " " + lease.mac + " " + alloc::ip_to_string(lease.address) + " " +
           (lease.hostname.empty() ? "*" : lease.hostname) + " " +
           (lease.client_id.empty() ? "*" : lease.client_id) + "\n";
  }
  return out;
}

}  // namespace tsunagu::lanagent
