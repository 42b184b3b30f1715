#include "storage/environment_copy.hpp"

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <vector>

namespace tsunagu::storage {

namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(100);

StoreError system_error(int code, const std::string& during) { return error_from_mdb(code, during); }

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

uint64_t file_size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Runs `work` on a thread and reports the size of `fd` while it writes.
int with_progress(int fd, uint64_t total, const CopyProgress& progress, const std::function<int()>& work) {
  if (!progress) return work();
  auto running = std::async(std::launch::async, work);
  while (running.wait_for(kProgressInterval) != std::future_status::ready) progress(file_size_of(fd), total);
  int rc = running.get();
  uint64_t written = file_size_of(fd);  // a compacted copy ends below the estimate
  if (rc == 0) progress(written, written);
  return rc;
}

bool sync_directory(const std::string& directory) {
  Fd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && ::fsync(fd.get()) == 0;
}

// The bytes of the pages the environment uses: what a compacted copy writes, at most.
uint64_t pages_in_use(MDB_env* env) {
  MDB_envinfo info{};
  MDB_stat stat{};
  if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &stat) != 0) return 0;
  return (static_cast<uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

}  // namespace

Expected<void, StoreError> copy_environment(const std::string& from_directory, const std::string& to_directory,
                                            uint64_t map_size, const CopyProgress& progress) {
  std::string target = to_directory + "/data.mdb";
  MDB_env* env = nullptr;
  if (int rc = mdb_env_create(&env); rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_create"));
  // The daemon's own map size and table count, so opening never shrinks or refuses it.
  int rc = mdb_env_set_mapsize(env, static_cast<size_t>(map_size));
  if (rc == 0) rc = mdb_env_set_maxdbs(env, 16);
  if (rc == 0) rc = mdb_env_open(env, from_directory.c_str(), MDB_RDONLY, 0600);
  if (rc != 0) {
    mdb_env_close(env);
    return Unexpected(error_from_mdb(rc, "opening " + from_directory));
  }
  // Written under a name of its own and linked to data.mdb only once whole and
  // on disk: a backup killed half-way (kill -9, a full disk) leaves no
  // data.mdb that looks like a backup, only a data.mdb.partial-* to delete.
  if (::access(target.c_str(), F_OK) == 0) {
    mdb_env_close(env);
    return Unexpected(StoreError{StoreErrc::other, EEXIST, target + " exists already"});
  }
  std::string partial = target + ".partial-XXXXXX";
  Fd out(::mkostemp(partial.data(), O_CLOEXEC));
  if (out.get() < 0) {
    int error = errno;
    mdb_env_close(env);
    return Unexpected(system_error(error, "creating " + partial));
  }
  rc = with_progress(out.get(), pages_in_use(env), progress,
                     [&] { return mdb_env_copyfd2(env, out.get(), MDB_CP_COMPACT); });
  mdb_env_close(env);
  if (rc == 0 && ::fsync(out.get()) != 0) rc = errno;
  // link(2), not rename(2): it refuses to replace a data.mdb another backup made meanwhile.
  bool linked = false;
  if (rc == 0) {
    linked = ::link(partial.c_str(), target.c_str()) == 0;
    if (!linked) rc = errno;
  }
  ::unlink(partial.c_str());
  if (rc == EEXIST) return Unexpected(StoreError{StoreErrc::other, EEXIST, target + " exists already"});
  if (rc == 0 && !sync_directory(to_directory)) rc = errno;
  if (rc != 0) {
    if (linked) ::unlink(target.c_str());
    return Unexpected(error_from_mdb(rc, "copying " + from_directory + " to " + to_directory));
  }
  return {};
}

Expected<int, StoreError> environment_holder(const std::string& directory) {
  std::string lock_file = directory + "/lock.mdb";
  Fd fd(::open(lock_file.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return 0;  // never opened: nobody holds it
    return Unexpected(system_error(errno, "opening " + lock_file));
  }
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = 0;
  probe.l_len = 1;
  if (::fcntl(fd.get(), F_GETLK, &probe) != 0) return Unexpected(system_error(errno, "locking " + lock_file));
  return probe.l_type == F_UNLCK ? 0 : static_cast<int>(probe.l_pid);
}

Expected<void, StoreError> restore_environment(const std::string& backup_file, const std::string& to_directory,
                                               const std::string& required_table, const CopyProgress& progress) {
  // The backup must open as an LMDB environment and hold the daemon's tables.
  {
    MDB_env* env = nullptr;
    if (int rc = mdb_env_create(&env); rc != 0) return Unexpected(error_from_mdb(rc, "mdb_env_create"));
    int rc = mdb_env_set_maxdbs(env, 16);
    if (rc == 0) rc = mdb_env_open(env, backup_file.c_str(), MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0600);
    // A copy cut short (an interrupted scp, a backup made before backups were
    // written whole) still has its meta pages; reading its tables would touch
    // pages past the end of the file (SIGBUS), and the node could not use it.
    if (rc == 0) {
      uint64_t needed = pages_in_use(env), size = 0;
      struct stat st {};
      if (::stat(backup_file.c_str(), &st) == 0) size = static_cast<uint64_t>(st.st_size);
      if (needed == 0 || size < needed) {
        mdb_env_close(env);
        return Unexpected(StoreError{StoreErrc::corrupted, 0,
                                     backup_file + " is cut short (" + std::to_string(size) + " bytes of the " +
                                         std::to_string(needed) + " its header names): not a whole backup"});
      }
    }
    MDB_txn* txn = nullptr;
    if (rc == 0) rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    MDB_dbi table = 0;
    if (rc == 0) rc = mdb_dbi_open(txn, required_table.c_str(), 0, &table);
    if (txn != nullptr) mdb_txn_abort(txn);
    mdb_env_close(env);
    if (rc == MDB_NOTFOUND)
      return Unexpected(StoreError{StoreErrc::corrupted, rc,
                                   backup_file + " is an LMDB file without the table '" + required_table +
                                       "': not a backup of this kind of database"});
    if (rc != 0) return Unexpected(error_from_mdb(rc, "reading " + backup_file));
  }

  // A deployment put back from its saved files on a new machine has no
  // database directory yet: made 0700, as `init` makes it.
  if (::mkdir(to_directory.c_str(), 0700) == 0) {
    struct stat parent {};
    if (::geteuid() == 0 && ::stat((to_directory + "/..").c_str(), &parent) == 0 &&
        ::chown(to_directory.c_str(), parent.st_uid, parent.st_gid) != 0)
      return Unexpected(system_error(errno, "giving " + to_directory + " to its deployment's owner"));
  } else if (errno != EEXIST) {
    return Unexpected(system_error(errno, "creating " + to_directory));
  }
  // Run as root (as `systemctl stop` beside it invites), the files made here
  // go to the database directory's owner: the daemon's user must open them.
  struct stat owner {};
  if (::stat(to_directory.c_str(), &owner) != 0) return Unexpected(system_error(errno, "inspecting " + to_directory));
  auto give_to_owner = [&](int fd, const std::string& path) -> Expected<void, StoreError> {
    if (::geteuid() == 0 && ::fchown(fd, owner.st_uid, owner.st_gid) != 0)
      return Unexpected(system_error(errno, "giving " + path + " to the owner of " + to_directory));
    return {};
  };

  // Take LMDB's own exclusive lock for the whole restore: refused while a
  // process has the environment open, and an opener waits until we are done.
  std::string lock_file = to_directory + "/lock.mdb";
  Fd lock(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (lock.get() < 0) return Unexpected(system_error(errno, "opening " + lock_file));
  if (auto given = give_to_owner(lock.get(), lock_file); !given) return Unexpected(given.error());
  struct flock exclusive {};
  exclusive.l_type = F_WRLCK;
  exclusive.l_whence = SEEK_SET;
  exclusive.l_start = 0;
  exclusive.l_len = 1;
  if (::fcntl(lock.get(), F_SETLK, &exclusive) != 0) {
    if (errno != EAGAIN && errno != EACCES) return Unexpected(system_error(errno, "locking " + lock_file));
    auto holder = environment_holder(to_directory);
    std::string who = holder && *holder > 0 ? " (process " + std::to_string(*holder) + ")" : "";
    return Unexpected(StoreError{StoreErrc::busy, EBUSY,
                                 "the database in " + to_directory + " is open" + who + ": stop the daemon first"});
  }

  Fd in(::open(backup_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.get() < 0) return Unexpected(system_error(errno, "opening " + backup_file));
  uint64_t total = file_size_of(in.get());
  std::string incoming = to_directory + "/data.mdb.restoring";
  ::unlink(incoming.c_str());
  Fd out(::open(incoming.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) return Unexpected(system_error(errno, "creating " + incoming));
  if (auto given = give_to_owner(out.get(), incoming); !given) {
    ::unlink(incoming.c_str());
    return Unexpected(given.error());
  }
  int rc = with_progress(out.get(), total, progress, [&] {
    std::vector<char> buffer(1 << 20);
    for (;;) {
      ssize_t got = ::read(in.get(), buffer.data(), buffer.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return errno;
      if (got == 0) return 0;
      for (ssize_t written = 0; written < got;) {
        ssize_t n = ::write(out.get(), buffer.data() + written, static_cast<size_t>(got - written));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        written += n;
      }
    }
  });
  if (rc == 0 && ::fsync(out.get()) != 0) rc = errno;
  if (rc != 0) {
    ::unlink(incoming.c_str());
    return Unexpected(system_error(rc, "copying " + backup_file + " to " + incoming));
  }
  // The old file is kept by a second name (a hard link) and the new one renamed
  // over data.mdb: killed at any point, the directory holds the old database or
  // the new one, never none (an empty one would be made at the next start).
  std::string current = to_directory + "/data.mdb";
  std::string kept = to_directory + "/data.mdb.before-restore";
  if (::unlink(kept.c_str()) != 0 && errno != ENOENT) return Unexpected(system_error(errno, "removing " + kept));
  if (::link(current.c_str(), kept.c_str()) != 0 && errno != ENOENT)
    return Unexpected(system_error(errno, "keeping " + current + " as " + kept));
  if (::rename(incoming.c_str(), current.c_str()) != 0) return Unexpected(system_error(errno, "renaming " + incoming));
  if (!sync_directory(to_directory)) return Unexpected(system_error(errno, "syncing " + to_directory));
  return {};
}

}  // namespace tsunagu::storage
