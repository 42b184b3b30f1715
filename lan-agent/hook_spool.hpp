// The hook's durable spool: when the agent is down or slow, the hook appends
// its encoded LeaseEvent records to SPOOL_DIR/hook-<uid>.spool (one file per
// calling user, so root, _kea and dhcpd never share a file) with O_APPEND,
// under an exclusive flock, then fsync. The agent replays every spool file on
// start (and every few seconds while running), commits, and truncates it,
// holding the same lock. The directory is created by the agent with mode 1733
// (anyone may create a file, nobody may list or touch another's); the agent
// replays only files whose owner HookAccess allows.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "allocation/lease_event.hpp"
#include "allocation/spool_reader.hpp"
#include "base/bytes.hpp"
#include "base/expected.hpp"

namespace tsunagu::lanagent {

inline constexpr size_t kMaxSpoolFileBytes = 256u << 20;

std::string spool_file_for(const std::string& directory, uid_t uid);

// Appends already-encoded records durably; returns the file written.
Expected<std::string, std::string> append_to_spool(const std::string& directory, ByteView records);

// Creates the spool directory (mode 1733, owned by the caller) if missing.
Expected<void, std::string> prepare_spool_directory(const std::string& directory);

struct SpoolFileReport {
  std::string path;
  alloc::SpoolReplayResult replay;
  bool truncated = false;
  std::string error;  // non-empty: the file was left as it was
};

// For each hook-*.spool in the directory owned by an allowed user: takes the
// lock, reads it, hands its events to `commit` (which applies them and returns
// true once they are durable), then truncates it. Files of other owners are
// reported with an error and left alone.
std::vector<SpoolFileReport> replay_spool_directory(
    const std::string& directory, const std::function<bool(uid_t, gid_t)>& owner_allowed,
    const std::function<bool(std::vector<alloc::LeaseEvent>&)>& commit);

}  // namespace tsunagu::lanagent
