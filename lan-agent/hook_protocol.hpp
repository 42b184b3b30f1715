// The hook <-> agent exchange on the agent's Unix socket. One request per
// connection; the hook writes it and shuts down its sending side:
//   'E' then LeaseEvent records (allocation/lease_event_codec.hpp) until EOF:
//       the agent applies them in its next group commit and answers one byte,
//       kAck once they are durable, kNak when they are not (the hook spools).
//   'I' (dnsmasq `init`): the agent answers with the live dnsmasq IPv4 leases it
//       knows, in dnsmasq's lease-file format, and closes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "allocation/lease_event.hpp"
#include "allocation/lease_record.hpp"
#include "allocation/parse_error.hpp"
#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::lanagent {

inline constexpr std::byte kRequestEvents{'E'};
inline constexpr std::byte kRequestInit{'I'};
inline constexpr std::byte kAck{0x06};
inline constexpr std::byte kNak{0x15};
// A Kea call carries at most 256 committed and 256 deleted leases.
inline constexpr size_t kMaxHookEvents = 512;
inline constexpr size_t kMaxHookRequestBytes = 1 + kMaxHookEvents * (7 + 1024 + 4);

Expected<Bytes, alloc::ParseError> encode_events_request(std::span<const alloc::LeaseEvent> events);
// The records after the 'E' byte; every record must decode.
Expected<std::vector<alloc::LeaseEvent>, alloc::ParseError> decode_events_request(ByteView body);

// dnsmasq's lease-file lines for the live dnsmasq IPv4 leases:
// "<expiry> <mac> <ip> <hostname|*> <client-id|*>\n" (expiry 0 = infinite).
std::string dnsmasq_init_listing(const std::vector<alloc::LeaseRecord>& leases, int64_t now);

}  // namespace tsunagu::lanagent
