#include "lan-agent/hook_spool.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace tsunagu::lanagent {
namespace {

std::string errno_text(std::string_view what) { return std::string(what) + ": " + std::strerror(errno); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool write_all(int fd, ByteView bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

int lock(int fd, int operation) {
  int rc;
  do rc = ::flock(fd, operation);
  while (rc != 0 && errno == EINTR);
  return rc;
}

// Why a spool file must not be replayed (and truncated), or nothing.
std::optional<std::string> refuse_spool_file(std::string_view name, const struct stat& st,
                                             const std::function<bool(uid_t, gid_t)>& owner_allowed) {
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  // A hard link: truncating it would truncate the file it also names.
  if (st.st_nlink != 1) return std::to_string(st.st_nlink) + " hard links to one file";
  std::string_view uid_text = name.substr(5, name.size() - 5 - 6);  // hook-UID.spool
  if (uid_text != std::to_string(st.st_uid))
    return "owned by uid " + std::to_string(st.st_uid) + ", not the uid its name claims";
  if (!owner_allowed(st.st_uid, st.st_gid))
    return "owner uid " + std::to_string(st.st_uid) + " is not allowed to hand lease events";
  return std::nullopt;
}

}  // namespace

std::string spool_file_for(const std::string& directory, uid_t uid) {
  return directory + "/hook-" + std::to_string(uid) + ".spool";
}

SpoolDepth spool_depth(const std::string& directory) {
  SpoolDepth depth;
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return depth;
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (!name.starts_with("hook-") || !name.ends_with(".spool")) continue;
    struct stat info {};
    if (::lstat((directory + "/" + std::string(name)).c_str(), &info) != 0 || !S_ISREG(info.st_mode) ||
        info.st_size == 0)
      continue;
    ++depth.files;
    depth.bytes += static_cast<uint64_t>(info.st_size);
  }
  ::closedir(dir);
  return depth;
}

gid_t spool_group(const std::vector<std::string>& allowed_groups) {
  for (const auto& name : allowed_groups)
    if (const group* found = ::getgrnam(name.c_str())) return found->gr_gid;
  return ::getegid();
}

Expected<void, std::string> prepare_spool_directory(const std::string& directory, gid_t group) {
  if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) return Unexpected(errno_text("mkdir " + directory));
  struct stat st {};
  if (::lstat(directory.c_str(), &st) != 0) return Unexpected(errno_text("stat " + directory));
  if (!S_ISDIR(st.st_mode)) return Unexpected(directory + ": not a directory (a symlink or a file); refusing it");
  if (st.st_uid != ::geteuid())
    return Unexpected(directory + ": owned by uid " + std::to_string(st.st_uid) + ", not by the agent (uid " +
                      std::to_string(::geteuid()) + "); refusing to replay from it");
  if (st.st_gid != group && ::chown(directory.c_str(), static_cast<uid_t>(-1), group) != 0)
    return Unexpected(errno_text("chgrp " + directory + " to gid " + std::to_string(group)));
  if ((st.st_mode & 07777) != kSpoolDirectoryMode && ::chmod(directory.c_str(), kSpoolDirectoryMode) != 0)
    return Unexpected(errno_text("chmod " + directory));
  return {};
}

Expected<std::string, std::string> append_to_spool(const std::string& directory, ByteView records) {
  std::string path = spool_file_for(directory, ::geteuid());
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0) return Unexpected(errno_text("open " + path));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unexpected(errno_text("fstat " + path));
  // Someone else's file under our name, or a hard link to a file elsewhere:
  // never write into it.
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1)
    return Unexpected(path + ": not a regular file of this user with one link; refusing to spool into it");
  if (lock(fd.get(), LOCK_EX) != 0) return Unexpected(errno_text("flock " + path));
  bool fresh = st.st_size == 0;
  if (!write_all(fd.get(), records)) return Unexpected(errno_text("write " + path));
  if (::fsync(fd.get()) != 0) return Unexpected(errno_text("fsync " + path));
  if (fresh) {
    // A new file's directory entry must be durable too.
    Fd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() >= 0) ::fsync(dir.get());
  }
  lock(fd.get(), LOCK_UN);
  return path;
}

std::vector<SpoolFileReport> replay_spool_directory(
    const std::string& directory, const std::function<bool(uid_t, gid_t)>& owner_allowed,
    const std::function<bool(std::vector<alloc::LeaseEvent>&)>& commit) {
  std::vector<SpoolFileReport> reports;
  std::vector<std::string> names;
  if (DIR* dir = ::opendir(directory.c_str())) {
    while (const dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name.starts_with("hook-") && name.ends_with(".spool") && names.size() < 4096) names.emplace_back(name);
    }
    ::closedir(dir);
  }
  for (const auto& name : names) {
    SpoolFileReport report;
    report.path = directory + "/" + name;
    struct stat st {};
    if (::lstat(report.path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      report.error = "a symbolic link, not a spool file; ignored (not replayed, not truncated)";
      reports.push_back(std::move(report));
      continue;
    }
    Fd fd(::open(report.path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (fd.get() < 0 || ::fstat(fd.get(), &st) != 0) {
      report.error = errno_text("open");
      reports.push_back(std::move(report));
      continue;
    }
    if (auto refused = refuse_spool_file(name, st, owner_allowed)) {
      report.error = *refused + "; ignored (not replayed, not truncated)";
      reports.push_back(std::move(report));
      continue;
    }
    if (st.st_size == 0) continue;
    if (lock(fd.get(), LOCK_EX) != 0) {
      report.error = errno_text("flock");
      reports.push_back(std::move(report));
      continue;
    }
    if (::fstat(fd.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) > kMaxSpoolFileBytes) {
      report.error = "larger than 256 MiB; left for an admin (tsunagu-lan-agent replays at most that)";
      reports.push_back(std::move(report));
      continue;
    }
    Bytes bytes(static_cast<size_t>(st.st_size));
    size_t got = 0;
    while (got < bytes.size()) {
      ssize_t n = ::pread(fd.get(), bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    bytes.resize(got);
    std::vector<alloc::LeaseEvent> events;
    report.replay = alloc::replay_spool(bytes, [&](const alloc::LeaseEvent& e) {
      events.push_back(e);
      return true;
    });
    if (!events.empty() && !commit(events)) {
      report.error = "the table did not commit; the spool is kept for the next try";
      reports.push_back(std::move(report));
      continue;
    }
    // Everything understood is durable in the table; a torn tail is a record
    // whose hook died mid-append (and so never finished): drop it too.
    if (::ftruncate(fd.get(), 0) == 0 && ::fsync(fd.get()) == 0) report.truncated = true;
    else report.error = errno_text("truncate");
    reports.push_back(std::move(report));
  }
  return reports;
}

}  // namespace tsunagu::lanagent
