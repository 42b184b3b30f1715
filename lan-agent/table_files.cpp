#include "lan-agent/table_files.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include "base/bytes.hpp"
#include "base/files.hpp"
#include "base/log.hpp"

namespace tsunagu::lanagent {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kAdminBindingsDatabase = "agent_admin_bindings";

// Changes at every boot (procfs reports its size as 0, so not read_text_file).
std::string current_boot_id() {
  int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buffer[64];
  ssize_t n = ::read(fd, buffer, sizeof buffer);
  ::close(fd);
  if (n <= 0) return {};
  std::string id(buffer, static_cast<size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

// A rename or unlink is durable only once its directory is.
Expected<void, std::string> sync_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unexpected(directory + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (rc != 0) return Unexpected(directory + ": fsync: " + std::strerror(saved));
  return {};
}

alloc::TableOptions table_options_of(const AgentConfig& config) {
  alloc::TableOptions options;
  if (config.table.hostname_rule) options.hostname_rule = *alloc::HostnameRule::parse(*config.table.hostname_rule);
  options.history_depth = static_cast<size_t>(config.table.history_depth);
  options.tombstone_retention = config.table.tombstone_retention_s;
  options.assumed_lease_seconds = config.table.assumed_lease_seconds;
  return options;
}

ByteView bytes_of(std::string_view text) { return as_bytes(text); }
std::string_view text_of(ByteView bytes) { return as_chars(bytes); }

// Until this layout the admin bindings lived only in the table, in DATA's own
// environment: copy them into the journal once, before the table moves.
Expected<void, std::string> migrate_admin_bindings(OpenTable& open, const AgentConfig& config) {
  auto old_table = alloc::AllocationTable::open(*open.durable_env, table_options_of(config));
  if (!old_table) return Unexpected(old_table.error().detail);
  auto bindings = old_table->bindings();
  if (!bindings) return Unexpected(bindings.error().detail);
  for (const auto& b : *bindings) {
    if (b.origin != alloc::BindingOrigin::admin) continue;
    if (auto ok = record_admin_binding(open, b.extension, &b.client); !ok) return ok;
    log::info() << "table: admin binding " << b.extension << " -> " << b.client.value << " kept in " << open.paths.durable_directory;
  }
  return {};
}

// A new or rebuilt table gets the admin bindings back.
Expected<void, std::string> restore_admin_bindings(OpenTable& open) {
  if (!open.durable_env) return {};  // no DATA/data.mdb: none was ever recorded
  std::vector<std::pair<std::string, std::string>> journal;
  {
    auto txn = open.durable_env->begin_read();
    if (!txn) return Unexpected(txn.error().detail);
    auto ok = txn->scan(open.admin_bindings, {}, [&](ByteView key, ByteView value) {
      journal.emplace_back(text_of(key), text_of(value));
      return true;
    });
    if (!ok) return Unexpected(ok.error().detail);
  }
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  for (const auto& [extension, client_key] : journal) {
    auto client = alloc::ClientRef::from_index_key(client_key);
    if (!client) {
      log::warn() << "table: admin binding of " << extension << " unreadable: " << client.error().detail;
      continue;
    }
    if (auto bound = open.table->bind(extension, *client, now); !bound)
      return Unexpected("admin binding " + extension + ": " + bound.error().detail);
  }
  return {};
}

Expected<void, std::string> open_durable_environment(OpenTable& open) {
  auto durable_env = storage::Environment::open(open.paths.durable_directory, open.durable_options);
  if (!durable_env) return Unexpected(open.paths.durable_directory + ": " + durable_env.error().detail);
  open.durable_env = std::move(*durable_env);
  auto journal = open.durable_env->open_database(kAdminBindingsDatabase);
  if (!journal) return Unexpected(open.paths.durable_directory + ": " + journal.error().detail);
  open.admin_bindings = *journal;
  return {};
}

Expected<TableDirectoryLock, std::string> lock_table_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Unexpected(directory + ": " + std::strerror(errno));
  TableDirectoryLock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return lock;
  if (errno == EWOULDBLOCK) {
    log::info() << "table: " << directory << " is being created by a tsunagu-lan-agent command; waiting for it";
    int rc;
    do rc = ::flock(fd, LOCK_EX);
    while (rc != 0 && errno == EINTR);
    if (rc == 0) return lock;
  }
  return Unexpected(directory + ": flock: " + std::strerror(errno));
}

}  // namespace

TableDirectoryLock::TableDirectoryLock(TableDirectoryLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

TableDirectoryLock& TableDirectoryLock::operator=(TableDirectoryLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

TableDirectoryLock::~TableDirectoryLock() {
  if (fd_ >= 0) ::close(fd_);
}

TablePaths table_paths(const std::string& data_directory) {
  TablePaths p;
  p.durable_directory = data_directory;
  p.table_directory = (fs::path(data_directory) / "table").string();
  p.clean_marker = p.table_directory + "/clean-shutdown";
  p.boot_id_file = p.table_directory + "/boot-id";
  return p;
}

Expected<OpenTable, std::string> open_table(const AgentConfig& config, bool create, TableUser user) {
  OpenTable open;
  open.paths = table_paths(config.data_directory);
  const TablePaths& paths = open.paths;
  std::error_code ec;
  if (create) {
    fs::create_directories(config.data_directory, ec);
    if (ec) return Unexpected(config.data_directory + ": " + ec.message());
  } else if (!fs::is_directory(config.data_directory)) {
    return Unexpected(config.data_directory + ": no allocation table here (agent.data_directory; has the agent run?)");
  }
  if (fs::create_directories(paths.table_directory, ec))
    fs::permissions(paths.table_directory, fs::perms::owner_all, ec);  // as private as the files LMDB makes (0600)
  if (ec) return Unexpected(paths.table_directory + ": " + ec.message());
  auto lock = lock_table_directory(paths.table_directory);
  if (!lock) return Unexpected(lock.error());
  const bool had_durable = fs::exists(paths.durable_directory + "/data.mdb");
  const bool had_table = fs::exists(paths.table_directory + "/data.mdb");

  if (user == TableUser::agent) {
    if (had_table && !fs::exists(paths.clean_marker)) {
      auto opened_in = read_text_file(paths.boot_id_file, 256);
      std::string boot_now = current_boot_id();
      if (opened_in && !boot_now.empty() && *opened_in == boot_now + "\n") {
        log::info() << "table: the agent did not stop in order, but the machine has not rebooted since: every "
                       "committed page is in the kernel's cache; keeping the table";
      } else {
        log::warn() << "table: " << paths.table_directory
                    << " has no clean-shutdown marker and the machine rebooted since the agent opened it (it may "
                       "be inconsistent): discarding the allocation table and rebuilding it from the lease files, "
                       "the spool and the admin bindings";
        fs::remove(paths.table_directory + "/data.mdb", ec);
        fs::remove(paths.table_directory + "/lock.mdb", ec);
        open.rebuilt = true;
      }
    }
    // The marker must be gone from the disk before the first unflushed commit can reach it.
    fs::remove(paths.clean_marker, ec);
    if (ec) return Unexpected(paths.clean_marker + ": " + ec.message());
    std::string boot_now = current_boot_id();
    if (boot_now.empty()) fs::remove(paths.boot_id_file, ec);
    else if (auto written = write_file_atomically(paths.boot_id_file, boot_now + "\n", 0600); !written)
      return Unexpected(written.error());
    if (auto synced = sync_directory(paths.table_directory); !synced) return Unexpected(synced.error());
  }

  storage::Environment::Options options;
  options.map_size = static_cast<uint64_t>(config.table.map_size_mib) << 20;
  open.durable_options = options;
  // A command that only syncs into a new data directory has no admin binding
  // to keep: DATA/data.mdb (and its flush) waits for record_admin_binding.
  if (user == TableUser::agent || had_durable)
    if (auto ok = open_durable_environment(open); !ok) return Unexpected(ok.error());

  // A table a command creates is written out once, in finish_command_table:
  // its first sync's commits (and the creation of its databases) protect
  // nothing until the command reports done.
  open.flush_pending = user == TableUser::command && create && !had_table;
  options.flush_on_commit = user == TableUser::command && !open.flush_pending;
  auto env = storage::Environment::open(paths.table_directory, options);
  if (!env) return Unexpected(paths.table_directory + ": " + env.error().detail);
  open.env = std::move(*env);
  auto table = alloc::AllocationTable::open(*open.env, table_options_of(config));
  if (!table) return Unexpected(paths.table_directory + ": " + table.error().detail);
  open.table.emplace(std::move(*table));

  if (!had_table && had_durable)
    if (auto ok = migrate_admin_bindings(open, config); !ok)
      return Unexpected(paths.durable_directory + ": admin bindings: " + ok.error());
  if (!had_table || open.rebuilt) {
    if (auto ok = restore_admin_bindings(open); !ok) return Unexpected(paths.table_directory + ": " + ok.error());
    // A table a command created without writing to it (list, show, unbind in
    // a data directory without one) is flushed on every commit: consistent, as
    // the marker says.
    if (user == TableUser::command && !open.flush_pending)
      if (auto ok = mark_table_clean(open); !ok) return Unexpected(ok.error());
  }
  if (open.flush_pending) open.creation_lock = std::move(*lock);
  return open;
}

Expected<void, std::string> record_admin_binding(OpenTable& open, std::string_view extension,
                                                 const alloc::ClientRef* client) {
  if (!open.durable_env)
    if (auto ok = open_durable_environment(open); !ok) return ok;
  auto txn = open.durable_env->begin_write();
  if (!txn) return Unexpected(txn.error().detail);
  if (client != nullptr) {
    // One extension per client, as in the table: a new binding of the client replaces its old one.
    std::string key = client->index_key();
    std::vector<std::string> previous;
    auto scanned = txn->scan(open.admin_bindings, {}, [&](ByteView k, ByteView v) {
      if (text_of(v) == key && text_of(k) != extension) previous.emplace_back(text_of(k));
      return true;
    });
    if (!scanned) return Unexpected(scanned.error().detail);
    for (const auto& p : previous)
      if (auto erased = txn->erase(open.admin_bindings, bytes_of(p)); !erased) return Unexpected(erased.error().detail);
    if (auto put = txn->put(open.admin_bindings, bytes_of(extension), bytes_of(key)); !put)
      return Unexpected(put.error().detail);
  } else if (auto erased = txn->erase(open.admin_bindings, bytes_of(extension)); !erased) {
    return Unexpected(erased.error().detail);
  }
  if (auto committed = txn->commit(); !committed) return Unexpected(committed.error().detail);
  return {};
}

Expected<void, std::string> mark_table_clean(OpenTable& open) {
  if (auto flushed = open.env->flush(); !flushed)
    return Unexpected(open.paths.table_directory + ": flush: " + flushed.error().detail);
  if (auto written = write_file_atomically(open.paths.clean_marker, "flushed at an orderly stop\n", 0600); !written)
    return Unexpected(written.error());
  return sync_directory(open.paths.table_directory);
}

Expected<void, std::string> finish_command_table(OpenTable& open) {
  if (!open.flush_pending) return {};
  if (auto flushed = open.env->flush(); !flushed)
    return Unexpected(open.paths.table_directory + ": flush: " + flushed.error().detail);
  // Not flushed itself (mark_table_clean's two fsyncs were 2-40 ms of a sync):
  // the table already is, so a marker a crash loses costs a rebuild, and one
  // that survives it is true.
  int fd = ::open(open.paths.clean_marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Unexpected(open.paths.clean_marker + ": " + std::strerror(errno));
  constexpr std::string_view kNote = "written out by the command that created the table\n";
  ssize_t written = ::write(fd, kNote.data(), kNote.size());
  int saved = errno;
  ::close(fd);
  if (written != static_cast<ssize_t>(kNote.size()))
    return Unexpected(open.paths.clean_marker + ": " + std::strerror(written < 0 ? saved : EIO));
  open.flush_pending = false;
  return {};
}

}  // namespace tsunagu::lanagent
