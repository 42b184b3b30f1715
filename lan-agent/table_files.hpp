// Where the agent keeps its allocation table, and how durable each part is
// (docs/security.md, "The allocation table is derived state"):
//
//   DATA/data.mdb          flushed on every commit: the admin bindings
//                          (`tsunagu-lan-agent bind`), the one part of the
//                          table no lease file can give back.
//   DATA/table/data.mdb    the allocation table, committed to the page cache
//                          only while the agent runs (flushed every
//                          table.flush_interval_ms and at an orderly stop): a
//                          crash of the agent loses nothing, a crash of the
//                          machine may leave it inconsistent.
//   DATA/table/clean-shutdown   written after the final flush of an orderly
//                          stop, removed when the agent opens the table.
//   DATA/table/boot-id     the kernel's boot ID when the agent opened it.
//
// The agent starting without the marker keeps the table if the machine has not
// rebooted since (the kernel still holds every committed page) and otherwise
// discards it and rebuilds it from the lease files, the spool, the admin
// bindings and table.pins.
//
// A command that creates the table (`sync` or `bind` into a new data
// directory) commits to the page cache too and writes it out once, in
// finish_command_table, before it reports done: until then there is no marker,
// so a crash in between leaves a table the agent rebuilds. DATA/data.mdb is
// made only when an admin binding is first recorded or the agent starts.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "allocation/allocation_table.hpp"
#include "base/expected.hpp"
#include "lan-agent/agent_config.hpp"
#include "storage/lmdb_store.hpp"

namespace tsunagu::lanagent {

// The agent daemon flushes on its own schedule; commands (bind, sync, list)
// commit durably and never touch the marker.
enum class TableUser { agent, command };

struct TablePaths {
  std::string durable_directory;  // DATA
  std::string table_directory;    // DATA/table
  std::string clean_marker;       // DATA/table/clean-shutdown
  std::string boot_id_file;       // DATA/table/boot-id
};
TablePaths table_paths(const std::string& data_directory);

// flock(2) on the table directory, held while a table is opened (so the agent
// never discards a table a command is still filling) and, by a command that
// created the table, until its OpenTable is gone (after its environments are
// closed: LMDB's own locks must not see one process open a table twice).
class TableDirectoryLock {
 public:
  TableDirectoryLock() = default;
  explicit TableDirectoryLock(int fd) : fd_(fd) {}
  TableDirectoryLock(TableDirectoryLock&& other) noexcept;
  TableDirectoryLock& operator=(TableDirectoryLock&& other) noexcept;
  TableDirectoryLock(const TableDirectoryLock&) = delete;
  TableDirectoryLock& operator=(const TableDirectoryLock&) = delete;
  ~TableDirectoryLock();

 private:
  int fd_ = -1;
};

struct OpenTable {
  TableDirectoryLock creation_lock;  // declared first: released after the environments close
  // Null for a command in a data directory without DATA/data.mdb until
  // record_admin_binding needs it.
  std::unique_ptr<storage::Environment> durable_env;
  std::unique_ptr<storage::Environment> env;  // the table's
  std::optional<alloc::AllocationTable> table;
  storage::DatabaseHandle admin_bindings = 0;
  TablePaths paths;
  // The agent found no marker after a reboot (or no boot ID): the table was
  // discarded, the admin bindings written back; the caller syncs the lease files.
  bool rebuilt = false;
  // A command created the table: its commits are in the page cache only, and
  // there is no marker, until finish_command_table.
  bool flush_pending = false;
  storage::Environment::Options durable_options;
};

// Opens (creating when `create`) the table in config.data_directory. Waits for
// a command that is still filling a table it created.
Expected<OpenTable, std::string> open_table(const AgentConfig& config, bool create,
                                            TableUser user = TableUser::command);

// Keeps the admin bindings journal in step with the table: `client` null for
// an unbind. Flushed before it returns.
Expected<void, std::string> record_admin_binding(OpenTable& open, std::string_view extension,
                                                 const alloc::ClientRef* client);

// The orderly stop: flush the table, then write the marker (itself flushed).
Expected<void, std::string> mark_table_clean(OpenTable& open);

// A command's last step when it created the table (flush_pending): writes it
// out, then the marker. Nothing otherwise.
Expected<void, std::string> finish_command_table(OpenTable& open);

}  // namespace tsunagu::lanagent
