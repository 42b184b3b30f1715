#include "lan-agent/lease_file_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "allocation/dnsmasq_lease_file_parser.hpp"
#include "allocation/isc_lease_file_parser.hpp"
#include "allocation/kea_lease_file_parser.hpp"

namespace tsunagu::lanagent {

Expected<alloc::LeaseFileSnapshot, std::string> read_lease_file(const SyncSource& source,
                                                                 const std::function<void(size_t, size_t)>& progress) {
  int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Unexpected(source.path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Unexpected(source.path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > alloc::kMaxLeaseFileBytes) {
    ::close(fd);
    return Unexpected(source.path + ": larger than 64 MiB; refusing to read it");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    size_t want = std::min<size_t>(text.size() - got, 1 << 20);
    ssize_t n = ::read(fd, text.data() + got, want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
    if (progress) progress(got, text.size());
  }
  ::close(fd);
  text.resize(got);
  int64_t taken_at = static_cast<int64_t>(st.st_mtim.tv_sec);
  Expected<alloc::LeaseFileSnapshot, alloc::ParseError> parsed = Unexpected(alloc::ParseError{});
  switch (source.kind) {
    case alloc::ServerKind::dnsmasq: parsed = alloc::parse_dnsmasq_lease_file(text, taken_at); break;
    case alloc::ServerKind::isc_dhcpd: parsed = alloc::parse_isc_lease_file(text, taken_at); break;
    case alloc::ServerKind::kea: parsed = alloc::parse_kea_lease_file(text, taken_at); break;
    default: return Unexpected(source.path + ": unknown lease file kind");
  }
  if (!parsed) return Unexpected(source.path + ": " + parsed.error().detail);
  return std::move(*parsed);
}

}  // namespace tsunagu::lanagent

namespace tsunagu::lanagent {

Expected<alloc::SyncResult, alloc::TableError> sync_snapshot(alloc::AllocationTable& table,
                                                             const alloc::LeaseFileSnapshot& snapshot, int64_t now,
                                                             const std::function<void(size_t, size_t)>& progress,
                                                             bool list_changes) {
  // The leases in batches of kSyncChunk, each committed (one huge write
  // transaction spends its time in LMDB's dirty-page list; the admin command
  // flushes every commit, so not too many either: 25,000 took less wall time
  // than 10,000 or 100,000 for the same CPU), then the absent ones ended in a
  // last batch that sees the whole file.
  constexpr size_t kSyncChunk = 25'000;
  alloc::SyncResult result;
  result.list_changes = list_changes;
  if (list_changes) result.changes.reserve(snapshot.leases.size() * 2);
  {
    // Into an empty table (the first sync, a rebuild): one batch of sorted
    // appends, when the file allows it (AllocationTable::Batch::bulk_load).
    auto batch = table.begin_batch();
    if (!batch) return Unexpected(batch.error());
    auto bulk = batch->bulk_load(snapshot, now, result);
    if (!bulk) return Unexpected(bulk.error());
    if (*bulk) {
      if (auto ok = batch->commit(); !ok) return Unexpected(ok.error());
      if (progress && snapshot.leases.size() > kProgressLeases) progress(snapshot.leases.size(), snapshot.leases.size());
      return result;
    }
  }
  for (size_t at = 0; at < snapshot.leases.size(); at += kSyncChunk) {
    auto batch = table.begin_batch();
    if (!batch) return Unexpected(batch.error());
    size_t end = std::min(snapshot.leases.size(), at + kSyncChunk);
    if (auto ok = batch->sync_leases(snapshot, at, end, now, result); !ok) return Unexpected(ok.error());
    if (auto ok = batch->commit(); !ok) return Unexpected(ok.error());
    if (progress && snapshot.leases.size() > kProgressLeases) progress(end, snapshot.leases.size());
  }
  auto batch = table.begin_batch();
  if (!batch) return Unexpected(batch.error());
  if (auto ok = batch->sync_absent(snapshot, now, result); !ok) return Unexpected(ok.error());
  if (auto ok = batch->commit(); !ok) return Unexpected(ok.error());
  return result;
}

}  // namespace tsunagu::lanagent
