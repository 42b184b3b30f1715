// The LeaseEvent codec and the spool reader: anything decoded re-encodes to
// the same bytes; replay never reads past the input and accounts for every byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "allocation/lease_event_codec.hpp"
#include "allocation/spool_reader.hpp"

using namespace tsunagu::alloc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tsunagu::ByteView input(reinterpret_cast<const std::byte*>(data), size);
  auto decoded = decode_lease_event(input);
  if (decoded) {
    tsunagu::Bytes again;
    if (!encode_lease_event(decoded->event, again)) std::abort();
    if (again.size() != decoded->consumed || std::memcmp(again.data(), data, again.size()) != 0) std::abort();
  }
  size_t records = 0;
  auto result = replay_spool(input, [&](const LeaseEvent&) {
    ++records;
    return true;
  });
  if (result.records != records || result.consumed + result.torn_tail_bytes != size) std::abort();
  return 0;
}
