#include "storage/storage_error_log.hpp"

namespace tsunagu::storage {

bool StorageErrorLog::log(log::Level level, std::string_view context, const StoreError& error) {
  if (!limit_.allow()) return false;
  log::Line line(level);
  line << context << to_string(error.code) << " (" << error.detail << ")";
  if (limit_.suppressed() > 0) line << "; " << limit_.suppressed() << " storage errors not logged so far";
  return true;
}

bool StorageErrorLog::note(log::Level level, std::string_view context, const StoreError& error) {
  ++counts_[static_cast<size_t>(error.code)];
  return log(level, context, error);
}

uint64_t StorageErrorLog::total() const {
  uint64_t sum = 0;
  for (uint64_t count : counts_) sum += count;
  return sum;
}

}  // namespace tsunagu::storage
