#include "allocation/spool_reader.hpp"

#include <algorithm>

#include "allocation/lease_event_codec.hpp"

namespace tsunagu::alloc {
namespace {

// The offset of the next record magic at or after from, or size when none; a
// magic cut by the end of the input counts as found (it may be a torn record).
size_t find_magic(ByteView data, size_t from) {
  for (size_t i = from; i < data.size(); ++i) {
    size_t n = std::min<size_t>(4, data.size() - i);
    if (std::equal(data.begin() + static_cast<std::ptrdiff_t>(i),
                   data.begin() + static_cast<std::ptrdiff_t>(i + n), std::begin(kLeaseEventMagic)))
      return i;
  }
  return data.size();
}

}  // namespace

SpoolReplayResult replay_spool(ByteView spool, const std::function<bool(const LeaseEvent&)>& on_event) {
  SpoolReplayResult result;
  size_t pos = 0;
  while (pos < spool.size()) {
    auto decoded = decode_lease_event(spool.subspan(pos));
    if (decoded) {
      pos += decoded->consumed;
      ++result.records;
      result.consumed = pos;
      if (!on_event(decoded->event)) return result;
      continue;
    }
    if (decoded.error().code == ParseErrc::need_more) {
      // Is a later record complete? Then this one was damaged, not torn.
      size_t next = find_magic(spool, pos + 1);
      if (next >= spool.size()) {
        result.torn_tail_bytes = spool.size() - pos;
        return result;
      }
      ++result.skipped_records;
      result.skipped_bytes += next - pos;
      pos = next;
      result.consumed = pos;
      continue;
    }
    size_t next = find_magic(spool, pos + 1);
    ++result.skipped_records;
    result.skipped_bytes += next - pos;
    pos = next;
    result.consumed = pos;
  }
  return result;
}

}  // namespace tsunagu::alloc
