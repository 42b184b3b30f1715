// The hook's durable spool: when the agent is down or slow, the hook appends
// its encoded LeaseEvent records to SPOOL_DIR/hook-<uid>.spool (one file per
// calling user, so root, _kea and dhcpd never share a file) with O_APPEND,
// under an exclusive flock, then fsync. The agent replays every spool file on
// start (and every few seconds while running), commits, and truncates it,
// holding the same lock. The directory belongs to root (or the agent's user)
// and the spool group, mode 1770: only root and that group (the DHCP servers'
// users) may create files in it, and the sticky bit keeps one from removing or
// renaming another's. The agent replays only regular files with one link whose
// owner HookAccess allows and matches the uid in the file's name; anything else
// (a symlink, a hard link, another user's file) is reported and left alone.
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

inline constexpr unsigned kSpoolDirectoryMode = 01770;

// The group the spool directory belongs to: the first of `allowed_groups`
// (hook.allowed_groups) that exists on this host, else the caller's group.
gid_t spool_group(const std::vector<std::string>& allowed_groups);

// Creates the spool directory (mode 1770, owned by the caller and `group`) if
// missing; an existing one of the caller's (e.g. the 1733 of older versions) is
// given that group and mode. Refused: a symlink, a non-directory, or a
// directory owned by another user.
Expected<void, std::string> prepare_spool_directory(const std::string& directory, gid_t group);

// What waits in the spool directory: hook-*.spool files that are not empty
// and their bytes (lstat only: nothing is opened). For the status page and
// /metrics; a missing directory is an empty spool.
struct SpoolDepth {
  uint64_t files = 0;
  uint64_t bytes = 0;
};
SpoolDepth spool_depth(const std::string& directory);

struct SpoolFileReport {
  std::string path;
  alloc::SpoolReplayResult replay;
  bool truncated = false;
  std::string error;  // non-empty: the file was left as it was
};

// For each hook-UID.spool in the directory that is a regular file with one
// link, owned by UID, and UID is allowed: takes the lock, reads it, hands its
// events to `commit` (which applies them and returns true once they are
// durable), then truncates it. Other files (symlinks, hard links, another
// owner's) are reported with an error and left alone.
std::vector<SpoolFileReport> replay_spool_directory(
    const std::string& directory, const std::function<bool(uid_t, gid_t)>& owner_allowed,
    const std::function<bool(std::vector<alloc::LeaseEvent>&)>& commit);

}  // namespace tsunagu::lanagent
