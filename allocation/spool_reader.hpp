// Replays the bytes of a hook spool file (LeaseEvent records appended one after
// another, see lease_event_codec.hpp). Pure: the agent reads the file and hands
// the bytes over.
//
// - A record cut short at the end (the hook crashed mid-append) stops the replay
//   cleanly: torn_tail_bytes says how many bytes were left; the agent truncates
//   the file to `consumed` before appending again.
// - A corrupted record in the middle (bad CRC, bad length, bad field) is skipped:
//   the reader searches forward for the next record magic and counts the skip.
#pragma once

#include <cstddef>
#include <functional>

#include "allocation/lease_event.hpp"
#include "base/bytes.hpp"

namespace tsunagu::alloc {

struct SpoolReplayResult {
  size_t records = 0;          // records handed to the callback
  size_t skipped_records = 0;  // corrupted regions skipped (each counted once)
  size_t skipped_bytes = 0;    // bytes inside those regions
  size_t torn_tail_bytes = 0;  // incomplete record at the end, not replayed
  size_t consumed = 0;         // offset up to which the spool was understood
};

// Calls on_event for each good record in order; stops early (and returns the
// counts so far, with consumed at the end of the last record) when on_event
// returns false.
SpoolReplayResult replay_spool(ByteView spool, const std::function<bool(const LeaseEvent&)>& on_event);

}  // namespace tsunagu::alloc
