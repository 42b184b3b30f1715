// Storage failures nobody's request is waiting on, and the log lines of all
// of them: while a disk is full they repeat as fast as work arrives, so a few
// lines show the cause and a count stands for the rest. The node's daemon logs
// the faults its core counted (NodeCounters) through log(); a program without
// such a core (the LAN agent) counts and logs in one step with note().
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/log.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::storage {

class StorageErrorLog {
 public:
  explicit StorageErrorLog(unsigned burst = 10, std::chrono::seconds period = std::chrono::seconds(60))
      : limit_(burst, period) {}
  // Writes "<context><kind> (<detail>)" at `level` unless over the rate, adding
  // how many were not written so far once some were not; true when written.
  bool log(log::Level level, std::string_view context, const StoreError& error);
  // Counts `error` by kind, then log().
  bool note(log::Level level, std::string_view context, const StoreError& error);
  uint64_t count(StoreErrc code) const { return counts_[static_cast<size_t>(code)]; }
  uint64_t total() const;
  uint64_t suppressed() const { return limit_.suppressed(); }

 private:
  log::RateLimit limit_;
  std::array<uint64_t, store_errc_count> counts_{};
};

}  // namespace tsunagu::storage
