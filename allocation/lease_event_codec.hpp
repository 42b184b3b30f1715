// The compact binary form of a LeaseEvent, used both for the hook -> agent Unix
// socket message and for the hook's durable spool file (records appended).
//
// Record (all integers big-endian):
//   magic   4  "TsLe"           lets a reader resynchronise after a bad record
//   version 1  = 1
//   length  2  body length, <= kMaxLeaseEventBody
//   body    length bytes:
//     action 1, source 1, family 1 (4|6), reserved 1 (0),
//     expires 8 (signed), reported_at 8 (signed), address 4|16,
//     mac, client_id, hostname, server: each 1-byte length + bytes
//   crc32   4  IEEE CRC-32 of version, length and body
#pragma once

#include <cstddef>

#include "allocation/lease_event.hpp"
#include "allocation/parse_error.hpp"
#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::alloc {

inline constexpr uint8_t kLeaseEventVersion = 1;
inline constexpr size_t kLeaseEventHeader = 7;     // magic + version + length
inline constexpr size_t kLeaseEventTrailer = 4;    // crc32
inline constexpr size_t kMaxLeaseEventBody = 1024;
inline constexpr std::byte kLeaseEventMagic[4] = {std::byte{'T'}, std::byte{'s'}, std::byte{'L'}, std::byte{'e'}};

struct DecodedLeaseEvent {
  LeaseEvent event;
  size_t consumed = 0;  // bytes of input the record used
};

uint32_t crc32(ByteView data);

// Appends one record to out. Fields over their limits (client-id is encoded as
// bytes, so 130; hostname 253; server 64) make it fail with too_large.
Expected<void, ParseError> encode_lease_event(const LeaseEvent& event, Bytes& out);
// Decodes the record at the start of input: need_more if input ends inside it;
// bad_syntax (bad magic or length), bad_version, bad_checksum, or a field error.
Expected<DecodedLeaseEvent, ParseError> decode_lease_event(ByteView input);

}  // namespace tsunagu::alloc
